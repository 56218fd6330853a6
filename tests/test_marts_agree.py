"""The marts BI tools read and the metrics document agree: for whole company days, every daily
figure of the document equals the daily marts' (fct_agent_daily, fct_daily_activity,
fct_daily_cost_by_provider, fct_daily_cost_by_model), for all agents and for one agent.

Both sides share the measure definitions (dbt_project/macros/metrics.sql), so this holds by
construction; the test keeps it so. The company time zone is not UTC (New York, with the end
of daylight saving time inside the data), so company days are not UTC days.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import defaultdict
from datetime import date
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

ROOT = Path(__file__).resolve().parent.parent
TZ = "America/New_York"
FIRST, LAST = date(2026, 10, 20), date(2026, 11, 9)  # whole days inside the generated data
ADDITIVE = ("messages", "errors", "sessions", "cost_usd", "input_tokens", "output_tokens", "total_tokens", "llm_calls")


def _cli(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "agent_analytics_cli", *args], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=900)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    from agent_analytics.synthetic_events import generate

    base = tmp_path_factory.mktemp("agree")
    generate(base / "data", 6_000, 30, seed=5, end=date(2026, 11, 12))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENT_ANALYTICS_")}
    env.update(AGENT_ANALYTICS_HOME=str(base / "home"), AGENT_ANALYTICS_TZ=TZ)
    env.pop("DAGSTER_HOME", None)
    for args in (("ingest", str(base / "data")), ("build",)):
        proc = _cli(env, *args)
        assert proc.returncode == 0, f"agent-analytics {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return env


def _document(env: dict, *extra: str) -> dict:
    proc = _cli(env, "metrics", "--start", str(FIRST), "--end", str(LAST), "--format", "json", *extra)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout, parse_float=Decimal)


def _marts(env: dict, sql: str, params: dict | None = None) -> list[tuple]:
    with duckdb.connect(str(Path(env["AGENT_ANALYTICS_HOME"]) / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql, params or {}).fetchall()


def _cent(value) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.000001"))


def _agent_days(env: dict, agent: str | None) -> dict[str, dict]:
    scope = "" if agent is None else "and agent_id = $agent"
    rows = _marts(
        env,
        f"""select activity_date, sum(messages), sum(errors), sum(sessions), sum(cost_usd), sum(input_tokens),
                   sum(output_tokens), sum(total_tokens), sum(llm_calls), sum(active_users)
            from fct_agent_daily where activity_date between $first and $last {scope}
            group by 1 order by 1""",
        {"first": FIRST, "last": LAST, **({} if agent is None else {"agent": agent})},
    )
    return {str(r[0]): dict(zip(ADDITIVE + ("active_users",), r[1:], strict=False)) for r in rows}


def _same_day(doc_day: dict, mart_day: dict | None) -> None:
    for key in ADDITIVE:
        want = mart_day[key] if mart_day else 0
        got = doc_day[key]
        if key == "cost_usd":
            assert _cent(got) == _cent(want), (doc_day["date"], key)
        else:
            assert got == want, (doc_day["date"], key, got, want)


def test_daily_rows_equal_the_daily_marts(built):
    doc = _document(built)
    assert (doc["period"]["start_date"], doc["period"]["end_date"], doc["period"]["partial"]) == (str(FIRST), str(LAST), False)
    marts = _agent_days(built, None)
    assert len(marts) > 15 and sum(d["messages"] for d in marts.values()) > 3_000  # the data is really there
    activity = {str(r[0]): r[1:] for r in _marts(
        built, "select activity_date, dau, wau, mau from fct_daily_activity where activity_date between $f and $l",
        {"f": FIRST, "l": LAST})}
    assert [d["date"] for d in doc["daily"]] == sorted(activity)
    for day in doc["daily"]:
        _same_day(day, marts.get(day["date"]))
        assert (day["dau"], day["wau"], day["mau"]) == activity[day["date"]], day["date"]
    for key in ADDITIVE:  # and the period totals are the marts' sums
        want = sum(d[key] for d in marts.values())
        assert (_cent(doc["totals"][key]) == _cent(want)) if key == "cost_usd" else doc["totals"][key] == want, key


def test_agent_rows_and_one_agent_equal_the_marts(built):
    doc = _document(built)
    per_agent = {r[0]: dict(zip(ADDITIVE, r[1:], strict=False)) for r in _marts(
        built,
        """select agent_id, sum(messages), sum(errors), sum(sessions), sum(cost_usd), sum(input_tokens),
                  sum(output_tokens), sum(total_tokens), sum(llm_calls)
           from fct_agent_daily where activity_date between $f and $l group by 1""",
        {"f": FIRST, "l": LAST})}
    active = [a for a in doc["performance"]["agents"] if a["messages"]]
    assert len(active) >= 3
    for row in active:
        want = per_agent[row["agent_id"]]
        for key in ("messages", "errors", "sessions", "llm_calls", "input_tokens", "output_tokens", "total_tokens"):
            assert row[key] == want[key], (row["agent_id"], key)
        assert _cent(row["cost_usd"]) == _cent(want["cost_usd"])
    agent = active[0]["agent_id"]
    one = _document(built, "--agent", agent)
    marts = _agent_days(built, agent)
    for day in one["daily"]:
        _same_day(day, marts.get(day["date"]))
        assert day["dau"] == (marts[day["date"]]["active_users"] if day["date"] in marts else 0)


def test_cost_by_provider_and_model_equal_the_cost_marts(built):
    doc = _document(built)
    providers = {r[0]: r[1:] for r in _marts(
        built, """select provider, sum(cost_usd), sum(llm_calls), sum(unpriced_calls) from fct_daily_cost_by_provider
                  where cost_date between $f and $l group by 1""", {"f": FIRST, "l": LAST})}
    assert {p["provider"]: (_cent(p["cost_usd"]), p["calls"], p["unpriced_calls"]) for p in doc["cost"]["by_provider"]} == {
        k: (_cent(v[0]), v[1], v[2]) for k, v in providers.items()}
    models = {(r[0], r[1]): r[2:] for r in _marts(
        built, """select provider, model, sum(cost_usd), sum(llm_calls), sum(total_tokens) from fct_daily_cost_by_model
                  where cost_date between $f and $l group by 1, 2""", {"f": FIRST, "l": LAST})}
    assert {(m["provider"], m["model"]): (_cent(m["cost_usd"]), m["calls"]) for m in doc["cost"]["by_model"]} == {
        k: (_cent(v[0]), v[1]) for k, v in models.items()}
    tokens = {(m["provider"], m["model"]): m["total_tokens"] for m in doc["tokens"]["by_model"]}
    assert tokens == {k: v[2] for k, v in models.items()}
    by_day = defaultdict(Decimal)
    for cost_date, cost in _marts(built, "select cost_date, sum(cost_usd) from fct_daily_cost_by_provider group by 1"):
        by_day[str(cost_date)] += Decimal(str(cost))
    for day in doc["cost"]["by_day"]:
        assert _cent(day["cost_usd"]) == _cent(by_day.get(day["date"], 0)), day["date"]
