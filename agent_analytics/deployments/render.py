"""The `agent-analytics deployments` document as terminal text: per deployment a heading and
the comparison's table (before against after), then the tests and warnings."""

from __future__ import annotations

from agent_analytics.comparison.render import metrics_table, tests_lines
from agent_analytics.metrics.formatting import NO_DATA, money, ms, percent


def _hours(value: float) -> str:
    return f"{value:g} h" if value < 48 else f"{value / 24:g} d"


def render_deployments(doc: dict) -> str:
    period = doc["period"]
    partial = f", partial: up to {period['end']}" if period["partial"] else ""
    window = "the default" if doc["window_hours"] is None else _hours(doc["window_hours"])
    out = [
        f"Deployments  period {period['label']} ({period['start_date']} .. {period['end_date']}, {doc['time_zone']}"
        f"{partial})  as of {doc['as_of']}",
        f"window: {window} before and after each deployment, clipped at the agent's previous and next deployment "
        "and at the as-of time",
    ]
    if not doc["deployments"]:
        out += ["", "no deployments in this period" + ("" if doc["scope"]["agents"] is None
                                                       else f" for {', '.join(doc['scope']['agents'])}")]
    for d in doc["deployments"]:
        previous = f" (after {d['previous_version']})" if d["previous_version"] else ""
        clipped = f", clipped by the {d['clipped_by']}" if d["clipped_by"] else ""
        out += [
            "",
            f"{d['deployed_at']}  {d['agent_label']}  {d['version']}{previous}"
            + (f"  {d['description']}" if d["description"] else ""),
            f"before {d['before']['start']} .. {d['before']['end']}, after .. {d['after']['end']}"
            f" ({_hours(d['window_hours'])} each{clipped})",
        ]
        out += metrics_table(d["metrics"], doc["confidence_level"], ("before", "after"))
        out += [f"warning: {line}" for line in d["warnings"]]
    out += ["", *tests_lines(doc["significance_level"])]
    return "\n".join(line.rstrip() for line in out) + "\n"


# ---------------------------------------------------------------- the metrics document's section
# Shared by the terminal view, the dashboard, the PDF and the email summary.


def deployed(item: dict) -> str:
    """`2026-11-10 12:00 UTC`."""
    return f"{item['deployed_at'][:16].replace('T', ' ')} UTC"


def heading(item: dict) -> str:
    """`2026-11-10 12:00 UTC  Support Agent (support)  v2 (after v1)`."""
    previous = f" (after {item['previous_version']})" if item["previous_version"] else ""
    return f"{deployed(item)}  {item['agent_label']}  {item['version']}{previous}"


def window_text(item: dict) -> str:
    clipped = f", clipped by the {item['clipped_by']}" if item["clipped_by"] else ""
    return f"{_hours(item['window_hours'])} before and after{clipped}"


def _change(row: dict) -> str:
    if "change_pp" in row:
        shown = "" if row["change_pp"] is None else f"{row['change_pp']:+.2f} pp"
    else:
        shown = "" if row["change_pct"] is None else f"{row['change_pct']:+.0f}%"
    verdict = row["verdict"] if row["verdict"] not in (None, "n/a") else ""
    inside = ", ".join(part for part in (shown, verdict) if part)
    return f" ({inside})" if inside else ""


EFFECTS = (  # (metric, label, format of a value), in the order shown
    ("messages", "messages", lambda v: f"{v:,}"),
    ("sessions", "sessions", lambda v: f"{v:,}"),
    ("error_rate_pct", "error rate", percent),
    ("avg_response_time_ms", "avg response", ms),
    ("p95_response_time_ms", "P95", ms),
    ("cost_per_message_usd", "cost per message", money),
    ("tokens_per_message", "tokens per message", lambda v: NO_DATA if v is None else f"{v:,.0f}"),
)

LABELS = {name: label for name, label, _ in EFFECTS}
FORMATS = {name: fmt for name, _, fmt in EFFECTS}
SUMMARY = ("messages", "error_rate_pct", "avg_response_time_ms", "cost_per_message_usd")  # a report's short list


def effect(item: dict, name: str) -> str:
    """`33.33% -> 0.00% (-33.33 pp, insufficient data)`: a metric of EFFECTS before and after."""
    fmt = FORMATS[name]
    return f"{fmt(item['before'][name])} -> {fmt(item['after'][name])}{_change(item['changes'][name])}"


def effects(item: dict) -> list[str]:
    """`error rate 33.33% -> 0.00% (-33.33 pp, insufficient data)`, one per metric of EFFECTS."""
    return [f"{label} {effect(item, name)}" for name, label, _ in EFFECTS]


def summary_line(item: dict) -> str:
    """A deployment and its effect in one line (the reports): heading, then the SUMMARY metrics."""
    return f"{heading(item)}: " + ", ".join(f"{LABELS[name]} {effect(item, name)}" for name in SUMMARY)


def summary_table(items: list[dict]) -> list[list[str]]:
    """The same as a table (the PDF), its header first."""
    return [["Deployed", "Agent", "Version", *(LABELS[name] for name in SUMMARY)]] + [
        [deployed(item), item["agent_label"], item["version"], *(effect(item, name) for name in SUMMARY)]
        for item in items]


def section_lines(section: dict, limit: int = 10) -> list[str]:
    """The document's deployments (the first `limit`), each as its heading and window, then its
    effects on three lines (at most 100 columns for the usual values)."""
    out = []
    for item in section["items"][:limit]:
        parts = effects(item)
        out += [f"  {heading(item)}  ({window_text(item)})",
                *("    " + ", ".join(parts[a:b]) for a, b in ((0, 3), (3, 5), (5, None)))]
    if len(section["items"]) > limit:
        out.append(f"  ... and {len(section['items']) - limit} more (agent-analytics deployments)")
    if section["items"]:
        out.append("  significance: error rate only here; every test: agent-analytics deployments")
    return out
