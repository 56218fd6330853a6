"""The serving copy (agent_analytics/serving.py), published after every build and refresh.

It depends on every mart, so it runs after them and after their blocking checks: a failed
Great Expectations suite skips it, and BI tools keep the last copy that passed. It runs in the
warehouse pool and reads the warehouse under its lock, so it never competes with a build.
"""

from collections.abc import Sequence

import dagster as dg

from agent_analytics.serving import parquet_dir, publish_all, serving_database
from orchestration.pools import WAREHOUSE_POOL
from orchestration.resources import AnalyticsSettings, Warehouse

SERVING_GROUP = "serving"


def build_defs(marts: Sequence[dg.AssetKey]) -> dg.Definitions:
    """The serving asset, after every mart of `marts`."""

    @dg.asset(
        name="serving_copy", group_name=SERVING_GROUP, deps=marts, pool=WAREHOUSE_POOL, kinds={"duckdb", "parquet"},
        description="serving/analytics.duckdb and serving/parquet/: every mart as a table and a Parquet file, for BI tools.",
    )
    def serving_copy(context: dg.AssetExecutionContext, analytics: AnalyticsSettings,
                     warehouse: Warehouse) -> dg.MaterializeResult:
        settings = analytics.load()
        with warehouse.connect(read_only=True) as con:
            publication = publish_all(con, settings, build_id=context.run_id)
        return dg.MaterializeResult(metadata={
            "database": dg.MetadataValue.path(str(serving_database(settings))),
            "parquet": dg.MetadataValue.path(str(parquet_dir(settings))),
            "published_at": publication.published_at.isoformat(sep=" ") + " UTC",
            "rows": sum(publication.row_counts.values()),
        })

    return dg.Definitions(assets=[serving_copy])
