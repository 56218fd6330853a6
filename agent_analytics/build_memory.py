"""How much of the machine the dbt build may use, and the one line when DuckDB runs out of it.

dbt-duckdb runs the whole build in one DuckDB database: every dbt thread's query shares one
`memory_limit`. A share of the machine's memory (DuckDB reads the machine's, or its cgroup's,
total when the limit is a percentage) keeps the build inside what the machine has without a
fixed size; what does not fit spills to `<home>/duckdb_tmp`. The dbt threads default to what
fits in that limit: one per THREAD_MEMORY of it (the most the largest models of the 10M-message
benchmark hold, joins and window sorts over every message), at most one per core, since DuckDB
already runs each query on every core. A build that rebuilds every model from all the messages
(the first one, a full refresh) sorts every message in its largest models: it runs only as many
threads as such models fit side by side in the limit (`full_build_threads`).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path

MEMORY_VAR = "AGENT_ANALYTICS_DUCKDB_MEMORY"
THREADS_VAR = "AGENT_ANALYTICS_DBT_THREADS"
DEFAULT_MEMORY = "40%"
MAX_DEFAULT_THREADS = 4
THREAD_MEMORY = 4 * 1024**3
OUT_OF_MEMORY = "DuckDB ran out of memory"
# What a full build's largest model holds per message (the sessionization's window sort, the calls
# joined to their messages): THREAD_MEMORY at the 10M-message benchmark, about 430 bytes each.
FULL_BUILD_BYTES_PER_MESSAGE = THREAD_MEMORY / 10_000_000

_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*(%|[kmgt]i?b)", re.IGNORECASE)
_UNITS = {"k": 1000, "m": 1000**2, "g": 1000**3, "t": 1000**4, "ki": 1024, "mi": 1024**2, "gi": 1024**3, "ti": 1024**4}


class MemorySettingError(ValueError):
    """A memory or thread setting of the build cannot be used; the message says which and why."""


def memory_limit(env: Mapping[str, str]) -> str:
    """DuckDB's memory_limit for the build: a size (8GB, 512MiB) or a share of the machine (40%)."""
    raw = (env.get(MEMORY_VAR) or DEFAULT_MEMORY).strip()
    match = _SIZE.fullmatch(raw)
    amount = float(match[1]) if match else 0.0
    if not match or amount <= 0 or (match[2] == "%" and amount > 100):
        raise MemorySettingError(
            f"{MEMORY_VAR}={raw!r} must be a size such as 8GB or 512MB, or a share of the machine's memory "
            f"such as {DEFAULT_MEMORY}"
        )
    return f"{match[1]}{match[2]}"


def machine_memory() -> int:
    """Bytes of memory of the machine, or of this process's cgroup when that is smaller."""
    total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
    except OSError:
        return total
    return min(total, int(limit)) if limit.isdigit() else total


def limit_bytes(limit: str) -> int:
    """The bytes a memory_limit value stands for on this machine."""
    match = _SIZE.fullmatch(limit)
    amount, unit = float(match[1]), match[2].lower()
    if unit == "%":
        return int(machine_memory() * amount / 100)
    return int(amount * _UNITS[unit.removesuffix("b")])


def default_dbt_threads(limit: str) -> int:
    """One thread per THREAD_MEMORY of the limit, at most one per core and MAX_DEFAULT_THREADS, at least 1."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(MAX_DEFAULT_THREADS, cores, limit_bytes(limit) // THREAD_MEMORY))


def dbt_threads(env: Mapping[str, str]) -> int:
    raw = (env.get(THREADS_VAR) or "").strip()
    if not raw:
        return default_dbt_threads(memory_limit(env))
    if not raw.isdigit() or int(raw) < 1:
        raise MemorySettingError(f"{THREADS_VAR}={raw!r} must be a positive whole number of dbt threads")
    return int(raw)


def full_build_threads(threads: int, limit: str, messages: int) -> int:
    """The dbt threads of a build that rebuilds every model from all `messages`: at most
    `threads`, and only as many as the largest models over that many messages fit side by side
    in the memory limit, at least one. Two such sorts sharing the limit both spill: at 100M
    messages two threads had not finished the first build in 26 minutes, one finished in 22."""
    fit = int(limit_bytes(limit) // max(messages * FULL_BUILD_BYTES_PER_MESSAGE, 1.0))
    return max(1, min(threads, fit))


def out_of_memory_line(run_results: Path, memory: str, threads: int) -> str | None:
    """One line naming the dbt nodes DuckDB ran out of memory in and the settings to change,
    from dbt's run_results.json; None when no node failed that way."""
    try:
        results = json.loads(run_results.read_text()).get("results", [])
    except (OSError, ValueError):
        return None
    nodes = [
        _node_name(r.get("unique_id", ""))
        for r in results
        if r.get("status") in ("error", "fail") and "Out of Memory Error" in (r.get("message") or "")
    ]
    if not nodes:
        return None
    named = ", ".join(nodes[:3]) + (f" and {len(nodes) - 3} more" if len(nodes) > 3 else "")
    return (
        f"{OUT_OF_MEMORY} in {named} (memory_limit {memory} shared by {threads} dbt "
        f"thread{'s' if threads != 1 else ''}): raise {MEMORY_VAR} (e.g. 60% or 12GB) or lower {THREADS_VAR}"
    )


def _node_name(unique_id: str) -> str:
    """`model fct_x`, `test unique_fct_x_id` (a data test's id ends in a hash), `unit_test fct_x.case`."""
    kind, name = unique_id.split(".", 2)[0], unique_id.split(".", 2)[-1]
    if kind == "test":
        name = name.rsplit(".", 1)[0]
    return f"{kind} {name}"


def out_of_memory_outside_dbt(memory: str, where: str = "") -> str:
    """The one line when a step other than dbt's (ingest, compaction, a publication, a command)
    runs out of DuckDB memory: the same setting raises its limit."""
    return f"{OUT_OF_MEMORY}{f' in {where}' if where else ''} (memory_limit {memory}): raise {MEMORY_VAR} (e.g. 60% or 12GB)"


def _is_out_of_memory(error) -> bool:
    """Whether a Dagster step's error (SerializableErrorInfo), or an error it was raised from or
    while handling, is DuckDB's out-of-memory error."""
    if error is None:
        return False
    return (error.cls_name == "OutOfMemoryException" or _is_out_of_memory(error.cause)
            or _is_out_of_memory(error.context))


def out_of_memory_in(events, memory: str) -> str | None:
    """The out-of-memory line of a failed step of a Dagster run: the one a dbt step carries (see
    the dbt asset), else one naming the first other step whose DuckDB query ran out of memory."""
    failures = [event for event in events if event.is_step_failure]
    for event in failures:
        failure = getattr(event.event_specific_data, "user_failure_data", None)
        description = getattr(failure, "description", None) or ""
        if description.startswith(OUT_OF_MEMORY):
            return description
    for event in failures:
        if _is_out_of_memory(getattr(event.event_specific_data, "error", None)):
            return out_of_memory_outside_dbt(memory, f"step {event.step_key}")
    return None
