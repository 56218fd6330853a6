"""End to end on the hand-made fixture: ingest, build through Dagster, marts, exports.

Expected values are derived by hand from tests/fixtures/day1.jsonl and day2.jsonl:

messages (UTC = company time zone here)
  m1 u1 support 11-02 10:00 ok 1000 ms  openai gpt-4o 1000 in / 100 out      -> est. 0.0025 + 0.0010 = 0.0035
  m2 u1 support 11-02 10:10 ok 2000 ms  anthropic, reported                   -> 0.05
  m3 u1 support 11-02 10:40 ok 3000 ms  openai gpt-4o 500 in (100 cached) / 50 -> 400*2.5e-6 + 100*1.25e-6 + 50*1e-5 = 0.001625
  m4 u1 support 11-02 11:11 error, no response time, no calls
  m5 u2 sales   11-02 23:50 ok 4000 ms  openai acme-internal-1 (no price)     -> unpriced, 20 tokens
  m6 u2 sales   11-03 00:10 ok 5000 ms  azure (azure.ai.openai), reported     -> 0.02
  m7 u3 support 11-03 12:00 ok 6000 ms  no calls
  m8 u1 sales   11-05 08:00 ok 7000 ms  openai gpt-4o 2000 in / 0             -> 0.005   (day2 file, +01:00 offset)
  m9 u3 sales   11-02 15:00 ok 8000 ms  anthropic, reported                   -> 0.10    (day2 file, late)
sessions (30 min timeout): u1/support {m1,m2,m3} (gaps 10 and exactly 30 min) and {m4} (31 min gap);
  u2/sales {m5,m6} crossing midnight, belongs to 11-02; u3/sales {m9}; u3/support {m7}; u1/sales {m8}
  -> 11-02: 4 sessions, 11-03: 1, 11-04: 0, 11-05: 1.
"""

import csv
import io
import json
import os
import re
import subprocess
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from agent_analytics.settings import load_settings
from agent_analytics_cli.main import main
from orchestration.build import run_build

FIXTURES = Path(__file__).parent / "fixtures"
DAY1, DAY2 = FIXTURES / "day1.jsonl", FIXTURES / "day2.jsonl"
MARTS = [
    "int_messages_sessionized", "fct_messages", "fct_llm_calls", "fct_sessions", "fct_agent_daily", "fct_daily_activity",
    "fct_daily_cost_by_provider", "fct_daily_cost_by_model",
    "fct_downtime_incidents", "fct_tool_calls", "fct_health_checks",
    "fct_queue_samples", "dim_agents", "fct_agent_minute", "fct_platform_minute", "fct_deployments",
]
VOLATILE = {"loaded_at", "max_loaded_at"}  # load timestamps differ between builds by design


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    """Two loads and two (incremental) builds into one home; yields the settings."""
    home = tmp_path_factory.mktemp("home")
    patch = pytest.MonkeyPatch()
    patch.setenv("AGENT_ANALYTICS_HOME", str(home))
    patch.setenv("AGENT_ANALYTICS_TZ", "UTC")
    patch.delenv("AGENT_ANALYTICS_SESSION_TIMEOUT_MIN", raising=False)
    saved_env = dict(os.environ)
    settings = load_settings()
    assert main(["ingest", str(DAY1)]) == 0
    assert run_build(settings)
    assert main(["ingest", str(DAY2)]) == 0
    assert run_build(settings)
    yield settings
    os.environ.clear()
    os.environ.update(saved_env)
    patch.undo()


def query(settings, sql, params=None):
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def test_ledger_accounts_for_every_line(warehouse):
    rows = query(warehouse, "select file_name, lines, loaded, duplicates, quarantined from ingest.ledger order by file_name")
    assert rows == [("day1.jsonl", 21, 21, 0, 0), ("day2.jsonl", 4, 2, 1, 1)]
    assert query(warehouse, "select line_number, reason from ingest.quarantine") == [(4, "not JSON")]


def test_daily_activity(warehouse):
    rows = query(warehouse, "select activity_date, dau, wau, mau, sessions, messages, errors from fct_daily_activity order by 1")
    assert rows == [
        (date(2026, 11, 2), 3, 3, 3, 4, 6, 1),  # u1,u2,u3(late m9); m1-m5 + m9
        (date(2026, 11, 3), 2, 3, 3, 1, 2, 0),  # u2,u3; the u2 session started 11-02
        (date(2026, 11, 4), 0, 3, 3, 0, 0, 0),  # no traffic: a zero row, windows still cover 11-02
        (date(2026, 11, 5), 1, 3, 3, 1, 1, 0),  # u1 via m8 (08:00 UTC)
    ]


def test_sessions(warehouse):
    rows = query(
        warehouse,
        "select user_id, agent_id, session_date, message_count, duration_ms from fct_sessions order by session_started_at",
    )
    assert rows == [
        ("u1", "support", date(2026, 11, 2), 3, 2_403_000),  # 10:00 -> 10:40 + 3 s
        ("u1", "support", date(2026, 11, 2), 1, 0),  # error without response time
        ("u3", "sales", date(2026, 11, 2), 1, 8_000),
        ("u2", "sales", date(2026, 11, 2), 2, 1_205_000),  # 23:50 -> 00:10 + 5 s
        ("u3", "support", date(2026, 11, 3), 1, 6_000),
        ("u1", "sales", date(2026, 11, 5), 1, 7_000),
    ]


def test_cost_by_provider_to_the_cent_and_unpriced(warehouse):
    rows = query(
        warehouse,
        "select provider, sum(cost_usd), sum(llm_calls), sum(unpriced_calls), sum(unpriced_tokens) "
        "from fct_daily_cost_by_provider group by 1 order by 1",
    )
    assert rows == [
        ("anthropic", Decimal("0.1500000000"), 2, 0, 0),
        ("azure", Decimal("0.0200000000"), 1, 0, 0),
        ("openai", Decimal("0.0101250000"), 4, 1, 20),  # 0.0035 + 0.001625 + 0.005; acme unpriced
    ]
    sources = query(warehouse, "select message_id, cost_source, cost_usd from fct_llm_calls order by 1")
    assert sources == [
        ("m1", "estimated", Decimal("0.0035000000")),
        ("m2", "reported", Decimal("0.0500000000")),
        ("m3", "estimated", Decimal("0.0016250000")),
        ("m5", "unpriced", None),
        ("m6", "reported", Decimal("0.0200000000")),
        ("m8", "estimated", Decimal("0.0050000000")),
        ("m9", "reported", Decimal("0.1000000000")),
    ]


def test_agent_daily_percentiles_and_error_rate(warehouse):
    rows = query(
        warehouse,
        "select agent_id, messages, active_users, sessions, errors, avg_response_time_ms, p50_response_time_ms, "
        "p95_response_time_ms from fct_agent_daily where activity_date = '2026-11-02' order by agent_id",
    )
    # sales 11-02: m5 4000, m9 8000 -> p95 = 4000 + 0.95 * 4000 = 7800
    # support 11-02: m1..m3 1000/2000/3000 (m4 untimed) -> p95 = 2000 + 0.9 * 1000 = 2900
    assert rows == [
        ("sales", 2, 2, 2, 0, 6000.0, 6000.0, pytest.approx(7800.0)),
        ("support", 4, 1, 2, 1, 2000.0, 2000.0, pytest.approx(2900.0)),
    ]


def test_uptime_and_incidents(warehouse):
    assert query(warehouse, "select component, count(*), count(*) filter (where is_up) from fct_health_checks group by 1") == [
        ("api", 10, 7)
    ]
    incidents = "select component, started_at::varchar, ended_at::varchar, down_probes, is_ongoing from fct_downtime_incidents"
    assert query(warehouse, incidents) == [
        ("api", "2026-11-02 10:02:00", "2026-11-02 10:05:00", 3, False)
    ]
    assert query(warehouse, "select arg_max(depth, sampled_at), avg(depth), max(depth) from fct_queue_samples") == [(10, 5.0, 10)]


def test_daily_csv_export(warehouse, capsys):
    assert main(["export", "--start", "2026-11-01", "--end", "2026-11-05", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert list(rows[0]) == ["date", "dau", "wau", "mau", "sessions", "messages", "cost_usd", "cost_per_message",
                             "avg_response_time_ms", "error_rate", "errors", "input_tokens", "output_tokens", "total_tokens",
                             "llm_calls", "partial"]
    assert [(r["date"], r["dau"], r["wau"], r["mau"], r["sessions"], r["messages"]) for r in rows] == [
        ("2026-11-01", "0", "0", "0", "0", "0"),
        ("2026-11-02", "3", "3", "3", "4", "6"),
        ("2026-11-03", "2", "3", "3", "1", "2"),
        ("2026-11-04", "0", "3", "3", "0", "0"),
        ("2026-11-05", "1", "3", "3", "1", "1"),
    ]
    day2 = rows[1]
    # 11-02 cost: 0.0035 + 0.05 + 0.001625 + 0.10 = 0.155125 over 6 messages; 5 timed: 1,2,3,4,8 s
    assert (day2["cost_usd"], day2["cost_per_message"], day2["avg_response_time_ms"], day2["error_rate"]) == (
        "0.155125", "0.025854", "3600.0", "0.166667"
    )


def test_export_for_one_agent(warehouse, capsys):
    assert main(["export", "--start", "2026-11-02", "--end", "2026-11-03", "--agent", "sales"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    # sales: 11-02 u2 (m5), u3 (m9); 11-03 u2 (m6)
    assert [(r["dau"], r["wau"], r["sessions"], r["messages"], r["cost_usd"]) for r in rows] == [
        ("2", "2", "2", "2", "0.100000"),
        ("1", "2", "0", "1", "0.020000"),
    ]


def test_json_export_summary(warehouse, capsys):
    assert main(["export", "--start", "2026-11-02", "--end", "2026-11-05", "--format", "json"]) == 0
    import json

    export = json.loads(capsys.readouterr().out)
    overview, perf = export["overview"], export["performance"]
    assert (perf["messages"], overview["sessions"]["value"], overview["active_users"]["value"], perf["errors"]) == (9, 6, 3, 1)
    assert round(export["cost"]["total_usd"], 6) == 0.180125
    # 8 timed messages 1..8 s: p95 = 7000 + 0.65 * 1000
    assert perf["p95_response_time_ms"] == pytest.approx(7650.0)
    assert [(p["provider"], round(p["cost_usd"], 6)) for p in export["cost"]["by_provider"]] == [
        ("anthropic", 0.15), ("azure", 0.02), ("openai", 0.010125)
    ]
    # health windows end at the period end (11-06 00:00): the 11-02 incident is in the 7d window
    week = [w for w in export["health"]["uptime"] if w["window"] == "7d"][0]
    assert (week["probes"], week["uptime_pct"], week["incidents"], week["downtime_minutes"]) == (10, 70.0, 1, 3.0)
    # the incident itself: down probes 10:02-10:04, the next up probe at 10:05
    assert export["health"]["incidents"] == [
        {"component": "api", "started_at": "2026-11-02T10:02:00Z", "ended_at": "2026-11-02T10:05:00Z", "downtime_minutes": 3.0}
    ]


def test_refresh_tests_only_the_rows_of_the_new_load(warehouse):
    """The second (incremental) build ran the big models' data tests on day2's rows only: dbt got
    AGENT_ANALYTICS_DBT_TESTS_LOADED_AFTER, the newest load of the first build.

    Runs before test_incremental_equals_full_refresh, whose full refresh tests every row.
    """
    results = json.loads((warehouse.home / "dbt_target" / "run_results.json").read_text())["results"]
    compiled = {r["unique_id"].split(".")[2]: r["compiled_code"] for r in results if r["unique_id"].startswith("test.")}
    scope = re.search(r"loaded_at > cast\('([^']+)' as timestamp\)", compiled["unique_fct_messages_message_id"]).group(1)
    first_load = query(warehouse, "select max(loaded_at) = cast(? as timestamp) from fct_messages"
                                  " where message_id not in ('m8', 'm9')", [scope])
    assert first_load == [(True,)]  # compared as timestamps: their text drops trailing zeros of the microseconds
    tested = query(warehouse, "select message_id from fct_messages where loaded_at > ? order by 1", [scope])
    assert tested == [("m8",), ("m9",)]  # the two messages loaded from day2.jsonl
    untested = query(warehouse, "select count(*) from fct_messages where loaded_at <= ?", [scope])
    assert untested == [(7,)]  # day1's messages were tested by the first build


def test_incremental_equals_full_refresh(warehouse):
    def snapshot():
        con = duckdb.connect(str(warehouse.warehouse_path), read_only=True)
        try:
            out = {}
            for table in MARTS:
                columns = [c[0] for c in con.execute(f"describe {table}").fetchall() if c[0] not in VOLATILE]
                out[table] = con.execute(f"select {', '.join(columns)} from {table} order by all").fetchall()
            return out
        finally:
            con.close()

    incremental = snapshot()
    assert run_build(warehouse, full_refresh=True)
    assert snapshot() == incremental


def test_bad_arguments_give_one_line_and_nonzero_exit(warehouse):
    cases = [
        (["export", "--period", "fortnight"], "unknown period 'fortnight'"),
        (["export", "--start", "2026-11-05", "--end", "2026-11-01"], "is before --start"),
        (["export", "--agent", "nobody"], "unknown agent 'nobody'"),
        (["ingest", "/no/such/file.jsonl"], "no such file or folder"),
        (["metrics", "--tz", "Mars/Olympus"], "unknown time zone 'Mars/Olympus'"),
        (["metrics", "--month", "2026-13"], "is not a month"),
        (["export", "--period", "week", "--month", "2026-11"], "give only one of"),
    ]
    for argv, message in cases:
        proc = subprocess.run(
            [sys.executable, "-m", "agent_analytics_cli", *argv], capture_output=True, text=True, env=dict(os.environ)
        )
        assert proc.returncode == 2, (argv, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], (argv, proc.stderr)


def metrics_json(capsys, *argv):
    import json

    assert main(["metrics", "--format", "json", *argv]) == 0
    return json.loads(capsys.readouterr().out)


def test_user_active_with_several_agents_is_counted_once(warehouse, capsys):
    # u1 writes to support (11-02) and sales (11-05); u3 to support and sales; u2 to sales
    doc = metrics_json(capsys, "--start", "2026-11-02", "--end", "2026-11-05", "--agent", "support", "--agent", "sales")
    assert doc["overview"]["active_users"]["value"] == 3
    assert doc["scope"]["agents"] == ["sales", "support"]
    assert [(a["agent_id"], a["messages"], a["sessions"]) for a in doc["performance"]["agents"]] == [
        ("support", 5, 3), ("sales", 4, 3)
    ]


def test_agent_without_traffic_in_the_period(warehouse, capsys):
    doc = metrics_json(capsys, "--start", "2026-11-05", "--end", "2026-11-05", "--agent", "support")
    agent = doc["performance"]["agents"]
    assert [(a["agent_id"], a["messages"], a["sessions"], a["cost_usd"], a["error_rate_pct"]) for a in agent] == [
        ("support", 0, 0, 0.0, None)  # no messages: no error rate
    ]
    assert doc["note"] and doc["overview"]["messages"]["value"] == 0
    # support in 10-30..11-05: u1 (11-02) and u3 (11-03)
    assert doc["cost"]["by_agent"] == [] and doc["daily"][0]["dau"] == 0 and doc["daily"][0]["wau"] == 2


def test_period_without_any_data(warehouse, capsys):
    import jsonschema

    from agent_analytics.exports import load_schema

    doc = metrics_json(capsys, "--start", "2025-01-01", "--end", "2025-01-07")
    jsonschema.validate(doc, load_schema())
    assert doc["note"].startswith("No messages")
    assert len(doc["daily"]) == 7 and all(d["messages"] == 0 and d["cost_per_message"] is None for d in doc["daily"])
    assert doc["performance"]["p95_response_time_ms"] is None
    assert doc["cost"]["cost_per_user_usd"] is None and doc["tokens"]["avg_tokens_per_message"] is None  # no data
    assert [b["share_pct"] for b in doc["engagement"]["session_duration_distribution"]] == [0.0] * 4
    assert doc["overview"]["cost_usd"] == {"value": 0.0, "previous": 0.0, "change_pct": None, "trend": "unchanged"}


def test_hourly_profile_and_distributions(warehouse, capsys):
    doc = metrics_json(capsys, "--start", "2026-11-02", "--end", "2026-11-05")
    hours = {h["hour"]: h for h in doc["performance"]["hourly"]}
    # 10:xx: m1, m2, m3 (1, 2, 3 s) -> avg 2000, p95 2900; 11:xx: m4, an error without time
    assert (hours[10]["messages"], hours[10]["avg_response_time_ms"]) == (3, 2000.0)
    assert hours[10]["p95_response_time_ms"] == pytest.approx(2900.0)
    assert (hours[11]["messages"], hours[11]["avg_response_time_ms"]) == (1, None)
    # durations 2403 s, 0, 8 s, 1205 s, 6 s, 7 s -> <1 min: 4, 10+ min: 2 (of 6 sessions)
    assert [(b["bucket"], b["sessions"], b["share_pct"]) for b in doc["engagement"]["session_duration_distribution"]] == [
        ("<1 min", 4, 66.67), ("1-5 min", 0, 0.0), ("5-10 min", 0, 0.0), ("10+ min", 2, 33.33)
    ]
    # messages per session 3, 1, 1, 2, 1, 1 -> 1-2: 5, 3-5: 1
    assert [b["sessions"] for b in doc["engagement"]["messages_per_session_distribution"]] == [5, 1, 0, 0]


def test_terminal_view_fits_100_columns(warehouse, capsys):
    assert main(["metrics", "--start", "2026-11-02", "--end", "2026-11-05"]) == 0
    text = capsys.readouterr().out
    assert max(len(line) for line in text.splitlines()) <= 100
    for section in ("Overview", "User engagement", "Agent performance", "Cost analysis", "Token usage", "System health"):
        assert f"== {section} " in text
    assert "Total costs:" in text and "$0.18" in text
