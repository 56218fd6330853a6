"""`agent-analytics build`: the build_all job executed in this process, recorded in DAGSTER_HOME.

One build at a time (the build turn, then the warehouse pool); runs a killed process left
behind are failed and their slots freed first. The console shows a summary: what failed and
why in one line per step, the ingest counts, the checks that failed or warn; the whole story
(tracebacks, warnings) is in the run storage, which the Dagster UI shows.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from agent_analytics.prices import prices_file_problem
from agent_analytics.settings import Settings

PROG = "agent-analytics"


@contextmanager
def _sigterm_not_ignored() -> Iterator[None]:
    """Dagster's in-process execution gives SIGTERM the handler SIGINT has. A process started in
    the background by a shell (`agent-analytics build &`, a script, some schedulers) ignores
    SIGINT, so SIGTERM was ignored too: the build could not be stopped with SIGTERM, and every
    process it started (dbt, and any command started after it in the same process) inherited the
    ignored SIGTERM, so recovery had to SIGKILL a leftover dbt. SIGINT gets Python's default
    handler for the run; both are restored afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield  # Dagster changes no handler off the main thread
        return
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    if saved[signal.SIGINT] == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)


def run_build(settings: Settings, full_refresh: bool = False) -> bool:
    """Materialize every asset through the Dagster definitions, recorded in DAGSTER_HOME."""
    from dagster_dbt import DagsterDbtCliRuntimeError

    from orchestration.defs.dbt.project import dbt_error_line, prepare_manifest
    from orchestration.instance import ensure_dagster_home

    ensure_dagster_home(settings)
    try:
        prepare_manifest()  # the definitions below read it
    except DagsterDbtCliRuntimeError as exc:
        print(f"{PROG}: error: the dbt project does not parse: {dbt_error_line(exc)}", file=sys.stderr)
        return False
    import dagster as dg

    from agent_analytics.build_memory import out_of_memory_in
    from orchestration.build_lock import BuildWaitTimeout, build_turn
    from orchestration.definitions import BUILD_JOB, defs
    from orchestration.defs.dbt.definitions import FULL_REBUILD_TAG, MODELS_CHANGED
    from orchestration.recovery import process_tags

    job = defs.resolve_job_def(BUILD_JOB)
    run_config = {
        "ops": {"warehouse_models": {"config": {"full_refresh": full_refresh}}},
        # The summary below says what failed and why; the whole story (tracebacks, warnings) is
        # in the run storage, which the Dagster UI shows.
        "loggers": {"console": {"config": {"log_level": "CRITICAL"}}},
    }
    deadline = time.monotonic() + settings.build_wait_s
    with dg.DagsterInstance.get() as instance:
        try:
            with build_turn(settings.dagster_home, settings.build_wait_s):
                _recover_and_wait_for_pool(instance, settings, deadline)
                with _sigterm_not_ignored():
                    result = job.execute_in_process(
                        instance=instance, run_config=run_config, raise_on_error=False, tags=process_tags()
                    )
            run = instance.get_run_by_id(result.run_id)
        except BuildWaitTimeout as exc:
            print(f"{PROG}: error: {exc}", file=sys.stderr)
            return False
    if run is not None and FULL_REBUILD_TAG in run.tags:
        print(MODELS_CHANGED)
    if not result.success:
        failed = [e.step_key for e in result.all_events if e.is_step_failure]
        out_of_memory = out_of_memory_in(result.all_events, settings.duckdb_memory)
        print(f"{PROG}: error: {out_of_memory}" if out_of_memory else
              f"{PROG}: build failed in step(s): {', '.join(sorted(set(failed))) or 'unknown'}", file=sys.stderr)
        if not out_of_memory:
            for event in (e for e in result.all_events if e.is_step_failure):
                print(f"  {event.step_key}: {_first_line(event.event_specific_data)}", file=sys.stderr)
        return False
    for event in result.all_events:
        if event.event_type_value == "ASSET_MATERIALIZATION":
            materialization = event.event_specific_data.materialization
            if materialization.asset_key.path == ["ingest", "ledger"]:
                counts = {k: v.value for k, v in materialization.metadata.items()}
                print("ingest: " + ", ".join(f"{k}={v}" for k, v in counts.items()))
    checks = [e for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]
    failed_checks = [e.event_specific_data.asset_check_key.name for e in checks if not e.event_specific_data.passed]
    # WARN checks (e.g. an alert channel that is down) are shown but do not fail the build.
    warnings = {e.event_specific_data.asset_check_key.name for e in checks
                if not e.event_specific_data.passed and e.event_specific_data.severity == dg.AssetCheckSeverity.WARN}
    print(f"build ok: run {result.run_id}, {len(checks)} checks evaluated, {len(failed_checks)} failed")
    problem = prices_file_problem(settings)
    if problem:
        print(f"  warning: {problem}")
    for check in (e.event_specific_data for e in checks if not e.event_specific_data.passed):
        name = check.asset_check_key.name
        print(f"  {'warning' if name in warnings else 'failed'} check: {name}{_check_detail(check.metadata)}")
    return not [name for name in failed_checks if name not in warnings]


def _first_line(failure) -> str:
    """The first line of a step's failure (the Dagster UI has the whole of it), at most 300
    characters: the description a step gave (dg.Failure), else the exception's message."""
    described = getattr(failure.user_failure_data, "description", None)
    error = failure.error
    text = (described or (error.message if error is not None else "") or "unknown error").strip()
    line = text.splitlines()[0] if text else "unknown error"
    return line[:300] + ("..." if len(line) > 300 else "")


def _check_detail(metadata: dict) -> str:
    """The text values of a failed check's metadata (which files were rejected, which channel
    failed), already redacted by the check, shortened to one line."""
    texts = [f"{key}: {value.value}" for key, value in metadata.items()
             if isinstance(value.value, str) and value.value not in ("", "none")]
    detail = "; ".join(texts).replace("\n", " ")
    return f" ({detail[:300]}{'...' if len(detail) > 300 else ''})" if detail else ""


def _recover_and_wait_for_pool(instance, settings: Settings, deadline: float) -> None:
    """Fail the runs a killed process left behind and free their slots, then wait (bounded,
    sleeping) while a live run outside this command (the Dagster UI, a schedule) holds the
    warehouse pool."""
    from orchestration.build_lock import BuildWaitTimeout
    from orchestration.pools import WAREHOUSE_POOL
    from orchestration.recovery import pool_holders, recover_abandoned_runs

    while True:
        for recovered in recover_abandoned_runs(instance):
            print(f"recovered: {recovered.describe()}")
        holders = pool_holders(instance, [WAREHOUSE_POOL])
        if not holders:
            return
        if time.monotonic() >= deadline:
            raise BuildWaitTimeout(
                f"the '{WAREHOUSE_POOL}' pool is still held by {'; '.join(holders)} after {settings.build_wait_s:g} s "
                f"of waiting (AGENT_ANALYTICS_BUILD_WAIT_S); if that run is dead, terminate it in the Dagster UI "
                f"(make dev), then build again"
            )
        time.sleep(1.0)
