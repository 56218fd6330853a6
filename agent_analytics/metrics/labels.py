"""Status labels from the settings' thresholds, and change/trend arithmetic."""

from __future__ import annotations

from agent_analytics.settings import Settings


def error_rate_status(pct: float | None, settings: Settings) -> str:
    if pct is None:
        return "No data"
    excellent, good, acceptable = settings.error_rate_thresholds_pct
    return "Excellent" if pct < excellent else "Good" if pct < good else "Acceptable" if pct < acceptable else "Poor"


def response_time_status(ms: float | None, settings: Settings) -> str:
    if ms is None:
        return "No data"
    fast, good, acceptable = settings.response_time_thresholds_ms
    return "Fast" if ms < fast else "Good" if ms < good else "Acceptable" if ms < acceptable else "Slow"


def uptime_status(pct: float | None, settings: Settings) -> str:
    if pct is None:
        return "No data"
    return "Healthy" if pct >= settings.uptime_healthy_pct else "Degraded"


def compared(value, previous) -> dict:
    """A value with the previous period's, the change in percent and its direction."""
    value_f, previous_f = float(value or 0), float(previous or 0)
    if previous_f == 0:
        change, trend = None, ("unchanged" if value_f == 0 else "new")
    else:
        change = round((value_f - previous_f) / previous_f * 100, 1)
        trend = "up" if value_f > previous_f else "down" if value_f < previous_f else "unchanged"
    return {"value": value, "previous": previous, "change_pct": change, "trend": trend}


def shares(counts: list[int | float], decimals: int = 2) -> list[float]:
    """Percent shares rounded to `decimals` that add to exactly 100 (largest remainder)."""
    total = float(sum(counts))
    if total == 0:
        return [0.0 for _ in counts]
    unit = 10**decimals
    raw = [float(c) / total * 100 * unit for c in counts]
    floors = [int(r) for r in raw]
    missing = 100 * unit - sum(floors)
    order = sorted(range(len(raw)), key=lambda i: (-(raw[i] - floors[i]), i))
    for i in order[:missing]:
        floors[i] += 1
    return [f / unit for f in floors]
