"""Status labels from the settings' thresholds, and change/trend arithmetic."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

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


def _decimal(value) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(value or 0)


def round_half_up(value: Decimal, places: str) -> float:
    return float(value.quantize(Decimal(places), rounding=ROUND_HALF_UP))


def change_pct(value, previous) -> float | None:
    """(value - previous) / previous * 100, exact, rounded half up to 0.1; None if previous is 0."""
    v, p = _decimal(value), _decimal(previous)
    return None if p == 0 else round_half_up((v - p) / p * 100, "0.1")


def share_pct(part, total) -> float:
    """part / total * 100, exact, rounded half up to 0.01; 0 when the total is 0."""
    p, t = _decimal(part), _decimal(total)
    return 0.0 if t == 0 else round_half_up(p / t * 100, "0.01")


def _trend(value, previous) -> str:
    if value is None or previous is None:
        return "no data"
    v, p = _decimal(value), _decimal(previous)
    return "up" if v > p else "down" if v < p else "unchanged"


def compared(value, previous) -> dict:
    """A value with the previous period's, the change in percent and its direction."""
    if value is None or previous is None:
        return {"value": value, "previous": previous, "change_pct": None, "trend": "no data"}
    trend = ("unchanged" if _decimal(value) == 0 else "new") if _decimal(previous) == 0 else _trend(value, previous)
    return {"value": value, "previous": previous, "change_pct": change_pct(value, previous), "trend": trend}


def change_pp(value: float | None, previous: float | None) -> float | None:
    """value - previous in percentage points, rounded half up to 0.01; None without both."""
    if value is None or previous is None:
        return None
    return round_half_up(Decimal(str(value)) - Decimal(str(previous)), "0.01")


def compared_pp(value: float | None, previous: float | None) -> dict:
    """A rate in percent with the previous period's and the change in percentage points."""
    return {"value": value, "previous": previous, "change_pp": change_pp(value, previous), "trend": _trend(value, previous)}


def agent_label(name: str | None, agent_id: str) -> str:
    """How an agent is shown everywhere: its name, with the id where the two differ."""
    return agent_id if not name or name == agent_id else f"{name} ({agent_id})"


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
