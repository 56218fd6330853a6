"""The warehouse's `metrics --format json` against the oracle (tests/oracle.py), field by field.

Three parts:

* fast unit tests of the oracle itself, on the hand fixture (tests/fixtures/day1.jsonl +
  day2.jsonl, whose numbers are derived by hand in tests/test_end_to_end.py) and on a few
  contract edge cases written here;
* the comparison: 45 days of generated data (40,000 messages, seed 11, ending 2026-11-20) go
  through `agent-analytics ingest` + `build` into a fresh home; for every case below the CLI's
  JSON document must equal the oracle's on every field (integers exact, money to the cent,
  other floats, percentiles too, within 1e-6 relative), and both documents must
  validate against the JSON Schema. The cases cover every period kind (rolling, custom, month,
  a month to date, a custom period ending after as_of), with and without agents, in UTC, across
  New York's DST change and in the +5:30 / +5:45 zones of Kolkata and Kathmandu;
* on each of those CLI documents, every breakdown (daily, weekly, months, agents, providers,
  models) adds up to `totals`, which the overview repeats.
"""

from __future__ import annotations

import csv
import gzip
import json
import math
import os
import shutil
import subprocess
import sys
import tomllib
from datetime import date, datetime, timedelta, timezone
from fractions import Fraction
from pathlib import Path

import jsonschema
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import oracle  # noqa: E402  (tests/oracle.py: no code shared with the warehouse)

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures"
SCHEMA = json.loads((ROOT / "agent_analytics" / "schema" / "analytics_export.schema.json").read_text())
AS_OF_TEXT = "2026-11-20T15:30:00Z"
AS_OF = datetime(2026, 11, 20, 15, 30, tzinfo=timezone.utc)
SETTINGS = {
    "session_timeout_minutes": 30,
    "capacity_per_min": 500,
    "error_rate_thresholds_pct": (0.5, 1.0, 2.0),
    "response_time_thresholds_ms": (2000, 4000, 6000),
    "uptime_threshold_pct": 99.9,
}
# Every goal metric, company-wide and per agent, both directions; AGENT_ANALYTICS_GOALS of the
# generated home, and the oracle's own reading of the same file.
GOALS_TOML = """
[goals.dau]
metric = "dau"
target = 150
direction = "at_least"
description = "active users"

[goals.monthly-cost]
metric = "cost_per_month"
target = 60
direction = "at_most"

[goals.sessions]
metric = "sessions_per_month"
target = 20000
direction = "at_least"

[goals.cost-per-user]
metric = "cost_per_user"
target = 1.5
direction = "at_most"

[goals.errors]
metric = "error_rate"
target = 2
direction = "at_most"

[goals.p95]
metric = "response_time"
statistic = "p95"
target = 3000
direction = "at_most"

[goals.support-speed]
metric = "response_time"
target = 2000
direction = "at_most"
agent = "support"

[goals.sales-dau]
metric = "dau"
target = 10
direction = "at_least"
agent = "sales"

[goals.tech-cost]
metric = "cost_per_month"
target = 4
direction = "at_most"
agent = "tech"

[goals.faq-p99]
metric = "response_time"
statistic = "p99"
target = 0
direction = "at_most"
agent = "faq"

[budgets.company]
budget_usd = 50
description = "all agents"

[budgets.support]
budget_usd = 10
agent = "support"

[budgets.tech]
budget_usd = 1
agent = "tech"

[budgets.openai]
budget_usd = 20
provider = "openai"

[budgets.unused-provider]
budget_usd = 5
provider = "nobody"
"""
GOALS = [{"name": name, **body} for name, body in tomllib.loads(GOALS_TOML)["goals"].items()]
BUDGETS = [{"name": name, **body} for name, body in tomllib.loads(GOALS_TOML)["budgets"].items()]


# ============================================================================ comparison helpers


def schema_errors(doc: dict) -> list[str]:
    validator = jsonschema.Draft202012Validator(SCHEMA)
    return [
        f"{'/'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}"
        for e in sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))
    ]


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _numbers_match(key: str, parent: str, got, want) -> bool:
    if isinstance(got, int) and isinstance(want, int):
        return got == want
    got, want = float(got), float(want)
    if math.isnan(got) or math.isnan(want):
        return False
    if "usd" in key or key == "cost_per_message" or ("usd" in parent and key in ("value", "previous")):
        return abs(got - want) < 0.005  # money: to the cent
    return abs(got - want) <= max(1e-6 * max(abs(got), abs(want)), 1e-9)


def differences(got, want, path: str = "$", key: str = "", parent: str = "") -> list[str]:
    """Every JSON path where the warehouse (`got`) differs from the oracle (`want`)."""
    out: list[str] = []
    if isinstance(got, dict) and isinstance(want, dict):
        for k in list(want) + [k for k in got if k not in want]:
            if path == "$" and k == "generated_at":
                continue
            if k not in got:
                out.append(f"{path}.{k}: missing in warehouse (oracle: {json.dumps(want[k])[:200]})")
            elif k not in want:
                out.append(f"{path}.{k}: not in the oracle's document (warehouse: {json.dumps(got[k])[:200]})")
            else:
                out += differences(got[k], want[k], f"{path}.{k}", k, key)
    elif isinstance(got, list) and isinstance(want, list):
        if len(got) != len(want):
            out.append(f"{path}: {len(got)} items in warehouse, {len(want)} in oracle")
        for i, (g, w) in enumerate(zip(got, want, strict=False)):
            out += differences(g, w, f"{path}[{i}]", key, parent)
    elif _is_number(got) and _is_number(want):
        if not _numbers_match(key, parent, got, want):
            out.append(f"{path}: warehouse {got!r} != oracle {want!r}")
    elif got != want or type(got) is not type(want):
        out.append(f"{path}: warehouse {json.dumps(got)[:200]} != oracle {json.dumps(want)[:200]}")
    return out


def assert_same(got: dict, want: dict) -> None:
    diffs = differences(got, want)
    shown = "\n".join(diffs[:300]) + (f"\n... and {len(diffs) - 300} more" if len(diffs) > 300 else "")
    assert not diffs, f"{len(diffs)} field(s) differ (warehouse vs oracle):\n{shown}"


# ============================================================================ the oracle on the hand fixture


def hand(period: dict, agents=None, tz: str = "UTC", as_of: datetime = AS_OF) -> dict:
    return oracle.compute([FIXTURES / "day1.jsonl", FIXTURES / "day2.jsonl"], period, tz, as_of, agents, SETTINGS)


def test_oracle_on_the_hand_fixture():
    doc = hand({"kind": "custom", "start": date(2026, 11, 2), "end": date(2026, 11, 5)})
    assert schema_errors(doc) == []
    assert doc["period"] == {"label": "2026-11-02..2026-11-05", "kind": "custom", "start": "2026-11-02T00:00:00Z",
                             "end": "2026-11-06T00:00:00Z", "full_end": "2026-11-06T00:00:00Z",
                             "start_date": "2026-11-02", "end_date": "2026-11-05", "days": 4.0, "partial": False}
    assert doc["previous_period"] == {"label": "previous 2026-11-02..2026-11-05", "kind": "custom",
                                      "start": "2026-10-29T00:00:00Z", "end": "2026-11-02T00:00:00Z",
                                      "full_end": "2026-11-02T00:00:00Z", "start_date": "2026-10-29",
                                      "end_date": "2026-11-01", "days": 4.0, "partial": False}
    # 9 messages (m1-m5, m9 on 11-02; m6, m7 on 11-03; m8 on 11-05), m4 the error; 7 calls:
    # input 1000 + 2000 + 500 + 10 + 1000 + 2000 + 100, output 100 + 200 + 50 + 10 + 1000 + 0 + 100;
    # cost: anthropic 0.05 + 0.1, azure 0.02, openai gpt-4o m1 0.0035 + m3 0.001625 + m8 0.005 (m5 unpriced)
    assert doc["totals"] == {"messages": 9, "sessions": 6, "errors": 1, "cost_usd": pytest.approx(0.180125, abs=1e-12),
                             "input_tokens": 6610, "output_tokens": 1460, "total_tokens": 8070, "llm_calls": 7}
    assert doc["note"] is None
    o = doc["overview"]
    assert (o["messages"]["value"], o["sessions"]["value"], o["active_users"]["value"]) == (9, 6, 3)
    # nothing in the 4 days before: counts are new, the error rate has nothing to compare with
    assert o["messages"] == {"value": 9, "previous": 0, "change_pct": None, "trend": "new"}
    assert o["dau"] == {"value": 1, "previous": 0, "change_pct": None, "trend": "new", "date": "2026-11-05",
                        "partial": False}
    assert o["error_rate_pct"] == {"value": pytest.approx(100 / 9), "previous": None, "change_pp": None,
                                   "trend": "no data"}
    assert doc["performance"]["errors"] == 1
    assert doc["cost"]["total_usd"] == pytest.approx(0.180125, abs=1e-12)
    assert doc["performance"]["p95_response_time_ms"] == pytest.approx(7650.0)  # 8 timed: 7000 + 0.65 * 1000
    assert [(p["provider"], round(p["cost_usd"], 6), p["calls"], p["unpriced_calls"], p["previous_cost_usd"],
             p["change_pct"]) for p in doc["cost"]["by_provider"]] == [
        ("anthropic", 0.15, 2, 0, 0.0, None), ("azure", 0.02, 1, 0, 0.0, None), ("openai", 0.010125, 4, 1, 0.0, None)
    ]
    assert [(a["agent_id"], a["agent_label"], round(a["cost_usd"], 6)) for a in doc["cost"]["by_agent"]] == [
        ("sales", "Sales Agent (sales)", 0.125), ("support", "Support Agent (support)", 0.055125)
    ]
    assert doc["cost"]["unpriced"] == {"calls": 1, "input_tokens": 10, "output_tokens": 10, "total_tokens": 20}
    # daily rows (tests/test_end_to_end.py::test_daily_activity / test_daily_csv_export); 11-04 has no
    # messages: its ratios have no value
    assert [(r["date"], r["partial"], r["dau"], r["wau"], r["mau"], r["sessions"], r["messages"], r["errors"],
             r["llm_calls"], r["total_tokens"]) for r in doc["daily"]] == [
        ("2026-11-02", False, 3, 3, 3, 4, 6, 1, 5, 4070), ("2026-11-03", False, 2, 3, 3, 1, 2, 0, 1, 2000),
        ("2026-11-04", False, 0, 3, 3, 0, 0, 0, 0, 0), ("2026-11-05", False, 1, 3, 3, 1, 1, 0, 1, 2000),
    ]
    day2 = doc["daily"][0]
    assert (round(day2["cost_usd"], 6), round(day2["cost_per_message"], 6), day2["avg_response_time_ms"],
            round(day2["error_rate"], 6)) == (0.155125, 0.025854, 3600.0, 0.166667)
    assert {k: doc["daily"][2][k] for k in ("cost_per_message", "avg_response_time_ms", "error_rate")} == {
        "cost_per_message": None, "avg_response_time_ms": None, "error_rate": None}
    # 2026-11-02 is a Monday: one week of 4 days, partial (fewer than 7), the same sums as the totals
    assert doc["weekly"] == [{"week_start": "2026-11-02", "days": 4, "partial": True, "sessions": 6, "messages": 9,
                              "errors": 1, "cost_usd": pytest.approx(0.180125, abs=1e-12), "input_tokens": 6610,
                              "output_tokens": 1460, "total_tokens": 8070, "llm_calls": 7}]
    # sessions: durations 2403 s, 0, 8 s, 1205 s, 6 s, 7 s; sizes 3, 1, 1, 2, 1, 1
    e = doc["engagement"]
    assert [(b["sessions"], b["share_pct"]) for b in e["session_duration_distribution"]] == [
        (4, 66.67), (0, 0.0), (0, 0.0), (2, 33.33)
    ]
    assert [(b["sessions"], b["share_pct"]) for b in e["messages_per_session_distribution"]] == [
        (5, 83.33), (1, 16.67), (0, 0.0), (0, 0.0)
    ]
    assert e["avg_session_duration_ms"] == pytest.approx((2_403_000 + 8_000 + 1_205_000 + 6_000 + 7_000) / 6)
    # sales 11-02: 4000, 8000; support: 1000, 2000, 3000 (+ m4 untimed): hourly p95 at 10:00 = 2900
    assert doc["performance"]["hourly"][10] == {"hour": 10, "messages": 3, "avg_response_time_ms": 2000.0,
                                                "p95_response_time_ms": pytest.approx(2900.0)}
    # support: m1-m4 (2 sessions: m4 comes 31 min after m3) + m7; sales: m5+m6, m9, m8
    assert [(a["agent_id"], a["agent_label"], a["messages"], a["sessions"], a["errors"], a["llm_calls"],
             a["error_rate_pct"]) for a in doc["performance"]["agents"]] == [
        ("support", "Support Agent (support)", 5, 3, 1, 3, 20.0), ("sales", "Sales Agent (sales)", 4, 3, 0, 4, 0.0)
    ]
    support = doc["performance"]["agents"][0]["vs_previous"]
    assert support["sessions"] == {"value": 3, "previous": 0, "change_pct": None, "trend": "new"}
    assert support["avg_response_time_ms"] == {"value": 3000.0, "previous": None, "change_pct": None,
                                               "trend": "no data"}
    assert support["error_rate_pct"] == {"value": 20.0, "previous": None, "change_pp": None, "trend": "no data"}
    assert doc["tokens"]["vs_previous"]["total_tokens"] == {"value": 8070, "previous": 0, "change_pct": None,
                                                            "trend": "new"}
    # health at 11-06 00:00: the 3-minute api incident of 11-02 lies in the 7 d window; nothing the 7 d before
    assert [(u["window"], u["probes"], u["uptime_pct"], u["incidents"], u["downtime_minutes"],
             u["previous_uptime_pct"], u["change_pp"]) for u in doc["health"]["uptime"]] == [
        ("24h", 0, None, 0, 0.0, None, None), ("7d", 10, 70.0, 1, 3.0, None, None),
        ("30d", 10, 70.0, 1, 3.0, None, None)
    ]
    # error-rate windows at 11-06 00:00: only m8 (11-05 08:00) in the last 24 h, all 9 in the last 7 d
    assert [(w["window"], w["messages"], w["error_rate_pct"], w["status"], w["previous_error_rate_pct"],
             w["change_pp"]) for w in doc["health"]["error_rate"]] == [
        ("current", 0, None, "No data", None, None), ("1h", 0, None, "No data", None, None),
        ("24h", 1, 0.0, "Excellent", None, None), ("7d", 9, pytest.approx(100 / 9), "Poor", None, None)
    ]
    # no message at or after 11-06 00:00: the empty last minute has no data; 11-05 had one message
    assert doc["health"]["request_volume"] == {"current_per_min": None, "peak_per_min_today": 1,
                                               "peak_minute": "2026-11-05T08:00:00Z", "capacity_per_min": 500,
                                               "headroom_pct": pytest.approx(99.8)}
    assert doc["health"]["response_time"]["p50_ms"] == pytest.approx(4500.0)  # 4000 + 0.5 * 1000
    assert (doc["health"]["response_time"]["p50_previous_ms"], doc["health"]["response_time"]["p50_change_pct"]) == (
        None, None)
    assert doc["health"]["queues"] == [
        {"queue": "default", "latest_depth": 10, "avg_depth": 5.0, "max_depth": 10, "p95_depth": pytest.approx(9.5)}
    ]


def test_oracle_on_the_hand_fixture_for_one_agent():
    doc = hand({"kind": "custom", "start": date(2026, 11, 2), "end": date(2026, 11, 3)}, agents=["sales"])
    assert schema_errors(doc) == []
    # tests/test_end_to_end.py::test_export_for_one_agent
    assert [(r["dau"], r["wau"], r["sessions"], r["messages"], round(r["cost_usd"], 6)) for r in doc["daily"]] == [
        (2, 2, 2, 2, 0.1), (1, 2, 0, 1, 0.02)
    ]
    assert doc["scope"] == {"agents": ["sales"]}
    assert [a["agent_id"] for a in doc["performance"]["agents"]] == ["sales"]
    assert doc["totals"]["messages"] == 3 and doc["totals"]["llm_calls"] == 3  # m5, m9, m6


def test_oracle_month_to_date_counts_up_to_as_of():
    # 2026-11 on 11-03 at 06:00 UTC: days 11-01..11-03, the last cut at 06:00 (m6 at 00:10 in, m7 at 12:00 out)
    doc = hand({"kind": "month", "month": "2026-11"}, as_of=datetime(2026, 11, 3, 6, tzinfo=timezone.utc))
    assert schema_errors(doc) == []
    assert doc["period"] == {"label": "2026-11", "kind": "month", "start": "2026-11-01T00:00:00Z",
                             "end": "2026-11-03T06:00:00Z", "full_end": "2026-12-01T00:00:00Z",
                             "start_date": "2026-11-01", "end_date": "2026-11-03", "days": 2.25, "partial": True}
    # the previous month stops at the same point: 10-03 06:00
    assert doc["previous_period"] == {"label": "previous 2026-11", "kind": "month", "start": "2026-10-01T00:00:00Z",
                                      "end": "2026-10-03T06:00:00Z", "full_end": "2026-11-01T00:00:00Z",
                                      "start_date": "2026-10-01", "end_date": "2026-10-03", "days": 2.25,
                                      "partial": True}
    # 11-03 up to 06:00 has u2 only (u3 writes at 12:00): DAU 1, not the whole day's 2 and not 0
    assert [(r["date"], r["partial"], r["dau"], r["wau"], r["messages"], r["sessions"]) for r in doc["daily"]] == [
        ("2026-11-01", False, 0, 0, 0, 0), ("2026-11-02", False, 3, 3, 6, 4), ("2026-11-03", True, 1, 3, 1, 0)
    ]
    assert doc["overview"]["dau"] == {"value": 1, "previous": 0, "change_pct": None, "trend": "new",
                                      "date": "2026-11-03", "partial": True}
    # 11-01 is a Sunday: weeks of 10-26 (1 day) and 11-02 (2 days, the last one partial)
    assert [(w["week_start"], w["days"], w["partial"], w["messages"]) for w in doc["weekly"]] == [
        ("2026-10-26", 1, True, 0), ("2026-11-02", 2, True, 7)
    ]
    # m1-m5, m9 and m6: 6 calls; cost 0.155125 + m6's 0.02
    assert doc["totals"] == {"messages": 7, "sessions": 4, "errors": 1, "cost_usd": pytest.approx(0.175125, abs=1e-12),
                             "input_tokens": 4610, "output_tokens": 1460, "total_tokens": 6070, "llm_calls": 6}
    assert [(m["month"], round(m["cost_usd"], 6)) for m in doc["cost"]["by_month"]] == [("2026-11", 0.175125)]
    # the last minute [05:59, 06:00) is empty but m7 lies after it: 0, not "no data"; 11-03's peak is m6
    volume = doc["health"]["request_volume"]
    assert (volume["current_per_min"], volume["peak_per_min_today"], volume["peak_minute"]) == (
        0, 1, "2026-11-03T00:10:00Z")


def test_oracle_period_rules():
    # a rolling period is whole local days: as_of at local midnight ends with the day before
    at_midnight = hand({"kind": "rolling", "days": 7, "label": "week"}, as_of=datetime(2026, 11, 3, tzinfo=timezone.utc))
    p, q = at_midnight["period"], at_midnight["previous_period"]
    assert (p["start"], p["end"], p["start_date"], p["end_date"], p["partial"]) == (
        "2026-10-27T00:00:00Z", "2026-11-03T00:00:00Z", "2026-10-27", "2026-11-02", False)
    assert (q["start"], q["end"], q["label"], q["kind"]) == ("2026-10-20T00:00:00Z", "2026-10-27T00:00:00Z",
                                                             "previous week", "rolling")
    # mid-day: the 7 days 11-14..11-20, the last up to 15:30; the previous week stops at 11-13 15:30
    rolling = hand({"kind": "rolling", "days": 7, "label": "week"})
    p, q = rolling["period"], rolling["previous_period"]
    assert (p["start"], p["end"], p["full_end"], p["partial"]) == (
        "2026-11-14T00:00:00Z", AS_OF_TEXT, "2026-11-21T00:00:00Z", True)
    assert p["days"] == pytest.approx(6 + 15.5 / 24)
    assert (q["start"], q["end"], q["full_end"], q["partial"]) == (
        "2026-11-07T00:00:00Z", "2026-11-13T15:30:00Z", "2026-11-14T00:00:00Z", True)
    assert rolling["note"] == "No messages in this period and scope: counts are 0 and ratios have no value."
    assert (rolling["performance"]["error_rate_pct"], rolling["engagement"]["avg_session_duration_ms"],
            rolling["cost"]["cost_per_message_usd"], rolling["tokens"]["avg_tokens_per_message"]) == (
        None, None, None, None)
    # a month whose previous month has no such day: all of the previous month
    march = hand({"kind": "month", "month": "2026-03"}, as_of=datetime(2026, 3, 30, 12, tzinfo=timezone.utc))
    assert (march["previous_period"]["start"], march["previous_period"]["end"],
            march["previous_period"]["partial"]) == ("2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z", False)
    # a period that has not started is refused
    with pytest.raises(ValueError):
        hand({"kind": "custom", "start": date(2026, 11, 21), "end": date(2026, 11, 22)})


def test_oracle_previous_period_and_dst():
    doc = hand({"kind": "custom", "start": date(2026, 10, 25), "end": date(2026, 11, 7)}, tz="America/New_York")
    assert schema_errors(doc) == []
    p, q = doc["period"], doc["previous_period"]
    assert (p["start"], p["end"], p["start_date"], p["end_date"]) == (
        "2026-10-25T04:00:00Z", "2026-11-08T05:00:00Z", "2026-10-25", "2026-11-07"
    )
    # 14 local days; the current ones hold the 25-hour 11-01, the previous 14 (10-11..10-24) do not
    assert p["days"] == pytest.approx(14 + 1 / 24) and q["days"] == 14.0
    assert (q["start"], q["end"], q["start_date"], q["end_date"]) == (
        "2026-10-11T04:00:00Z", "2026-10-25T04:00:00Z", "2026-10-11", "2026-10-24")
    # m5 (11-02 23:50 UTC) is 18:50 in New York: local hour 18
    assert doc["performance"]["hourly"][18]["messages"] == 1
    # month to date in New York at 11-20 10:30 EST: the previous month stops at 10-20 10:30 EDT (14:30 UTC)
    mtd = hand({"kind": "month", "month": "2026-11"}, tz="America/New_York")
    assert (mtd["period"]["start"], mtd["period"]["end"], mtd["period"]["full_end"]) == (
        "2026-11-01T04:00:00Z", AS_OF_TEXT, "2026-12-01T05:00:00Z")
    assert (mtd["previous_period"]["start"], mtd["previous_period"]["end"]) == (
        "2026-10-01T04:00:00Z", "2026-10-20T14:30:00Z")
    # Kathmandu (UTC+5:45): today at 11-03 06:00 UTC is 11-03 from 11-02 18:15 UTC; m5 (23:50) and m6 (00:10)
    kathmandu = hand({"kind": "rolling", "days": 1, "label": "today"}, tz="Asia/Kathmandu",
                     as_of=datetime(2026, 11, 3, 6, tzinfo=timezone.utc))
    assert (kathmandu["period"]["start"], kathmandu["previous_period"]["start"],
            kathmandu["previous_period"]["end"]) == (
        "2026-11-02T18:15:00Z", "2026-11-01T18:15:00Z", "2026-11-02T06:00:00Z")
    assert kathmandu["totals"]["messages"] == 2
    # previous: 11-01 18:15 .. 11-02 06:00 UTC holds nothing
    assert kathmandu["overview"]["messages"] == {"value": 2, "previous": 0, "change_pct": None, "trend": "new"}


def test_largest_remainder_shares_add_to_100():
    assert oracle.largest_remainder([1, 1, 1]) == [33.34, 33.33, 33.33]
    assert oracle.largest_remainder([0, 0]) == [0.0, 0.0]
    assert round(sum(oracle.largest_remainder([3, 7, 11, 13])), 2) == 100.0


def test_changes_round_half_up_and_say_no_data():
    assert oracle.change_pct(3, 8) == -62.5
    assert oracle.change_pct(Fraction(2001, 2), 1000) == 0.1  # +0.05 % exactly: half up
    assert oracle.change_pct(Fraction(1999, 2), 1000) == -0.1  # -0.05 %: half away from zero
    assert oracle.change_pct(5, 0) is None and oracle.change_pct(None, 5) is None
    assert oracle.change_pp(Fraction(1, 8), 0) == 0.13 and oracle.change_pp(20, None) is None
    assert oracle.compared(0, 0) == {"value": 0, "previous": 0, "change_pct": None, "trend": "unchanged"}
    assert oracle.compared(Fraction(3, 2), None) == {"value": 1.5, "previous": None, "change_pct": None,
                                                     "trend": "no data"}
    # in points a previous rate of 0 is a value like any other
    assert oracle.compared_pp(Fraction(1, 2), 0) == {"value": 0.5, "previous": 0, "change_pp": 0.5, "trend": "up"}


def _msg(event_id: str, at: str, user: str, agent: str = "long", **fields) -> str:
    record = {"event_id": event_id, "type": "message", "occurred_at": at, "user_id": user, "agent_id": agent,
              "status": "ok", "response_time_ms": 1000} | fields
    return json.dumps({k: v for k, v in record.items() if v is not ...})


def test_oracle_contract_edge_cases(tmp_path):
    start = datetime(2026, 11, 2, tzinfo=timezone.utc)
    # one user writing every 20 minutes for 30 h: one gap run, cut at 24 h from its first message
    run = [_msg(f"r{i}", (start + timedelta(minutes=20 * i)).strftime("%Y-%m-%dT%H:%M:%SZ"), "u1")
           for i in range(91)]
    first = run + [
        _msg("e1", "2026-11-02T05:00:00Z", "u2", status="error", response_time_ms=..., agent_name=None,
             llm_calls=None),  # JSON null reads as absent
        _msg("o1", "2026-11-03T10:00:00+01:00", "u3", llm_calls=[
            {"provider": "gcp.gemini", "model": "gemini-1.5-flash", "input_tokens": 1000, "output_tokens": 100},
            {"provider": "Azure.AI.OpenAI", "model": "gpt-4o", "input_tokens": 10, "output_tokens": 10, "cost_usd": 0.5},
        ]),
        "",
        "[1]",
        '{"event_id":"n1","type":"message","occurred_at":"2026-11-02T01:00:00Z","user_id":"u9","agent_id":"long",'
        '"status":"ok","response_time_ms":NaN}',
        _msg("b1", "2026-11-02T01:00:00Z", "u9", response_time_ms=...),  # ok without response time
        _msg("b2", "2026-11-02T01:00:00Z", "u9", response_time_ms=True),
        _msg("b3", "2026-11-02T01:00:00Z", "u9", llm_calls=[{"provider": "openai", "model": "gpt-4o",
                                                              "input_tokens": 1.5, "output_tokens": 1}]),
        _msg("b4", "2026-11-02T01:00:00Z", "u9", llm_calls=[{"provider": "openai", "model": "gpt-4o",
                                                              "input_tokens": 5, "output_tokens": 1,
                                                              "cache_read_tokens": 6}]),
        _msg("b5", "yesterday", "u9"),
        _msg("x" * 201, "2026-11-02T01:00:00Z", "u9"),
        json.dumps({"event_id": "b6", "type": "click", "occurred_at": "2026-11-02T01:00:00Z", "user_id": "u9"}),
        '{"event_id": "b7", "type": ',
    ]
    a = tmp_path / "a.jsonl.gz"
    with gzip.open(a, "wt", encoding="utf-8") as f:
        f.write("\n".join(first) + "\n")
    b = tmp_path / "b.jsonl"
    b.write_text(_msg("e1", "2026-11-02T05:00:00Z", "u7", agent="other") + "\n"  # duplicate id: the first wins
                 + _msg("b8", "2026-11-02T01:00:00Z", "u9", status="maybe") + "\n")

    doc = oracle.compute([a, b], {"kind": "custom", "start": date(2026, 11, 2), "end": date(2026, 11, 3)}, "UTC",
                         AS_OF, None, SETTINGS)
    assert schema_errors(doc) == []
    assert doc["performance"]["messages"] == 93 and doc["performance"]["errors"] == 1
    assert doc["overview"]["active_users"]["value"] == 3
    assert [a["agent_id"] for a in doc["performance"]["agents"]] == ["long"]  # "other" was only a duplicate
    # sessions: u1 72 + 19 messages (cut at 24 h), u2 1, u3 1
    assert doc["engagement"]["sessions"] == 4
    assert [b["sessions"] for b in doc["engagement"]["messages_per_session_distribution"]] == [2, 0, 0, 2]
    assert doc["daily"][0]["sessions"] == 2 and doc["daily"][1]["sessions"] == 2
    assert [b["sessions"] for b in doc["engagement"]["session_duration_distribution"]] == [2, 0, 0, 2]
    assert doc["engagement"]["avg_session_duration_ms"] == pytest.approx(
        (1420 * 60_000 + 1000 + 360 * 60_000 + 1000 + 0 + 1000) / 4
    )
    providers = {p["provider"]: p for p in doc["cost"]["by_provider"]}
    assert set(providers) == {"google", "azure"}
    assert providers["azure"]["cost_usd"] == 0.5 and providers["google"]["cost_usd"] > 0
    assert doc["cost"]["unpriced"]["calls"] == 0
    assert doc["performance"]["hourly"][9]["messages"] == 1 + 3  # o1 at 09:00 UTC; r27..r29 on 11-02


# ============================================================================ warehouse vs oracle

NY, KOLKATA, KATHMANDU = "America/New_York", "Asia/Kolkata", "Asia/Kathmandu"
# (id, CLI arguments, the oracle's period, time zone, agents, as_of): every period kind, with and
# without agents, in UTC, across New York's DST change (11-01) and in +5:30 / +5:45 zones
CASES = [
    ("today", ["--period", "today"], {"kind": "rolling", "days": 1, "label": "today"}, "UTC", None, AS_OF_TEXT),
    ("today-an-hour-in", ["--period", "today"], {"kind": "rolling", "days": 1, "label": "today"}, "UTC", None,
     "2026-11-20T01:15:00Z"),
    ("week-kolkata-one-agent", ["--period", "week", "--agent", "support"],
     {"kind": "rolling", "days": 7, "label": "week"}, KOLKATA, ["support"], AS_OF_TEXT),
    ("week-at-local-midnight-new-york", ["--period", "week"], {"kind": "rolling", "days": 7, "label": "week"}, NY,
     None, "2026-11-16T05:00:00Z"),
    ("30d-new-york-across-dst", ["--period", "30d"], {"kind": "rolling", "days": 30, "label": "30d"}, NY, None,
     AS_OF_TEXT),
    ("month-two-agents", ["--period", "month", "--agent", "support", "--agent", "sales"],
     {"kind": "rolling", "days": 30, "label": "month"}, "UTC", ["support", "sales"], AS_OF_TEXT),
    ("custom", ["--start", "2026-11-02", "--end", "2026-11-15"],
     {"kind": "custom", "start": date(2026, 11, 2), "end": date(2026, 11, 15)}, "UTC", None, AS_OF_TEXT),
    ("custom-new-york-across-dst-one-agent", ["--start", "2026-10-25", "--end", "2026-11-07", "--agent", "faq"],
     {"kind": "custom", "start": date(2026, 10, 25), "end": date(2026, 11, 7)}, NY, ["faq"], AS_OF_TEXT),
    ("custom-ending-after-as-of-kathmandu", ["--start", "2026-11-14", "--end", "2026-11-26"],
     {"kind": "custom", "start": date(2026, 11, 14), "end": date(2026, 11, 26)}, KATHMANDU, None, AS_OF_TEXT),
    ("calendar-month", ["--month", "2026-10"], {"kind": "month", "month": "2026-10"}, "UTC", None, AS_OF_TEXT),
    ("month-to-date", ["--month", "2026-11"], {"kind": "month", "month": "2026-11"}, "UTC", None, AS_OF_TEXT),
    ("month-to-date-new-york-one-agent", ["--month", "2026-11", "--agent", "tech"],
     {"kind": "month", "month": "2026-11"}, NY, ["tech"], AS_OF_TEXT),
    ("month-to-date-kolkata-two-agents", ["--month", "2026-11", "--agent", "sales", "--agent", "onboarding"],
     {"kind": "month", "month": "2026-11"}, KOLKATA, ["sales", "onboarding"], AS_OF_TEXT),
    # a custom period cut by an as_of at local midnight: partial, yet no day is cut
    ("custom-cut-at-midnight-kolkata", ["--start", "2026-11-14", "--end", "2026-11-26"],
     {"kind": "custom", "start": date(2026, 11, 14), "end": date(2026, 11, 26)}, KOLKATA, None,
     "2026-11-17T18:30:00Z"),
    # October to date on the 31st: September has no 31st, so the previous period is all of it
    ("month-to-date-on-the-31st", ["--month", "2026-10"], {"kind": "month", "month": "2026-10"}, "UTC", None,
     "2026-10-31T12:00:00Z"),
    # the data ends on 11-20: the last minute and 11-24 have no data (null, not 0)
    ("week-beyond-the-data", ["--period", "week"], {"kind": "rolling", "days": 7, "label": "week"}, "UTC", None,
     "2026-11-24T12:00:00Z"),
    # whole UTC days of a company-wide document come from the daily marts, but for 11-21 and
    # 11-22, after the last built day, which are counted from the messages (WAU and MAU not 0)
    ("30d-whole-days-past-the-data", ["--period", "30d"], {"kind": "rolling", "days": 30, "label": "30d"}, "UTC",
     None, "2026-11-23T00:00:00Z"),
    # the days before the data (it starts on 10-07): counts 0, ratios and changes without a value
    ("custom-before-the-data-one-agent", ["--start", "2026-09-25", "--end", "2026-10-06", "--agent", "faq"],
     {"kind": "custom", "start": date(2026, 9, 25), "end": date(2026, 10, 6)}, "UTC", ["faq"], AS_OF_TEXT),
]
EMPTY_CASES = {"custom-before-the-data-one-agent"}
CASE_IDS = [c[0] for c in CASES]
BY_ID = {c[0]: c for c in CASES}
ADDITIVE = ("messages", "sessions", "errors", "cost_usd", "input_tokens", "output_tokens", "total_tokens", "llm_calls")
TOKENS = ("input_tokens", "output_tokens", "total_tokens")


def _cli(env: dict, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "agent_analytics_cli", *args], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=timeout)


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """45 days of generated events ingested and built into a fresh home: (files, env)."""
    from agent_analytics.synthetic_events import (
        generate,  # the project's generator: allowed here, never in oracle.py
    )

    base = tmp_path_factory.mktemp("oracle")
    data = base / "data"
    result = generate(data, 40_000, 45, seed=11, end=date(2026, 11, 20))
    landing = base / "to-ingest"  # a copy, in case ingest moves or touches its input
    shutil.copytree(data, landing)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENT_ANALYTICS_")}
    (base / "goals.toml").write_text(GOALS_TOML)
    env.update(AGENT_ANALYTICS_HOME=str(base / "home"), AGENT_ANALYTICS_TZ="UTC", AGENT_ANALYTICS_GOALS=str(base / "goals.toml"))
    env.pop("DAGSTER_HOME", None)
    for args in (("ingest", str(landing)), ("build",)):
        proc = _cli(env, *args)
        assert proc.returncode == 0, f"agent-analytics {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return result.files, env


_DOCS: dict[str, dict] = {}


def cli_document(generated, case_id: str) -> dict:
    """`agent-analytics metrics --format json` of a case (run once per module)."""
    files, env = generated
    key = f"{env['AGENT_ANALYTICS_HOME']} {case_id}"
    if key not in _DOCS:
        _, args, _, tz, _, as_of = BY_ID[case_id]
        proc = _cli(env, "metrics", "--format", "json", "--as-of", as_of, "--tz", tz, *args)
        assert proc.returncode == 0, f"agent-analytics metrics {' '.join(args)} failed:\n{proc.stderr}"
        _DOCS[key] = json.loads(proc.stdout)
    return _DOCS[key]


@pytest.mark.parametrize("case_id", CASE_IDS)
def test_metrics_equal_the_oracle(generated, case_id):
    _, _, period, tz, agents, as_of = BY_ID[case_id]
    got = cli_document(generated, case_id)
    want = oracle.compute(generated[0], period, tz, datetime.fromisoformat(as_of), agents,
                          {**SETTINGS, "goals": GOALS, "budgets": BUDGETS})

    assert schema_errors(want) == [], "the oracle's own document does not fit the schema"
    problems = schema_errors(got)
    assert not problems, "the warehouse's document does not fit the schema:\n" + "\n".join(problems[:100])
    assert_same(got, want)


def partition_problems(doc: dict) -> list[str]:
    """Where a breakdown of the document does not add up to `totals` (integers exact, money to the cent)."""
    totals, problems = doc["totals"], []

    def check(where: str, rows: list[dict], keys, rename: dict | None = None) -> None:
        for key in keys:
            field = (rename or {}).get(key, key)
            got = sum(r[field] for r in rows)
            same = abs(got - totals[key]) < 0.005 if key == "cost_usd" else got == totals[key]
            if not same:
                problems.append(f"sum of {where}[].{field} = {got!r}, totals.{key} = {totals[key]!r}")

    check("daily", doc["daily"], ADDITIVE)
    check("weekly", doc["weekly"], ADDITIVE)
    check("performance.agents", doc["performance"]["agents"], ADDITIVE)
    check("cost.by_day", doc["cost"]["by_day"], ["cost_usd"])
    check("cost.by_week", doc["cost"]["by_week"], ["cost_usd"])
    check("cost.by_month", doc["cost"]["by_month"], ["cost_usd"])
    check("cost.by_agent", doc["cost"]["by_agent"], ["cost_usd"])
    for where in ("by_provider", "by_model"):
        check(f"cost.{where}", doc["cost"][where], ["cost_usd", "llm_calls"], {"llm_calls": "calls"})
    for where in ("by_agent", "by_model"):
        check(f"tokens.{where}", doc["tokens"][where], TOKENS)
    if sum(w["days"] for w in doc["weekly"]) != len(doc["daily"]):
        problems.append("the weekly rows do not hold every daily row once")
    # only the last day can be cut, and only in a partial period (one cut at a local midnight has no cut day)
    flagged = [r["date"] for r in doc["daily"] if r["partial"]]
    if flagged not in ([], [doc["period"]["end_date"]]) or (flagged and not doc["period"]["partial"]):
        problems.append(f"partial days {flagged} with period.partial {doc['period']['partial']}")
    o = doc["overview"]
    same_as_totals = {
        "overview.messages": (o["messages"]["value"], totals["messages"]),
        "overview.sessions": (o["sessions"]["value"], totals["sessions"]),
        "overview.cost_usd": (o["cost_usd"]["value"], totals["cost_usd"]),
        "engagement.sessions": (doc["engagement"]["sessions"], totals["sessions"]),
        "performance.messages": (doc["performance"]["messages"], totals["messages"]),
        "performance.errors": (doc["performance"]["errors"], totals["errors"]),
        "cost.total_usd": (doc["cost"]["total_usd"], totals["cost_usd"]),
        **{f"tokens.{k}": (doc["tokens"][k], totals[k]) for k in TOKENS},
        "overview.dau": (o["dau"]["value"], doc["daily"][-1]["dau"]),
    }
    # schema 3.2: the hours partition the window, new + returning users are each day's DAU
    for key in ("messages", "errors"):
        if sum(h[key] for h in doc["performance"]["hour_by_hour"]) != totals[key]:
            problems.append(f"sum of performance.hour_by_hour[].{key} != totals.{key}")
    if [(d["date"], d["new_users"] + d["returning_users"]) for d in doc["users"]["new_vs_returning"]] != [
            (d["date"], d["dau"]) for d in doc["daily"]]:
        problems.append("users.new_vs_returning: new + returning is not the daily DAU")
    problems += [f"{name} = {a!r}, totals say {b!r}" for name, (a, b) in same_as_totals.items()
                 if (abs(a - b) >= 0.005 if name.endswith("_usd") else a != b)]
    return problems


@pytest.mark.parametrize("case_id", CASE_IDS)
def test_cli_breakdowns_add_up_to_the_totals(generated, case_id):
    doc = cli_document(generated, case_id)
    assert (doc["totals"]["messages"] == 0) == (case_id in EMPTY_CASES)
    assert partition_problems(doc) == []


def test_month_to_date_counts_up_to_as_of(generated):
    """--month of as_of's month: partial, DAU of as_of's day up to as_of, the previous month to the same point."""
    doc = cli_document(generated, "month-to-date")
    users = {"2026-11-20": set(), "2026-10-20": set()}
    for rec in oracle.read_records(generated[0]):  # the raw events, counted here by hand
        day = rec["ts"].date().isoformat()
        if rec["type"] == "message" and day in users and rec["ts"].time() < AS_OF.time():
            users[day].add(rec["user_id"])
    assert len(users["2026-11-20"]) > 0
    p, q = doc["period"], doc["previous_period"]
    assert (p["start"], p["end"], p["full_end"], p["end_date"], p["partial"]) == (
        "2026-11-01T00:00:00Z", AS_OF_TEXT, "2026-12-01T00:00:00Z", "2026-11-20", True)
    assert (q["start"], q["end"], q["full_end"], q["end_date"], q["partial"]) == (
        "2026-10-01T00:00:00Z", "2026-10-20T15:30:00Z", "2026-11-01T00:00:00Z", "2026-10-20", True)
    dau = doc["overview"]["dau"]
    assert (dau["value"], dau["previous"], dau["date"], dau["partial"]) == (
        len(users["2026-11-20"]), len(users["2026-10-20"]), "2026-11-20", True)
    assert doc["daily"][-1] | {"dau": len(users["2026-11-20"]), "date": "2026-11-20", "partial": True} == doc["daily"][-1]


def test_whole_days_come_from_the_daily_marts(generated):
    """The cases above take both paths of the daily series: the first day the daily marts do
    not answer is the period's first (all counted from the messages) for an agent scope,
    another time zone or a cut day, later for whole UTC days (the home's zone)."""
    import duckdb

    from agent_analytics.metrics.compute import _first_unbuilt_day
    from agent_analytics.periods import parse_as_of, parse_period
    from agent_analytics.settings import load_settings

    settings = load_settings(generated[1])
    expected = {
        "30d-whole-days-past-the-data": date(2026, 11, 21),  # built to 11-20, the last day with data
        "calendar-month": date(2026, 11, 1),  # all of October
        "custom": date(2026, 11, 16),  # after its last day: all 14 days from the marts
        "month-to-date": date(2026, 11, 20),  # to the day before the cut day
        "month-two-agents": date(2026, 10, 22),
        "30d-new-york-across-dst": date(2026, 10, 22),
    }
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        for case_id, first_counted in expected.items():
            _, args, _, tz, agents, as_of = BY_ID[case_id]
            kind = dict(zip(args[::2], args[1::2], strict=False))
            period = parse_period(kind.get("--period"), kind.get("--start"), kind.get("--end"), kind.get("--month"),
                                  parse_as_of(as_of, tz), tz)
            assert _first_unbuilt_day(con, period, {"agents": agents}, settings.company_tz) == first_counted, case_id
    finally:
        con.close()


@pytest.mark.parametrize("case_id", ["30d-new-york-across-dst", "month-to-date-kolkata-two-agents",
                                     "custom-before-the-data-one-agent"])
def test_csv_rows_are_the_daily_rows(generated, case_id, tmp_path):
    """`export --format csv`: the oracle's daily rows as printed, summing to the JSON's totals."""
    _, args, period, tz, agents, as_of = BY_ID[case_id]
    files, env = generated
    out = tmp_path / "daily.csv"
    proc = _cli(env, "export", "--format", "csv", "--as-of", as_of, "--tz", tz, *args, "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(out.read_text().splitlines()))
    want = oracle.compute(files, period, tz, datetime.fromisoformat(as_of), agents, SETTINGS)["daily"]
    assert [r["date"] for r in rows] == [d["date"] for d in want]
    problems = []
    for row, day in zip(rows, want, strict=True):
        for column, text in row.items():
            expected = day[column]
            if column == "date":
                continue
            if isinstance(expected, bool):
                same = text == str(expected).lower()
            elif expected is None:
                same = text == ""  # no value: an empty cell
            elif isinstance(expected, int):
                same = text == str(expected)
            else:  # the value rounded to the digits printed
                digits = len(text.partition(".")[2])
                same = text != "" and abs(float(text) - expected) <= 0.5 * 10**-digits + 1e-9
            if not same:
                problems.append(f"{row['date']} {column}: csv {text!r}, oracle {expected!r}")
    assert problems == []
    totals = cli_document(generated, case_id)["totals"]
    for column in ADDITIVE:
        total = sum(float(r[column]) for r in rows)
        assert abs(total - totals[column]) < 0.005 if column == "cost_usd" else total == totals[column], column
