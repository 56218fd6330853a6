"""Run retention: finished runs older than AGENT_ANALYTICS_RUN_RETENTION_DAYS are deleted, with
their event logs and captured step output, by the job `cleanup_old_runs` (daily schedule
`cleanup_old_runs_daily`), so DAGSTER_HOME does not grow without bound. Schedule and sensor
ticks have their own limit, the `retention:` block of config/dagster.yaml.
"""

from contextlib import suppress
from datetime import datetime, timedelta, timezone
from pathlib import Path

import dagster as dg

from orchestration.resources import AnalyticsSettings

CLEANUP_JOB = "cleanup_old_runs"
FINISHED = [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED]
BATCH = 100


def delete_old_runs(instance: dg.DagsterInstance, retention_days: float, now: datetime | None = None) -> list[str]:
    """Delete every finished run last updated more than `retention_days` ago; returns their ids."""
    cutoff = (now or datetime.now(timezone.utc)) - timedelta(days=retention_days)
    deleted: list[str] = []
    while True:
        records = instance.get_run_records(dg.RunsFilter(statuses=FINISHED, updated_before=cutoff), limit=BATCH)
        if not records:
            return deleted
        for record in records:
            run_id = record.dagster_run.run_id
            instance.delete_run(run_id)  # the run record and its events
            _delete_run_files(instance, run_id)
            deleted.append(run_id)


def _delete_run_files(instance: dg.DagsterInstance, run_id: str) -> None:
    """What `delete_run` leaves on disk: the run's captured stdout/stderr and, with the SQLite
    event log, the run's own (emptied) database file."""
    instance.compute_log_manager.delete_logs(prefix=[run_id])
    shard_path = getattr(instance.event_log_storage, "path_for_shard", None)
    if shard_path is not None:
        database = Path(shard_path(run_id))
        for path in (database, database.with_name(database.name + "-wal"), database.with_name(database.name + "-shm")):
            with suppress(FileNotFoundError):
                path.unlink()


@dg.op(description="Delete finished runs older than AGENT_ANALYTICS_RUN_RETENTION_DAYS, with their event logs.")
def delete_old_runs_op(context: dg.OpExecutionContext, analytics: AnalyticsSettings) -> None:
    days = analytics.load().run_retention_days
    deleted = delete_old_runs(context.instance, days)
    context.log.info(f"deleted {len(deleted)} runs finished more than {days:g} days ago")


@dg.job(name=CLEANUP_JOB, executor_def=dg.in_process_executor,
        description="Delete runs (and their event logs) older than AGENT_ANALYTICS_RUN_RETENTION_DAYS.")
def cleanup_old_runs() -> None:
    delete_old_runs_op()


cleanup_schedule = dg.ScheduleDefinition(
    name="cleanup_old_runs_daily",
    job=cleanup_old_runs,
    cron_schedule="30 4 * * *",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Every day at 04:30: delete runs older than AGENT_ANALYTICS_RUN_RETENTION_DAYS (default 30).",
)

defs = dg.Definitions(jobs=[cleanup_old_runs], schedules=[cleanup_schedule])
