"""Rule evaluation over the warehouse: streaks of steps, episodes, events into the outbox.

A rule is a condition on one value per step: per UTC minute for minute metrics (from
fct_platform_minute / fct_agent_minute / fct_health_checks / fct_queue_samples), per
company-time-zone day for daily metrics (fct_agent_daily, fct_daily_activity).

- A rule fires when its condition has held on `window` consecutive steps, once per streak
  (an *episode*); a reminder repeats `alert.triggered` every `remind_every` while it holds;
  the first step where it no longer holds resolves the episode (`alert.resolved`).
- A step without a value (a minute without messages has no P95 or error rate, a minute
  without probes no uptime) does not satisfy any condition. Request volume is 0.
- Only complete steps are evaluated: minutes before the watermark (the newest event's minute
  less `lateness_minutes`, never after the clock) and company days that end before it. A
  daily value that only grows during the day (cost, DAU) with a `>`/`>=` condition is also
  checked on the day so far, so "daily costs exceed $50" fires as soon as they do.
- Each rule and scope remembers the last step it evaluated (alerts.rule_state) and never
  evaluates a step twice: re-running the job or late data cannot fire an episode again.
  Episode and event ids are derived from rule, scope and streak start, and outbox inserts
  are `on conflict do nothing`, as a second guard.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, timezone

import duckdb

from agent_analytics.alerts import events as ev
from agent_analytics.alerts.budgets import budget_values
from agent_analytics.alerts.rules import METRICS, AlertConfig, Rule
from agent_analytics.alerts.store import ensure_alert_tables
from agent_analytics.periods import local_midnight

MINUTE = timedelta(minutes=1)
EPOCH = datetime(1970, 1, 1)


@dataclass(frozen=True)
class Step:
    at: datetime  # start of the step, naive UTC
    end: datetime  # end of the data seen for the step (the step's end when final)
    index: int  # consecutive steps have consecutive indexes
    value: float | None
    final: bool = True


@dataclass(frozen=True)
class State:
    evaluated_through: datetime | None = None
    run_start: datetime | None = None
    run_start_index: int | None = None
    episode_id: str | None = None
    last_notified_index: int | None = None
    reminders: int = 0


@dataclass(frozen=True)
class Transition:
    kind: str  # triggered | reminder | resolved
    episode_id: str
    started_at: datetime
    at: datetime
    value: float | None
    number: int = 0


def advance(rule: Rule, scope: str, state: State, steps: list[Step]) -> tuple[State, list[Transition]]:
    """Walk the steps in order; return the new state and the transitions (pure function)."""
    out: list[Transition] = []
    for step in steps:
        if step.value is None and rule.names_target:
            # A goal or budget without a value that day (no data yet, or it left the goals file)
            # says nothing about its track: an open episode stays open, none opens.
            if step.final:
                state = replace(state, evaluated_through=step.at)
            continue
        holds = rule.holds(step.value)
        if not step.final and not holds:
            break  # a partial day that does not hold yet may still come to hold: wait
        if holds:
            if state.run_start is None:
                state = replace(state, run_start=step.at, run_start_index=step.index)
            held = step.index - state.run_start_index + 1
            if state.episode_id is None and held >= rule.window_steps:
                episode = ev.episode_id(rule.name, scope, state.run_start)
                state = replace(state, episode_id=episode, last_notified_index=step.index, reminders=0)
                out.append(Transition("triggered", episode, state.run_start, step.end, step.value))
            elif (
                state.episode_id is not None
                and rule.remind_every_steps
                and step.index - state.last_notified_index >= rule.remind_every_steps
            ):
                state = replace(state, last_notified_index=step.index, reminders=state.reminders + 1)
                out.append(Transition("reminder", state.episode_id, state.run_start, step.end, step.value, state.reminders))
        else:
            if state.episode_id is not None:
                out.append(Transition("resolved", state.episode_id, state.run_start, step.at, step.value))
            state = replace(state, run_start=None, run_start_index=None, episode_id=None, last_notified_index=None, reminders=0)
        if step.final:
            state = replace(state, evaluated_through=step.at)
    return state, out


# ---------------------------------------------------------------- watermark and steps


def naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(timezone.utc).replace(tzinfo=None) if moment.tzinfo else moment


def minute_index(moment: datetime) -> int:
    return int((moment - EPOCH).total_seconds() // 60)


def complete_until(con: duckdb.DuckDBPyConnection, now: datetime, lateness_minutes: int) -> datetime | None:
    """Exclusive end of the evaluated data: the newest event's minute (never after `now`),
    less `lateness_minutes` still-arriving minutes. None when there is no data at all."""
    newest = con.execute(
        """
        select greatest(
            (select max(occurred_at) from fct_messages),
            (select max(checked_at) from fct_health_checks),
            (select max(sampled_at) from fct_queue_samples))
        """
    ).fetchall()[0][0]
    if newest is None:
        return None
    newest = min(newest, naive_utc(now))
    return newest.replace(second=0, microsecond=0) + MINUTE * (1 - lateness_minutes)


_MINUTE_VALUES = {
    "p95_response_time": "f.p95_response_time_ms",
    "p50_response_time": "f.p50_response_time_ms",
    "avg_response_time": "f.avg_response_time_ms",
    "error_rate": "case when f.messages > 0 then 100.0 * f.errors / f.messages end",
    "request_volume": "coalesce(f.messages, 0)",
    "uptime": "f.uptime_pct",
    "queue_depth": "f.max_depth",
}


def _minute_source(metric: str, scope: str) -> tuple[str, dict]:
    date_trunc_minute = "date_trunc('minute', {})"
    if metric == "uptime":
        return (
            f"select {date_trunc_minute.format('checked_at')} as minute_at, "
            "100.0 * count(*) filter (where is_up) / count(*) as uptime_pct from fct_health_checks "
            "where checked_at >= $start and checked_at < $end group by 1",
            {},
        )
    if metric == "queue_depth":
        return (
            f"select {date_trunc_minute.format('sampled_at')} as minute_at, max(depth) as max_depth from fct_queue_samples "
            "where sampled_at >= $start and sampled_at < $end group by 1",
            {},
        )
    if scope == "all":
        return "select * from fct_platform_minute where minute_at >= $start and minute_at < $end", {}
    return "select * from fct_agent_minute where agent_id = $agent and minute_at >= $start and minute_at < $end", {"agent": scope}


def minute_steps(con, rule: Rule, scope: str, start: datetime, end: datetime) -> list[Step]:
    """One step per minute in [start, end), every minute present."""
    if start >= end:
        return []
    source, params = _minute_source(rule.metric, scope)
    rows = con.execute(
        f"""
        with spine as (select unnest(range($start, $end, interval 1 minute)) as minute_at),
        f as ({source})
        select spine.minute_at, {_MINUTE_VALUES[rule.metric]} as value
        from spine left join f on f.minute_at = spine.minute_at
        order by 1
        """,
        {"start": start, "end": end, **params},
    ).fetchall()
    return [Step(at, at + MINUTE, minute_index(at), None if v is None else float(v)) for at, v in rows]


# Daily counts of the ingest bookkeeping, by the company day of the time ingestion recorded.
_INGEST_DAILY = {
    "rejected_files": ("ingest.rejected_files", "rejected_at"),
    "quarantined_lines": ("ingest.quarantine", "quarantined_at"),
}


def _daily_source(metric: str, scope: str, tz: str) -> tuple[str, dict]:
    if metric in _INGEST_DAILY:
        table, column = _INGEST_DAILY[metric]
        local_day = f"cast(timezone($tz, cast({column} as timestamptz)) as date)"
        return f"select {local_day} as d, count(*) as value from {table} group by 1", {"tz": tz}
    if metric == "dau" and scope == "all":
        return "select activity_date as d, dau as value from fct_daily_activity", {}
    column = "active_users" if metric == "dau" else "cost_usd"
    if scope == "all":
        return f"select activity_date as d, sum({column}) as value from fct_agent_daily group by 1", {}
    return f"select activity_date as d, {column} as value from fct_agent_daily where agent_id = $agent", {"agent": scope}


def _goal_off_track(con, rule: Rule, days: list[date], settings) -> dict[date, float | None]:
    """Per company day: 1.0 when the month to date (through that day) is off the rule's goal,
    0.0 on track, None without data or when the goals file has no such goal (it may have been
    removed or be unusable: nothing fires, and the metrics document's goals.problem says why)."""
    from agent_analytics.goals import load_goals, named
    from agent_analytics.metrics import MetricsRequest, compute_metrics
    from agent_analytics.periods import parse_period

    goal = named(load_goals, settings.goals_path, rule.goal)
    if goal is None:
        return {}
    tz, values = settings.company_tz, {}
    for d in days:
        as_of = local_midnight(d + timedelta(days=1), tz)
        period = parse_period(None, None, None, f"{d:%Y-%m}", as_of, tz)
        doc = compute_metrics(con, MetricsRequest(period, None if goal.agent is None else [goal.agent], as_of), settings)
        row = next((g for g in doc["goals"]["items"] if g["name"] == goal.name), None)
        values[d] = None if row is None or row["on_track"] is None else float(not row["on_track"])
    return values


def daily_steps(con, rule: Rule, scope: str, first: date, until: datetime, tz: str, settings=None) -> list[Step]:
    """One step per company day from `first`: complete days before `until` (final), then the
    day in progress when the metric only grows within a day and the rule is `>`/`>=`."""
    days: list[date] = []
    day = first
    while local_midnight(day + timedelta(days=1), tz).replace(tzinfo=None) <= until:
        days.append(day)
        day += timedelta(days=1)
    partial = METRICS[rule.metric].grows_within_day and rule.comparison in (">", ">=")
    if partial and local_midnight(day, tz).replace(tzinfo=None) < until:
        days.append(day)
    if not days:
        return []
    if rule.goal is not None:
        values = _goal_off_track(con, rule, days, settings)
    elif rule.budget is not None:
        values = budget_values(con, rule, days, until, settings)
    else:
        source, params = _daily_source(rule.metric, scope, tz)
        values = dict(
            con.execute(f"select d, value from ({source}) where d >= $first and d <= $last",
                        {"first": days[0], "last": days[-1], **params}).fetchall()
        )
    steps = []
    for d in days:
        start = local_midnight(d, tz).replace(tzinfo=None)
        end = local_midnight(d + timedelta(days=1), tz).replace(tzinfo=None)
        value = values.get(d)
        if not rule.names_target and value is None:
            value = 0.0  # a day without rows: nothing happened (no cost, no user)
        steps.append(Step(start, min(end, until), d.toordinal(), None if value is None else float(value), final=end <= until))
    return steps


# ---------------------------------------------------------------- the evaluation run


@dataclass
class EvaluationResult:
    watermark: datetime | None = None
    rules: int = 0
    scopes: int = 0
    events: list[tuple[str, str]] = None  # (event_type, event_id) queued by this run
    summaries: list[date] = None

    def __post_init__(self):
        self.events = self.events or []
        self.summaries = self.summaries or []


def _scopes(con, rule: Rule, first: datetime, known: list[str]) -> list[str]:
    if rule.scope != "each":
        return [rule.scope]
    table, column = ("fct_agent_minute", "minute_at") if rule.grain == "minute" else ("fct_agent_daily", "activity_date")
    start = first if rule.grain == "minute" else first.date()
    seen = [r[0] for r in con.execute(f"select distinct agent_id from {table} where {column} >= $s", {"s": start}).fetchall()]
    return sorted(set(seen) | set(known))


def _load_state(con, rule: Rule, index: Callable[[datetime], int]) -> dict[str, State]:
    rows = con.execute(
        "select scope, evaluated_through, run_start, episode_id, last_notified_at, reminders "
        "from alerts.rule_state where rule_name = $r",
        {"r": rule.name},
    ).fetchall()
    return {
        scope: State(through, start, None if start is None else index(start), episode,
                     None if notified is None else index(notified), reminders)
        for scope, through, start, episode, notified, reminders in rows
    }


def _index_function(rule: Rule, tz: str | None) -> Callable[[datetime], int]:
    if rule.grain == "minute":
        return minute_index
    return lambda moment: _local_date(moment, tz).toordinal()


def _local_date(moment: datetime, tz: str | None) -> date:
    from zoneinfo import ZoneInfo

    return moment.replace(tzinfo=timezone.utc).astimezone(ZoneInfo(tz or "UTC")).date()


def _save_state(con, rule: Rule, scope: str, state: State, tz: str, now: datetime) -> None:
    notified = None if state.last_notified_index is None else _at_index(rule, state.last_notified_index, tz)
    con.execute(
        """
        insert or replace into alerts.rule_state
        (rule_name, scope, evaluated_through, run_start, episode_id, last_notified_at, reminders, updated_at)
        values ($r, $s, $through, $start, $episode, $notified, $reminders, $now)
        """,
        {"r": rule.name, "s": scope, "through": state.evaluated_through, "start": state.run_start, "episode": state.episode_id,
         "notified": notified, "reminders": state.reminders, "now": naive_utc(now)},
    )


def _queue(con, event: dict, channels: tuple[str, ...], episode: str | None, now: datetime) -> bool:
    """Put one event into the outbox for each channel; False when it was queued before."""
    payload = ev.encode(event)
    queued = False
    for channel in channels:
        inserted = con.execute(
            """
            insert into alerts.outbox (event_id, channel, event_type, episode_id, payload, created_at, status, attempts)
            values ($id, $channel, $type, $episode, $payload, $now, 'pending', 0)
            on conflict do nothing returning event_id
            """,
            {"id": event["id"], "channel": channel, "type": event["event"], "episode": episode, "payload": payload,
             "now": naive_utc(now)},
        ).fetchall()
        queued = queued or bool(inserted)
    return queued


def _record(con, rule: Rule, scope: str, t: Transition, now: datetime) -> dict:
    if t.kind == "triggered":
        con.execute(
            """
            insert into alerts.episodes (episode_id, rule_name, scope, metric, condition, severity, started_at, fired_at,
                                         trigger_value, status)
            values ($id, $r, $s, $m, $c, $sev, $start, $at, $v, 'firing') on conflict do nothing
            """,
            {"id": t.episode_id, "r": rule.name, "s": scope, "m": rule.metric, "c": rule.condition_text(), "sev": rule.severity,
             "start": t.started_at, "at": t.at, "v": t.value},
        )
    elif t.kind == "resolved":
        con.execute(
            "update alerts.episodes set resolved_at = $at, resolve_value = $v, status = 'resolved' where episode_id = $id",
            {"id": t.episode_id, "at": t.at, "v": t.value},
        )
    kind = ev.RESOLVED if t.kind == "resolved" else ev.TRIGGERED
    data = ev.alert_data(rule, scope, t.episode_id, t.started_at, t.at, t.value, reminder=t.number, resolved=t.kind == "resolved")
    return ev.envelope(kind, ev.event_id(kind, t.episode_id, t.number), now, data)


def evaluate_rule(
    con, rule: Rule, config: AlertConfig, until: datetime, tz: str, now: datetime, result: EvaluationResult, settings=None
) -> None:
    index = _index_function(rule, tz)
    states = _load_state(con, rule, index)
    first_new = until - MINUTE * max(config.evaluation.lookback_minutes, rule.window_steps if rule.grain == "minute" else 0)
    for scope in _scopes(con, rule, first_new, list(states)):
        state = states.get(scope, State())
        if rule.grain == "minute":
            start = state.evaluated_through + MINUTE if state.evaluated_through else first_new.replace(second=0, microsecond=0)
            steps = minute_steps(con, rule, scope, start, until)
        else:
            first = (
                _local_date(state.evaluated_through, tz) + timedelta(days=1)
                if state.evaluated_through
                else _local_date(min(first_new, until - timedelta(days=1)), tz)
            )
            steps = daily_steps(con, rule, scope, first, until, tz, settings)
        new_state, transitions = advance(rule, scope, state, steps)
        for t in transitions:
            event = _record(con, rule, scope, t, now)
            if _queue(con, event, rule.channels, t.episode_id, now):
                result.events.append((event["event"], event["id"]))
        _save_state(con, rule, scope, new_state, tz, now)
        result.scopes += 1


def _at_index(rule: Rule, idx: int, tz: str) -> datetime:
    if rule.grain == "minute":
        return EPOCH + MINUTE * idx
    return local_midnight(date.fromordinal(idx), tz).replace(tzinfo=None)


def daily_summary_event(con, day: date, settings, now: datetime) -> dict:
    """analytics.daily_summary of one company day, from the metrics layer."""
    from agent_analytics.metrics import MetricsRequest, compute_metrics
    from agent_analytics.periods import parse_period

    as_of = local_midnight(day + timedelta(days=1), settings.company_tz)
    period = parse_period(None, day.isoformat(), day.isoformat(), None, as_of, settings.company_tz)
    doc = compute_metrics(con, MetricsRequest(period=period, agents=None, as_of=as_of), settings)
    perf = doc["performance"]
    data = {
        "date": day.isoformat(),
        "time_zone": settings.company_tz,
        "dau": doc["overview"]["dau"]["value"],
        "sessions": doc["overview"]["sessions"]["value"],
        "messages": perf["messages"],
        "costs": round(float(doc["cost"]["total_usd"]), 6),
        "error_rate": None if perf["error_rate_pct"] is None else round(perf["error_rate_pct"] / 100, 6),
        "p95_response_time_ms": perf["p95_response_time_ms"],
    }
    return ev.envelope(ev.DAILY_SUMMARY, ev.summary_event_id(day), now, data)


def queue_daily_summaries(con, config: AlertConfig, settings, until: datetime, now: datetime, result: EvaluationResult) -> None:
    """One summary per completed company day after the last one queued (the first time:
    only the latest completed day)."""
    if not config.summary_channels:
        return
    tz = settings.company_tz
    latest = _local_date(until, tz) - timedelta(days=1)
    if local_midnight(latest + timedelta(days=1), tz).replace(tzinfo=None) > until:
        latest -= timedelta(days=1)
    last = con.execute("select max(summary_date) from alerts.daily_summaries").fetchall()[0][0]
    day = latest if last is None else last + timedelta(days=1)
    while day <= latest:
        event = daily_summary_event(con, day, settings, now)
        con.execute(
            "insert into alerts.daily_summaries values ($d, $id, $now) on conflict do nothing",
            {"d": day, "id": event["id"], "now": naive_utc(now)},
        )
        if _queue(con, event, config.summary_channels, None, now):
            result.events.append((event["event"], event["id"]))
        result.summaries.append(day)
        day += timedelta(days=1)


def evaluate(con: duckdb.DuckDBPyConnection, config: AlertConfig, settings, now: datetime) -> EvaluationResult:
    """Evaluate every rule and queue new events, in one transaction."""
    ensure_alert_tables(con)
    result = EvaluationResult()
    until = complete_until(con, now, config.evaluation.lateness_minutes)
    result.watermark = until
    con.execute("begin transaction")
    try:
        for rule in config.rules.values():
            if rule.metric == "bill_mismatch":  # per provider-month, not a streak (bill_mismatch.py)
                from agent_analytics.alerts.bill_mismatch import evaluate_bill_rule

                evaluate_bill_rule(con, rule, now, result)
                result.rules += 1
                continue
            # Ingestion records its bookkeeping as it happens: those rules run on the clock,
            # the others on the data (complete_until).
            rule_until = naive_utc(now) if rule.metric in _INGEST_DAILY else until
            if rule_until is None:
                continue
            evaluate_rule(con, rule, config, rule_until, settings.company_tz, now, result, settings)
            result.rules += 1
        if until is not None:
            queue_daily_summaries(con, config, settings, until, now, result)
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return result

