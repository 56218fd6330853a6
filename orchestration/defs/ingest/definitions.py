"""Ingestion: the raw_events asset loads new landing files; a sensor launches it when files arrive."""


import hashlib
import os
from datetime import datetime, timezone

import dagster as dg

from agent_analytics.warehouse import open_warehouse
from ingestion.landing import ingest_landing, landing_files
from ingestion.raw_layer import RAW_TABLES
from ingestion.traces import quarantine_orphans
from ingestion.validate import AcceptedTimes
from orchestration.pools import WAREHOUSE_POOL
from orchestration.resources import AnalyticsSettings

# The tables one ingest run writes; their keys match the dbt sources (source name, table).
LEDGER_KEY = dg.AssetKey(["ingest", "ledger"])
RAW_TABLE_KEYS = [dg.AssetKey(["raw", table]) for table in RAW_TABLES] + [
    LEDGER_KEY,
    dg.AssetKey(["ingest", "quarantine"]),
]


LANDING_CHECK = "landing_files_loadable"


@dg.multi_asset(
    name="raw_events",
    specs=[dg.AssetSpec(key, group_name="ingest", kinds={"parquet"} if key.path[0] == "raw" else {"duckdb"})
           for key in RAW_TABLE_KEYS],
    check_specs=[dg.AssetCheckSpec(LANDING_CHECK, asset=LEDGER_KEY, blocking=False,
                                   description="Every landing file of this run could be read and loaded (WARN naming the "
                                   "files moved to landing/rejected/ and why; the other files are loaded).")],
    pool=WAREHOUSE_POOL,
    description=(
        "Contract events from the landing folder, validated and de-duplicated into the Parquet raw "
        "layer (raw/batches/), rejected lines into ingest.quarantine, one ingest.ledger row per file. "
        "Loaded files move to landing/loaded/; files that cannot be read or loaded to landing/rejected/ "
        "(reason in ingest.rejected_files)."
    ),
)
def raw_events(context: dg.AssetExecutionContext, analytics: AnalyticsSettings):
    settings = analytics.load()
    settings.ensure_dirs()
    run = ingest_landing(settings.landing_dir, settings.warehouse_path, settings.raw_dir,
                         accepted=AcceptedTimes.of(settings), quiet_s=settings.landing_quiet_s)
    with open_warehouse(settings.warehouse_path, memory_limit=settings.duckdb_memory) as con:
        orphans = quarantine_orphans(con, settings.otel_orphan_after_s, datetime.now(timezone.utc).replace(tzinfo=None))
    if orphans:
        context.log.warning(f"{orphans} spans quarantined as 'orphan span': their trace's root span did not arrive "
                            f"within {settings.otel_orphan_after_s:g} s (AGENT_ANALYTICS_OTEL_ORPHAN_AFTER_S)")
    for entry in run.ignored:
        context.log.info(f"landing/{entry}: left alone")
    for entry in run.waiting:
        context.log.info(f"landing/{entry}: left for a later run")
    for rejection in run.rejected:
        where = f"moved to {rejection.moved_to}" if rejection.moved_to else "could not be moved"
        context.log.warning(f"{rejection.file_name}: rejected ({rejection.reason}), {where}")
    results = run.results
    for r in results:
        state = "already loaded" if r.already_loaded else "loaded"
        records = f"lines={r.lines} spans={r.records} traces={r.traces}" if r.record_type == "span" else f"lines={r.lines}"
        context.log.info(
            f"{r.file_name}: {state}: {records} loaded={r.loaded} duplicates={r.duplicates} quarantined={r.quarantined}"
        )
    fresh = [r for r in results if not r.already_loaded]
    accounting = {
        "files": len(results),
        "new_files": len(fresh),
        "lines": sum(r.lines for r in fresh),
        "events": sum(r.record_count for r in fresh if r.record_type == "event"),
        "spans": sum(r.record_count for r in fresh if r.record_type == "span"),
        "traces": sum(r.traces or 0 for r in fresh),
        "loaded": sum(r.loaded for r in fresh),
        "duplicates": sum(r.duplicates for r in fresh),
        "quarantined": sum(r.quarantined for r in fresh),
        "rejected_files": len(run.rejected),
        "waiting_files": len(run.waiting),
        "orphan_spans_quarantined": orphans,
    }
    for key in RAW_TABLE_KEYS:
        yield dg.MaterializeResult(asset_key=key, metadata=accounting if key == LEDGER_KEY else None)
    yield dg.AssetCheckResult(
        asset_key=LEDGER_KEY, check_name=LANDING_CHECK, passed=not run.rejected, severity=dg.AssetCheckSeverity.WARN,
        metadata={"rejected": "; ".join(f"{r.file_name}: {r.reason}" for r in run.rejected) or "none"},
    )


def landing_run_key(files: list) -> str:
    """Same set of waiting files (names, sizes, times) -> same key, so one run per arrival.
    Entries are not followed (a dangling link is an entry too: the run rejects it), and one
    removed meanwhile counts as gone."""
    digest = hashlib.sha256()
    for f in files:
        try:
            stat = f.lstat()
        except FileNotFoundError:
            continue
        digest.update(os.fsencode(f.name) + f"|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:32]


@dg.sensor(
    name="landing_files_sensor",
    job_name="refresh",
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Launches a refresh run when new *.jsonl / *.jsonl.gz files wait in the landing folder.",
)
def landing_files_sensor(context: dg.SensorEvaluationContext, analytics: AnalyticsSettings):
    files = landing_files(analytics.load().landing_dir)
    if not files:
        return dg.SkipReason("no new files in the landing folder")
    # A refresh waiting in the queue loads every file there when it starts: with files arriving
    # all the time (one per request to the service), a run per tick would only pile up.
    waiting = dg.RunsFilter(job_name="refresh", statuses=[dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED])
    if context.instance.get_runs_count(filters=waiting):
        return dg.SkipReason(f"{len(files)} files wait; a refresh already queued will load them")
    return dg.RunRequest(run_key=landing_run_key(files), tags={"landing_files": str(len(files))})


defs = dg.Definitions(assets=[raw_events], sensors=[landing_files_sensor])
