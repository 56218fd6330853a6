"""The users behind the numbers and the hours of the day (schema 3.2): top users, new and
returning users per day, the hour-by-hour series, and one user's activity (`metrics --user`).

These read the small marts, never every message of the window (the document must stay fast at
100M messages): `fct_user_daily` (day x user x agent) and `dim_user_agents` (first seen) for the
users, `fct_hourly_activity` / `fct_agent_hourly` for the hours. The marts hold whole company
days and hours, so only what they cannot answer is read from the row-level marts
(`fct_messages`, `fct_sessions`): the partial last day or hour of the window, everything when
the request's time zone is not the company's (its days and hours are not the marts'), and the
hours of a scope of several agents (a P95 over their messages is not derived from per-agent
P95s). Definitions: docs/metric-definitions.md (Users, Hour by hour).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

import duckdb
import pandas as pd

from agent_analytics.periods import Period, local_midnight
from agent_analytics.settings import Settings
from agent_analytics.user_ids import shown_user_id

TOP_N = 10
SCOPE = "($agents is null or list_contains($agents, agent_id))"
RANKINGS = (("by_messages", "messages"), ("by_sessions", "sessions"), ("by_cost", "cost_usd"))


class UnknownUserError(LookupError):
    """The user id has no message in the warehouse."""


def _naive(moment: datetime) -> datetime:
    return moment.astimezone(timezone.utc).replace(tzinfo=None)


def _local(column: str, tz: str) -> str:
    """SQL: the wall-clock time of a naive UTC `column` in `tz` (tz is checked by the period)."""
    return f"cast(({column} at time zone 'UTC') at time zone '{tz}' as timestamp)"


def _local_hour_start(column: str, tz: str) -> str:
    """SQL: the UTC start of the local hour of `column` (the marts' to_company_hour_start)."""
    local = _local(column, tz)
    return f"({column} - ({local} - date_trunc('hour', {local})))"


@dataclass(frozen=True)
class Split:
    """Which part of a window the hour marts answer: the whole company hours [start, mart_to),
    the rest [raw_from, end) from fct_messages."""

    start: datetime  # naive UTC
    end: datetime
    mart_to: datetime  # == start when the marts answer nothing
    raw_from: datetime


def _hour_split(period: Period, settings: Settings, unit_end: datetime) -> Split:
    """`unit_end`: the start of the last hour when the window cuts it, else the end."""
    start, end = _naive(period.start), _naive(period.end)
    mart_to = _naive(unit_end) if period.tz == settings.company_tz else start
    return Split(start, end, mart_to, mart_to)


def _days(period: Period) -> pd.DataFrame:
    """The period's local days with the UTC instant each starts at."""
    days, d = [], period.start_date
    while d <= period.end_date:
        days.append(d)
        d += timedelta(days=1)
    return pd.DataFrame({"d": days, "day_start": [_naive(local_midnight(d, period.tz)) for d in days]})


def _user_days_sql(tz: str, user_filter: str = "") -> str:
    """Rows (d, user_id, agent_id, messages, sessions, errors, cost_usd, input/output/total
    tokens, first/last message) of the window: the mart's whole days, the rest from the
    row-level marts."""
    local_date = "cast({} as date)".format(_local("occurred_at", tz))
    session_date = "cast({} as date)".format(_local("session_started_at", tz))
    return f"""
        select activity_date as d, user_id, agent_id, messages, sessions, errors, cost_usd,
               input_tokens, output_tokens, total_tokens, first_message_at, last_message_at
        from fct_user_daily
        where activity_date >= $mart_first and activity_date < $mart_stop and {SCOPE}{user_filter}
        union all
        select {local_date} as d, user_id, agent_id, count(*) as messages, 0 as sessions,
               count(*) filter (where is_error) as errors, coalesce(sum(cost_usd), 0) as cost_usd,
               coalesce(sum(input_tokens), 0), coalesce(sum(output_tokens), 0), coalesce(sum(total_tokens), 0),
               min(occurred_at), max(occurred_at)
        from fct_messages
        where occurred_at >= $raw_from and occurred_at < $end and {SCOPE}{user_filter}
        group by all
        union all
        select {session_date} as d, user_id, agent_id, 0, count(*), 0, 0, 0, 0, 0, null, null
        from fct_sessions
        where session_started_at >= $raw_from and session_started_at < $end and {SCOPE}{user_filter}
        group by all"""


def day_split(period: Period, company_tz: str, built_last: date | None) -> dict:
    """A day mart (one row per company day, built up to `built_last`, None when empty)
    answers the window's whole company days it holds [mart_first, mart_stop); the row-level
    marts the rest [raw_from, end): the partial last day, days after the mart's last (a build
    that stopped before it), or the whole window in another time zone (its days are not the
    marts')."""
    whole = local_midnight(period.end_date + timedelta(days=1), period.tz) <= period.end
    if period.tz != company_tz:
        mart_stop, raw_from = period.start_date, period.start
    elif whole:
        mart_stop, raw_from = period.end_date + timedelta(days=1), period.end
    else:
        mart_stop, raw_from = period.end_date, local_midnight(period.end_date, period.tz)
    built_stop = period.start_date if built_last is None else built_last + timedelta(days=1)
    if built_stop < mart_stop:
        mart_stop = max(built_stop, period.start_date)
        raw_from = local_midnight(mart_stop, period.tz)
    return {"mart_first": period.start_date, "mart_stop": mart_stop, "raw_from": _naive(raw_from),
            "end": _naive(period.end)}


def built_last(con: duckdb.DuckDBPyConnection, table: str, column: str = "activity_date") -> date | None:
    """The last day a day mart holds (None when it is empty)."""
    return con.execute(f"select max({column}) from {table}").fetchone()[0]


def _user_params(con: duckdb.DuckDBPyConnection, period: Period, settings: Settings,
                 agents: list[str] | None) -> dict:
    return {**day_split(period, settings.company_tz, built_last(con, "fct_user_daily")), "agents": agents}


def _query(con: duckdb.DuckDBPyConnection, sql: str, params: dict) -> list[dict]:
    cursor = con.execute(sql, {k: v for k, v in params.items() if f"${k}" in sql})
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _ranking(name: str, column: str) -> str:
    """SQL CTE `top_<name>`: the TOP_N users of `users` by `column` (ties by user id) and their
    rank, column `name`."""
    return f"""top_{name} as (
            select user_id, row_number() over (order by {column} desc, user_id) as {name}
            from (select user_id, {column} from users order by {column} desc, user_id limit {TOP_N})
        )"""


def window_users(con: duckdb.DuckDBPyConnection, period: Period, agents: list[str] | None,
                 settings: Settings) -> int:
    """Distinct users with a message in the window, from the user-day mart where it answers
    (a tenth of the rows of fct_messages)."""
    sql = f"select count(distinct user_id) as n from ({_user_days_sql(period.tz)}) where messages > 0"
    return _query(con, sql, _user_params(con, period, settings, agents))[0]["n"]


def users_section(con: duckdb.DuckDBPyConnection, period: Period, agents: list[str] | None,
                  settings: Settings) -> dict:
    """Top users by messages, sessions and cost, and new / returning users per day."""
    p = _user_params(con, period, settings, agents)
    ranked = _query(
        con,
        f"""
        with rows as ({_user_days_sql(period.tz)}),
        users as (
            select user_id, sum(messages) as messages, sum(sessions) as sessions, sum(errors) as errors,
                   sum(cost_usd) as cost_usd, sum(total_tokens) as total_tokens
            from rows group by user_id
        ),
        -- each ranking's first TOP_N only (a top-N, not a sort of every user)
        {", ".join(_ranking(name, column) for name, column in RANKINGS)},
        top as (
            select users.*, {", ".join(name for name, _ in RANKINGS)}
            from users {" ".join(f"left join top_{name} using (user_id)" for name, _ in RANKINGS)}
            where coalesce({", ".join(name for name, _ in RANKINGS)}) is not null
        ),
        -- the distinct counts for the top users only: over every user they cost more than the rest
        spread as (
            select user_id, count(distinct agent_id) filter (where messages > 0) as agents,
                   count(distinct d) filter (where messages > 0) as active_days
            from rows where user_id in (select user_id from top) group by user_id
        )
        select top.*, spread.agents, spread.active_days from top join spread using (user_id)
        """,
        p,
    )
    key = settings.user_id_hash_key
    top = {}
    for name, _ in RANKINGS:
        rows = sorted((r for r in ranked if r[name] is not None), key=lambda r, n=name: r[n])
        top[name] = [
            {"rank": r[name], "user_id": shown_user_id(r["user_id"], key), "messages": int(r["messages"]),
             "sessions": int(r["sessions"]), "errors": int(r["errors"]), "cost_usd": r["cost_usd"],
             "total_tokens": int(r["total_tokens"]), "agents": r["agents"], "active_days": r["active_days"]}
            for r in rows
        ]
    con.register("users_period_days", _days(period))
    try:
        per_day = {
            r["d"]: r
            for r in _query(
                con,
                f"""
                with rows as ({_user_days_sql(period.tz)}),
                active as (select d, user_id from rows group by d, user_id having sum(messages) > 0),
                -- a user first seen before the window is new on none of its days: only those seen
                -- in it are looked up (grouping every user ever seen cost more than the rest)
                first_seen as (
                    select user_id, min(first_seen_at) as first_seen_at from dim_user_agents
                    where {SCOPE} and user_id in (
                        select user_id from dim_user_agents where {SCOPE} and first_seen_at >= $window_start
                    )
                    group by 1
                )
                select active.d, count(*) as active_users,
                       count(*) filter (where first_seen.first_seen_at >= days.day_start) as new_users
                from active
                join users_period_days days on days.d = active.d
                left join first_seen on first_seen.user_id = active.user_id
                group by active.d
                """,
                {**p, "window_start": _naive(period.start)},
            )
        }
    finally:
        con.unregister("users_period_days")
    cut = period.partial
    new_vs_returning = []
    for d in _days(period)["d"]:
        r = per_day.get(d, {"active_users": 0, "new_users": 0})
        new_vs_returning.append({"date": d, "partial": cut and d == period.end_date, "active_users": r["active_users"],
                                 "new_users": r["new_users"], "returning_users": r["active_users"] - r["new_users"]})
    return {"top_n": TOP_N, "user_ids_hashed": key is not None, "top_users": top, "new_vs_returning": new_vs_returning}


def _hours(period: Period) -> pd.DataFrame:
    """Every local hour of the window: its UTC start, local date and hour, and whether the
    window's end cuts it. A local hour starts where the local minute is 0 (15-minute steps: every
    offset is a multiple of 15 minutes), so a 23- or 25-hour day has 23 or 25 rows."""
    stamps = pd.date_range(pd.Timestamp(period.start).floor("15min"), pd.Timestamp(period.end), freq="15min",
                           inclusive="left")
    local = stamps.tz_convert(period.tz)
    starts = stamps[local.minute == 0]
    if len(starts) == 0 or starts[0] > stamps[0]:
        starts = stamps[:1].append(starts)
    local_starts = starts.tz_convert(period.tz)
    ends = list(starts[1:]) + [starts[-1] + pd.Timedelta(hours=1)]
    end = pd.Timestamp(period.end)
    return pd.DataFrame({
        "hour_at": [s.tz_convert(None).to_pydatetime() for s in starts],
        "date": local_starts.date,
        "hour": local_starts.hour,
        "partial": [e > end for e in ends],
    })


def hour_by_hour(con: duckdb.DuckDBPyConnection, period: Period, agents: list[str] | None,
                 settings: Settings) -> list[dict]:
    """Messages, errors, error rate and P95 response time of every local hour of the window."""
    hours = _hours(period)
    cut = hours[hours["partial"]]
    unit_end = cut["hour_at"].iloc[0].replace(tzinfo=timezone.utc) if len(cut) else period.end
    split = _hour_split(period, settings, unit_end)
    if agents is not None and len(agents) != 1:
        split = Split(split.start, split.end, split.start, split.start)
    mart = "fct_hourly_activity" if agents is None else "fct_agent_hourly"
    # hours after the mart's last (a build that stopped before it) from the messages too
    last = built_last(con, mart, "hour_at")
    stop = split.start if last is None else max(split.start, min(split.mart_to, last + timedelta(hours=1)))
    split = Split(split.start, split.end, stop, stop)
    agent_filter = "" if agents is None else " and agent_id = $single"
    found = {
        r["hour_at"]: r
        for r in _query(
            con,
            f"""
            select hour_at, messages, errors, p95_response_time_ms from {mart}
            where hour_at >= $start and hour_at < $mart_to{agent_filter}
            union all
            select {_local_hour_start('occurred_at', period.tz)} as hour_at, count(*) as messages,
                   count(*) filter (where is_error) as errors,
                   quantile_cont(response_time_ms, 0.95) as p95_response_time_ms
            from fct_messages
            where occurred_at >= $raw_from and occurred_at < $end and {SCOPE}
            group by 1
            """,
            {"start": split.start, "mart_to": split.mart_to, "raw_from": split.raw_from, "end": split.end,
             "agents": agents, "single": agents[0] if agents else None},
        )
    }
    out = []
    for h in hours.itertuples(index=False):
        r = found.get(h.hour_at, {"messages": 0, "errors": 0, "p95_response_time_ms": None})
        messages, errors = int(r["messages"]), int(r["errors"] or 0)
        out.append({"hour_start": h.hour_at, "date": h.date, "hour": int(h.hour), "partial": bool(h.partial),
                    "messages": messages, "errors": errors,
                    "error_rate_pct": errors / messages * 100 if messages else None,
                    "p95_response_time_ms": r["p95_response_time_ms"]})
    return out


def user_activity(con: duckdb.DuckDBPyConnection, user_id: str, period: Period, agents: list[str] | None,
                  settings: Settings) -> dict:
    """One user's activity in the window: totals, agents used, first / last seen, per day.
    Raises UnknownUserError when the user has no message in the warehouse."""
    seen = con.execute(
        "select min(first_seen_at), max(last_seen_at) from dim_user_agents where user_id = $u", {"u": user_id}
    ).fetchone()
    if seen[0] is None:
        raise UnknownUserError(user_id)
    p = {**_user_params(con, period, settings, agents), "user": user_id}
    rows = _query(con, f"""
        select d, agent_id, sum(messages) as messages, sum(sessions) as sessions, sum(errors) as errors,
               sum(cost_usd) as cost_usd, sum(input_tokens) as input_tokens, sum(output_tokens) as output_tokens,
               sum(total_tokens) as total_tokens, min(first_message_at) as first_at, max(last_message_at) as last_at
        from ({_user_days_sql(period.tz, ' and user_id = $user')}) group by all order by d, agent_id""", p)
    measures = ("messages", "sessions", "errors", "cost_usd", "input_tokens", "output_tokens", "total_tokens")

    def summed(selected: list[dict]) -> dict:
        return {k: sum(r[k] for r in selected) for k in measures}

    by_day = []
    for d in _days(period)["d"]:
        day = summed([r for r in rows if r["d"] == d])
        by_day.append({"date": d, "partial": period.partial and d == period.end_date, **day})
    agents_used = sorted({r["agent_id"] for r in rows if r["messages"]})
    totals = summed(rows)
    firsts = [r["first_at"] for r in rows if r["first_at"] is not None]
    lasts = [r["last_at"] for r in rows if r["last_at"] is not None]
    return {
        "user_id": shown_user_id(user_id, settings.user_id_hash_key),
        "period": period.describe(),
        "scope": {"agents": agents},
        "totals": {k: (v if k == "cost_usd" else int(v)) for k, v in totals.items()},
        "error_rate_pct": totals["errors"] / totals["messages"] * 100 if totals["messages"] else None,
        "agents_used": agents_used,
        "first_seen_at": seen[0],
        "first_message_in_period_at": min(firsts) if firsts else None,
        "last_message_in_period_at": max(lasts) if lasts else None,
        "by_day": by_day,
    }
