"""Runs the Dagster daemon launched whose run worker process is gone: mark them failed.

The daemon's default run launcher starts each run in a worker process, which records its pid
in the run's event log ("Started process for run (pid: N)"). A worker killed without a chance
to clean up (`kill -9`, the OOM killer, a power cut) leaves its run STARTED, holding the
`warehouse` pool slot, and Dagster's run monitoring cannot see it (the default launcher has no
worker health check). `agent-analytics up` calls `fail_runs_of_dead_workers` before it starts
the daemon, every minute, and after the daemon stopped: such a run is reported failed
(run_retries in dagster.yaml re-runs it once) and its slots are freed. When no daemon runs,
a run still STARTING (launched, its worker not yet up when the daemon was stopped) is failed
too, instead of blocking the one-run queue until run monitoring's start timeout. Runs of
`agent-analytics build` carry process tags and are handled by orchestration/recovery.py.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
from dagster._core.events import DagsterEventType

from orchestration.recovery import PID_TAG, process_start_time

# Runs that may have a worker process (a queued run has none yet).
LAUNCHED = [dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]
# A worker starts before it records its pid; a process that started later is another one
# that reuses the pid. The slack covers clock-tick rounding of the start time.
START_SLACK_S = 1.0


@dataclass(frozen=True)
class FailedRun:
    run_id: str
    job_name: str
    pid: int | None  # None: the worker never started

    def describe(self) -> str:
        why = f"its worker process {self.pid} is gone" if self.pid else "its daemon stopped before its worker started"
        return f"run {self.run_id} ({self.job_name}): {why}; marked failed, slots freed"


def worker_pid(instance: dg.DagsterInstance, run_id: str) -> tuple[int, float] | None:
    """The pid the run's worker recorded, with the time it recorded it; None before it did."""
    records = instance.get_records_for_run(run_id, of_type=DagsterEventType.ENGINE_EVENT, ascending=False).records
    for record in records:
        data = record.event_log_entry.dagster_event.event_specific_data
        metadata = getattr(data, "metadata", None) or {}
        pid = metadata.get("pid")
        if pid is not None and str(pid.value).isdigit():
            return int(pid.value), record.event_log_entry.timestamp
    return None


def _boot_time() -> float | None:
    try:
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("btime "):
                return float(line.split()[1])
    except OSError:
        pass
    return None


def worker_alive(pid: int, recorded_at: float) -> bool:
    """Whether the process that recorded `pid` at `recorded_at` (epoch seconds) still runs."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    started_ticks, boot = process_start_time(pid), _boot_time()
    if boot is None:
        return True  # no /proc: the pid alone is trusted
    if started_ticks is None:
        return False  # gone or a zombie
    started_at = boot + int(started_ticks) / os.sysconf("SC_CLK_TCK")
    return started_at <= recorded_at + START_SLACK_S


def fail_runs_of_dead_workers(instance: dg.DagsterInstance, *, no_daemon: bool = False) -> list[FailedRun]:
    """Report failed every unfinished run whose recorded worker process is gone, and free its
    pool slots. With `no_daemon` (no daemon runs on this home, so nothing is being launched),
    also the runs left STARTING by a daemon that stopped before their worker came up. Runs
    with our process tags (command-line builds) are left to recovery.py."""
    failed = []
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=LAUNCHED)):
        if PID_TAG in run.tags:
            continue
        recorded = worker_pid(instance, run.run_id)
        if recorded is None:
            if not (no_daemon and run.status == dg.DagsterRunStatus.STARTING):
                continue
            pid, message = None, "its daemon stopped before its worker process started"
        elif worker_alive(*recorded):
            continue
        else:
            pid, message = recorded[0], f"its run worker process {recorded[0]} is gone (killed or crashed)"
        current = instance.get_run_by_id(run.run_id)
        if current is None or current.is_finished:
            continue  # it ended while we looked
        instance.report_run_failed(current, message=message)
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        failed.append(FailedRun(run.run_id, run.job_name, pid))
    return failed
