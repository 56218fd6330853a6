"""The comparison document as terminal text: one row per metric, then the tests and warnings."""

from __future__ import annotations

from agent_analytics.comparison.document import METRICS, RANK_TEST, Z_TEST
from agent_analytics.metrics.formatting import NO_DATA, aligned_table

# metric -> (format of a value, of a signed difference (also the interval's ends), the unit
# after the difference)
FORMATS = {
    "messages": ("{:,.0f}", "{:+,.0f}", ""),
    "users": ("{:,.0f}", "{:+,.0f}", ""),
    "sessions": ("{:,.0f}", "{:+,.0f}", ""),
    "messages_per_session": ("{:.2f}", "{:+.2f}", ""),
    "error_rate_pct": ("{:.2f}%", "{:+.2f}", " pp"),
    "avg_response_time_ms": ("{:,.0f} ms", "{:+,.0f}", " ms"),
    "p50_response_time_ms": ("{:,.0f} ms", "{:+,.0f}", " ms"),
    "p95_response_time_ms": ("{:,.0f} ms", "{:+,.0f}", " ms"),
    "cost_per_message_usd": ("${:.6f}", "{:+.6f}", " USD"),
    "tokens_per_message": ("{:,.1f}", "{:+,.1f}", ""),
}


def _value(name: str, value: float | None) -> str:
    return NO_DATA if value is None else FORMATS[name][0].format(value)


def _signed(name: str, value: float) -> str:
    return FORMATS[name][1].format(value)


def _p(value: float | None) -> str:
    if value is None:
        return ""
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def render_comparison(doc: dict) -> str:
    period, versions, agent = doc["period"], doc["versions"], doc["agent"]
    partial = f", partial: up to {period['end']}" if period["partial"] else ""
    out = [
        f"A/B comparison  {agent['label']}: A = {versions['a']}, B = {versions['b']}",
        f"period {period['label']} ({period['start_date']} .. {period['end_date']}, {doc['time_zone']}{partial})"
        f"  as of {doc['as_of']}",
        "",
    ]
    out += metrics_table(doc["metrics"], doc["confidence_level"])
    out += ["", *tests_lines(doc["significance_level"])]
    out += [f"warning: {line}" for line in doc["warnings"]]
    return "\n".join(line.rstrip() for line in out) + "\n"


def metrics_table(metrics: dict, confidence_level: float, names: tuple[str, str] = ("A", "B")) -> list[str]:
    """One row per metric of a comparison: both values, the difference, its interval, p and the
    verdict; `names` head the two value columns."""
    rows = []
    for metric in METRICS:
        m = metrics[metric.name]
        difference = "" if m["difference"] is None else _signed(metric.name, m["difference"]) + FORMATS[metric.name][2]
        interval = ("" if m["ci_low"] is None
                    else f"{_signed(metric.name, m['ci_low'])} .. {_signed(metric.name, m['ci_high'])}")
        rows.append([metric.label, _value(metric.name, m["a"]), _value(metric.name, m["b"]), difference, interval,
                     _p(m["p_value"]), m["verdict"]])
    first, second = names
    return aligned_table(["metric", first, second, f"{second} - {first}", f"{confidence_level:.0%} CI", "p", "verdict"],
                         rows, "lrrrrrl")


def tests_lines(significance_level: float) -> list[str]:
    return [f"tests: error rate: {Z_TEST}; the others: {RANK_TEST} (p) and a bootstrap (CI).",
            f"significant: p < {significance_level:g} and a CI without 0 (docs/metric-definitions.md)"]
