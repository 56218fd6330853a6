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
import pandas as pd

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

WINDOW_METRICS = """
with
sides as (
    select deployment_id, agent_id, side, window_start, window_end
    from deployment_windows
),
messages as (
    select s.deployment_id, s.side,
           count(*) as messages,
           count(*) filter (where m.is_error) as errors,
           count(distinct m.user_id) as users,
           avg(m.response_time_ms) as avg_response_time_ms,
           quantile_cont(m.response_time_ms, 0.95) as p95_response_time_ms,
           sum(m.cost_usd) as cost_usd,
           sum(m.total_tokens) as total_tokens
    from sides s
    join fct_messages m
      on m.agent_id = s.agent_id and m.occurred_at >= s.window_start and m.occurred_at < s.window_end
    where m.occurred_at >= $lo and m.occurred_at < $hi and list_contains($agents, m.agent_id)
    group by all
),
sessions as (
    select s.deployment_id, s.side, count(*) as sessions, sum(x.message_count) as session_messages
    from sides s
    join fct_sessions x
      on x.agent_id = s.agent_id and x.session_started_at >= s.window_start and x.session_started_at < s.window_end
    where x.session_started_at >= $lo and x.session_started_at < $hi and list_contains($agents, x.agent_id)
    group by all
)
select s.deployment_id, s.side,
       coalesce(m.messages, 0) as messages, coalesce(m.errors, 0) as errors, coalesce(m.users, 0) as users,
       m.avg_response_time_ms, m.p95_response_time_ms, coalesce(m.cost_usd, 0) as cost_usd,
       coalesce(m.total_tokens, 0) as total_tokens,
       coalesce(x.sessions, 0) as sessions, coalesce(x.session_messages, 0) as session_messages
from sides s
left join messages m on m.deployment_id = s.deployment_id and m.side = s.side
left join sessions x on x.deployment_id = s.deployment_id and x.side = s.side
"""


def _ratio(numerator, denominator, scale: float = 1.0) -> float | None:
    return float(numerator) / float(denominator) * scale if denominator else None


def window_metrics(con: duckdb.DuckDBPyConnection, deployments: list[Deployment]) -> dict[tuple[str, str], dict]:
    """(deployment_id, 'before' | 'after') -> the agent's counts and metrics in that window."""
    if not deployments:
        return {}
    rows = [(d.deployment_id, d.agent_id, side, *bounds)
            for d in deployments for side, bounds in (("before", d.before), ("after", d.after))]
    frame = pd.DataFrame(rows, columns=["deployment_id", "agent_id", "side", "window_start", "window_end"])
    con.register("deployment_windows", frame)
    try:
        cursor = con.execute(WINDOW_METRICS, {"lo": min(r[3] for r in rows), "hi": max(r[4] for r in rows),
                                              "agents": sorted({d.agent_id for d in deployments})})
        names = [c[0] for c in cursor.description]
        found = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    finally:
        con.unregister("deployment_windows")
    return {(r["deployment_id"], r["side"]): _metrics(r) for r in found}


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

