"""The values of the budget alert rules, per company day (agent_analytics/alerts/evaluate.py).

- budget_forecast_over: 1.0 when the budget's month-end forecast as of the day's end is over
  the budget (or the budget is already spent), 0.0 when not;
- budget_spend_pct: the month's spend as of the day's end in percent of the budget.
The day in progress is taken as of `until` (the data's watermark). A budget the goals file does
not have (removed, or the file unusable) gives no value: nothing opens or resolves, and the
metrics document's budgets.problem says why. The figures are the metrics document's
(agent_analytics/metrics/budgets.py), so an alert and the document agree.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import duckdb

from agent_analytics.alerts.rules import Rule
from agent_analytics.budgets import load_budgets
from agent_analytics.goals import named
from agent_analytics.metrics.budgets import budget_rows
from agent_analytics.periods import local_midnight


def budget_values(con: duckdb.DuckDBPyConnection, rule: Rule, days: list[date], until: datetime,
                  settings) -> dict[date, float | None]:
    budget = named(load_budgets, settings.goals_path, rule.budget)
    if budget is None:
        return {}
    tz, values = settings.company_tz, {}
    watermark = until.replace(tzinfo=timezone.utc)
    for d in days:
        row = budget_rows(con, [budget], min(local_midnight(d + timedelta(days=1), tz), watermark), tz)[0]
        if rule.metric == "budget_forecast_over":
            values[d] = float(row["status"] != "on_track")
        else:
            values[d] = row["percent_used"]
    return values
