"""The summary of a scheduled report, as the guide's weekly report shows it.

  DAU: 1,234 (up 12.0% vs previous period)   Sessions   Costs   Error rate   + top agents

DAU here is the average of the period's daily DAU (a week's DAU is its typical day, not its
last day); the previous period's average comes from the previous period's own document.
Every other figure is the metrics document's overview value with its change.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent_analytics.deployments.render import summary_line
from agent_analytics.metrics import goals as goal_metrics
from agent_analytics.metrics.budget_text import budget_lines, budgets_heading, budgets_problem
from agent_analytics.metrics.formatting import (
    change_amount,
    count,
    goal_label,
    goal_status,
    goal_target,
    goal_value,
    money,
    percent,
)
from agent_analytics.metrics.labels import compared


@dataclass(frozen=True)
class Figure:
    label: str
    value: str
    change: str


def average_dau(doc: dict) -> float:
    return goal_metrics.average_dau(doc["daily"])


def change_text(metric: dict) -> str:
    """'up 12.0%', 'down 0.35 pp' (a rate in percent), 'stable', 'new' (previous value 0) or
    'no data' (a side without a value)."""
    if metric["trend"] in ("new", "no data"):
        return metric["trend"]
    amount = change_amount(metric)
    if amount is None:
        return "stable"
    return f"{metric['trend']} {amount}" if "change_pp" in metric else f"{metric['trend']} {abs(metric['change_pct']):.1f}%"


def summary_figures(doc: dict, previous_doc: dict) -> list[Figure]:
    o = doc["overview"]
    dau = compared(average_dau(doc), average_dau(previous_doc))
    return [
        Figure("DAU (average per day)", f"{dau['value']:,.1f}", change_text(dau)),
        Figure("Active users", count(o["active_users"]["value"]), change_text(o["active_users"])),
        Figure("Sessions", count(o["sessions"]["value"]), change_text(o["sessions"])),
        Figure("Messages", count(o["messages"]["value"]), change_text(o["messages"])),
        Figure("Costs", money(o["cost_usd"]["value"]), change_text(o["cost_usd"])),
        Figure("Error rate", percent(o["error_rate_pct"]["value"]), change_text(o["error_rate_pct"])),
    ]


def top_agents(doc: dict, limit: int = 5) -> list[dict]:
    """The agents with the most sessions in the period (ties by messages, then id)."""
    active = [a for a in doc["performance"]["agents"] if a["messages"] > 0]
    return sorted(active, key=lambda a: (-a["sessions"], -a["messages"], a["agent_id"]))[:limit]


def goal_lines(doc: dict) -> list[list[str]]:
    """Goal, status, target, compared value: one row per goal of the document."""
    return [[goal_label(g), goal_status(g), goal_target(g), goal_value(g)] for g in doc["goals"]["items"]]


def goals_problem(doc: dict) -> str | None:
    """Why the goals file was not used (unreadable, invalid), as a sentence; None when it was."""
    problem = doc["goals"]["problem"]
    return None if problem is None else f"The goals file was not used: {problem}"


def summary_text(title: str, doc: dict, previous_doc: dict) -> str:
    """Plain-text summary: the email body."""
    lines = [title, "", "Summary:"]
    lines += [f"- {f.label}: {f.value} ({f.change} vs previous period)" for f in summary_figures(doc, previous_doc)]
    if doc["goals"]["items"] or goals_problem(doc):
        lines += ["", "Goals:"]
        lines += [f"- {name}: {status}, {target}: {value}" for name, status, target, value in goal_lines(doc)]
        lines += [goals_problem(doc)] if goals_problem(doc) else []
    if doc["budgets"]["items"] or budgets_problem(doc):
        lines += ["", budgets_heading(doc) + ":"]
        lines += [f"- {name}: {status}, {used}; {forecast}" for name, status, used, forecast in budget_lines(doc)]
        lines += [budgets_problem(doc)] if budgets_problem(doc) else []
    if doc["deployments"]["items"]:
        lines += ["", "Deployments (the same time before and after each):"]
        lines += [f"- {summary_line(item)}" for item in doc["deployments"]["items"]]
    if doc.get("bills"):
        from agent_analytics.bills import bills_summary_lines

        lines += ["", "Provider bills (against the estimate):", *bills_summary_lines(doc)]
    lines += ["", "Top agents:"]
    lines += [f"{i}. {a['agent_label']}: {count(a['sessions'])} sessions" for i, a in enumerate(top_agents(doc), 1)]
    return "\n".join(lines) + "\n"
