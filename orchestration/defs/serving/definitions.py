"""The serving copy (agent_analytics/serving/), published after every build and refresh.

It depends on every mart, so it runs after them and after their blocking checks: a failed
Great Expectations suite skips it, and BI tools keep the last copy that passed. It runs in the
warehouse pool and reads the warehouse under its lock, so it never competes with a build.

When AGENT_ANALYTICS_BI_POSTGRES_URL is set it then publishes the serving file into PostgreSQL
(agent_analytics/serving/postgres.py), after letting go of the warehouse. A failure there is
its WARN check `postgres_published`, not a failed step: the DuckDB file and the Parquet set
are published already, and the server is outside the pipeline; the next build tries again.
"""

from collections.abc import Sequence

import dagster as dg

from agent_analytics.serving import parquet_dir, publish_all, serving_database
from agent_analytics.serving.postgres import publish_if_configured
from agent_analytics.spark_marts import open_spark_marts
from orchestration.pools import WAREHOUSE_POOL
from orchestration.resources import AnalyticsSettings, Warehouse

SERVING_GROUP = "serving"
POSTGRES_CHECK = "postgres_published"


def build_defs(marts: Sequence[dg.AssetKey]) -> dg.Definitions:
    """The serving asset, after every mart of `marts`."""

    @dg.asset(
        name="serving_copy", group_name=SERVING_GROUP, deps=marts, pool=WAREHOUSE_POOL, kinds={"duckdb", "parquet"},
        description="serving/analytics.duckdb and serving/parquet/: every mart as a table and a Parquet file, for BI tools.",
        check_specs=[dg.AssetCheckSpec(POSTGRES_CHECK, asset="serving_copy", blocking=False,
                                       description="The marts reached PostgreSQL (WARN when not; passes when "
                                                   "AGENT_ANALYTICS_BI_POSTGRES_URL is unset).")],
    )
    def serving_copy(context: dg.AssetExecutionContext, analytics: AnalyticsSettings,
                     warehouse: Warehouse) -> dg.MaterializeResult:
        settings = analytics.load()
        # After a Spark build the warehouse holds only the ingest and alert tables: the marts are
        # the Spark tables, as views of an in-memory connection (agent_analytics/spark_marts.py).
        built = open_spark_marts(settings) if settings.engine == "spark" else warehouse.connect(read_only=True)
        with built as con:
            publication = publish_all(con, settings, build_id=context.run_id)
        postgres = publish_if_configured(settings, serving_database(settings))
        (context.log.warning if postgres.status == "failed" else context.log.info)(f"PostgreSQL: {postgres.detail}")
        return dg.MaterializeResult(metadata={
            "database": dg.MetadataValue.path(str(serving_database(settings))),
            "parquet": dg.MetadataValue.path(str(parquet_dir(settings))),
            "published_at": publication.published_at.isoformat(sep=" ") + " UTC",
            "rows": sum(publication.row_counts.values()),
            "postgres": postgres.status,
        }, check_results=[dg.AssetCheckResult(check_name=POSTGRES_CHECK, passed=postgres.status != "failed",
                                              severity=dg.AssetCheckSeverity.WARN, metadata={"postgres": postgres.detail})])

    return dg.Definitions(assets=[serving_copy])
