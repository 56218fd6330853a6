"""The words for a budget row of the metrics document (`budgets.items`), shared by the terminal
view, the dashboard, the PDF and the email."""

from __future__ import annotations

from agent_analytics.metrics.formatting import money

STATUS_WORDS = {"on_track": "on track", "forecast_over": "forecast over", "exceeded": "exceeded"}


def budget_label(b: dict) -> str:
    """'company', 'support-cap (agent support)', 'openai (provider openai)'."""
    if b["agent_id"]:
        return f"{b['name']} (agent {b['agent_id']})"
    return b["name"] + (f" (provider {b['provider']})" if b["provider"] else "")


def budget_status(b: dict) -> str:
    return STATUS_WORDS[b["status"]]


def budget_used(b: dict) -> str:
    """'$36.00 of $50.00 (72% used)'."""
    return f"{money(b['spend_usd'])} of {money(b['budget_usd'])} ({b['percent_used']:.0f}% used)"


def budget_forecast(b: dict) -> str:
    """'forecast $61.20 (122%) at $2.10/day, exhausted in 6.7 days' (or 'already spent', or
    'not exhausted at this rate' at a run rate of 0)."""
    if b["days_until_exhausted"] is None:
        exhausted = "not exhausted at this rate"
    elif b["status"] == "exceeded":
        exhausted = "already spent"
    else:
        exhausted = f"exhausted in {b['days_until_exhausted']:.1f} days"
    return (f"forecast {money(b['forecast_usd'])} ({b['forecast_pct']:.0f}%) at {money(b['run_rate_usd_per_day'])}/day, "
            f"{exhausted}")


def budget_lines(doc: dict) -> list[list[str]]:
    """Budget, status, spend of budget, forecast: one row per budget of the document."""
    return [[budget_label(b), budget_status(b), budget_used(b), budget_forecast(b)] for b in doc["budgets"]["items"]]


def budgets_heading(doc: dict) -> str:
    """'Budgets (2026-11 to date, UTC)'."""
    return f"Budgets ({doc['budgets']['month']} to date, {doc['budgets']['time_zone']})"


def budgets_problem(doc: dict) -> str | None:
    """Why the budgets were not used (the goals file unreadable, a budget invalid); None when they were."""
    problem = doc["budgets"]["problem"]
    return None if problem is None else f"The budgets were not used: {problem}"
