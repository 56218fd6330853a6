"""The daily CSV and the full JSON export, read from the dbt marts.

Both take a Period (company-time-zone days) and an optional set of agents. Distinct users
over a window are counted from message-level data (never summed from daily counts), and
percentiles over a period are computed over that period's messages.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime, timezone
from decimal import Decimal

import duckdb

from agent_analytics.periods import Period

CSV_COLUMNS = (
    "date", "dau", "wau", "mau", "sessions", "messages", "cost_usd",
    "cost_per_message", "avg_response_time_ms", "error_rate",
)
EXPORT_SCHEMA_VERSION = "1.0"

# Daily rows: DAU/WAU/MAU from user-days by the window-edge method (each active day opens
# 1/7/30-day windows that the same user's next active day takes over), totals from the
# agent-day mart. Parameters: $start, $end, $agents (NULL = all agents).
DAILY_SQL = """
with
user_days as (
    select distinct user_id, message_date as active_date
    from fct_messages
    where message_date between $start - interval 29 day and $end
      and ($agents is null or list_contains($agents, agent_id))
),
next_active as (
    select active_date, lead(active_date) over (partition by user_id order by active_date) as next_date
    from user_days
),
edges as (
    select active_date as d, 1 as dau, 1 as wau, 1 as mau from next_active
    union all select active_date + 1, -1, 0, 0 from next_active
    union all select least(coalesce(next_date, active_date + 7), active_date + 7), 0, -1, 0 from next_active
    union all select least(coalesce(next_date, active_date + 30), active_date + 30), 0, 0, -1 from next_active
),
changes as (
    select cast(d as date) as d, sum(dau) as dau, sum(wau) as wau, sum(mau) as mau from edges group by 1
),
days as (
    select cast(generate_series as date) as d
    from generate_series(cast($start - interval 29 day as timestamp), cast($end as timestamp), interval 1 day)
),
counted as (
    select days.d,
           sum(coalesce(changes.dau, 0)) over (order by days.d) as dau,
           sum(coalesce(changes.wau, 0)) over (order by days.d) as wau,
           sum(coalesce(changes.mau, 0)) over (order by days.d) as mau
    from days left join changes on changes.d = days.d
),
totals as (
    select activity_date as d, sum(sessions) as sessions, sum(messages) as messages, sum(cost_usd) as cost_usd,
           sum(errors) as errors, sum(timed_messages) as timed_messages,
           sum(total_response_time_ms) as total_response_time_ms
    from fct_agent_daily
    where activity_date between $start and $end
      and ($agents is null or list_contains($agents, agent_id))
    group by 1
)
select counted.d as date,
       cast(counted.dau as bigint) as dau, cast(counted.wau as bigint) as wau, cast(counted.mau as bigint) as mau,
       coalesce(totals.sessions, 0) as sessions,
       coalesce(totals.messages, 0) as messages,
       coalesce(totals.cost_usd, 0) as cost_usd,
       coalesce(totals.cost_usd / nullif(totals.messages, 0), 0) as cost_per_message,
       coalesce(totals.total_response_time_ms / nullif(totals.timed_messages, 0), 0) as avg_response_time_ms,
       coalesce(totals.errors * 1.0 / nullif(totals.messages, 0), 0) as error_rate
from counted left join totals on totals.d = counted.d
where counted.d between $start and $end
order by counted.d
"""


class ExportError(ValueError):
    """An export request we cannot answer (e.g. an unknown agent); one line for the user."""


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: dict | list | None = None) -> list[dict]:
    cursor = con.execute(sql, params or [])
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def _plain(value):
    """JSON-friendly scalars: Decimal -> float, dates -> ISO strings."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def known_agents(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [r[0] for r in con.execute("select agent_id from dim_agents order by agent_id").fetchall()]


def check_agents(con: duckdb.DuckDBPyConnection, agent_ids: list[str] | None) -> list[str] | None:
    if not agent_ids:
        return None
    known = set(known_agents(con))
    unknown = [a for a in agent_ids if a not in known]
    if unknown:
        listing = ", ".join(sorted(known)) or "none loaded yet"
        raise ExportError(f"unknown agent {unknown[0]!r} (known agents: {listing})")
    return list(agent_ids)


def daily_rows(con: duckdb.DuckDBPyConnection, period: Period, agent_ids: list[str] | None = None) -> list[dict]:
    """One row per day of the period (days without traffic as zero rows), CSV_COLUMNS keys."""
    return _rows(con, DAILY_SQL, {"start": period.start, "end": period.end, "agents": agent_ids})


def to_csv(rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow(
            [
                row["date"].isoformat(), row["dau"], row["wau"], row["mau"], row["sessions"], row["messages"],
                f"{row['cost_usd']:.6f}", f"{row['cost_per_message']:.6f}",
                f"{row['avg_response_time_ms']:.1f}", f"{row['error_rate']:.6f}",
            ]
        )
    return out.getvalue()


_SUMMARY_SQL = """
with
messages as (
    select * from fct_messages
    where message_date between $start and $end and ($agents is null or list_contains($agents, agent_id))
),
sessions as (
    select * from fct_sessions
    where session_date between $start and $end and ($agents is null or list_contains($agents, agent_id))
)
select
    (select count(*) from messages) as messages,
    (select count(distinct user_id) from messages) as active_users,
    (select count(distinct agent_id) from messages) as active_agents,
    (select count(*) from sessions) as sessions,
    (select avg(duration_ms) from sessions) as avg_session_duration_ms,
    (select avg(message_count) from sessions) as messages_per_session,
    (select coalesce(sum(cost_usd), 0) from messages) as cost_usd,
    (select avg(response_time_ms) from messages) as avg_response_time_ms,
    (select quantile_cont(response_time_ms, 0.5) from messages) as p50_response_time_ms,
    (select quantile_cont(response_time_ms, 0.95) from messages) as p95_response_time_ms,
    (select quantile_cont(response_time_ms, 0.99) from messages) as p99_response_time_ms,
    (select coalesce(sum(case when is_error then 1 else 0 end), 0) from messages) as errors,
    (select coalesce(sum(input_tokens), 0) from messages) as input_tokens,
    (select coalesce(sum(output_tokens), 0) from messages) as output_tokens,
    (select coalesce(sum(unpriced_call_count), 0) from messages) as unpriced_calls,
    (select coalesce(sum(unpriced_tokens), 0) from messages) as unpriced_tokens
"""


def _summary(con: duckdb.DuckDBPyConnection, period: Period, agent_ids: list[str] | None) -> dict:
    row = _rows(con, _SUMMARY_SQL, {"start": period.start, "end": period.end, "agents": agent_ids})[0]
    messages, sessions, users = row["messages"], row["sessions"], row["active_users"]
    cost = row["cost_usd"]
    row["total_tokens"] = row["input_tokens"] + row["output_tokens"]
    row["error_rate"] = row["errors"] / messages if messages else 0.0
    row["success_rate"] = 1 - row["error_rate"] if messages else 0.0
    row["cost_per_message"] = cost / messages if messages else 0
    row["cost_per_session"] = cost / sessions if sessions else 0
    row["cost_per_user"] = cost / users if users else 0
    row["avg_tokens_per_message"] = row["total_tokens"] / messages if messages else 0.0
    return row


def _change_pct(now, before) -> float | None:
    now, before = float(now or 0), float(before or 0)
    if before == 0:
        return None
    return round((now - before) / before * 100, 1)


def _with_shares(rows: list[dict], value_key: str, share_key: str = "share_pct") -> list[dict]:
    total = sum(float(r[value_key] or 0) for r in rows)
    for r in rows:
        r[share_key] = round(float(r[value_key] or 0) / total * 100, 2) if total else 0.0
    return rows


def full_export(con: duckdb.DuckDBPyConnection, period: Period, agent_ids: list[str] | None, time_zone: str) -> dict:
    """Every metric of METRICS.md for the period: summary with changes, series, breakdowns, health."""
    params = {"start": period.start, "end": period.end, "agents": agent_ids}
    summary = _summary(con, period, agent_ids)
    previous = _summary(con, period.previous(), agent_ids)
    compared = ("active_users", "sessions", "messages", "active_agents", "cost_usd", "error_rate",
                "avg_response_time_ms", "total_tokens")
    agent_filter = "($agents is null or list_contains($agents, agent_id))"
    agents = _rows(
        con,
        f"""
        select d.agent_id, coalesce(a.agent_name, d.agent_id) as agent_name,
               sum(d.sessions) as sessions, sum(d.messages) as messages,
               sum(d.total_session_duration_ms) / nullif(sum(d.sessions), 0) as avg_session_duration_ms,
               sum(d.cost_usd) as cost_usd,
               sum(d.errors) * 1.0 / nullif(sum(d.messages), 0) as error_rate,
               sum(d.total_response_time_ms) / nullif(sum(d.timed_messages), 0) as avg_response_time_ms,
               sum(d.input_tokens) as input_tokens, sum(d.output_tokens) as output_tokens,
               sum(d.total_tokens) as total_tokens,
               sum(d.total_tokens) * 1.0 / nullif(sum(d.messages), 0) as avg_tokens_per_message,
               sum(d.unpriced_calls) as unpriced_calls
        from fct_agent_daily d left join dim_agents a using (agent_id)
        where d.activity_date between $start and $end and {agent_filter.replace('agent_id', 'd.agent_id')}
        group by all order by cost_usd desc, d.agent_id
        """,
        params,
    )
    hourly = _rows(
        con,
        f"""
        select message_hour as hour, count(*) as messages, avg(response_time_ms) as avg_response_time_ms,
               quantile_cont(response_time_ms, 0.95) as p95_response_time_ms,
               sum(case when is_error then 1 else 0 end) * 1.0 / count(*) as error_rate
        from fct_messages
        where message_date between $start and $end and {agent_filter}
        group by 1 order by 1
        """,
        params,
    )
    by_provider = _rows(
        con,
        f"""
        select provider, count(*) as llm_calls, coalesce(sum(cost_usd), 0) as cost_usd,
               sum(case when is_priced then 0 else 1 end) as unpriced_calls,
               sum(input_tokens) as input_tokens, sum(output_tokens) as output_tokens
        from fct_llm_calls
        where message_date between $start and $end and {agent_filter}
        group by 1 order by cost_usd desc, provider
        """,
        params,
    )
    by_model = _rows(
        con,
        f"""
        select provider, model, count(*) as llm_calls, coalesce(sum(cost_usd), 0) as cost_usd,
               sum(case when is_priced then 0 else 1 end) as unpriced_calls,
               sum(input_tokens) as input_tokens, sum(output_tokens) as output_tokens,
               sum(total_tokens) as total_tokens
        from fct_llm_calls
        where message_date between $start and $end and {agent_filter}
        group by 1, 2 order by cost_usd desc, provider, model
        """,
        params,
    )
    uptime = _rows(
        con,
        """
        select component, sum(probes) as probes, sum(up_probes) as up_probes,
               sum(up_probes) * 1.0 / sum(probes) as uptime_ratio,
               sum(incidents) as incidents, sum(downtime_minutes) as downtime_minutes
        from fct_component_uptime_daily where uptime_date between $start and $end
        group by 1 order by 1
        """,
        {"start": period.start, "end": period.end},
    )
    incidents = _rows(
        con,
        """
        select component, started_at, ended_at, down_probes, is_ongoing, downtime_minutes
        from fct_downtime_incidents where incident_date between $start and $end order by started_at
        """,
        {"start": period.start, "end": period.end},
    )
    queues = _rows(
        con,
        """
        select queue_name, sum(samples) as samples, max(max_depth) as max_depth,
               sum(avg_depth * samples) / sum(samples) as avg_depth,
               arg_max(latest_depth, sample_date) as latest_depth
        from fct_queue_depth_daily where sample_date between $start and $end
        group by 1 order by 1
        """,
        {"start": period.start, "end": period.end},
    )
    tools = _rows(
        con,
        """
        select tool_name, sum(calls) as calls, sum(errors) * 1.0 / sum(calls) as error_rate,
               sum(avg_latency_ms * calls) / sum(calls) as avg_latency_ms
        from fct_tool_calls_daily where call_date between $start and $end
        group by 1 order by avg_latency_ms desc
        """,
        {"start": period.start, "end": period.end},
    )
    export = {
        "schema_version": EXPORT_SCHEMA_VERSION,
        "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "time_zone": time_zone,
        "period": {"start": period.start, "end": period.end, "days": period.days, "label": period.label},
        "previous_period": {"start": period.previous().start, "end": period.previous().end},
        "scope": {"agents": agent_ids or "all"},
        "summary": summary,
        "previous_summary": previous,
        "change_pct": {k: _change_pct(summary[k], previous[k]) for k in compared},
        "daily": daily_rows(con, period, agent_ids),
        "hourly": hourly,
        "agents": agents,
        "cost_by_provider": _with_shares(by_provider, "cost_usd"),
        "cost_by_model": _with_shares(by_model, "cost_usd"),
        "tokens": {
            "input_tokens": summary["input_tokens"],
            "output_tokens": summary["output_tokens"],
            "total_tokens": summary["total_tokens"],
            "avg_tokens_per_message": summary["avg_tokens_per_message"],
            "by_agent": _with_shares(
                [{k: a[k] for k in ("agent_id", "input_tokens", "output_tokens", "total_tokens", "avg_tokens_per_message")} for a in agents],
                "total_tokens",
            ),
            "by_model": [{k: m[k] for k in ("provider", "model", "input_tokens", "output_tokens", "total_tokens")} for m in by_model],
        },
        "tools": tools,
        "health": {"uptime": uptime, "incidents": incidents, "queues": queues},
    }
    if summary["messages"] == 0:
        export["note"] = "no messages in this period and scope: every count is 0 and every ratio is reported as 0"
    _with_shares(export["tokens"]["by_model"], "total_tokens")
    return _plain(export)


def to_json(export: dict) -> str:
    return json.dumps(export, indent=2, sort_keys=False) + "\n"
