"""Runs whose process is gone: find them, mark them failed, free their pool slots.

A process killed without a chance to clean up (`kill -9`, the OOM killer, a power cut) leaves
its Dagster run STARTED in run storage, holding the `warehouse` pool slot of the step it was
in. Dagster only frees a slot when the run itself ends, so every later run would wait for it
forever. Every build therefore records who executes it, as run tags: the host, the pid and
the kernel's start time of the process (so a pid reused by another program is not taken for
the build), and the same for the dbt process it starts, which would otherwise outlive a
killed build and keep writing the warehouse. Before it starts, a build calls
`recover_abandoned_runs`: a run on this host whose process is gone is reported failed, its
leftover dbt process is stopped, and its slots and queued claims are freed. Slots still held
by runs that have ended or no longer exist are freed too.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

HOST_TAG = "agent_analytics/host"
PID_TAG = "agent_analytics/pid"
STARTED_TAG = "agent_analytics/process_started"
DBT_PID_TAG = "agent_analytics/dbt_pid"
DBT_STARTED_TAG = "agent_analytics/dbt_process_started"

UNFINISHED = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]
# How long a leftover dbt process gets to stop after SIGTERM before SIGKILL.
DBT_STOP_GRACE_S = 10.0


def process_start_time(pid: int) -> str | None:
    """The kernel's start time of `pid` (clock ticks since boot, field 22 of /proc/<pid>/stat);
    None where /proc does not exist (the pid alone is then trusted) or the process is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) ", comm may hold spaces
    if fields[0] in ("Z", "X"):  # a zombie has exited; only its exit status is left
        return None
    return fields[19]


def process_alive(pid: int, started: str | None) -> bool:
    """Whether the process `pid` that started at `started` still runs."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, belongs to another user
    if not Path("/proc").is_dir():
        return True
    now = process_start_time(pid)
    return now is not None and (not started or now == started)


def process_tags(pid: int | None = None, pid_tag: str = PID_TAG, started_tag: str = STARTED_TAG) -> dict[str, str]:
    """Run tags naming the process `pid` (default: this one) on this host."""
    pid = os.getpid() if pid is None else pid
    return {HOST_TAG: socket.gethostname(), pid_tag: str(pid), started_tag: process_start_time(pid) or ""}


def dbt_process_tags(pid: int) -> dict[str, str]:
    tags = process_tags(pid, DBT_PID_TAG, DBT_STARTED_TAG)
    del tags[HOST_TAG]
    return tags


@dataclass(frozen=True)
class Recovered:
    run_id: str
    job_name: str
    pid: int
    dbt_stopped: bool

    def describe(self) -> str:
        extra = ", stopped its leftover dbt process" if self.dbt_stopped else ""
        return (f"run {self.run_id} ({self.job_name}) was abandoned by process {self.pid}, which is gone: "
                f"marked failed and its warehouse slot freed{extra}")


def holder_alive(run: dg.DagsterRun) -> bool | None:
    """True/False when the run carries our process tags for this host; None when we cannot tell
    (a run launched by the Dagster UI or daemon, or on another host)."""
    tags = run.tags
    if tags.get(HOST_TAG) != socket.gethostname() or not tags.get(PID_TAG, "").isdigit():
        return None
    return process_alive(int(tags[PID_TAG]), tags.get(STARTED_TAG))


def _stop_leftover_dbt(tags: Mapping[str, str]) -> bool:
    raw_pid = tags.get(DBT_PID_TAG, "")
    if not raw_pid.isdigit():
        return False
    pid, started = int(raw_pid), tags.get(DBT_STARTED_TAG)
    if not process_alive(pid, started):
        return False
    # Its work belongs to a run that failed; it holds DuckDB's file lock while it lives.
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + DBT_STOP_GRACE_S
    while process_alive(pid, started):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            break
        time.sleep(0.1)
    return True


def recover_abandoned_runs(instance: dg.DagsterInstance) -> list[Recovered]:
    """Fail the unfinished runs of this host whose process is gone and free every pool slot
    or queued claim that no live run can release. Returns the runs it failed."""
    recovered = []
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=UNFINISHED)):
        if holder_alive(run) is not False:
            continue
        dbt_stopped = _stop_leftover_dbt(run.tags)
        pid = int(run.tags[PID_TAG])
        instance.report_run_failed(
            run, message=f"process {pid} on {run.tags[HOST_TAG]} executing this run is gone (killed or crashed)"
        )
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        recovered.append(Recovered(run.run_id, run.job_name, pid, dbt_stopped))
    _free_slots_of_ended_runs(instance)
    return recovered


def _free_slots_of_ended_runs(instance: dg.DagsterInstance) -> None:
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return
    keys = storage.get_concurrency_keys()
    holders: set[str] = set()
    for info in storage.get_concurrency_infos(list(keys)).values():
        holders.update(slot.run_id for slot in info.claimed_slots)
        holders.update(step.run_id for step in info.pending_steps)
    for run_id in holders:
        run = instance.get_run_by_id(run_id)
        if run is None or run.is_finished:
            storage.free_concurrency_slots_for_run(run_id)


def pool_holders(instance: dg.DagsterInstance, pools: Iterable[str]) -> list[str]:
    """One description per run holding a slot of `pools` (for the message of a build that
    gave up waiting)."""
    descriptions = []
    storage = instance.event_log_storage
    for info in storage.get_concurrency_infos(list(pools)).values():
        for slot in info.claimed_slots:
            run = instance.get_run_by_id(slot.run_id)
            who = ""
            if run is not None and run.tags.get(PID_TAG):
                who = f", process {run.tags[PID_TAG]} on {run.tags.get(HOST_TAG, '?')}"
            status = run.status.value if run is not None else "unknown run"
            descriptions.append(
                f"run {slot.run_id} ({run.job_name if run else '?'}, {status}{who}) in step {slot.step_key}"
            )
    return descriptions
