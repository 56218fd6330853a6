"""Human formats shared by the terminal view, the dashboard and the PDF reports."""

from __future__ import annotations

ARROWS = {"up": "↑", "down": "↓", "unchanged": "→", "new": "↑"}


def money(value: float) -> str:
    return f"${value:,.2f}" if abs(value) >= 0.01 or value == 0 else f"${value:,.4f}"


def ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value / 1000:.1f}s" if value >= 1000 else f"{value:.0f}ms"


def duration(ms: float) -> str:
    seconds = int(round(ms / 1000))
    return f"{seconds // 60}m {seconds % 60:02d}s"


def count(value: float) -> str:
    return f"{value:,.0f}"


def tokens(value: float) -> str:
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
