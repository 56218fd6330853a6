"""Human formats shared by the terminal view, the dashboard and the PDF reports."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

ARROWS = {"up": "↑", "down": "↓", "unchanged": "→", "new": "↑"}
NO_DATA = "no data"


# Every format takes None (a value that cannot be computed: a window without the data it
# needs, or an overflow of values stored before the ingest bounds) and shows NO_DATA.


def aligned_table(headers: list[str], rows: list[list[str]], align: str) -> list[str]:
    """Lines of a text table indented by two spaces: a header, a rule, the rows; `align` holds
    one letter per column, `l` (left) or `r` (right)."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        parts = [c.ljust(w) if a == "l" else c.rjust(w) for c, w, a in zip(cells, widths, align, strict=False)]
        return "  " + "  ".join(parts)

    return [line(headers), "  " + "  ".join("-" * w for w in widths)] + [line(r) for r in rows]


def money(value: float | None) -> str:
    """Dollars rounded half up to the cent ($0.125 -> $0.13); 4 places below one cent."""
    if value is None:
        return NO_DATA
    places = "0.01" if abs(value) >= 0.01 or value == 0 else "0.0001"
    rounded = Decimal(str(value)).quantize(Decimal(places), rounding=ROUND_HALF_UP)
    return f"-${-rounded:,}" if rounded < 0 else f"${rounded:,}"


def ms(value: float | None) -> str:
    if value is None:
        return NO_DATA
    return f"{value / 1000:.1f}s" if value >= 1000 else f"{value:.0f}ms"


def duration(ms: float | None) -> str:
    if ms is None:
        return NO_DATA
    seconds = int(round(ms / 1000))
    return f"{seconds // 60}m {seconds % 60:02d}s"


def count(value: float | None) -> str:
    if value is None:
        return NO_DATA
    return f"{value:,.0f}"


def tokens(value: float | None) -> str:
    if value is None:
        return NO_DATA
    if value >= 1_000_000:
        return f"{value / 1_000_000:.1f}M"
    if value >= 1_000:
        return f"{value / 1_000:.0f}K"
    return str(int(value))


def percent(value: float | None, places: int = 2) -> str:
    return NO_DATA if value is None else f"{value:.{places}f}%"


def per_minute(value: float | None) -> str:
    return NO_DATA if value is None else f"{value:,.0f} req/min"


def change_amount(metric: dict) -> str | None:
    """'12%' or '0.35 pp' (rates in percent change in percentage points); None when there is
    no number to show (no data, a new value, unchanged)."""
    if metric["trend"] in ("no data", "new", "unchanged"):
        return None
    if "change_pp" in metric:
        return f"{abs(metric['change_pp']):.2f} pp"
    return None if metric["change_pct"] is None else f"{abs(metric['change_pct']):.0f}%"


def change(metric: dict, label: str) -> str:
    if metric["trend"] == "no data":
        return ""
    amount = change_amount(metric)
    if amount is None:
        return "(new)" if metric["trend"] == "new" else "(→ unchanged)"
    return f"({ARROWS[metric['trend']]} {amount} vs {label})"


def in_unit(value: float | None, unit: str) -> str:
    """A goal's value in its unit (agent_analytics/goals.py)."""
    if value is None:
        return NO_DATA
    if unit == "USD":
        return money(value)
    if unit == "%":
        return percent(value)
    if unit == "ms":
        return ms(value)
    return f"{value:,.1f} {unit}" if unit == "users" else f"{value:,.0f} {unit}"


def goal_target(goal: dict) -> str:
    """'at most $60.00 a month', 'at least 150.0 users', 'P95 at most 3.0s'."""
    what = {"at_least": "at least", "at_most": "at most"}[goal["direction"]]
    text = f"{what} {in_unit(goal['target'], goal['unit'])}"
    if goal["metric"] in ("sessions_per_month", "cost_per_month"):
        text += " a month"
    if goal["statistic"]:
        text = f"{goal['statistic'].upper() if goal['statistic'] != 'avg' else 'average'} {text}"
    return text


def goal_label(goal: dict) -> str:
    """The goal's name, with its agent in parentheses for an agent's goal."""
    return goal["name"] + (f" ({goal['agent_id']})" if goal["agent_id"] else "")


def goal_progress(goal: dict) -> str:
    """'135% of target'; empty without a value (no data, or a target of 0)."""
    return "" if goal["progress_pct"] is None else f"{goal['progress_pct']:.0f}% of target"


def goal_status(goal: dict) -> str:
    return NO_DATA if goal["on_track"] is None else "on track" if goal["on_track"] else "off track"


def goal_value(goal: dict) -> str:
    """The compared value: 'projected $71.20 ($35.60 so far)' for a total per month."""
    if goal["compared"] == "projection" and goal["projection"] is not None:
        return f"projected {in_unit(goal['projection'], goal['unit'])} ({in_unit(goal['actual'], goal['unit'])} in the period)"
    return in_unit(goal["actual"], goal["unit"])
