"""Human formats shared by the terminal view, the dashboard and the PDF reports."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

ARROWS = {"up": "↑", "down": "↓", "unchanged": "→", "new": "↑"}


# Every format takes None (a value that cannot be computed: no data, or an overflow of values
# stored before the ingest bounds) and shows "-".


def money(value: float | None) -> str:
    """Dollars rounded half up to the cent ($0.125 -> $0.13); 4 places below one cent."""
    if value is None:
        return "-"
    places = "0.01" if abs(value) >= 0.01 or value == 0 else "0.0001"
    rounded = Decimal(str(value)).quantize(Decimal(places), rounding=ROUND_HALF_UP)
    return f"-${-rounded:,}" if rounded < 0 else f"${rounded:,}"


def ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value / 1000:.1f}s" if value >= 1000 else f"{value:.0f}ms"


def duration(ms: float | None) -> str:
    if ms is None:
        return "-"
    seconds = int(round(ms / 1000))
    return f"{seconds // 60}m {seconds % 60:02d}s"


def count(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}"


def tokens(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 1_000_000:
        return f"{value / 1_000_000:.1f}M"
    if value >= 1_000:
        return f"{value / 1_000:.0f}K"
    return str(int(value))


def change(metric: dict, label: str) -> str:
    if metric["change_pct"] is None:
        return "(new)" if metric["trend"] == "new" else "(→ unchanged)"
    if metric["trend"] == "unchanged":
        return "(→ unchanged)"
    return f"({ARROWS[metric['trend']]} {abs(metric['change_pct']):.0f}% vs {label})"
