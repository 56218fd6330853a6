"""The marts of a Spark build, read through DuckDB.

A Spark build (AGENT_ANALYTICS_ENGINE=spark, docs/spark.md) writes each model as a folder of
Parquet files under <home>/spark/warehouse/analytics.db/<model>/; the incremental marts are
partitioned by day (`<day column>=YYYY-MM-DD/` subfolders). What reads the marts after a build
(the serving copy, the quality checks, the exports, the dashboard and reports, the alert rules)
reads them as DuckDB views over those folders, so the metrics layer runs unchanged. The
warehouse file keeps what the loader and the alerts write (schemas `ingest`, `alerts`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from agent_analytics.serving.tables import marts
from agent_analytics.settings import Settings
from agent_analytics.sql import literal
from agent_analytics.warehouse import duckdb_config, open_warehouse, warehouse_lock

SPARK_SCHEMA = "analytics"  # the schema of the spark output of profiles.yml


def spark_table_dir(settings: Settings, name: str) -> Path:
    """The folder of a model's table in the local Spark warehouse."""
    return settings.spark_dir / "warehouse" / f"{SPARK_SCHEMA}.db" / name


def has_spark_tables(settings: Settings) -> bool:
    """Whether a Spark build has written tables under this home (rows an incremental build keeps)."""
    schema = spark_table_dir(settings, "x").parent
    return schema.is_dir() and any(p.is_dir() for p in schema.iterdir())


def create_mart_views(con: duckdb.DuckDBPyConnection, settings: Settings, *, temporary: bool = False) -> None:
    """A view per mart over its Spark Parquet folder, named as the mart, its columns in the
    order of the dbt YAML (Spark puts partition columns last). In schema `main` of `con`, or
    temporary views (which DuckDB finds before the tables of the warehouse file)."""
    for mart in marts():
        folder = spark_table_dir(settings, mart.name)
        columns = ", ".join(f'"{c}"' for c in mart.columns) or "*"
        if any(folder.rglob("*.parquet")):
            # glob characters of the home are bracketed, as in the dbt sources
            pattern = str(folder).replace("[", "[[]").replace("*", "[*]").replace("?", "[?]") + "/**/*.parquet"
            query = f"select {columns} from read_parquet({literal(pattern)}, hive_partitioning = true)"
        else:  # a partitioned table without rows has no file: its columns, no row
            casts = ", ".join(f'cast(null as {mart.types[c]}) as "{c}"' for c in mart.columns)
            query = f"select {casts} where false"
        con.execute(f'create or replace {"temporary " if temporary else ""}view "{mart.name}" as {query}')


@contextmanager
def open_spark_marts(settings: Settings, *, lock_timeout_s: float = 3600.0) -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory DuckDB connection whose schema `main` holds a view per Spark mart, opened
    under the warehouse lock (builds hold it while they write)."""
    with warehouse_lock(settings.warehouse_path, lock_timeout_s):
        con = duckdb.connect(config=duckdb_config(settings.home, settings.duckdb_memory))
        try:
            con.execute("set TimeZone = 'UTC'")
            create_mart_views(con, settings)
            yield con
        finally:
            con.close()


@contextmanager
def open_built_marts(settings: Settings, *, read_only: bool = True) -> Iterator[duckdb.DuckDBPyConnection]:
    """The warehouse, where the marts of the last build are found by name: its own tables after
    a DuckDB build, temporary views over the Spark tables after a Spark build."""
    with open_warehouse(settings.warehouse_path, read_only=read_only, memory_limit=settings.duckdb_memory) as con:
        if settings.engine == "spark":
            create_mart_views(con, settings, temporary=True)
        yield con
