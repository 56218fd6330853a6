"""Webhook events: `alert.triggered`, `alert.resolved`, `analytics.daily_summary`.

Every event has an id derived only from what it is about (the episode and transition, or the
summary's day), so the same event always has the same id: receivers drop duplicates by it
(it is also the `webhook-id` header), and the outbox can hold it only once.
Body: {"id", "event", "created_at", "data"} (docs/alerts.md).
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime, timezone

from agent_analytics.alerts.rules import Rule
from agent_analytics.json_text import dumps

TRIGGERED = "alert.triggered"
RESOLVED = "alert.resolved"
DAILY_SUMMARY = "analytics.daily_summary"
TEST = "alert.test"


def _digest(*parts: object) -> str:
    return hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()


def utc_text(moment: datetime) -> str:
    aware = moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    return aware.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def episode_id(rule_name: str, scope: str, started_at: datetime) -> str:
    return "ep_" + _digest(rule_name, scope, utc_text(started_at))[:24]


def event_id(kind: str, key: str, number: int = 0) -> str:
    return "evt_" + _digest(kind, key, number)[:28]


def summary_event_id(day: date) -> str:
    return event_id(DAILY_SUMMARY, day.isoformat())


def envelope(event_type: str, ident: str, created_at: datetime, data: dict) -> dict:
    return {"id": ident, "event": event_type, "created_at": utc_text(created_at), "data": data}


def encode(event: dict) -> str:
    """The exact body sent (and signed): compact JSON with sorted keys."""
    return dumps(event, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def _number(value: float | None) -> float | None:
    return None if value is None else round(float(value), 6)


def alert_data(rule: Rule, scope: str, episode: str, started_at: datetime, at: datetime, value: float | None,
               reminder: int = 0, resolved: bool = False) -> dict:
    data = {
        "rule": rule.name,
        "description": rule.description or rule.condition_text(),
        "condition": rule.condition_text(),
        "metric": rule.metric,
        "comparison": rule.comparison,
        "threshold": rule.threshold,
        "unit": rule.unit,
        "window": rule.window_text,
        "scope": scope,
        "severity": rule.severity,
        "episode_id": episode,
        "started_at": utc_text(started_at),
        "value": _number(value),
    }
    if rule.goal is not None:
        data["goal"] = rule.goal  # the goal's agent, if any, is the goal's (the goals file), not the rule's scope
    if rule.budget is not None:
        data["budget"] = rule.budget  # its agent or provider is the budget's (the goals file)
    if resolved:
        data["resolved_at"] = utc_text(at)
    else:
        data["fired_at"] = utc_text(at)
        data["reminder"] = reminder
    return data


def headline(event: dict) -> str:
    """One human line for chat, paging and email subjects."""
    kind, data = event["event"], event["data"]
    if kind == DAILY_SUMMARY:
        rate = "no data" if data["error_rate"] is None else f"{data['error_rate'] * 100:.2f}%"
        return (
            f"Daily summary {data['date']}: DAU {data['dau']}, sessions {data['sessions']}, "
            f"messages {data['messages']}, costs ${data['costs']:.2f}, error rate {rate}"
        )
    scope = "all agents" if data["scope"] == "all" else f"agent {data['scope']}"
    value = "no data" if data["value"] is None else f"{data['value']:g} {data['unit']}".rstrip()
    if data.get("bill") is not None:
        scope = f"{data['bill']['provider']} bill of {data['bill']['month']}"
    if data.get("goal") is not None:
        scope = f"goal {data['goal']}"
        value = value if data["value"] is None else ("off track" if data["value"] else "on track")
    if data.get("budget") is not None:
        scope = f"budget {data['budget']}"
        if data["value"] is not None:
            over = "forecast over budget" if data["value"] else "forecast within budget"
            value = over if data["metric"] == "budget_forecast_over" else f"{data['value']:.1f}% of budget spent"
    if kind == RESOLVED:
        return f"RESOLVED [{data['severity']}] {data['rule']} ({scope}): now {value}"
    if kind == TEST:
        return f"TEST [{data['severity']}] {data['rule']} ({scope}): {data['condition']}"
    again = f" (reminder {data['reminder']})" if data.get("reminder") else ""
    return f"ALERT [{data['severity']}] {data['rule']} ({scope}): {data['description']}: {value}{again}"


def details(event: dict) -> str:
    """Several lines: the headline, then every data field."""
    lines = [headline(event), ""]
    lines += [f"{key}: {value}" for key, value in event["data"].items()]
    lines += ["", f"event id: {event['id']}"]
    return "\n".join(lines)
