"""The metrics document's `deployments` section: the period's deployments (in scope) with the
agent's metrics in the windows before and after each, the change and, for the error rate,
whether it is significant.

It must stay cheap on a large warehouse, so no message is read into Python: every window's
metrics are grouped aggregates in one DuckDB query (counts, sums, the P95), and the only test
that needs nothing but counts runs here: the error rate's two-proportion z-test. The rank
tests (Mann-Whitney U) and bootstrap intervals of the other metrics need every message's
value; `agent-analytics deployments` runs them (`rank_tests` says so in the document).
"""

from __future__ import annotations

from datetime import datetime

import duckdb

from agent_analytics.comparison import statistics as st
from agent_analytics.comparison.document import METRICS, Z_TEST, enough, scaled, verdict
from agent_analytics.deployments.windows import Deployment, find_deployments, mart_window_hours
from agent_analytics.metrics.labels import change_pct, change_pp

# The metrics of each window, in the order shown (the comparison's names).
SECTION_METRICS = ("messages", "sessions", "users", "messages_per_session", "error_rate_pct", "avg_response_time_ms",
                   "p95_response_time_ms", "cost_per_message_usd", "tokens_per_message")
VOLUMES = ("messages", "sessions", "users")
RANK_TESTS = ("Mann-Whitney U and bootstrap intervals need every message's value: they run in "
              "`agent-analytics deployments`, not in this document")
_METRIC = {m.name: m for m in METRICS}

# Per window, one filtered aggregate of its own (unioned): each scans only its time range of the
# marts (loaded day by day, so the range skips most other row groups), where a join of the
# windows with the marts would scan the whole span from the first window to the last.
MESSAGE_MEASURES = """count(*) as messages, count(*) filter (where is_error) as errors,
    count(distinct user_id) as users, avg(response_time_ms) as avg_response_time_ms,
    quantile_cont(response_time_ms, 0.95) as p95_response_time_ms, coalesce(sum(cost_usd), 0) as cost_usd,
    coalesce(sum(total_tokens), 0) as total_tokens"""
SESSION_MEASURES = "count(*) as sessions, coalesce(sum(message_count), 0) as session_messages"


def _per_window(table: str, time_column: str, measures: str, windows: int) -> str:
    return "\nunion all\n".join(
        f"select {i} as k, {measures} from {table} "
        f"where agent_id = $agent{i} and {time_column} >= $start{i} and {time_column} < $end{i}"
        for i in range(windows))


def _ratio(numerator, denominator, scale: float = 1.0) -> float | None:
    return float(numerator) / float(denominator) * scale if denominator else None


def window_metrics(con: duckdb.DuckDBPyConnection, deployments: list[Deployment]) -> dict[tuple[str, str], dict]:
    """(deployment_id, 'before' | 'after') -> the agent's counts and metrics in that window."""
    windows = [(d.deployment_id, side, d.agent_id, bounds)
               for d in deployments for side, bounds in (("before", d.before), ("after", d.after))]
    if not windows:
        return {}
    p = {}
    for i, (_, _, agent, (start, end)) in enumerate(windows):
        p.update({f"agent{i}": agent, f"start{i}": start, f"end{i}": end})
    found: dict[int, dict] = {}
    for table, time_column, measures in (("fct_messages", "occurred_at", MESSAGE_MEASURES),
                                         ("fct_sessions", "session_started_at", SESSION_MEASURES)):
        cursor = con.execute(_per_window(table, time_column, measures, len(windows)), p)
        names = [c[0] for c in cursor.description]
        for row in cursor.fetchall():
            found.setdefault(row[0], {}).update(zip(names[1:], row[1:], strict=True))
    return {(deployment_id, side): _metrics(found[i]) for i, (deployment_id, side, _, _) in enumerate(windows)}


def _metrics(r: dict) -> dict:
    return {
        "messages": r["messages"],
        "errors": r["errors"],
        "sessions": r["sessions"],
        "users": r["users"],
        "messages_per_session": _ratio(r["session_messages"], r["sessions"]),
        "error_rate_pct": _ratio(r["errors"], r["messages"], 100),
        "avg_response_time_ms": None if r["avg_response_time_ms"] is None else float(r["avg_response_time_ms"]),
        "p95_response_time_ms": None if r["p95_response_time_ms"] is None else float(r["p95_response_time_ms"]),
        "cost_per_message_usd": _ratio(r["cost_usd"], r["messages"]),
        "tokens_per_message": _ratio(r["total_tokens"], r["messages"]),
    }


def error_rate_test(before: dict, after: dict) -> dict:
    """The two-proportion z-test of the error rate (after - before, in percentage points), from
    the windows' counts, with the comparison's verdict and thresholds."""
    interval = scaled(st.two_proportion_test(before["errors"], before["messages"], after["errors"], after["messages"]),
                      100)
    metric = _METRIC["error_rate_pct"]
    sufficient = enough(metric, before["messages"], after["messages"], before["users"], after["users"],
                        before["errors"] + after["errors"], before["messages"] + after["messages"])
    return {"test": Z_TEST, "p_value": interval.p_value, "ci_low": interval.low, "ci_high": interval.high,
            "verdict": verdict(metric, interval, sufficient)}


UNTESTED = {"test": None, "p_value": None, "ci_low": None, "ci_high": None}


def changes(before: dict, after: dict) -> dict[str, dict]:
    """Per metric: the difference after - before, its change (in percent; the error rate in
    percentage points) and the test, where the document runs one."""
    rows = {}
    for name in SECTION_METRICS:
        b, a = before[name], after[name]
        row = {"difference": None if a is None or b is None else a - b}
        if name == "error_rate_pct":
            row.update(change_pp=change_pp(a, b), **error_rate_test(before, after))
        else:
            row["change_pct"] = None if a is None or b is None else change_pct(a, b)
            row.update(UNTESTED, verdict="n/a" if name in VOLUMES else None)
        rows[name] = row
    return rows


def deployment_row(d: Deployment, before: dict, after: dict) -> dict:
    """One deployment: what was deployed, its windows and each window's metrics."""
    return {
        **d.describe(),
        "before": {"start": d.before[0], "end": d.before[1], **{k: before[k] for k in SECTION_METRICS}},
        "after": {"start": d.after[0], "end": d.after[1], **{k: after[k] for k in SECTION_METRICS}},
        "changes": changes(before, after),
    }


def deployments_section(con: duckdb.DuckDBPyConnection, start: datetime, end: datetime, as_of: datetime,
                        agents: list[str] | None) -> dict:
    """The `deployments` section of the metrics document: the deployments in [start, end) of
    the scope's agents, each with the mart's window (fct_deployments.window_hours) clipped at
    the neighbouring deployments and at `as_of`."""
    found = find_deployments(con, start, end, as_of, agents)
    metrics = window_metrics(con, found)
    window = found[0].window_hours if found else mart_window_hours(con)
    return {
        "window_hours": window,
        "rank_tests": RANK_TESTS,
        "items": [deployment_row(d, metrics[d.deployment_id, "before"], metrics[d.deployment_id, "after"])
                  for d in found],
    }

