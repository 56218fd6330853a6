"""The serving copy BI tools read, published after every successful build:

- `serving/analytics.duckdb`: every mart and dimension (the models of dbt_project/models/marts/)
  as a plain table, with the dbt YAML descriptions as comments, and `_published` (duckdb_file.py);
- `serving/parquet/`: the same tables as Parquet, the row-level facts as one folder per table
  with a file per day (parquet_set.py);
- optionally a PostgreSQL schema, loaded from the DuckDB file (postgres.py).

Readers never see half a publication and never block the pipeline. The copy is made by DuckDB
from the warehouse connection the caller holds (under the warehouse lock), so it reads one
consistent state and never competes with a build for the lock; publications take turns.
A refresh rewrites only what changed: the small marts whole, and in the row-level facts the
days whose row count or newest load time changed (tables.py).
"""

from agent_analytics.serving.publish import parquet_dir, publish_all, serving_database, serving_dir
from agent_analytics.serving.tables import Mart, Publication, marts

__all__ = ["Mart", "Publication", "marts", "parquet_dir", "publish_all", "serving_database", "serving_dir"]
