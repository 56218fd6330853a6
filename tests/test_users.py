"""The users behind the numbers and the hours of the day (schema 3.2), on the hand fixture.

tests/fixtures/day1.jsonl then day2.jsonl, company zone UTC. Worked out by hand:

  u1: m1 10:00, m2 10:10, m3 10:40, m4 11:11 (error, no response time) on 11-02 to support;
      m8 11-05 08:00 to sales. Sessions: support [m1 m2 m3] and [m4] (31 min gap), sales [m8]: 3.
      Cost m1 0.0035 + m2 0.05 + m3 0.001625 + m8 0.005 = 0.060125; tokens 1100 + 2200 + 550 + 2000.
  u2: m5 11-02 23:50 (unpriced), m6 11-03 00:10 to sales: one session; cost 0.02; tokens 20 + 2000.
  u3: m9 11-02 15:00 to sales (in day2: late), m7 11-03 12:00 to support: 2 sessions; cost 0.1;
      tokens 200 + 0.

Top by messages: u1 5, then u2 and u3 with 2 each (tie: by id). By sessions: u1 3, u3 2, u2 1.
By cost: u3 0.1, u1 0.060125, u2 0.02.
New / returning: 11-02 u1 u2 u3 new; 11-03 u2 u3 returning; 11-04 nobody; 11-05 u1 returning.
Only support in scope: u1 new on 11-02, u3 new on 11-03 (its first support message).
Hours (UTC): 11-02 10h m1 m2 m3 (P95 of 1000, 2000, 3000 = 2000 + 0.9 x 1000 = 2900), 11h m4 (an
error: 100%, no P95), 15h m9, 23h m5; 11-03 00h m6, 12h m7; 11-05 08h m8.

The first build has day1 only: u3 is first seen on 11-03 (m7); day2's late m9 moves it to
11-02, and the incremental build must equal a full rebuild.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from pathlib import Path

import duckdb
import pytest

from agent_analytics.settings import SettingsError, load_settings
from agent_analytics_cli.main import main
from ingestion.load import ingest_paths
from orchestration.build import run_build
from tests.test_compaction import assert_same_marts, warehouse_tables

FIXTURES = Path(__file__).parent / "fixtures"
MARTS = ["fct_user_daily", "dim_user_agents", "fct_hourly_activity", "fct_agent_hourly"]
PERIOD = ["--start", "2026-11-02", "--end", "2026-11-05", "--as-of", "2026-11-10"]
KEY = "a-secret-key-of-32-characters-xx"


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    base = tmp_path_factory.mktemp("users")
    saved = dict(os.environ)
    for name in [k for k in os.environ if k.startswith("AGENT_ANALYTICS_")]:
        del os.environ[name]
    os.environ.update(AGENT_ANALYTICS_HOME=str(base / "home"), AGENT_ANALYTICS_TZ="UTC")
    try:
        settings = load_settings()
        settings.ensure_dirs()
        ingest_paths([FIXTURES / "day1.jsonl"], settings.warehouse_path, settings.raw_dir)
        assert run_build(settings)
        first = first_seen(settings)
        ingest_paths([FIXTURES / "day2.jsonl"], settings.warehouse_path, settings.raw_dir)
        assert run_build(settings)
        incremental = warehouse_tables(settings.warehouse_path, "main", MARTS)
        assert run_build(settings, full_refresh=True)
        full = warehouse_tables(settings.warehouse_path, "main", MARTS)
        yield settings, first, incremental, full
    finally:
        os.environ.clear()
        os.environ.update(saved)


def first_seen(settings) -> dict:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        return {(u, a): d.isoformat() for u, a, d in con.execute(
            "select user_id, agent_id, first_seen_date from dim_user_agents").fetchall()}


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def document(capsys, *argv) -> dict:
    """The metrics document of PERIOD, or of the period options in argv."""
    period = [] if {"--period", "--start", "--month"} & set(argv) else PERIOD
    code, out, err = run(capsys, "metrics", "--format", "json", *period, *argv)
    assert code == 0, err
    return json.loads(out)


def test_the_incremental_marts_equal_a_full_rebuild_after_a_late_file(home):
    settings, first, incremental, full = home
    assert first == {("u1", "support"): "2026-11-02", ("u2", "sales"): "2026-11-02", ("u3", "support"): "2026-11-03"}
    assert_same_marts(incremental, full)
    assert first_seen(settings) == {("u1", "support"): "2026-11-02", ("u1", "sales"): "2026-11-05",
                                    ("u2", "sales"): "2026-11-02", ("u3", "support"): "2026-11-03",
                                    ("u3", "sales"): "2026-11-02"}
    hours = {(str(r[0]), r[3]) for r in full["fct_hourly_activity"]}  # (hour_at, messages)
    assert hours == {("2026-11-02 10:00:00", 3), ("2026-11-02 11:00:00", 1), ("2026-11-02 15:00:00", 1),
                     ("2026-11-02 23:00:00", 1), ("2026-11-03 00:00:00", 1), ("2026-11-03 12:00:00", 1),
                     ("2026-11-05 08:00:00", 1)}


def _ranked(rows: list[dict]) -> list[tuple]:
    return [(r["rank"], r["user_id"], r["messages"], r["sessions"], r["errors"], round(r["cost_usd"], 6),
             r["total_tokens"], r["agents"], r["active_days"]) for r in rows]


U1 = ("u1", 5, 3, 1, 0.060125, 5850, 2, 2)
U2 = ("u2", 2, 1, 0, 0.02, 2020, 1, 2)
U3 = ("u3", 2, 2, 0, 0.1, 200, 2, 2)


def test_top_users_and_new_vs_returning_by_hand(home, capsys):
    users = document(capsys)["users"]
    assert (users["top_n"], users["user_ids_hashed"]) == (10, False)
    top = users["top_users"]
    assert _ranked(top["by_messages"]) == [(1, *U1), (2, *U2), (3, *U3)]
    assert _ranked(top["by_sessions"]) == [(1, *U1), (2, *U3), (3, *U2)]
    assert _ranked(top["by_cost"]) == [(1, *U3), (2, *U1), (3, *U2)]
    assert [(d["date"], d["active_users"], d["new_users"], d["returning_users"]) for d in users["new_vs_returning"]] == [
        ("2026-11-02", 3, 3, 0), ("2026-11-03", 2, 0, 2), ("2026-11-04", 0, 0, 0), ("2026-11-05", 1, 0, 1)]


def test_new_users_of_an_agent_scope_are_new_to_those_agents(home, capsys):
    users = document(capsys, "--agent", "support")["users"]
    assert [(d["date"], d["new_users"], d["returning_users"]) for d in users["new_vs_returning"]] == [
        ("2026-11-02", 1, 0), ("2026-11-03", 1, 0), ("2026-11-04", 0, 0), ("2026-11-05", 0, 0)]
    assert [(r["user_id"], r["messages"], r["sessions"]) for r in users["top_users"]["by_messages"]] == [
        ("u1", 4, 2), ("u3", 1, 1)]


def test_hour_by_hour_by_hand(home, capsys):
    hours = document(capsys)["performance"]["hour_by_hour"]
    assert len(hours) == 96 and not any(h["partial"] for h in hours)
    busy = [(h["hour_start"], h["messages"], h["errors"], h["error_rate_pct"], h["p95_response_time_ms"])
            for h in hours if h["messages"]]
    assert busy == [("2026-11-02T10:00:00Z", 3, 0, 0.0, pytest.approx(2900)),
                    ("2026-11-02T11:00:00Z", 1, 1, 100.0, None),
                    ("2026-11-02T15:00:00Z", 1, 0, 0.0, 8000.0),
                    ("2026-11-02T23:00:00Z", 1, 0, 0.0, 4000.0),
                    ("2026-11-03T00:00:00Z", 1, 0, 0.0, 5000.0),
                    ("2026-11-03T12:00:00Z", 1, 0, 0.0, 6000.0),
                    ("2026-11-05T08:00:00Z", 1, 0, 0.0, 7000.0)]
    assert all(h["error_rate_pct"] is None and h["p95_response_time_ms"] is None for h in hours if not h["messages"])


def test_a_window_cut_inside_an_hour_and_another_time_zone(home, capsys):
    # as of 10:30 on 11-02: the hour 10:00 is partial (m1, m2 only: P95 of 1000, 2000 = 1950), read from the messages
    doc = document(capsys, "--period", "today", "--as-of", "2026-11-02T10:30:00Z")
    last = doc["performance"]["hour_by_hour"][-1]
    assert (last["hour_start"], last["partial"], last["messages"], last["p95_response_time_ms"]) == (
        "2026-11-02T10:00:00Z", True, 2, pytest.approx(1950))
    assert _ranked(doc["users"]["top_users"]["by_messages"]) == [(1, "u1", 2, 1, 0, 0.0535, 3300, 1, 1)]
    # Kolkata (+05:30): its hours are not the marts' UTC hours. 15:00 IST = 09:30-10:30 UTC: m1, m2;
    # 16:00 IST: m3 and the error m4 (50%, P95 of m3 alone)
    doc = document(capsys, "--tz", "Asia/Kolkata")
    busy = {(h["date"], h["hour"]): (h["messages"], h["errors"], h["p95_response_time_ms"])
            for h in doc["performance"]["hour_by_hour"] if h["messages"]}
    assert busy[("2026-11-02", 15)] == (2, 0, pytest.approx(1950)) and busy[("2026-11-02", 16)] == (2, 1, 3000.0)
    # u2's m5 (23:50 UTC) is on 11-03 in Kolkata: u2 is new on 11-03 there, u3 (m7) returning
    assert [(d["date"], d["new_users"], d["returning_users"]) for d in doc["users"]["new_vs_returning"]] == [
        ("2026-11-02", 2, 0), ("2026-11-03", 1, 1), ("2026-11-04", 0, 0), ("2026-11-05", 0, 1)]


def test_one_users_activity_by_hand(home, capsys):
    code, out, err = run(capsys, "metrics", "--user", "u1", "--format", "json", *PERIOD)
    assert code == 0, err
    u = json.loads(out)
    assert u["user_id"] == "u1"
    assert {k: round(v, 6) for k, v in u["totals"].items()} == {
        "messages": 5, "sessions": 3, "errors": 1, "cost_usd": 0.060125, "input_tokens": 5500, "output_tokens": 350,
        "total_tokens": 5850}
    assert u["error_rate_pct"] == 20.0 and u["agents_used"] == ["sales", "support"]
    assert (u["first_seen_at"], u["first_message_in_period_at"], u["last_message_in_period_at"]) == (
        "2026-11-02T10:00:00Z", "2026-11-02T10:00:00Z", "2026-11-05T08:00:00Z")
    assert [(d["date"], d["messages"], d["sessions"], d["errors"], round(d["cost_usd"], 6), d["total_tokens"])
            for d in u["by_day"]] == [("2026-11-02", 4, 2, 1, 0.055125, 3850), ("2026-11-03", 0, 0, 0, 0, 0),
                                      ("2026-11-04", 0, 0, 0, 0, 0), ("2026-11-05", 1, 1, 0, 0.005, 2000)]
    code, out, err = run(capsys, "metrics", "--user", "u1", *PERIOD)
    assert code == 0 and "messages 5  sessions 3  errors 1 (20.00%)" in out and "agents used: sales, support" in out


@pytest.mark.parametrize("argv, message", [
    (["--user", "nobody"], "no messages of 'nobody' in the warehouse"),
    (["--user", "u1", "--agent", "nope"], "unknown agent 'nope'"),
    (["--user", "u1", "--period", "fortnight"], "period"),
])
def test_a_bad_user_request_is_one_line_and_a_non_zero_exit(home, capsys, argv, message):
    code, out, err = run(capsys, "metrics", *argv)
    assert code != 0 and out == ""
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def _hashed(user: str) -> str:
    return "u_" + hmac.new(KEY.encode(), user.encode(), hashlib.sha256).hexdigest()[:16]


def test_hashed_user_ids_in_every_output_and_never_the_key(home, capsys, monkeypatch, tmp_path):
    settings = home[0]
    monkeypatch.setenv("AGENT_ANALYTICS_HASH_USER_IDS", "on")
    monkeypatch.setenv("AGENT_ANALYTICS_USER_ID_HASH_KEY", KEY)
    doc = document(capsys)
    assert doc["users"]["user_ids_hashed"] is True
    assert [r["user_id"] for r in doc["users"]["top_users"]["by_messages"]] == [_hashed("u1"), _hashed("u2"), _hashed("u3")]
    code, table, _ = run(capsys, "metrics", *PERIOD)
    code_user, user_json, _ = run(capsys, "metrics", "--user", "u3", "--format", "json", *PERIOD)
    assert code == 0 and code_user == 0 and json.loads(user_json)["user_id"] == _hashed("u3")
    code, _, missing = run(capsys, "metrics", "--user", "nobody")
    assert code != 0 and "nobody" not in missing  # the id asked for is not echoed either
    # the dashboard and exports of the same settings
    assert main(["export", "--format", "json", "-o", str(tmp_path / "export.json"), *PERIOD]) == 0
    from agent_analytics.periods import Page, parse_as_of, parse_period
    from agent_analytics.reports.dashboard import render_page

    period = parse_period(None, "2026-11-02", "2026-11-05", None, parse_as_of("2026-11-10", "UTC"), "UTC")
    html = render_page(Page("custom", "custom", period), doc, [])
    outputs = [json.dumps(doc), table, user_json, missing, (tmp_path / "export.json").read_text(), html]
    for text in outputs:
        assert KEY not in text
        for raw in ("u1", "u2", "u3"):
            assert f'"{raw}"' not in text and f">{raw}<" not in text and f" {raw} " not in text, raw
    assert _hashed("u1") in html and _hashed("u1") in table
    assert not any(KEY in p.read_text(errors="replace") for p in Path(settings.home).rglob("*.log"))


@pytest.mark.parametrize("env, message", [
    ({"AGENT_ANALYTICS_HASH_USER_IDS": "maybe"}, "AGENT_ANALYTICS_HASH_USER_IDS='maybe' must be on or off"),
    ({"AGENT_ANALYTICS_HASH_USER_IDS": "on"}, "AGENT_ANALYTICS_USER_ID_HASH_KEY must be set"),
    ({"AGENT_ANALYTICS_HASH_USER_IDS": "on", "AGENT_ANALYTICS_USER_ID_HASH_KEY": "short-key"}, "too short"),
])
def test_a_bad_hashing_setting_is_one_clear_error(tmp_path, env, message, capsys, monkeypatch):
    with pytest.raises(SettingsError, match=message) as caught:
        load_settings({"AGENT_ANALYTICS_HOME": str(tmp_path), **env})
    assert "short-key" not in str(caught.value)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AGENT_ANALYTICS_HOME", str(tmp_path))
    code, out, err = run(capsys, "metrics")
    assert code != 0 and message.split("'")[0] in err and len(err.strip().splitlines()) == 1 and "short-key" not in err


def test_hashing_off_by_default_and_the_same_id_gives_the_same_hash():
    from agent_analytics.user_ids import shown_user_id

    assert load_settings({"AGENT_ANALYTICS_HOME": "/tmp/x"}).user_id_hash_key is None
    assert shown_user_id("u1", None) == "u1"
    assert shown_user_id("u1", KEY) == shown_user_id("u1", KEY) == _hashed("u1") != shown_user_id("u1", KEY + "2")
    assert "user_id_hash_key" not in repr(load_settings({"AGENT_ANALYTICS_HOME": "/tmp/x",
                                                         "AGENT_ANALYTICS_HASH_USER_IDS": "on",
                                                         "AGENT_ANALYTICS_USER_ID_HASH_KEY": KEY}))


def test_the_users_route_answers_what_the_command_prints(home, capsys, tmp_path):
    import httpx

    from tests.service_server import make_tokens, start_server

    settings = home[0]
    code, out, _ = run(capsys, "metrics", "--user", "u1", "--format", "json", *PERIOD)
    assert code == 0
    tokens = make_tokens(settings.home, users_reader="read", users_sender="ingest")
    server = start_server(settings.home, tmp_path / "server.log", env={"AGENT_ANALYTICS_TZ": "UTC"})
    try:
        url, auth = f"{server.url}/v1/analytics/users", {"Authorization": f"Bearer {tokens['users_reader']}"}
        period = {"start": "2026-11-02", "end": "2026-11-05", "as_of": "2026-11-10"}
        answer = httpx.get(f"{url}/u1", params=period, headers=auth, timeout=60)
        assert answer.status_code == 200 and answer.json() == json.loads(out)
        missing = httpx.get(f"{url}/nobody", params=period, headers=auth, timeout=60)
        assert missing.status_code == 404 and missing.json() == {"error": "no messages of 'nobody' in the warehouse"}
        assert httpx.get(f"{url}/u1", params={"period": "fortnight"}, headers=auth, timeout=60).status_code == 400
        assert httpx.get(f"{url}/u1", params={"agent": "nope"}, headers=auth, timeout=60).status_code == 400
        assert httpx.get(f"{url}/u1", params={"user": "x"}, headers=auth, timeout=60).status_code == 400
        assert httpx.get(f"{url}/u1", timeout=60).status_code == 401
        sender = {"Authorization": f"Bearer {tokens['users_sender']}"}
        assert httpx.get(f"{url}/u1", headers=sender, timeout=60).status_code == 403
    finally:
        server.stop()


def test_days_and_hours_the_marts_do_not_hold_yet_come_from_the_messages(home, tmp_path):
    """A build that stopped after fct_messages leaves the day and hour marts behind: the
    document counts their missing days and hours from the messages, so it is the same."""
    from datetime import datetime, timezone

    from agent_analytics.metrics import MetricsRequest, compute_metrics
    from agent_analytics.periods import parse_period

    settings = home[0]
    copy = tmp_path / "lagging.duckdb"
    with duckdb.connect(str(copy)) as con:
        con.execute(f"attach '{settings.warehouse_path}' as built (read_only)")
        con.execute("copy from database built to lagging")
    as_of = datetime(2026, 11, 10, tzinfo=timezone.utc)

    def documents(con) -> list[dict]:
        out = []
        for agents in (None, ["support"], ["sales"]):
            period = parse_period(None, "2026-11-02", "2026-11-05", None, as_of, "UTC")
            doc = compute_metrics(con, MetricsRequest(period=period, agents=agents, as_of=as_of), settings)
            out.append({k: v for k, v in doc.items() if k != "generated_at"})
        return out

    with duckdb.connect(str(copy)) as con:
        before = documents(con)
        assert before[0]["totals"]["messages"] == 9 and before[0]["overview"]["active_users"]["value"] == 3
        # the last day (u1's m8 to sales on 11-05) and its hours leave every day and hour mart
        for table, column in (("fct_agent_daily", "activity_date"), ("fct_user_daily", "activity_date"),
                              ("fct_daily_activity", "activity_date"), ("fct_daily_cost_by_model", "cost_date"),
                              ("fct_daily_cost_by_provider", "cost_date"), ("fct_hourly_activity", "hour_date"),
                              ("fct_agent_hourly", "hour_date")):
            deleted = con.execute(f"delete from {table} where {column} >= date '2026-11-04'").fetchone()[0]
            assert deleted > 0 or table == "fct_daily_activity", table
        assert documents(con) == before
