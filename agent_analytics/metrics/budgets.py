"""The `budgets` section of the metrics document: each monthly budget against its month to date.

The month is the company-time-zone calendar month holding the document's end (its last
instant). Per budget:
- `spend_usd`: the cost of the month up to the end (exact decimal sums of the daily cost marts
  for whole company days, fct_agent_daily by agent or fct_daily_cost_by_provider by provider,
  plus the row-level facts of the day in progress when the end falls inside a day);
- `last_7_days_usd` and `run_rate_usd_per_day`: the cost of the last 7 company days up to the
  end (the day in progress so far) and that cost per day elapsed in them (7 when the end is a
  midnight, 6.5 at noon);
- `forecast_usd`: the spend plus the run rate over the days left in the month;
- `percent_used`, `forecast_pct`: spend and forecast in percent of the budget;
- `days_until_exhausted`: the budget left at the run rate (0 once spent, null at a run rate of 0);
- `status`: exceeded (spend >= budget), forecast_over (forecast > budget) or on_track.
Only a few aggregated rows (one per agent or provider) leave DuckDB. Definitions:
docs/metric-definitions.md.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import duckdb

from agent_analytics.budgets import Budget
from agent_analytics.metrics.goals import applies
from agent_analytics.metrics.users import built_last
from agent_analytics.periods import local_date, local_midnight

# (daily mart, its day column, its key; row-level facts with the same company day and key)
SOURCES = {
    "agent": ("fct_agent_daily", "activity_date", "agent_id", "fct_messages"),
    "provider": ("fct_daily_cost_by_provider", "cost_date", "provider", "fct_llm_calls"),
}
STATUSES = ("on_track", "forecast_over", "exceeded")


@dataclass(frozen=True)
class BudgetWindow:
    """The company days a budget looks at for an end instant."""

    end: datetime  # UTC, excluded
    last_day: date  # the company day of the end's last instant
    fraction: float  # how much of last_day has passed by the end (1.0: the day is over)

    @property
    def month_first(self) -> date:
        return self.last_day.replace(day=1)

    @property
    def week_first(self) -> date:
        return self.last_day - timedelta(days=6)

    @property
    def days_elapsed_in_week(self) -> float:
        return 6 + self.fraction

    @property
    def days_left_in_month(self) -> float:
        days = calendar.monthrange(self.last_day.year, self.last_day.month)[1]
        return days - self.last_day.day + (1 - self.fraction)

    @property
    def whole_through(self) -> date:
        """The last whole company day (the day before last_day while last_day is in progress)."""
        return self.last_day if self.fraction == 1 else self.last_day - timedelta(days=1)


def budget_window(end: datetime, tz: str) -> BudgetWindow:
    last = local_date(end - timedelta(microseconds=1), tz)
    start, full_end = local_midnight(last, tz), local_midnight(last + timedelta(days=1), tz)
    return BudgetWindow(end, last, (end - start) / (full_end - start))


def spend_by(con: duckdb.DuckDBPyConnection, kind: str, window: BudgetWindow) -> dict[str, tuple[Decimal, Decimal]]:
    """agent id or provider -> (cost of the month so far, cost of the last 7 days so far)."""
    mart, day, key, facts = SOURCES[kind]
    # whole days from the mart up to the last it holds; the rest (days after it, and the day
    # in progress cut at the end) from the row-level facts of the same company days
    built = built_last(con, mart, day)
    first = min(window.month_first, window.week_first)
    mart_through = first - timedelta(days=1) if built is None else min(window.whole_through, built)
    sql = f"""
        select key, coalesce(sum(month_usd), 0), coalesce(sum(week_usd), 0) from (
            select {key} as key,
                   sum(cost_usd) filter (where {day} >= $month_first) as month_usd,
                   sum(cost_usd) filter (where {day} >= $week_first) as week_usd
            from {mart} where {day} >= $first and {day} <= $mart_through group by {key}
            union all
            select {key},
                   sum(cost_usd) filter (where message_date >= $month_first),
                   sum(cost_usd) filter (where message_date >= $week_first)
            from {facts}
            where message_date > $mart_through and message_date >= $first and message_date <= $last_day
                  and occurred_at < $end
            group by {key}
        ) group by key"""
    params = {"month_first": window.month_first, "week_first": window.week_first, "first": first,
              "mart_through": mart_through,
              "last_day": window.last_day, "end": window.end.astimezone(timezone.utc).replace(tzinfo=None)}
    rows = con.execute(sql, params).fetchall()
    return {k: (Decimal(m), Decimal(w)) for k, m, w in rows}


def budget_row(budget: Budget, spend: Decimal, week: Decimal, window: BudgetWindow) -> dict:
    amount = budget.budget_usd
    rate = float(week) / window.days_elapsed_in_week
    forecast = float(spend) + rate * window.days_left_in_month
    if spend >= amount:
        exhausted, status = 0.0, "exceeded"
    else:
        exhausted = float(amount - spend) / rate if rate > 0 else None
        status = "forecast_over" if forecast > float(amount) else "on_track"
    return {
        "name": budget.name,
        "description": budget.description,
        "scope": budget.scope,
        "agent_id": budget.agent,
        "provider": budget.provider,
        "month": window.month_first.strftime("%Y-%m"),
        "budget_usd": float(amount),
        "spend_usd": spend,
        "last_7_days_usd": week,
        "run_rate_usd_per_day": rate,
        "forecast_usd": forecast,
        "percent_used": float(spend / amount * 100),
        "forecast_pct": forecast / float(amount) * 100,
        "days_until_exhausted": exhausted,
        "status": status,
    }


def budget_rows(con: duckdb.DuckDBPyConnection, budgets: list[Budget], end: datetime, tz: str) -> list[dict]:
    """Each budget's row for the month holding `end` (company time zone `tz`), in order."""
    window = budget_window(end, tz)
    spent: dict[str, dict[str, tuple[Decimal, Decimal]]] = {}
    for kind in {"provider" if b.provider else "agent" for b in budgets}:
        spent[kind] = spend_by(con, kind, window)
    rows = []
    for b in budgets:
        if b.provider:
            spend, week = spent["provider"].get(b.provider, (Decimal(0), Decimal(0)))
        elif b.agent:
            spend, week = spent["agent"].get(b.agent, (Decimal(0), Decimal(0)))
        else:
            spend = sum((m for m, _ in spent["agent"].values()), Decimal(0))
            week = sum((w for _, w in spent["agent"].values()), Decimal(0))
        rows.append(budget_row(b, spend, week, window))
    return rows


def budgets_section(con: duckdb.DuckDBPyConnection, budgets: list[Budget], problem: str | None,
                    agents: list[str] | None, end: datetime, tz: str) -> dict:
    """The document's `budgets`: the budgets that fit the scope (company and provider budgets
    the all-agents document, an agent's budget every document whose scope holds the agent), in
    file order; `problem` says why the budgets could not be used."""
    window = budget_window(end, tz)
    fitting = [b for b in budgets if applies(b, agents)]
    return {
        "problem": problem,
        "month": window.month_first.strftime("%Y-%m"),
        "time_zone": tz,
        "days_left_in_month": window.days_left_in_month,
        "items": budget_rows(con, fitting, end, tz) if fitting else [],
    }
