"""Compaction of the raw layer (ingestion/compaction.py): every night the batches of closed days
are merged into one Parquet file per table and day, raw/<table>/event_date=YYYY-MM-DD/.

The asset is in its own job, `compact_raw_layer` (schedule `compact_raw_layer_daily`, 02:30
UTC, before the nightly full rebuild reads the raw layer at 03:00), not in `build_all` or
`refresh`: it changes where rows are, never what they are, so no model depends on it. It runs
in the warehouse pool and under the warehouse lock, so builds, loads and compaction take turns.
"""

from datetime import datetime, timezone

import dagster as dg

from ingestion.compaction import CLOSED_AFTER_DAYS, closed_cutoff, compact
from orchestration.defs.ingest.definitions import RAW_TABLE_KEYS
from orchestration.pools import WAREHOUSE_POOL
from orchestration.resources import AnalyticsSettings

COMPACTION_GROUP = "raw_layer"
COMPACTION_JOB = "compact_raw_layer"


@dg.asset(
    name="raw_compaction",
    group_name=COMPACTION_GROUP,
    deps=[key for key in RAW_TABLE_KEYS if key.path[0] == "raw"],
    pool=WAREHOUSE_POOL,
    kinds={"parquet"},
    description=(
        f"The batches of closed days (loaded, and every row occurred, before 00:00 UTC {CLOSED_AFTER_DAYS} days ago) "
        "merged into raw/<table>/event_date=YYYY-MM-DD/ day files; the same rows, fewer files."
    ),
)
def raw_compaction(context: dg.AssetExecutionContext, analytics: AnalyticsSettings) -> dg.MaterializeResult:
    settings = analytics.load()
    settings.ensure_dirs()
    cutoff = closed_cutoff(datetime.now(timezone.utc))
    plans = compact(settings.warehouse_path, settings.raw_dir, cutoff)
    for plan in plans:
        days = f"{plan.days[0]}..{plan.days[-1]}" if plan.days else "no rows"
        context.log.info(f"compaction {plan.compaction_id}: {len(plan.batches)} batches into {len(plan.files)} day files "
                         f"({days}; rows {plan.rows})")
    if not plans:
        context.log.info(f"nothing to compact before {cutoff:%Y-%m-%d %H:%M} UTC")
    return dg.MaterializeResult(metadata={
        "cutoff": f"{cutoff:%Y-%m-%d %H:%M} UTC",
        "plans": len(plans),
        "batches": sum(len(p.batches) for p in plans),
        "day_files": sum(len(p.files) for p in plans),
        "rows": sum(sum(p.rows.values()) for p in plans),
    })


compact_raw_layer = dg.define_asset_job(
    COMPACTION_JOB, selection=[raw_compaction], executor_def=dg.in_process_executor,
    description="Merge the raw layer's batches of closed days into day files (the same rows, fewer files).",
)

compaction_schedule = dg.ScheduleDefinition(
    name="compact_raw_layer_daily",
    job=compact_raw_layer,
    cron_schedule="30 2 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Every day at 02:30 UTC: compact the raw layer's closed days, before the 03:00 full rebuild.",
)

defs = dg.Definitions(assets=[raw_compaction], jobs=[compact_raw_layer], schedules=[compaction_schedule])
