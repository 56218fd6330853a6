"""The oracle's `deployments` section (tests/oracle.py calls `section`): the deployments of the
period, their windows and the agent's metrics in each, recomputed from the oracle's flat tables
with plain loops, Fractions and Decimals, sharing no code with the warehouse.

Choices, literally from docs/metric-definitions.md (*Deployments*):
* A deployment belongs to the period when start <= deployed_at < end and its agent is in scope;
  listed by (deployed_at, agent, event_id).
* Its agent's deployments are ordered by (deployed_at, event_id). The window length L is the
  least of WINDOW_HOURS, the time since the previous deployment, the time to the next one and
  the time to as_of (0 when as_of is earlier); `clipped_by` names the first of next
  deployment, now, previous deployment that is strictly shorter than what came before it.
  before = [d - L, d), after = [d, d + L).
* A window's messages: the agent's messages with occurred_at inside it; sessions: the agent's
  sessions whose first message is inside it.
* The error rate's test: the pooled two-proportion z-test (p), Wald's interval, in points; a
  verdict needs 100 messages, 20 users and 5 expected errors and successes on both sides.
"""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction

WINDOW_HOURS = 168
HOUR_US = 3_600_000_000
Z = 1.959963984540054  # the normal's 97.5% quantile
RANK_TESTS = ("Mann-Whitney U and bootstrap intervals need every message's value: they run in "
              "`agent-analytics deployments`, not in this document")
VOLUMES = ("messages", "sessions", "users")
RATIOS = ("messages_per_session", "error_rate_pct", "avg_response_time_ms", "p95_response_time_ms",
          "cost_per_message_usd", "tokens_per_message")


def _windows(deployments: list[dict], as_of_us: int) -> dict[str, tuple[int, str | None]]:
    """event id -> (window length in microseconds, what clipped it)."""
    out = {}
    for rows in _by_agent(deployments).values():
        for i, d in enumerate(rows):
            length, clipped = WINDOW_HOURS * HOUR_US, None
            limits = [
                (rows[i + 1]["us"] - d["us"] if i + 1 < len(rows) else None, "next deployment"),
                (max(as_of_us - d["us"], 0), "now"),
                (d["us"] - rows[i - 1]["us"] if i > 0 else None, "previous deployment"),
            ]
            for limit, reason in limits:
                if limit is not None and limit < length:
                    length, clipped = limit, reason
            out[d["eid"]] = (length, clipped)
    return out


def _metrics(messages: list[dict], tokens: dict[int, int], sessions: list[dict]) -> dict:
    n = len(messages)
    times = sorted(m["rt"] for m in messages if not math.isnan(m["rt"]))
    errors = sum(1 for m in messages if m["err"])

    def p95() -> float | None:
        if not times:
            return None
        position = Fraction(95, 100) * (len(times) - 1)
        low = math.floor(position)
        high = min(low + 1, len(times) - 1)
        return float(times[low] + (position - low) * (Fraction(times[high]) - Fraction(times[low])))

    cost = sum((m["cost"] for m in messages), Decimal(0))
    return {
        "messages": n,
        "sessions": len(sessions),
        "users": len({m["user"] for m in messages}),
        "messages_per_session": float(Fraction(sum(s["n"] for s in sessions), len(sessions))) if sessions else None,
        "error_rate_pct": float(Fraction(errors * 100, n)) if n else None,
        "avg_response_time_ms": float(sum(Fraction(t) for t in times) / len(times)) if times else None,
        "p95_response_time_ms": p95(),
        "cost_per_message_usd": float(cost / n) if n else None,
        "tokens_per_message": float(Fraction(sum(tokens.get(m["index"], 0) for m in messages), n)) if n else None,
        "_errors": errors,
    }


def _round(value: Fraction | float, places: int) -> float:
    """Half away from zero, exactly."""
    v = Fraction(value) * 10 ** places
    whole = math.floor(abs(v) + Fraction(1, 2))
    return float(math.copysign(whole, v) / 10 ** places) if whole else 0.0


def _z_test(before: dict, after: dict) -> dict:
    n_a, n_b, e_a, e_b = before["messages"], after["messages"], before["_errors"], after["_errors"]
    if not n_a or not n_b:
        return {"test": "two-proportion z-test", "p_value": None, "ci_low": None, "ci_high": None,
                "verdict": "insufficient data"}
    p_a, p_b = e_a / n_a, e_b / n_b
    pooled = (e_a + e_b) / (n_a + n_b)
    pooled_se = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    p_value = math.erfc(abs(p_b - p_a) / pooled_se / math.sqrt(2)) if pooled_se > 0 else None
    se = math.sqrt(p_a * (1 - p_a) / n_a + p_b * (1 - p_b) / n_b)
    low, high = (p_b - p_a - Z * se) * 100, (p_b - p_a + Z * se) * 100
    enough = (min(n_a, n_b) >= 100 and min(before["users"], after["users"]) >= 20
              and min(n_a, n_b) * min(pooled, 1 - pooled) >= 5)
    significant = p_value is not None and p_value < 0.05 and (low > 0 or high < 0)
    verdict = ("insufficient data" if not enough else "no significant difference" if not significant
               else "better" if p_b < p_a else "worse")
    return {"test": "two-proportion z-test", "p_value": p_value, "ci_low": low, "ci_high": high, "verdict": verdict}


def _changes(before: dict, after: dict) -> dict:
    rows = {}
    for name in VOLUMES + RATIOS:
        b, a = before[name], after[name]
        difference = None if a is None or b is None else a - b
        row = {"difference": difference}
        if name == "error_rate_pct":
            row["change_pp"] = None if difference is None else _round(Fraction(a) - Fraction(b), 2)
            row.update(_z_test(before, after))
        else:
            row["change_pct"] = (None if a is None or b is None or b == 0
                                 else _round((Fraction(a) - Fraction(b)) / Fraction(b) * 100, 1))
            row.update(test=None, p_value=None, ci_low=None, ci_high=None,
                       verdict="n/a" if name in VOLUMES else None)
        rows[name] = row
    return rows


def section(deployments: list[dict], messages: list[dict], tokens: dict[int, int], sessions: list[dict],
            start: int, end: int, as_of_us: int, scope: list[str] | None, label_of, iso) -> dict:
    """deployments: {eid, us, agent, version, description}; messages: {index, us, user, agent, err,
    rt, cost}; tokens: message index -> input + output tokens; sessions: {agent, start, n}."""
    windows = _windows(deployments, as_of_us)
    previous = {}
    for rows in _by_agent(deployments).values():
        for i, d in enumerate(rows):
            previous[d["eid"]] = rows[i - 1]["version"] if i else None
    items = []
    chosen = sorted((d for d in deployments if start <= d["us"] < end and (scope is None or d["agent"] in scope)),
                    key=lambda d: (d["us"], d["agent"], d["eid"]))
    for d in chosen:
        length, clipped = windows[d["eid"]]
        sides = {}
        for side, (a, b) in (("before", (d["us"] - length, d["us"])), ("after", (d["us"], d["us"] + length))):
            mine = [m for m in messages if m["agent"] == d["agent"] and a <= m["us"] < b]
            own_sessions = [s for s in sessions if s["agent"] == d["agent"] and a <= s["start"] < b]
            sides[side] = {"start": iso(a), "end": iso(b), **_metrics(mine, tokens, own_sessions)}
        changes = _changes(sides["before"], sides["after"])
        for side in sides.values():
            del side["_errors"]
        items.append({
            "deployment_id": d["eid"], "agent_id": d["agent"], "agent_label": label_of(d["agent"]),
            "version": d["version"], "previous_version": previous[d["eid"]], "description": d["description"],
            "deployed_at": iso(d["us"]), "window_hours": length / HOUR_US, "clipped_by": clipped,
            "before": sides["before"], "after": sides["after"], "changes": changes,
        })
    return {"window_hours": WINDOW_HOURS if deployments else None, "rank_tests": RANK_TESTS, "items": items}


def _by_agent(deployments: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for d in sorted(deployments, key=lambda d: (d["us"], d["eid"])):
        out.setdefault(d["agent"], []).append(d)
    return out
