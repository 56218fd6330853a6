"""The summary of a scheduled report, as the guide's weekly report shows it.

  DAU: 1,234 (up 12.0% vs previous period)   Sessions   Costs   Error rate   + top agents

DAU here is the average of the period's daily DAU (a week's DAU is its typical day, not its
last day); the previous period's average comes from the previous period's own document.
Every other figure is the metrics document's overview value with its change.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from agent_analytics.metrics.formatting import change_amount, count, money, percent
from agent_analytics.metrics.labels import compared, round_half_up


@dataclass(frozen=True)
class Figure:
    label: str
    value: str
    change: str


def average_dau(doc: dict) -> float:
    days = doc["daily"]
    if not days:
        return 0.0
    return round_half_up(Decimal(sum(d["dau"] for d in days)) / len(days), "0.1")


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


def summary_text(title: str, doc: dict, previous_doc: dict) -> str:
    """Plain-text summary: the email body."""
    lines = [title, "", "Summary:"]
    lines += [f"- {f.label}: {f.value} ({f.change} vs previous period)" for f in summary_figures(doc, previous_doc)]
    lines += ["", "Top agents:"]
    lines += [f"{i}. {a['agent_label']}: {count(a['sessions'])} sessions" for i, a in enumerate(top_agents(doc), 1)]
    return "\n".join(lines) + "\n"
