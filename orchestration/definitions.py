"""Dagster entry point: `dagster dev -m orchestration.definitions` loads `defs`.

Each concern lives in defs/<concern>/ with its own assets, checks and sensors; this file
only merges them, binds the resources, and adds the jobs and schedules that span them.
Loading it reads the dbt manifest (prepared beforehand, see defs/dbt/project.py) and the
company time zone of the schedules; it runs no dbt.
"""

from __future__ import annotations

import dagster as dg

from agent_analytics.settings import load_settings
from orchestration import retention
from orchestration.defs.alerts import definitions as alerts_concern
from orchestration.defs.compaction import definitions as compaction_concern
from orchestration.defs.dbt import definitions as dbt_concern
from orchestration.defs.exports import definitions as exports_concern
from orchestration.defs.ingest import definitions as ingest_concern
from orchestration.defs.quality import definitions as quality_concern
from orchestration.defs.reports import definitions as reports_concern
from orchestration.defs.serving import definitions as serving_concern
from orchestration.resources import resources

BUILD_JOB = "build_all"
REFRESH_JOB = "refresh"
# Every step is in the warehouse pool (limit 1), so a run's steps never run side by side. In
# one process they share one start-up (the Dagster, dbt and Great Expectations imports), which
# a process per step would pay again for every step. Pools still hold across runs: the
# in-process executor claims pool slots too.
EXECUTOR = dg.in_process_executor


def build_definitions() -> dg.Definitions:
    # Compaction has its own job and schedule (defs/compaction/): it moves rows, never changes them.
    everything = dg.AssetSelection.all() - dg.AssetSelection.groups(compaction_concern.COMPACTION_GROUP)
    build_all = dg.define_asset_job(
        BUILD_JOB, selection=everything, executor_def=EXECUTOR,
        description="Ingest landing files, build every model, check, export, dashboard, reports (not emailed).",
    )
    refresh = dg.define_asset_job(
        REFRESH_JOB, selection=everything - dg.AssetSelection.groups(reports_concern.REPORTS_GROUP), executor_def=EXECUTOR,
        description="Incremental refresh: new files in, affected days rebuilt, exports and dashboard out.",
    )
    schedules = [
        dg.ScheduleDefinition(
            name="daily_full_rebuild",
            job=build_all,
            cron_schedule="0 3 * * *",
            run_config={"ops": {"warehouse_models": {"config": {"full_refresh": True}}}},
            default_status=dg.DefaultScheduleStatus.RUNNING,
            description="Every night: a full dbt rebuild, so incremental state can never drift.",
        ),
        dg.ScheduleDefinition(
            name="refresh_every_5_minutes",
            job=refresh,
            cron_schedule="*/5 * * * *",
            default_status=dg.DefaultScheduleStatus.RUNNING,
            description="Every 5 minutes: load new files and refresh the affected days and exports.",
        ),
    ]
    models = dbt_concern.build_dbt_assets()
    marts = dbt_concern.mart_keys(models)  # what reads the marts runs after all of them
    return dg.Definitions.merge(
        ingest_concern.defs,
        dg.Definitions(assets=[models]),
        quality_concern.defs,
        exports_concern.build_defs(marts),
        reports_concern.build_defs(load_settings().company_tz, marts),
        alerts_concern.build_defs(marts),
        serving_concern.build_defs(marts),
        retention.defs,
        compaction_concern.defs,
        dg.Definitions(jobs=[build_all, refresh], schedules=schedules, executor=EXECUTOR, resources=resources()),
    )


defs = build_definitions()
