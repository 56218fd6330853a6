"""Days and hours across the end of daylight-saving time (Europe/Berlin, 2026-10-25).

Clocks go from 03:00 CEST back to 02:00 CET at 01:00 UTC, so local 2026-10-25 lasts 25
hours: [2026-10-24 22:00 UTC, 2026-10-25 23:00 UTC). Six one-message users (1 s each):

  e6 2026-10-24 21:30 UTC = 10-24 23:30 CEST
  e1 2026-10-24 22:30 UTC = 10-25 00:30 CEST
  e2 2026-10-25 00:30 UTC = 10-25 02:30 CEST
  e3 2026-10-25 01:30 UTC = 10-25 02:30 CET   (the repeated hour)
  e4 2026-10-25 22:30 UTC = 10-25 23:30 CET
  e5 2026-10-25 23:30 UTC = 10-26 00:30 CET
"""

import json
import os

import duckdb
import pytest

from agent_analytics.settings import load_settings
from agent_analytics_cli.main import main
from orchestration.build import run_build

EVENTS = [("e6", "2026-10-24T21:30:00Z"), ("e1", "2026-10-24T22:30:00Z"), ("e2", "2026-10-25T00:30:00Z"),
          ("e3", "2026-10-25T01:30:00Z"), ("e4", "2026-10-25T22:30:00Z"), ("e5", "2026-10-25T23:30:00Z")]


@pytest.fixture(scope="module")
def berlin(tmp_path_factory):
    home = tmp_path_factory.mktemp("berlin")
    events = home / "dst.jsonl"
    events.write_text("".join(
        json.dumps({"event_id": eid, "type": "message", "occurred_at": at, "user_id": f"u-{eid}", "agent_id": "support",
                    "status": "ok", "response_time_ms": 1000}) + "\n"
        for eid, at in EVENTS
    ))
    patch = pytest.MonkeyPatch()
    patch.setenv("AGENT_ANALYTICS_HOME", str(home))
    patch.setenv("AGENT_ANALYTICS_TZ", "Europe/Berlin")
    saved_env = dict(os.environ)
    settings = load_settings()
    assert main(["ingest", str(events)]) == 0
    assert run_build(settings)
    yield settings
    os.environ.clear()
    os.environ.update(saved_env)
    patch.undo()


def metrics(capsys, *argv) -> dict:
    assert main(["metrics", "--format", "json", *argv]) == 0
    return json.loads(capsys.readouterr().out)


def test_the_25_hour_day_in_the_company_time_zone(berlin, capsys):
    doc = metrics(capsys, "--start", "2026-10-25", "--end", "2026-10-25")
    assert (doc["period"]["start"], doc["period"]["end"], doc["period"]["days"]) == (
        "2026-10-24T22:00:00Z", "2026-10-25T23:00:00Z", pytest.approx(25 / 24)
    )
    assert doc["overview"]["messages"]["value"] == 4  # e1, e2, e3, e4
    assert [(d["date"], d["dau"]) for d in doc["daily"]] == [("2026-10-25", 4)]
    busy = {h["hour"]: h["messages"] for h in doc["performance"]["hourly"] if h["messages"]}
    assert busy == {0: 1, 2: 2, 23: 1}  # 02:xx happens twice that night


def test_time_zone_override_per_call(berlin, capsys):
    doc = metrics(capsys, "--start", "2026-10-25", "--end", "2026-10-25", "--tz", "UTC")
    assert doc["time_zone"] == "UTC"
    assert doc["overview"]["messages"]["value"] == 4  # e2, e3, e4, e5
    assert [(d["date"], d["dau"]) for d in doc["daily"]] == [("2026-10-25", 4)]


def test_daily_mart_uses_company_days(berlin):
    con = duckdb.connect(str(berlin.warehouse_path), read_only=True)
    try:
        rows = con.execute("select activity_date::varchar, dau, messages from fct_daily_activity order by 1").fetchall()
    finally:
        con.close()
    assert rows == [("2026-10-24", 1, 1), ("2026-10-25", 4, 4), ("2026-10-26", 1, 1)]


def test_hour_by_hour_has_25_hours_and_the_hourly_mart_keeps_the_repeated_hour_apart(berlin, capsys):
    doc = metrics(capsys, "--start", "2026-10-25", "--end", "2026-10-25")
    hours = doc["performance"]["hour_by_hour"]
    assert [h["hour"] for h in hours] == [0, 1, 2, 2, *range(3, 24)]  # 25 local hours
    assert hours[0]["hour_start"] == "2026-10-24T22:00:00Z" and hours[-1]["hour_start"] == "2026-10-25T22:00:00Z"
    busy = [(h["hour_start"], h["hour"], h["messages"]) for h in hours if h["messages"]]
    assert busy == [("2026-10-24T22:00:00Z", 0, 1), ("2026-10-25T00:00:00Z", 2, 1), ("2026-10-25T01:00:00Z", 2, 1),
                    ("2026-10-25T22:00:00Z", 23, 1)]  # e1; e2 at 02:30 CEST and e3 at 02:30 CET; e4
    con = duckdb.connect(str(berlin.warehouse_path), read_only=True)
    try:
        rows = con.execute("select hour_at::varchar, hour_date::varchar, local_hour, messages from fct_hourly_activity "
                           "order by 1").fetchall()
    finally:
        con.close()
    assert rows == [("2026-10-24 21:00:00", "2026-10-24", 23, 1), ("2026-10-24 22:00:00", "2026-10-25", 0, 1),
                    ("2026-10-25 00:00:00", "2026-10-25", 2, 1), ("2026-10-25 01:00:00", "2026-10-25", 2, 1),
                    ("2026-10-25 22:00:00", "2026-10-25", 23, 1), ("2026-10-25 23:00:00", "2026-10-26", 0, 1)]
    # every one of them a new user on its day
    assert [(d["date"], d["new_users"], d["returning_users"]) for d in doc["users"]["new_vs_returning"]] == [
        ("2026-10-25", 4, 0)]
