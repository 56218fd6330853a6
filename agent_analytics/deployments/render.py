"""The `agent-analytics deployments` document as terminal text: per deployment a heading and
the comparison's table (before against after), then the tests and warnings."""

from __future__ import annotations

from agent_analytics.comparison.render import metrics_table, tests_lines


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
