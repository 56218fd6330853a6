"""Compute the metrics document (schema: agent_analytics/schema/analytics_export.schema.json).

Everything is computed in DuckDB SQL over the row-level marts (fct_messages, fct_sessions,
fct_llm_calls, fct_tool_calls, fct_health_checks, fct_downtime_incidents, fct_queue_samples)
for the exact window, so any period, agent scope and time zone is answered the same way.
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

from agent_analytics.json_text import finite
from agent_analytics.metrics.labels import (
    change_pct,
    compared,
    error_rate_status,
    response_time_status,
    share_pct,
    shares,
    uptime_status,
)
from agent_analytics.periods import Period, iso, local_midnight
from agent_analytics.settings import Settings

SCHEMA_VERSION = "2.1"
BUCKET_US = 15 * 60 * 1_000_000
DURATION_BUCKETS = (("<1 min", 0, 60_000), ("1-5 min", 60_000, 300_000), ("5-10 min", 300_000, 600_000), ("10+ min", 600_000, None))
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
    return [dict(zip(names, row)) for row in cursor.fetchall()]


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


def _ratio(numerator, denominator, scale: float = 1.0) -> float:
    return float(numerator) / float(denominator) * scale if denominator else 0.0


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


def _summary(con: duckdb.DuckDBPyConnection, p: dict, with_quantiles: bool = True) -> dict:
    """Window totals. Distinct counts and percentiles run as their own queries: DuckDB
    aggregates each of them faster alone than mixed with the plain sums."""
    where = f"from fct_messages where occurred_at >= $start and occurred_at < $end and {SCOPE}"
    m = _one(
        con,
        f"""
        select count(*) as messages,
               count(*) filter (where is_error) as errors,
               count(response_time_ms) as timed_messages,
               avg(response_time_ms) as avg_response_time_ms,
               coalesce(sum(input_tokens), 0) as input_tokens,
               coalesce(sum(output_tokens), 0) as output_tokens,
               coalesce(sum(cost_usd), 0) as cost_usd
        {where}
        """,
        p,
    )
    m["active_users"] = _one(con, f"select count(*) as n from (select distinct user_id {where})", p)["n"]
    m["active_agents"] = _one(con, f"select count(*) as n from (select distinct agent_id {where})", p)["n"]
    quantiles = [None, None, None]
    if with_quantiles:
        quantiles = _one(con, f"select quantile_cont(response_time_ms, [0.5, 0.95, 0.99]) as q {where}", p)["q"] or quantiles
    s = _one(
        con,
        f"""
        select count(*) as sessions,
               coalesce(avg(duration_ms), 0) as avg_session_duration_ms,
               coalesce(avg(message_count), 0) as messages_per_session
        from fct_sessions
        where session_started_at >= $start and session_started_at < $end and {SCOPE}
        """,
        p,
    )
    m.update(s)
    m["p50"], m["p95"], m["p99"] = (None if q is None else float(q) for q in quantiles)
    m["error_rate_pct"] = _ratio(m["errors"], m["messages"], 100)
    return m


def _dau_on(con: duckdb.DuckDBPyConnection, day: date, tz: str, p: dict) -> int:
    return con.execute(
        f"""select count(distinct user_id) from fct_messages
            where occurred_at >= $s and occurred_at < $e and {SCOPE}""",
        {"s": _naive(local_midnight(day, tz)), "e": _naive(local_midnight(day + timedelta(days=1), tz)), "agents": p["agents"]},
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
        for (label, _, _), n, share in zip(buckets, counts, shares(counts))
    ]


def _daily(con: duckdb.DuckDBPyConnection, period: Period, p: dict) -> list[dict]:
    """Whole local days start_date..end_date: DAU/WAU/MAU and the daily CSV columns."""
    first, last = period.start_date, period.end_date
    q = {
        "first": first,
        "last": last,
        "s": _naive(local_midnight(first - timedelta(days=29), period.tz)),
        "e": _naive(local_midnight(last + timedelta(days=1), period.tz)),
        "ws": p["start"],
        "we": p["end"],
        "agents": p["agents"],
    }
    rows = _rows(
        con,
        f"""
        with
        scoped as (
            select m.user_id, m.occurred_at, m.cost_usd, m.is_error, m.response_time_ms, b.local_date
            from fct_messages m {LOCAL.format(col='m.occurred_at')}
            where m.occurred_at >= $s and m.occurred_at < $e and {SCOPE.replace('agent_id', 'm.agent_id')}
        ),
        user_days as (select distinct user_id, local_date from scoped),
        next_active as (
            select local_date, lead(local_date) over (partition by user_id order by local_date) as next_date
            from user_days
        ),
        edges as (
            select local_date as d, 1 as dau, 1 as wau, 1 as mau from next_active
            union all select local_date + 1, -1, 0, 0 from next_active
            union all select least(coalesce(next_date, local_date + 7), local_date + 7), 0, -1, 0 from next_active
            union all select least(coalesce(next_date, local_date + 30), local_date + 30), 0, 0, -1 from next_active
        ),
        changes as (select cast(d as date) as d, sum(dau) as dau, sum(wau) as wau, sum(mau) as mau from edges group by 1),
        days as (
            select cast(generate_series as date) as d
            from generate_series(cast($first as timestamp) - interval 29 day, cast($last as timestamp), interval 1 day)
        ),
        counted as (
            select days.d,
                   sum(coalesce(changes.dau, 0)) over (order by days.d) as dau,
                   sum(coalesce(changes.wau, 0)) over (order by days.d) as wau,
                   sum(coalesce(changes.mau, 0)) over (order by days.d) as mau
            from days left join changes on changes.d = days.d
        ),
        day_totals as (
            select local_date as d, count(*) as messages, coalesce(sum(cost_usd), 0) as cost_usd,
                   coalesce(sum(cost_usd) filter (where occurred_at >= $ws and occurred_at < $we), 0) as window_cost_usd,
                   count(*) filter (where is_error) as errors, count(response_time_ms) as timed,
                   sum(response_time_ms) as response_sum
            from scoped where local_date between $first and $last group by 1
        ),
        day_sessions as (
            select b.local_date as d, count(*) as sessions
            from fct_sessions s {LOCAL.format(col='s.session_started_at')}
            where s.session_started_at >= $s and s.session_started_at < $e
              and {SCOPE.replace('agent_id', 's.agent_id')} and b.local_date between $first and $last
            group by 1
        )
        select counted.d as date, cast(counted.dau as bigint) as dau, cast(counted.wau as bigint) as wau,
               cast(counted.mau as bigint) as mau, coalesce(day_sessions.sessions, 0) as sessions,
               coalesce(day_totals.messages, 0) as messages, coalesce(day_totals.cost_usd, 0) as cost_usd,
               coalesce(day_totals.window_cost_usd, 0) as window_cost_usd,
               coalesce(day_totals.errors, 0) as errors, coalesce(day_totals.timed, 0) as timed,
               coalesce(day_totals.response_sum, 0) as response_sum
        from counted
        left join day_totals on day_totals.d = counted.d
        left join day_sessions on day_sessions.d = counted.d
        where counted.d between $first and $last
        order by counted.d
        """,
        q,
    )
    return [
        {
            "date": r["date"],
            "dau": r["dau"],
            "wau": r["wau"],
            "mau": r["mau"],
            "sessions": r["sessions"],
            "messages": r["messages"],
            "cost_usd": r["cost_usd"],
            "cost_per_message": _ratio(r["cost_usd"], r["messages"]),
            "avg_response_time_ms": _ratio(r["response_sum"], r["timed"]),
            "error_rate": _ratio(r["errors"], r["messages"]),
            "window_cost_usd": r["window_cost_usd"],
        }
        for r in rows
    ]


def _agents(con: duckdb.DuckDBPyConnection, p: dict) -> list[dict]:
    rows = _rows(
        con,
        f"""
        with
        messages as (
            select agent_id, count(*) as messages, count(*) filter (where is_error) as errors,
                   avg(response_time_ms) as avg_response_time_ms, sum(input_tokens) as input_tokens,
                   sum(output_tokens) as output_tokens, coalesce(sum(cost_usd), 0) as cost_usd
            from fct_messages where occurred_at >= $start and occurred_at < $end and {SCOPE}
            group by agent_id
        ),
        sessions as (
            select agent_id, count(*) as sessions, avg(duration_ms) as avg_session_duration_ms
            from fct_sessions where session_started_at >= $start and session_started_at < $end and {SCOPE}
            group by agent_id
        )
        select a.agent_id, a.agent_name,
               coalesce(s.sessions, 0) as sessions, coalesce(m.messages, 0) as messages,
               coalesce(s.avg_session_duration_ms, 0) as avg_session_duration_ms,
               coalesce(m.cost_usd, 0) as cost_usd,
               coalesce(m.errors, 0) as errors,
               m.avg_response_time_ms,
               coalesce(m.input_tokens, 0) as input_tokens, coalesce(m.output_tokens, 0) as output_tokens
        from dim_agents a
        left join messages m on m.agent_id = a.agent_id
        left join sessions s on s.agent_id = a.agent_id
        where {SCOPE.replace('agent_id', 'a.agent_id')}
        order by messages desc, a.agent_id
        """,
        p,
    )
    out = []
    for r in rows:
        total = int(r["input_tokens"]) + int(r["output_tokens"])
        out.append(
            {
                "agent_id": r["agent_id"],
                "agent_name": r["agent_name"],
                "sessions": r["sessions"],
                "messages": r["messages"],
                "avg_session_duration_ms": float(r["avg_session_duration_ms"]),
                "cost_usd": r["cost_usd"],
                "error_rate_pct": _ratio(r["errors"], r["messages"], 100),
                "avg_response_time_ms": r["avg_response_time_ms"],
                "input_tokens": int(r["input_tokens"]),
                "output_tokens": int(r["output_tokens"]),
                "total_tokens": total,
                "avg_tokens_per_message": _ratio(total, r["messages"]),
            }
        )
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


def _calls_by_model(con: duckdb.DuckDBPyConnection, p: dict) -> list[dict]:
    """One pass over the window's LLM calls: cost, calls and tokens per (provider, model)."""
    return _rows(
        con,
        f"""select provider, model, coalesce(sum(cost_usd), 0) as cost_usd, count(*) as calls,
                   count(*) filter (where not is_priced) as unpriced_calls,
                   sum(input_tokens) as input_tokens, sum(output_tokens) as output_tokens,
                   coalesce(sum(input_tokens) filter (where not is_priced), 0) as unpriced_input_tokens,
                   coalesce(sum(output_tokens) filter (where not is_priced), 0) as unpriced_output_tokens
            from fct_llm_calls where occurred_at >= $start and occurred_at < $end and {SCOPE}
            group by provider, model""",
        p,
    )


def _cost(con: duckdb.DuckDBPyConnection, period: Period, p: dict, summary: dict, agents: list[dict],
          models: list[dict], daily: list[dict]) -> dict:
    total = summary["cost_usd"]
    providers: dict[str, dict] = {}
    for m in models:
        row = providers.setdefault(m["provider"], {"provider": m["provider"], "cost_usd": 0, "calls": 0, "unpriced_calls": 0})
        for key in ("cost_usd", "calls", "unpriced_calls"):
            row[key] += m[key]
    by_provider = sorted(providers.values(), key=lambda r: (-r["cost_usd"], r["provider"]))
    by_model = sorted(
        ({k: m[k] for k in ("provider", "model", "cost_usd", "calls", "unpriced_calls")} for m in models),
        key=lambda r: (-r["cost_usd"], r["provider"], r["model"]),
    )
    for row in by_provider + by_model:
        row["share_pct"] = share_pct(row["cost_usd"], total)
    by_agent = sorted(
        ({"agent_id": a["agent_id"], "cost_usd": a["cost_usd"], "share_pct": share_pct(a["cost_usd"], total)}
         for a in agents if a["messages"] > 0),
        key=lambda a: (-a["cost_usd"], a["agent_id"]),
    )
    unpriced_in = sum(int(m["unpriced_input_tokens"]) for m in models)
    unpriced_out = sum(int(m["unpriced_output_tokens"]) for m in models)
    unpriced = {"calls": sum(m["unpriced_calls"] for m in models), "input_tokens": unpriced_in,
                "output_tokens": unpriced_out, "total_tokens": unpriced_in + unpriced_out}
    weeks: dict[date, Decimal] = {}
    months: dict[date, Decimal] = {}
    for d in daily:  # whole days; window_cost_usd is the part inside the exact window
        weeks[d["date"] - timedelta(days=d["date"].weekday())] = weeks.get(d["date"] - timedelta(days=d["date"].weekday()), 0) + d["window_cost_usd"]
        months[d["date"].replace(day=1)] = months.get(d["date"].replace(day=1), 0) + d["window_cost_usd"]
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
        "by_day": [{"date": d["date"], "cost_usd": d["cost_usd"]} for d in daily],
        "by_week": [{"week_start": w, "cost_usd": c} for w, c in sorted(weeks.items())],
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


def _tokens(summary: dict, agents: list[dict], models: list[dict]) -> dict:
    total = int(summary["input_tokens"]) + int(summary["output_tokens"])
    by_agent = sorted(
        (
            {
                "agent_id": a["agent_id"],
                "input_tokens": a["input_tokens"],
                "output_tokens": a["output_tokens"],
                "total_tokens": a["total_tokens"],
                "share_pct": share_pct(a["total_tokens"], total),
                "avg_tokens_per_message": a["avg_tokens_per_message"],
            }
            for a in agents
            if a["messages"] > 0
        ),
        key=lambda a: (-a["total_tokens"], a["agent_id"]),
    )
    by_model = sorted(
        (
            {
                "provider": m["provider"],
                "model": m["model"],
                "input_tokens": int(m["input_tokens"]),
                "output_tokens": int(m["output_tokens"]),
                "total_tokens": int(m["input_tokens"]) + int(m["output_tokens"]),
                "share_pct": share_pct(int(m["input_tokens"]) + int(m["output_tokens"]), total),
            }
            for m in models
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
        "by_agent": by_agent,
        "by_model": by_model,
    }


def _health(con: duckdb.DuckDBPyConnection, period: Period, p: dict, summary: dict, settings: Settings) -> dict:
    end = period.end
    uptime = []
    for name, length in HEALTH_WINDOWS:
        w = {"ws": _naive(end - length), "we": _naive(end)}
        probes = con.execute(
            "select count(*), count(*) filter (where is_up) from fct_health_checks where checked_at >= $ws and checked_at < $we", w
        ).fetchone()
        incidents = con.execute(
            """select count(*), coalesce(sum(date_diff('millisecond',
                          greatest(started_at, $ws), least(coalesce(ended_at, $we), $we))) / 60000.0, 0)
               from fct_downtime_incidents
               where started_at < $we and coalesce(ended_at, $we) > $ws""",
            w,
        ).fetchone()
        pct = _ratio(probes[1], probes[0], 100) if probes[0] else None
        uptime.append(
            {"window": name, "probes": probes[0], "uptime_pct": pct, "status": uptime_status(pct, settings),
             "incidents": incidents[0], "downtime_minutes": float(incidents[1])}
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
        counts = con.execute(
            f"""select count(*), count(*) filter (where is_error) from fct_messages
                where occurred_at >= $ws and occurred_at < $we and {SCOPE}""",
            {"ws": _naive(stop - length), "we": _naive(stop), "agents": p["agents"]},
        ).fetchone()
        pct = _ratio(counts[1], counts[0], 100)
        error_rate.append({"window": name, "messages": counts[0], "error_rate_pct": pct, "status": error_rate_status(pct, settings)})
    current = error_rate[0]["messages"]
    day_start = local_midnight(period.end_date, period.tz)
    peak = con.execute(
        f"""select date_trunc('minute', occurred_at) as minute, count(*) as n from fct_messages
            where occurred_at >= $ds and occurred_at < $we and {SCOPE}
            group by 1 order by n desc, minute limit 1""",
        {"ds": _naive(day_start), "we": _naive(end), "agents": p["agents"]},
    ).fetchone()
    peak_count, peak_minute = (peak[1], peak[0]) if peak else (0, None)
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
    return {
        "uptime": uptime,
        "incidents": incidents,
        "error_rate": error_rate,
        "response_time": {
            "p50_ms": summary["p50"], "p50_status": response_time_status(summary["p50"], settings),
            "p95_ms": summary["p95"], "p95_status": response_time_status(summary["p95"], settings),
            "p99_ms": summary["p99"], "p99_status": response_time_status(summary["p99"], settings),
        },
        "request_volume": {
            "current_per_min": current,
            "peak_per_min_today": peak_count,
            "peak_minute": peak_minute,
            "capacity_per_min": capacity,
            "headroom_pct": (capacity - peak_count) / capacity * 100,
        },
        "queues": queues,
    }


def compute_metrics(con: duckdb.DuckDBPyConnection, request: MetricsRequest, settings: Settings) -> dict:
    """The whole metrics document for one period and scope (JSON-ready)."""
    period, previous = request.period, request.period.previous()
    p = {"start": _naive(period.start), "end": _naive(period.end), "agents": request.agents}
    pp = {"start": _naive(previous.start), "end": _naive(previous.end), "agents": request.agents}
    bucket_start = min(previous.start, local_midnight(period.start_date - timedelta(days=30), period.tz))
    _register_buckets(con, bucket_start, local_midnight(period.end_date + timedelta(days=1), period.tz), period.tz)
    try:
        now, before = _summary(con, p), _summary(con, pp, with_quantiles=False)
        agents = _agents(con, p)
        daily = _daily(con, period, p)
        models = _calls_by_model(con, p)
        document = {
            "schema_version": SCHEMA_VERSION,
            "generated_at": iso(datetime.now(timezone.utc)),
            "as_of": iso(request.as_of),
            "time_zone": period.tz,
            "period": period.describe(),
            "previous_period": previous.describe(),
            "scope": {"agents": request.agents},
            "note": None if now["messages"] else "No messages in this period and scope: counts are 0 and ratios are reported as 0.",
            "overview": {
                "active_users": compared(now["active_users"], before["active_users"]),
                "dau": compared(_dau_on(con, period.end_date, period.tz, p), _dau_on(con, previous.end_date, period.tz, p)),
                "sessions": compared(now["sessions"], before["sessions"]),
                "messages": compared(now["messages"], before["messages"]),
                "active_agents": compared(now["active_agents"], before["active_agents"]),
                "cost_usd": compared(now["cost_usd"], before["cost_usd"]),
                "error_rate_pct": compared(now["error_rate_pct"], before["error_rate_pct"]),
            },
            "engagement": {
                "series": [{k: d[k] for k in ("date", "dau", "wau", "mau")} for d in daily],
                "sessions": now["sessions"],
                "avg_session_duration_ms": float(now["avg_session_duration_ms"]),
                "messages_per_session": float(now["messages_per_session"]),
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
                "messages": now["messages"],
                "errors": now["errors"],
                "error_rate_pct": now["error_rate_pct"],
                "success_rate_pct": 100 - now["error_rate_pct"] if now["messages"] else 0.0,
                "tools": _tools(con, p),
            },
            "cost": _cost(con, period, p, now, agents, models, daily),
            "tokens": _tokens(now, agents, models),
            "health": _health(con, period, p, now, settings),
            "daily": [{k: v for k, v in d.items() if k != "window_cost_usd"} for d in daily],
        }
    finally:
        con.unregister("local_buckets")
    return _plain(document)
