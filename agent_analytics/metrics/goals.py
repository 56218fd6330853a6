"""The `goals` section of the metrics document: each goal of the goals file against the period.

A goal is compared through its `actual` value, or, for a total per month (sessions, cost),
through its `projection` to a month: the period's total at the period's own rate over a
calendar month (for a month period, to its end: the total so far over the elapsed part of the
month; a whole month is its own total). `gap` is the compared value minus the target,
`progress_pct` the compared value in percent of the target, `on_track` whether the compared
value meets the target in the goal's direction (null without data). Definitions:
docs/metric-definitions.md.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable
from decimal import Decimal

from agent_analytics.goals import Goal
from agent_analytics.metrics.labels import round_half_up
from agent_analytics.periods import Period


def average_dau(daily: list[dict]) -> float:
    """The average of the daily DAU rows, rounded half up to 0.1 (0 without rows)."""
    if not daily:
        return 0.0
    return round_half_up(Decimal(sum(d["dau"] for d in daily)) / len(daily), "0.1")


def goal_values(summary: dict, daily: list[dict]) -> dict:
    """What the goals compare, from a scope's window summary and daily rows (compute.py)."""
    users = summary["active_users"]
    return {
        "dau": average_dau(daily) if summary["messages"] else None,
        "sessions_per_month": summary["sessions"],
        "cost_per_month": summary["cost_usd"],
        "cost_per_user": float(summary["cost_usd"]) / users if users else None,
        "error_rate": summary["error_rate_pct"],
        "response_time": {"avg": summary["avg_response_time_ms"], "p50": summary["p50"],
                          "p95": summary["p95"], "p99": summary["p99"]},
    }


def month_factor(period: Period) -> float:
    """How many times the period's window fits in the month it is projected to."""
    if period.kind == "month":
        return (period.full_end - period.start) / (period.end - period.start)
    last = period.end_date
    return calendar.monthrange(last.year, last.month)[1] / period.days


def applies(goal: Goal, agents: list[str] | None) -> bool:
    """A company-wide goal fits the all-agents document; an agent's goal fits every document
    whose scope holds the agent."""
    return agents is None if goal.agent is None else agents is None or goal.agent in agents


def goal_row(goal: Goal, values: dict, period: Period) -> dict:
    value = values[goal.metric]
    if goal.statistic:
        value = value[goal.statistic]
    actual = None if value is None else float(value)
    projection = actual * month_factor(period) if goal.monthly and actual is not None else None
    compared = projection if goal.monthly else actual
    return {
        "name": goal.name,
        "description": goal.description,
        "metric": goal.metric,
        "statistic": goal.statistic,
        "agent_id": goal.agent,
        "unit": goal.unit,
        "direction": goal.direction,
        "target": goal.target,
        "actual": actual,
        "projection": projection,
        "compared": "projection" if goal.monthly else "actual",
        "gap": None if compared is None else compared - goal.target,
        "progress_pct": None if compared is None or goal.target == 0 else compared / goal.target * 100,
        "on_track": None if compared is None else goal.met_by(compared),
    }


def goals_section(goals: list[Goal], problem: str | None, agents: list[str] | None, period: Period,
                  values_of: Callable[[str | None], dict]) -> dict:
    """The document's `goals`: every goal that fits the scope, in file order; `problem` says why
    the goals file could not be used (its goals are then missing, the rest of the document not)."""
    rows = []
    cache: dict[str | None, dict] = {}
    for goal in goals:
        if applies(goal, agents):
            if goal.agent not in cache:
                cache[goal.agent] = values_of(goal.agent)
            rows.append(goal_row(goal, cache[goal.agent], period))
    return {"problem": problem, "items": rows}
