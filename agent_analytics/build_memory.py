"""How much of the machine the dbt build may use, and the one line when DuckDB runs out of it.

dbt-duckdb runs the whole build in one DuckDB database: every dbt thread's query shares one
`memory_limit`. A share of the machine's memory (DuckDB reads the machine's, or its cgroup's,
total when the limit is a percentage) keeps the build inside what the machine has without a
fixed size; what does not fit spills to `<home>/duckdb_tmp`. More dbt threads than half the
cores only stack more large joins and sorts into the same limit, since DuckDB already runs each
query on every core.
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
OUT_OF_MEMORY = "DuckDB ran out of memory"

_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*(%|[kmgt]i?b)", re.IGNORECASE)


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


def default_dbt_threads() -> int:
    """Half the cores this process may use (at least 1, at most MAX_DEFAULT_THREADS)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(MAX_DEFAULT_THREADS, cores // 2))


def dbt_threads(env: Mapping[str, str]) -> int:
    raw = (env.get(THREADS_VAR) or "").strip()
    if not raw:
        return default_dbt_threads()
    if not raw.isdigit() or int(raw) < 1:
        raise MemorySettingError(f"{THREADS_VAR}={raw!r} must be a positive whole number of dbt threads")
    return int(raw)


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


def out_of_memory_in(events) -> str | None:
    """The out-of-memory line a failed dbt step of a Dagster run carries (see the dbt asset)."""
    for event in events:
        if event.is_step_failure:
            failure = getattr(event.event_specific_data, "user_failure_data", None)
            description = getattr(failure, "description", None) or ""
            if description.startswith(OUT_OF_MEMORY):
                return description
    return None
