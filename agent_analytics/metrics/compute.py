"""Compute the metrics document (schema: agent_analytics/schema/analytics_export.schema.json).

Everything is computed in DuckDB SQL over the row-level marts (fct_messages, fct_sessions,
fct_llm_calls, fct_tool_calls, fct_health_checks, fct_downtime_incidents, fct_queue_samples)
for the exact window, so any period, agent scope and time zone is answered the same way. The
additive measures and DAU/WAU/MAU are the daily marts' own definitions (measures.py), grouped
here by the request's days; the daily rows partition the window, so every additive metric
summed over days, weeks, months or agents is the period total.
Local days and hours come from a small table of 15-minute UTC buckets (every time zone
offset is a multiple of 15 minutes), built per request in the request's time zone, so
daylight-saving changes are exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import duckdb
import pandas as pd

from agent_analytics.bills import period_bills
from agent_analytics.budgets import load_budgets
from agent_analytics.goals import GoalsConfigError, load_goals
from agent_analytics.json_text import finite
from agent_analytics.metrics.budgets import budgets_section
from agent_analytics.metrics.goals import goal_values, goals_section
from agent_analytics.metrics.labels import (
    agent_label,
    change_pct,
    change_pp,
    compared,
    compared_pp,
    error_rate_status,
    response_time_status,
    share_pct,
    shares,
    uptime_status,
)
from agent_analytics.metrics.measures import active_users, call_measures, measure_names, message_measures, session_measures
from agent_analytics.metrics.users import built_last, day_split, hour_by_hour, users_section, window_users
from agent_analytics.periods import Period, iso, local_midnight
from agent_analytics.settings import Settings

SCHEMA_VERSION = "3.2"
BUCKET_US = 15 * 60 * 1_000_000
DURATION_BUCKETS = (
    ("<1 min", 0, 60_000), ("1-5 min", 60_000, 300_000), ("5-10 min", 300_000, 600_000), ("10+ min", 600_000, None),
)
MESSAGE_BUCKETS = (("1-2", 1, 3), ("3-5", 3, 6), ("6-10", 6, 11), ("11+", 11, None))
HEALTH_WINDOWS = (("24h", timedelta(hours=24)), ("7d", timedelta(days=7)), ("30d", timedelta(days=30)))
ERROR_WINDOWS = (("1h", timedelta(hours=1)), ("24h", timedelta(hours=24)), ("7d", timedelta(days=7)))
SCOPE = "($agents is null or list_contains($agents, agent_id))"


@dataclass(frozen=True)
class MetricsRequest:
    period: Period
    agents: list[str] | None
    as_of: datetime


def _naive(moment: datetime) -> datetime:
    """UTC instant as the naive timestamp the marts store."""
    return moment.astimezone(timezone.utc).replace(tzinfo=None)


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: dict) -> list[dict]:
    names_used = {k: v for k, v in params.items() if f"${k}" in sql}
    cursor = con.execute(sql, names_used)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=False)) for row in cursor.fetchall()]


def _one(con: duckdb.DuckDBPyConnection, sql: str, params: dict) -> dict:
    return _rows(con, sql, params)[0]


def _plain(value):
    """Python/JSON values of a query result; a non-finite number (an average overflowing on
    values stored before the ingest bounds) becomes None, like a value with no data."""
    if isinstance(value, (Decimal, float)):
        return finite(float(value))
    if isinstance(value, (datetime,)):
        return iso(value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _ratio(numerator, denominator, scale: float = 1.0) -> float | None:
    """numerator / denominator x scale; None (no data) when the denominator is 0."""
    return float(numerator) / float(denominator) * scale if denominator else None


def _register_buckets(con: duckdb.DuckDBPyConnection, start: datetime, end: datetime, tz: str) -> None:
    """Table local_buckets(bucket, local_date, local_hour) covering [start, end) in UTC."""
    first = pd.Timestamp(start).floor("15min")
    stamps = pd.date_range(first, pd.Timestamp(end), freq="15min", inclusive="left")
    local = stamps.tz_convert(tz)
    frame = pd.DataFrame(
        {
            "bucket": (stamps.as_unit("us").asi8 // BUCKET_US).astype("int64"),
            "local_date": local.date,
            "local_hour": local.hour.astype("int32"),
        }
    )
    con.register("local_buckets", frame)


LOCAL = "join local_buckets b on b.bucket = epoch_us({col}) // " + str(BUCKET_US)


def _summaries(con: duckdb.DuckDBPyConnection, windows: dict[str, Period], p: dict, pp: dict, measures: Measures,
               settings: Settings) -> dict[str, dict]:
    """Totals of the window ('now') and the previous one ('before'): the sums from the agent
    measures' scan; the distinct users from the user-day mart (users.window_users); the exact
    percentiles over each window's messages, which no mart can give."""
    found = {}
    for side, params in (("now", p), ("before", pp)):
        q = _one(
            con,
            f"""select quantile_cont(response_time_ms, [0.5, 0.95, 0.99]) as q
                from fct_messages where occurred_at >= $start and occurred_at < $end and {SCOPE}""",
            params,
        )["q"]
        found[side] = {"q": q, "active_users": window_users(con, windows[side], params["agents"], settings)}
    summaries = {}
    for side in ("now", "before"):
        m = {k: v for k, v in measures.totals[side].items() if k not in ("side", "agent_id", "agent_name", "is_total")}
        r = found[side]
        m["active_users"] = r["active_users"]
        m["active_agents"] = sum(1 for a in measures.agents[side] if a["messages"])
        m["p50"], m["p95"], m["p99"] = (None if q is None else float(q) for q in r["q"] or [None, None, None])
        m["error_rate_pct"] = _ratio(m["errors"], m["messages"], 100)
        m["avg_response_time_ms"] = _ratio(m["total_response_time_ms"], m["timed_messages"])
        m["avg_session_duration_ms"] = _ratio(m["total_session_duration_ms"], m["sessions"])
        m["messages_per_session"] = _ratio(m["session_messages"], m["sessions"])
        summaries[side] = m
    return summaries


def _dau_on_last_day(con: duckdb.DuckDBPyConnection, period: Period, p: dict) -> int:
    """Distinct users of the period's last day inside the window."""
    start = max(period.start, local_midnight(period.end_date, period.tz))
    return con.execute(
        f"""select count(distinct user_id) from fct_messages
            where occurred_at >= $s and occurred_at < $e and {SCOPE}""",
        {"s": _naive(start), "e": _naive(period.end), "agents": p["agents"]},
    ).fetchone()[0]


def _distribution(con: duckdb.DuckDBPyConnection, p: dict, column: str, buckets) -> list[dict]:
    cases = ", ".join(
        f"count(*) filter (where {column} >= {lo}" + (f" and {column} < {hi})" if hi else ")") + f" as b{i}"
        for i, (_, lo, hi) in enumerate(buckets)
    )
    row = con.execute(
        f"""select {cases} from fct_sessions
            where session_started_at >= $start and session_started_at < $end and {SCOPE}""",
        {k: p[k] for k in ("start", "end", "agents")},
    ).fetchone()
    counts = [int(c) for c in row]
    return [
        {"bucket": label, "sessions": n, "share_pct": share}
        for (label, _, _), n, share in zip(buckets, counts, shares(counts), strict=False)
    ]


ADDITIVE = ("sessions", "messages", "errors", "cost_usd", "input_tokens", "output_tokens", "total_tokens", "llm_calls")


def _daily(con: duckdb.DuckDBPyConnection, period: Period, p: dict, company_tz: str) -> list[dict]:
    """One row per local day start_date..end_date, each counted inside the window (the last
    one cut at the window's end): DAU/WAU/MAU, the additive measures and their ratios.

    Whole days of a company-wide document in the company's time zone come from the daily
    marts (fct_daily_activity, fct_agent_daily), which hold exactly these figures; the rest
    (a cut last day, days after the last built one, an agent scope, another time zone) are
    counted from the messages, which costs a scan of their 29 days before as well."""
    first, last = period.start_date, period.end_date
    split = _first_unbuilt_day(con, period, p, company_tz)
    rows = _built_days(con, first, split - timedelta(days=1)) if split > first else []
    if split <= last:
        rows += _counted_days(con, period, p, split, _user_days_until(con, period, split, company_tz))
    cut = local_midnight(last + timedelta(days=1), period.tz) > period.end
    return [
        {
            "date": r["date"],
            "partial": cut and r["date"] == last,
            "dau": r["dau"],
            "wau": r["wau"],
            "mau": r["mau"],
            **{k: r[k] for k in ADDITIVE},
            "cost_per_message": _ratio(r["cost_usd"], r["messages"]),
            "avg_response_time_ms": _ratio(r["total_response_time_ms"], r["timed_messages"]),
            "error_rate": _ratio(r["errors"], r["messages"]),
        }
        for r in rows
    ]


def _last_whole_day(window: Period) -> date:
    """The last local day wholly inside the window: its last day, or the one before when the
    window's end cuts it."""
    last = window.end_date
    return last - timedelta(days=1) if local_midnight(last + timedelta(days=1), window.tz) > window.end else last


def _first_unbuilt_day(con: duckdb.DuckDBPyConnection, period: Period, p: dict, company_tz: str) -> date:
    """The first day of the period that the daily marts cannot answer: after the last whole
    day inside the window, and after the last day they hold (the days after it have no row,
    but their WAU and MAU still count earlier users)."""
    if p["agents"] is not None or period.tz != company_tz:
        return period.start_date
    whole_last = _last_whole_day(period)
    last = built_last(con, "fct_daily_activity")
    if last is None:
        return period.start_date
    return max(period.start_date, min(whole_last, last) + timedelta(days=1))


def _built_days(con: duckdb.DuckDBPyConnection, first: date, last: date) -> list[dict]:
    """Days first..last from the daily marts, a day without a row counted as 0."""
    sums = ",\n".join(f"sum({k}) as {k}" for k in (*ADDITIVE, "timed_messages", "total_response_time_ms"))
    columns = ",\n".join(f"coalesce(totals.{k}, 0) as {k}" for k in (*ADDITIVE, "timed_messages", "total_response_time_ms"))
    return _rows(
        con,
        f"""
        with
        days as (
            select cast(generate_series as date) as d
            from generate_series(cast($first as timestamp), cast($last as timestamp), interval 1 day)
        ),
        totals as (
            select activity_date, {sums}
            from fct_agent_daily where activity_date between $first and $last group by 1
        )
        select days.d as date, coalesce(activity.dau, 0) as dau, coalesce(activity.wau, 0) as wau,
               coalesce(activity.mau, 0) as mau, {columns}
        from days
        left join fct_daily_activity activity on activity.activity_date = days.d
        left join totals on totals.activity_date = days.d
        order by days.d
        """,
        {"first": first, "last": last},
    )


def _user_days_until(con: duckdb.DuckDBPyConnection, period: Period, first: date, company_tz: str) -> date:
    """The day before which fct_user_daily (the users of each company day and agent) gives the
    users of the 29 days before `first` for its WAU and MAU: its whole built days, up to
    `first` (the days from `first` on are cut or not built). In another time zone its days are
    not the period's: none of them."""
    lookback = first - timedelta(days=29)
    if period.tz != company_tz:
        return lookback
    last = built_last(con, "fct_user_daily")
    return lookback if last is None else max(lookback, min(first, last))


def _counted_days(con: duckdb.DuckDBPyConnection, period: Period, p: dict, first: date, mart_until: date) -> list[dict]:
    """Days first..end_date counted from the messages inside the window; the users of the days
    before `mart_until` (WAU and MAU look 29 days back) from fct_user_daily, so only the rest
    of the messages is scanned."""
    last = period.end_date
    q = {
        "first": first,
        "last": last,
        "lookback": first - timedelta(days=29),
        "mart_until": mart_until,
        "s": _naive(local_midnight(mart_until, period.tz)),
        "e": p["end"],
        "ws": _naive(max(period.start, local_midnight(first, period.tz))),
        "agents": p["agents"],
    }
    return _rows(
        con,
        f"""
        with
        scoped as (
            select m.*, b.local_date
            from fct_messages m {LOCAL.format(col='m.occurred_at')}
            where m.occurred_at >= $s and m.occurred_at < $e and {SCOPE.replace('agent_id', 'm.agent_id')}
        ),
        user_days as (
            select distinct user_id, activity_date as active_date from fct_user_daily
            where activity_date >= $lookback and activity_date < $mart_until and messages > 0 and {SCOPE}
            union
            select distinct user_id, local_date as active_date from scoped
        ),
        days as (
            select cast(generate_series as date) as activity_date
            from generate_series(cast($first as timestamp) - interval 29 day, cast($last as timestamp), interval 1 day)
        ),
        counted as ({active_users('user_days', 'days')}),
        day_totals as (
            select local_date as d, {message_measures()}
            from scoped where local_date between $first and $last group by 1
        ),
        day_sessions as (
            select b.local_date as d, {session_measures()}
            from fct_sessions {LOCAL.format(col='session_started_at')}
            where session_started_at >= $ws and session_started_at < $e and {SCOPE}
            group by 1
        )
        select counted.activity_date as date, counted.dau, counted.wau, counted.mau,
               coalesce(day_sessions.sessions, 0) as sessions,
               coalesce(day_totals.messages, 0) as messages,
               coalesce(day_totals.errors, 0) as errors,
               coalesce(day_totals.cost_usd, 0) as cost_usd,
               coalesce(day_totals.input_tokens, 0) as input_tokens,
               coalesce(day_totals.output_tokens, 0) as output_tokens,
               coalesce(day_totals.total_tokens, 0) as total_tokens,
               coalesce(day_totals.llm_calls, 0) as llm_calls,
               coalesce(day_totals.timed_messages, 0) as timed_messages,
               coalesce(day_totals.total_response_time_ms, 0) as total_response_time_ms
        from counted
        left join day_totals on day_totals.d = counted.activity_date
        left join day_sessions on day_sessions.d = counted.activity_date
        where counted.activity_date between $first and $last
        order by counted.activity_date
        """,
        q,
    )


def _weekly(daily: list[dict]) -> list[dict]:
    """The daily rows grouped by ISO week (Monday start)."""
    weeks: dict[date, dict] = {}
    for d in daily:
        start = d["date"] - timedelta(days=d["date"].weekday())
        week = weeks.setdefault(start, {"week_start": start, "days": 0, "partial": False, **{k: 0 for k in ADDITIVE}})
        week["days"] += 1
        week["partial"] = week["partial"] or d["partial"]
        for k in ADDITIVE:
            week[k] += d[k]
    for week in weeks.values():
        week["partial"] = week["partial"] or week["days"] < 7
    return [weeks[k] for k in sorted(weeks)]


SIDE = "case when {col} >= $start and {col} < $end then 'now' when {col} >= $pstart and {col} < $pend then 'before' end"


def _both(p: dict, pp: dict) -> dict:
    """Parameters of a query over the window and the previous one together."""
    return {**p, "pstart": pp["start"], "pend": pp["end"]}


@dataclass(frozen=True)
class Measures:
    """The additive measures of the window ('now') and the previous one ('before'): per agent
    in scope, and in total."""

    agents: dict[str, list[dict]]
    totals: dict[str, dict]


def _by_side_and_agent(table: str, time_column: str, measures: str) -> str:
    """`measures` of `table` per side ('now', 'before') and agent, and per side in total."""
    return f"""
        select side, agent_id, {measures}
        from (select {SIDE.format(col=time_column)} as side, * from {table}
              where {time_column} >= $pstart and {time_column} < $end and {SCOPE})
        where side is not null
        group by grouping sets ((side, agent_id), (side))"""


def _summed(measures: str) -> str:
    """Select-list: the sum of each column of a select-list of measures, under its name."""
    return ", ".join(f"sum({name}) as {name}" for name in measure_names(measures))


def _message_measures_of(side: str) -> str:
    """The message measures per agent of window `side` (its day_split parameters prefixed
    `side`_): its whole company days summed from fct_agent_daily, which holds them per day,
    the rest from fct_messages."""
    return f"""
        select '{side}' as side, agent_id, {_summed(message_measures())}
        from fct_agent_daily
        where activity_date >= ${side}_mart_first and activity_date < ${side}_mart_stop and {SCOPE}
        group by agent_id
        union all
        select '{side}' as side, agent_id, {message_measures()}
        from fct_messages
        where occurred_at >= ${side}_raw_from and occurred_at < ${side}_end and {SCOPE}
        group by agent_id"""


def _measures(con: duckdb.DuckDBPyConnection, windows: dict[str, Period], p: dict, pp: dict,
              company_tz: str) -> Measures:
    """Every known agent in scope (dim_agents) with its measures in the window and in the
    previous one, and their totals (grouping sets). The message measures of whole company
    days come from the daily mart (scanning the messages of both windows was the document's
    slowest part at 100M messages); sessions from one scan of fct_sessions for both windows."""
    sides = "(select unnest(['now', 'before']) as side)"
    last = built_last(con, "fct_agent_daily")
    split = {f"{side}_{k}": v for side, window in windows.items()
             for k, v in day_split(window, company_tz, last).items()}
    rows = _rows(
        con,
        f"""
        with
        messages as (
            select side, agent_id, {_summed(message_measures())}
            from ({_message_measures_of("now")} union all {_message_measures_of("before")})
            group by grouping sets ((side, agent_id), (side))
        ),
        sessions as ({_by_side_and_agent("fct_sessions", "session_started_at", session_measures())}),
        totals as (
            select sides.side, null as agent_id, null as agent_name, true as is_total from {sides} sides
        ),
        agents as (
            select sides.side, a.agent_id, a.agent_name, false as is_total
            from dim_agents a cross join {sides} sides
            where {SCOPE.replace('agent_id', 'a.agent_id')}
        ),
        keys as (select * from totals union all select * from agents)
        select k.side, k.agent_id, k.agent_name, k.is_total,
               coalesce(s.sessions, 0) as sessions, coalesce(s.total_session_duration_ms, 0) as total_session_duration_ms,
               coalesce(s.session_messages, 0) as session_messages,
               coalesce(m.messages, 0) as messages, coalesce(m.errors, 0) as errors,
               coalesce(m.cost_usd, 0) as cost_usd, coalesce(m.llm_calls, 0) as llm_calls,
               coalesce(m.timed_messages, 0) as timed_messages, m.total_response_time_ms,
               coalesce(m.input_tokens, 0) as input_tokens, coalesce(m.output_tokens, 0) as output_tokens,
               coalesce(m.total_tokens, 0) as total_tokens,
               coalesce(m.unpriced_calls, 0) as unpriced_calls, coalesce(m.unpriced_tokens, 0) as unpriced_tokens
        from keys k
        left join messages m on m.side = k.side and m.agent_id is not distinct from k.agent_id
        left join sessions s on s.side = k.side and s.agent_id is not distinct from k.agent_id
        order by k.is_total desc, messages desc, k.agent_id
        """,
        {**_both(p, pp), **split},
    )
    return Measures(
        agents={side: [r for r in rows if r["side"] == side and not r["is_total"]] for side in ("now", "before")},
        totals={side: next(r for r in rows if r["side"] == side and r["is_total"]) for side in ("now", "before")},
    )


def _agent_row(r: dict) -> dict:
    return {
        "agent_id": r["agent_id"],
        "agent_name": r["agent_name"],
        "agent_label": agent_label(r["agent_name"], r["agent_id"]),
        "sessions": r["sessions"],
        "messages": r["messages"],
        "errors": r["errors"],
        "llm_calls": r["llm_calls"],
        "avg_session_duration_ms": _ratio(r["total_session_duration_ms"], r["sessions"]),
        "cost_usd": r["cost_usd"],
        "error_rate_pct": _ratio(r["errors"], r["messages"], 100),
        "avg_response_time_ms": _ratio(r["total_response_time_ms"], r["timed_messages"]),
        "input_tokens": int(r["input_tokens"]),
        "output_tokens": int(r["output_tokens"]),
        "total_tokens": int(r["total_tokens"]),
        "avg_tokens_per_message": _ratio(r["total_tokens"], r["messages"]),
    }


def _agents(measures: Measures) -> list[dict]:
    """Agent rows of the window, each compared with the same agent in the previous period."""
    before = {r["agent_id"]: _agent_row(r) for r in measures.agents["before"]}
    out = []
    for r in measures.agents["now"]:
        row, prev = _agent_row(r), before[r["agent_id"]]  # both sides list every agent in scope
        row["vs_previous"] = {
            key: compared(row[key], prev[key])
            for key in ("sessions", "messages", "cost_usd", "avg_response_time_ms", "total_tokens")
        }
        row["vs_previous"]["error_rate_pct"] = compared_pp(row["error_rate_pct"], prev["error_rate_pct"])
        out.append(row)
    return out


def _hourly(con: duckdb.DuckDBPyConnection, p: dict) -> list[dict]:
    rows = {
        r["hour"]: r
        for r in _rows(
            con,
            f"""
            select b.local_hour as hour, count(*) as messages, avg(m.response_time_ms) as avg_response_time_ms,
                   quantile_cont(m.response_time_ms, 0.95) as p95_response_time_ms
            from fct_messages m {LOCAL.format(col='m.occurred_at')}
            where m.occurred_at >= $start and m.occurred_at < $end and {SCOPE.replace('agent_id', 'm.agent_id')}
            group by 1
            """,
            p,
        )
    }
    return [
        rows.get(h, {"hour": h, "messages": 0, "avg_response_time_ms": None, "p95_response_time_ms": None})
        for h in range(24)
    ]


def _tools(con: duckdb.DuckDBPyConnection, p: dict) -> list[dict]:
    return _rows(
        con,
        f"""
        select tool_name, count(*) as calls, avg(latency_ms) as avg_latency_ms,
               quantile_cont(latency_ms, 0.95) as p95_latency_ms,
               count(*) filter (where is_error) * 100.0 / count(*) as error_share_pct
        from fct_tool_calls
        where occurred_at >= $start and occurred_at < $end and {SCOPE}
        group by tool_name
        order by p95_latency_ms desc nulls last, tool_name
        """,
        p,
    )


def _calls_by_model(con: duckdb.DuckDBPyConnection, period: Period, p: dict, pp: dict, company_tz: str) -> dict[str, list[dict]]:
    """The measures per (provider, model) of the LLM calls of the window and of the previous one
    (a call has its message's time). Whole company days of a company-wide document come from
    fct_daily_cost_by_model, which holds the same measures per day; otherwise one pass over
    the calls of both windows."""
    previous = period.previous()
    if p["agents"] is None and period.tz == company_tz:
        # each window: its whole built days from the mart, the cut last day (and any day after
        # the mart's last) from the calls
        last = built_last(con, "fct_daily_cost_by_model", "cost_date")
        q = {}
        for side, window in (("now", period), ("before", previous)):
            last_whole = _last_whole_day(window) if last is None else min(_last_whole_day(window), last)
            q.update({f"{side}_first": window.start_date, f"{side}_last": last_whole,
                      f"{side}_raw": _naive(max(window.start, local_midnight(last_whole + timedelta(days=1), window.tz))),
                      f"{side}_end": _naive(window.end)})
        raw_side = ("case when occurred_at >= $now_raw and occurred_at < $now_end then 'now' "
                    "when occurred_at >= $before_raw and occurred_at < $before_end then 'before' end")
        rows = _rows(
            con,
            f"""with parts as (
                    select case when cost_date between $now_first and $now_last then 'now' else 'before' end as side,
                           provider, model, {_summed_call_measures()}
                    from fct_daily_cost_by_model
                    where cost_date between $now_first and $now_last or cost_date between $before_first and $before_last
                    group by all
                    union all
                    select {raw_side} as side, provider, model, {call_measures()}
                    from fct_llm_calls
                    where (occurred_at >= $now_raw and occurred_at < $now_end)
                       or (occurred_at >= $before_raw and occurred_at < $before_end)
                    group by all
                )
                select side, provider, model, {_summed_call_measures()} from parts group by all""",
            q,
        )
    else:
        rows = _rows(
            con,
            f"""select {SIDE.format(col='occurred_at')} as side, provider, model, {call_measures()}
                from fct_llm_calls where occurred_at >= $pstart and occurred_at < $end and {SCOPE}
                group by all having side is not null""",
            _both(p, pp),
        )
    return {side: [r for r in rows if r["side"] == side] for side in ("now", "before")}


def _summed_call_measures() -> str:
    """call_measures() over rows that already hold them: each summed, with its type kept."""
    columns = [item.rsplit(" as ", 1)[1].strip() for item in call_measures().split(",\n")]
    return ", ".join(
        f"cast(sum({c}) as {'decimal(38, 10)' if c.endswith('_usd') else 'bigint'}) as {c}" for c in columns
    )


def _with_previous(rows: list[dict], before: list[dict], keys: tuple[str, ...], value: str) -> list[dict]:
    """Each row with the previous period's `value` of the same keys (0 when absent) and the change."""
    previous = {tuple(b[k] for k in keys): b[value] for b in before}
    for row in rows:
        row[f"previous_{value}"] = previous.get(tuple(row[k] for k in keys), 0)
        row["change_pct"] = change_pct(row[value], row[f"previous_{value}"])
    return rows


def _by_provider(models: list[dict]) -> list[dict]:
    providers: dict[str, dict] = {}
    for m in models:
        row = providers.setdefault(m["provider"], {"provider": m["provider"], "cost_usd": 0, "calls": 0, "unpriced_calls": 0})
        row["cost_usd"] += m["cost_usd"]
        row["calls"] += m["llm_calls"]
        row["unpriced_calls"] += m["unpriced_calls"]
    return list(providers.values())


def _cost(con: duckdb.DuckDBPyConnection, period: Period, p: dict, summary: dict, agents: list[dict],
          models: list[dict], models_before: list[dict], daily: list[dict]) -> dict:
    total = summary["cost_usd"]
    by_provider = sorted(
        _with_previous(_by_provider(models), _by_provider(models_before), ("provider",), "cost_usd"),
        key=lambda r: (-r["cost_usd"], r["provider"]),
    )
    by_model = sorted(
        _with_previous(
            [{"provider": m["provider"], "model": m["model"], "cost_usd": m["cost_usd"], "calls": m["llm_calls"],
              "unpriced_calls": m["unpriced_calls"]} for m in models],
            models_before, ("provider", "model"), "cost_usd",
        ),
        key=lambda r: (-r["cost_usd"], r["provider"], r["model"]),
    )
    for row in by_provider + by_model:
        row["share_pct"] = share_pct(row["cost_usd"], total)
    by_agent = sorted(
        ({"agent_id": a["agent_id"], "agent_label": a["agent_label"], "cost_usd": a["cost_usd"],
          "share_pct": share_pct(a["cost_usd"], total), "previous_cost_usd": a["vs_previous"]["cost_usd"]["previous"],
          "change_pct": a["vs_previous"]["cost_usd"]["change_pct"]}
         for a in agents if a["messages"] > 0),
        key=lambda a: (-a["cost_usd"], a["agent_id"]),
    )
    unpriced_in = sum(int(m["unpriced_input_tokens"]) for m in models)
    unpriced_out = sum(int(m["unpriced_output_tokens"]) for m in models)
    unpriced = {"calls": sum(m["unpriced_calls"] for m in models), "input_tokens": unpriced_in,
                "output_tokens": unpriced_out, "total_tokens": unpriced_in + unpriced_out}
    months: dict[date, Decimal] = {}
    for d in daily:
        months[d["date"].replace(day=1)] = months.get(d["date"].replace(day=1), 0) + d["cost_usd"]
    end = period.end
    weekly, week_before = con.execute(
        f"""select coalesce(sum(cost_usd) filter (where occurred_at >= $w1), 0),
                   coalesce(sum(cost_usd) filter (where occurred_at < $w1), 0)
            from fct_messages where occurred_at >= $w2 and occurred_at < $e and {SCOPE}""",
        {"w1": _naive(end - timedelta(days=7)), "w2": _naive(end - timedelta(days=14)), "e": _naive(end), "agents": p["agents"]},
    ).fetchone()
    return {
        "total_usd": total,
        "by_provider": by_provider,
        "by_agent": by_agent,
        "by_model": by_model,
        "by_day": [{"date": d["date"], "partial": d["partial"], "cost_usd": d["cost_usd"]} for d in daily],
        "by_week": [{"week_start": w["week_start"], "cost_usd": w["cost_usd"]} for w in _weekly(daily)],
        "by_month": [{"month": m.strftime("%Y-%m"), "cost_usd": c} for m, c in sorted(months.items())],
        "cost_per_message_usd": _ratio(total, summary["messages"]),
        "cost_per_session_usd": _ratio(total, summary["sessions"]),
        "cost_per_user_usd": _ratio(total, summary["active_users"]),
        "unpriced": unpriced,
        "forecast": {
            "weekly_spend_usd": weekly,
            "projected_monthly_usd": float(weekly) * 52 / 12,
            "trend_pct": change_pct(weekly, week_before),
        },
    }


def _tokens(summary: dict, before: dict, agents: list[dict], models: list[dict], models_before: list[dict]) -> dict:
    total = int(summary["total_tokens"])
    by_agent = sorted(
        (
            {
                "agent_id": a["agent_id"],
                "agent_label": a["agent_label"],
                "input_tokens": a["input_tokens"],
                "output_tokens": a["output_tokens"],
                "total_tokens": a["total_tokens"],
                "share_pct": share_pct(a["total_tokens"], total),
                "avg_tokens_per_message": a["avg_tokens_per_message"],
                "previous_total_tokens": a["vs_previous"]["total_tokens"]["previous"],
                "change_pct": a["vs_previous"]["total_tokens"]["change_pct"],
            }
            for a in agents
            if a["messages"] > 0
        ),
        key=lambda a: (-a["total_tokens"], a["agent_id"]),
    )
    by_model = sorted(
        _with_previous(
            [
                {
                    "provider": m["provider"],
                    "model": m["model"],
                    "input_tokens": int(m["input_tokens"]),
                    "output_tokens": int(m["output_tokens"]),
                    "total_tokens": int(m["total_tokens"]),
                    "share_pct": share_pct(int(m["total_tokens"]), total),
                }
                for m in models
            ],
            models_before, ("provider", "model"), "total_tokens",
        ),
        key=lambda r: (-r["total_tokens"], r["provider"], r["model"]),
    )
    return {
        "input_tokens": int(summary["input_tokens"]),
        "output_tokens": int(summary["output_tokens"]),
        "total_tokens": total,
        "input_share_pct": share_pct(summary["input_tokens"], total),
        "output_share_pct": share_pct(summary["output_tokens"], total),
        "avg_tokens_per_message": _ratio(total, summary["messages"]),
        "vs_previous": {k: compared(int(summary[k]), int(before[k])) for k in ("input_tokens", "output_tokens", "total_tokens")},
        "by_agent": by_agent,
        "by_model": by_model,
    }


def _uptime(con: duckdb.DuckDBPyConnection, start: datetime, end: datetime) -> tuple[int, float | None, int, float]:
    """(probes, uptime %, incidents, downtime minutes) of [start, end), all components."""
    w = {"ws": _naive(start), "we": _naive(end)}
    probes, up = con.execute(
        "select count(*), count(*) filter (where is_up) from fct_health_checks where checked_at >= $ws and checked_at < $we", w
    ).fetchone()
    incidents, minutes = con.execute(
        """select count(*), coalesce(sum(date_diff('millisecond',
                      greatest(started_at, $ws), least(coalesce(ended_at, $we), $we))) / 60000.0, 0)
           from fct_downtime_incidents
           where started_at < $we and coalesce(ended_at, $we) > $ws""",
        w,
    ).fetchone()
    return probes, _ratio(up, probes, 100), incidents, float(minutes)


def _errors_in(con: duckdb.DuckDBPyConnection, start: datetime, end: datetime, agents) -> tuple[int, int]:
    return con.execute(
        f"""select count(*), count(*) filter (where is_error) from fct_messages
            where occurred_at >= $ws and occurred_at < $we and {SCOPE}""",
        {"ws": _naive(start), "we": _naive(end), "agents": agents},
    ).fetchone()


def _health(con: duckdb.DuckDBPyConnection, period: Period, p: dict, summary: dict, before: dict, settings: Settings) -> dict:
    end = period.end
    uptime = []
    for name, length in HEALTH_WINDOWS:
        probes, pct, incidents, minutes = _uptime(con, end - length, end)
        previous = _uptime(con, end - 2 * length, end - length)[1]
        uptime.append(
            {"window": name, "probes": probes, "uptime_pct": pct, "status": uptime_status(pct, settings),
             "incidents": incidents, "downtime_minutes": minutes, "previous_uptime_pct": previous,
             "change_pp": change_pp(pct, previous)}
        )
    window = {"ws": _naive(end - HEALTH_WINDOWS[-1][1]), "we": _naive(end)}
    incidents = _rows(
        con,
        """select component, started_at, case when ended_at <= $we then ended_at end as ended_at,
                  date_diff('millisecond', greatest(started_at, $ws), least(coalesce(ended_at, $we), $we)) / 60000.0
                      as downtime_minutes
           from fct_downtime_incidents
           where started_at < $we and coalesce(ended_at, $we) > $ws
           order by started_at desc, component""",
        window,
    )
    minute_end = end.replace(second=0, microsecond=0)
    error_windows = [("current", timedelta(minutes=1))] + list(ERROR_WINDOWS)
    error_rate = []
    for name, length in error_windows:
        stop = minute_end if name == "current" else end
        messages, errors = _errors_in(con, stop - length, stop, p["agents"])
        pct = _ratio(errors, messages, 100)
        messages_before, errors_before = _errors_in(con, stop - 2 * length, stop - length, p["agents"])
        previous = _ratio(errors_before, messages_before, 100)
        error_rate.append({"window": name, "messages": messages, "error_rate_pct": pct,
                           "status": error_rate_status(pct, settings),
                           "previous_error_rate_pct": previous, "change_pp": change_pp(pct, previous)})
    # A count of 0 is only known once the data reaches the end of its window.
    newest = con.execute("select max(occurred_at) from fct_messages").fetchone()[0]

    def known(count: int, window_end: datetime) -> int | None:
        return count if count or (newest is not None and newest >= _naive(window_end)) else None

    current = known(error_rate[0]["messages"], minute_end)
    day_start = local_midnight(period.end_date, period.tz)
    peak = con.execute(
        f"""select date_trunc('minute', occurred_at) as minute, count(*) as n from fct_messages
            where occurred_at >= $ds and occurred_at < $we and {SCOPE}
            group by 1 order by n desc, minute limit 1""",
        {"ds": _naive(day_start), "we": _naive(end), "agents": p["agents"]},
    ).fetchone()
    peak_count, peak_minute = (peak[1], peak[0]) if peak else (known(0, end), None)
    capacity = settings.capacity_per_min
    queues = _rows(
        con,
        """
        with latest as (
            select queue_name, arg_max(depth, sampled_at) as latest_depth
            from fct_queue_samples where sampled_at < $end group by 1
        )
        select s.queue_name as queue, l.latest_depth, avg(s.depth) as avg_depth, max(s.depth) as max_depth,
               quantile_cont(s.depth, 0.95) as p95_depth
        from fct_queue_samples s join latest l using (queue_name)
        where s.sampled_at >= $start and s.sampled_at < $end
        group by all order by 1
        """,
        p,
    )
    response_time = {}
    for q in ("p50", "p95", "p99"):
        response_time[f"{q}_ms"] = summary[q]
        response_time[f"{q}_status"] = response_time_status(summary[q], settings)
        response_time[f"{q}_previous_ms"] = before[q]
        response_time[f"{q}_change_pct"] = None if summary[q] is None or before[q] is None else change_pct(summary[q], before[q])
    return {
        "uptime": uptime,
        "incidents": incidents,
        "error_rate": error_rate,
        "response_time": response_time,
        "request_volume": {
            "current_per_min": current,
            "peak_per_min_today": peak_count,
            "peak_minute": peak_minute,
            "capacity_per_min": capacity,
            "headroom_pct": None if peak_count is None else (capacity - peak_count) / capacity * 100,
        },
        "queues": queues,
    }


def _goals(con: duckdb.DuckDBPyConnection, request: MetricsRequest, settings: Settings, p: dict, pp: dict,
           now: dict, daily: list[dict]) -> dict:
    """The goals of the goals file that fit the request's scope; a file that cannot be used is
    named in `problem` and leaves the rest of the document as it is."""
    try:
        goals, problem = load_goals(settings.goals_path), None
    except GoalsConfigError as exc:
        goals, problem = [], str(exc)

    def values_of(agent: str | None) -> dict:
        if agent is None or request.agents == [agent]:
            return goal_values(now, daily)
        scoped, scoped_before = {**p, "agents": [agent]}, {**pp, "agents": [agent]}
        windows = {"now": request.period, "before": request.period.previous()}
        measures = _measures(con, windows, scoped, scoped_before, settings.company_tz)
        summary = _summaries(con, windows, scoped, scoped_before, measures, settings)["now"]
        return goal_values(summary, _daily(con, request.period, scoped, settings.company_tz))

    return goals_section(goals, problem, request.agents, request.period, values_of)


def _budgets(con: duckdb.DuckDBPyConnection, request: MetricsRequest, settings: Settings) -> dict:
    """The monthly budgets of the goals file that fit the request's scope, for the company month
    holding the period's end; a file that cannot be used is named in `problem`."""
    try:
        budgets, problem = load_budgets(settings.goals_path), None
    except GoalsConfigError as exc:
        budgets, problem = [], str(exc)
    return budgets_section(con, budgets, problem, request.agents, request.period.end, settings.company_tz)


def compute_metrics(con: duckdb.DuckDBPyConnection, request: MetricsRequest, settings: Settings) -> dict:
    """The whole metrics document for one period and scope (JSON-ready)."""
    # here, not at the top: the section uses the comparison's statistics, whose package reads
    # agent labels from this one
    from agent_analytics.deployments.section import deployments_section

    period, previous = request.period, request.period.previous()
    p = {"start": _naive(period.start), "end": _naive(period.end), "agents": request.agents}
    pp = {"start": _naive(previous.start), "end": _naive(previous.end), "agents": request.agents}
    bucket_start = min(previous.start, local_midnight(period.start_date - timedelta(days=30), period.tz))
    _register_buckets(con, bucket_start, local_midnight(period.end_date + timedelta(days=1), period.tz), period.tz)
    try:
        windows = {"now": period, "before": previous}
        measures = _measures(con, windows, p, pp, settings.company_tz)
        summaries = _summaries(con, windows, p, pp, measures, settings)
        now, before = summaries["now"], summaries["before"]
        agents = _agents(measures)
        daily = _daily(con, period, p, settings.company_tz)
        calls = _calls_by_model(con, period, p, pp, settings.company_tz)
        models, models_before = calls["now"], calls["before"]
        dau = compared(daily[-1]["dau"], _dau_on_last_day(con, previous, p))
        dau.update(date=period.end_date, partial=period.partial)
        document = {
            "schema_version": SCHEMA_VERSION,
            "generated_at": iso(datetime.now(timezone.utc)),
            "as_of": iso(request.as_of),
            "time_zone": period.tz,
            "period": period.describe(),
            "previous_period": previous.describe(),
            "scope": {"agents": request.agents},
            "note": None if now["messages"] else "No messages in this period and scope: counts are 0 and ratios have no value.",
            "totals": {k: now[k] for k in ADDITIVE},
            "overview": {
                "active_users": compared(now["active_users"], before["active_users"]),
                "dau": dau,
                "sessions": compared(now["sessions"], before["sessions"]),
                "messages": compared(now["messages"], before["messages"]),
                "active_agents": compared(now["active_agents"], before["active_agents"]),
                "cost_usd": compared(now["cost_usd"], before["cost_usd"]),
                "error_rate_pct": compared_pp(now["error_rate_pct"], before["error_rate_pct"]),
            },
            "engagement": {
                "series": [{k: d[k] for k in ("date", "partial", "dau", "wau", "mau")} for d in daily],
                "sessions": now["sessions"],
                "avg_session_duration_ms": now["avg_session_duration_ms"],
                "messages_per_session": now["messages_per_session"],
                "session_duration_distribution": _distribution(con, p, "duration_ms", DURATION_BUCKETS),
                "messages_per_session_distribution": _distribution(con, p, "message_count", MESSAGE_BUCKETS),
            },
            "performance": {
                "active_agents": now["active_agents"],
                "agents": agents,
                "avg_response_time_ms": now["avg_response_time_ms"],
                "p50_response_time_ms": now["p50"],
                "p95_response_time_ms": now["p95"],
                "p99_response_time_ms": now["p99"],
                "hourly": _hourly(con, p),
                "hour_by_hour": hour_by_hour(con, period, request.agents, settings),
                "messages": now["messages"],
                "errors": now["errors"],
                "error_rate_pct": now["error_rate_pct"],
                "success_rate_pct": None if now["error_rate_pct"] is None else 100 - now["error_rate_pct"],
                "tools": _tools(con, p),
            },
            "cost": _cost(con, period, p, now, agents, models, models_before, daily),
            "tokens": _tokens(now, before, agents, models, models_before),
            "health": _health(con, period, p, now, before, settings),
            "goals": _goals(con, request, settings, p, pp, now, daily),
            "budgets": _budgets(con, request, settings),
            "deployments": deployments_section(con, period.start, period.end, request.as_of, request.agents),
            "bills": period_bills(con, request.period, request.agents),
            "users": users_section(con, period, request.agents, settings),
            "daily": daily,
            "weekly": _weekly(daily),
        }
    finally:
        con.unregister("local_buckets")
    return _plain(document)
