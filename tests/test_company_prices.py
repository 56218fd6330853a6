"""The company's prices file: validation, precedence (reported > company > genai-prices), the
most specific model wins, validity by company day, exact decimals, and a changed file that
re-prices history on the next build, only the affected days, equal to a full rebuild.

Every expected cost below is worked out by hand from the tokens and the file's rates
(US dollars per million tokens), in the company zone America/New_York (UTC-5, UTC-4 from
2026-03-08).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from agent_analytics.prices import PricesFileError, like_pattern, load_prices
from agent_analytics.serving import serving_database
from agent_analytics.settings import load_settings
from ingestion.load import ingest_paths
from orchestration.build import run_build
from tests.test_compaction import assert_same_marts, warehouse_tables

HEADER = "provider,model,input_per_mtok,cached_input_per_mtok,output_per_mtok,valid_from,valid_to\n"
PRICES_V1 = HEADER + """\
openai,gpt-4o,2.00,1.00,8.00,2026-03-01,2026-03-15
OpenAI,gpt-4o,1.50,0.75,6.00,2026-03-15,
acme,support-ft-*,0.50,0.25,1.50,2026-01-01,
acme,support-ft-v2,0.40,0.20,1.20,2026-01-01,
acme,support-*,9.00,9.00,9.00,2026-01-01,
acme,in_house*,3.00,3.00,3.00,2026-01-01,
acme,round-me,0.000001,0,0,2026-01-01,
"""
# 2026-03-21 on, gpt-4o is cheaper: the open row of v1 is cut at 03-21 and a new one follows.
PRICES_V2 = PRICES_V1.replace("OpenAI,gpt-4o,1.50,0.75,6.00,2026-03-15,\n",
                              "openai,gpt-4o,1.50,0.75,6.00,2026-03-15,2026-03-21\n"
                              "openai,gpt-4o,1.00,0.50,4.00,2026-03-21,\n")


def call(provider, model, inp, out, cached=0, cost=None) -> dict:
    c = {"provider": provider, "model": model, "input_tokens": inp, "output_tokens": out, "cache_read_tokens": cached}
    return c if cost is None else {**c, "cost_usd": cost}


def message(event_id: str, at: str, *calls: dict) -> str:
    return json.dumps({"event_id": event_id, "type": "message", "occurred_at": at, "user_id": "u1",
                       "agent_id": "support", "status": "ok", "response_time_ms": 1000, "llm_calls": list(calls)})


FIRST = [
    message("m1", "2026-03-10T15:00:00Z", call("openai", "gpt-4o", 1000, 100, cached=200)),
    message("m2", "2026-03-15T03:00:00Z", call("openai", "gpt-4o", 2000, 500)),  # 03-14 23:00 in New York
    message("m3", "2026-03-15T05:00:00Z", call("openai", "gpt-4o", 2000, 500)),  # 03-15 01:00
    message("m4", "2026-03-20T12:00:00Z", call("acme", "support-ft-v1", 1_000_000, 10, cached=400_000),
            call("acme", "support-ft-v2", 3, 7)),
    message("m5", "2026-03-21T12:00:00Z", call("acme", "inXhouse-1", 10, 10), call("acme", "in_house-2", 10, 10)),
    message("m6", "2026-03-22T12:00:00Z", call("openai", "gpt-4o", 1000, 100, cost=0.123),
            call("anthropic", "claude-3-5-sonnet-20241022", 1000, 100)),
    message("m7", "2026-03-23T12:00:00Z", call("mystery", "mystery-model", 123, 45), call("acme", "round-me", 50, 0)),
    message("m8", "2026-03-25T12:00:00Z", call("openai", "gpt-4o", 1000, 1000)),
]
LATER = [message("m9", "2026-03-26T12:00:00Z", call("openai", "gpt-4o", 100, 100))]


def genai_prices_cost(model: str, provider: str, inp: int, out: int, day: date) -> Decimal:
    from genai_prices import Usage, calc_price

    price = calc_price(Usage(input_tokens=inp, output_tokens=out), model_ref=model, provider_id=provider,
                       genai_request_timestamp=datetime(day.year, day.month, day.day, 12, tzinfo=timezone.utc))
    return price.total_price.quantize(Decimal("1e-10"))


def expected_v1() -> dict[str, tuple[str, Decimal | None]]:
    return {
        # (1000 - 200) * 2 + 200 * 1 + 100 * 8 = 2600 micro-dollars
        "m1#1": ("company", Decimal("0.0026")),
        # 03-14 in the company zone: the first row; 2000 * 2 + 500 * 8 = 8000
        "m2#1": ("company", Decimal("0.008")),
        # 03-15: the second row; 2000 * 1.5 + 500 * 6 = 6000
        "m3#1": ("company", Decimal("0.006")),
        # support-ft-* (11 characters) before support-* (8): 600000 * 0.5 + 400000 * 0.25 + 10 * 1.5
        "m4#1": ("company", Decimal("0.400015")),
        # the exact model before both patterns: 3 * 0.4 + 7 * 1.2 = 9.6
        "m4#2": ("company", Decimal("0.0000096")),
        # `_` is no wildcard: inXhouse-1 is not in_house*, and nothing else prices it
        "m5#1": ("none", None),
        "m5#2": ("company", Decimal("0.00006")),
        # a reported cost wins over the company's price
        "m6#1": ("reported", Decimal("0.123")),
        "m6#2": ("genai-prices", genai_prices_cost("claude-3-5-sonnet-20241022", "anthropic", 1000, 100, date(2026, 3, 22))),
        "m7#1": ("none", None),
        # 50 tokens at $0.000001 per million: 5e-11, rounded half up to 10 decimals
        "m7#2": ("company", Decimal("0.0000000001")),
        # 1000 * 1.5 + 1000 * 6
        "m8#1": ("company", Decimal("0.0075")),
    }


def expected_v2() -> dict[str, tuple[str, Decimal | None]]:
    return {**expected_v1(),
            "m8#1": ("company", Decimal("0.005")),  # 1000 * 1 + 1000 * 4
            "m9#1": ("company", Decimal("0.0005"))}  # 100 * 1 + 100 * 4


def call_costs(warehouse: Path) -> dict[str, tuple[str, Decimal | None]]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute("select llm_call_id, price_source, cost_usd from fct_llm_calls").fetchall()
    return {call_id: (source, cost) for call_id, source, cost in rows}


def daily_costs(warehouse: Path) -> dict[date, Decimal]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        by_provider = dict(con.execute("select cost_date, sum(cost_usd) from fct_daily_cost_by_provider group by 1").fetchall())
        by_agent = dict(con.execute("select activity_date, sum(cost_usd) from fct_agent_daily group by 1").fetchall())
        by_message = dict(con.execute("select message_date, sum(cost_usd) from fct_messages group by 1").fetchall())
    assert by_provider == by_message
    assert {d: v for d, v in by_agent.items() if v} == {d: v for d, v in by_message.items() if v}
    return by_message


def expected_daily(expected: dict[str, tuple[str, Decimal | None]]) -> dict[date, Decimal]:
    days = {"m1": 10, "m2": 14, "m3": 15, "m4": 20, "m5": 21, "m6": 22, "m7": 23, "m8": 25, "m9": 26}
    totals: dict[date, Decimal] = {}
    for call_id, (_, cost) in expected.items():
        day = date(2026, 3, days[call_id.split("#")[0]])
        totals[day] = totals.get(day, Decimal(0)) + (cost or 0)
    return totals


def cli(home: Path, prices: Path, *argv: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("AGENT_ANALYTICS_")}
    environ.update(AGENT_ANALYTICS_HOME=str(home), AGENT_ANALYTICS_TZ="America/New_York",
                   AGENT_ANALYTICS_PRICES=str(prices))
    script = str(Path(sys.executable).with_name("agent-analytics"))
    return subprocess.run([script, *argv], env=environ, capture_output=True, text=True, timeout=300)


def repriced_days_of_last_run(settings) -> list[str]:
    """The days fct_llm_calls re-priced in its last (incremental) run, read off its compiled SQL."""
    [compiled] = settings.dbt_target_dir.glob("compiled/**/marts/fct_llm_calls.sql")
    lines = [line for line in compiled.read_text().splitlines() if "message_date in (" in line]
    return re.findall(r"cast\('(\d{4}-\d\d-\d\d)' as date\)", lines[0]) if lines else []


@pytest.fixture
def priced_home(tmp_path):
    saved = dict(os.environ)
    prices = tmp_path / "prices.csv"
    os.environ.update(AGENT_ANALYTICS_HOME=str(tmp_path / "home"), AGENT_ANALYTICS_TZ="America/New_York",
                      AGENT_ANALYTICS_PRICES=str(prices))
    try:
        settings = load_settings()
        settings.ensure_dirs()
        yield settings, prices, tmp_path
    finally:
        os.environ.clear()
        os.environ.update(saved)


def test_a_changed_prices_file_reprices_history_like_a_full_rebuild(priced_home):
    settings, prices, tmp = priced_home
    first, later = tmp / "first.jsonl", tmp / "later.jsonl"
    first.write_text("\n".join(FIRST) + "\n")
    later.write_text("\n".join(LATER) + "\n")
    ingest_paths([first], settings.warehouse_path, settings.raw_dir)
    prices.write_text(PRICES_V1)
    assert run_build(settings)
    assert call_costs(settings.warehouse_path) == expected_v1()
    assert daily_costs(settings.warehouse_path) == expected_daily(expected_v1())

    # A price change in the middle of the month, and a new day loaded with it.
    prices.write_text(PRICES_V2)
    ingest_paths([later], settings.warehouse_path, settings.raw_dir)
    assert run_build(settings)
    # Only the days of gpt-4o calls from 03-15 on (the changed rows' ranges) were re-priced;
    # m9's day is new data, not a re-pricing.
    assert repriced_days_of_last_run(settings) == ["2026-03-15", "2026-03-22", "2026-03-25"]
    incremental = warehouse_tables(settings.warehouse_path, "main")
    assert call_costs(settings.warehouse_path) == expected_v2()
    assert daily_costs(settings.warehouse_path) == expected_daily(expected_v2())
    # The serving copy rewrote the re-priced days too (their load times did not change).
    assert call_costs(serving_database(settings)) == expected_v2()
    assert daily_costs(serving_database(settings)) == expected_daily(expected_v2())
    assert run_build(settings, full_refresh=True)
    assert_same_marts(incremental, warehouse_tables(settings.warehouse_path, "main"))

    # A build without a change re-prices nothing.
    assert run_build(settings)
    assert repriced_days_of_last_run(settings) == []

    # A bad file: the build goes on with the last good prices and says why; the check refuses.
    prices.write_text(PRICES_V2 + "acme,other,abc,0,0,2026-01-01,\n")
    result = cli(settings.home, prices, "build")
    assert result.returncode == 0, result.stderr
    assert f"warning: prices file {prices}, line 10: input_per_mtok 'abc' is not a number" in result.stdout
    assert call_costs(settings.warehouse_path) == expected_v2()
    result = cli(settings.home, prices, "prices", "check")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"agent-analytics: error: prices file {prices}, line 10: input_per_mtok 'abc' is not a number"]

    prices.write_text(PRICES_V2)
    result = cli(settings.home, prices, "prices", "check", "--format", "json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["changed_since_last_build"] is False
    assert report["unpriced_models"] == [
        {"provider": "acme", "model": "inXhouse-1", "calls": 1, "input_tokens": 10, "cached_input_tokens": 0,
         "output_tokens": 10, "first_day": "2026-03-21", "last_day": "2026-03-21"},
        {"provider": "mystery", "model": "mystery-model", "calls": 1, "input_tokens": 123, "cached_input_tokens": 0,
         "output_tokens": 45, "first_day": "2026-03-23", "last_day": "2026-03-23"},
    ]
    prices.write_text(PRICES_V2 + "mystery,mystery-*,1,1,1,2026-01-01,\n")
    table = cli(settings.home, prices, "prices", "check").stdout.splitlines()
    assert table[1] == "the prices file changed since the last build: run 'agent-analytics build' to apply it"
    assert table[3].split() == ["provider", "model", "calls", "input_tokens", "cached_input_tokens", "output_tokens",
                                "first_day", "last_day"]
    assert table[4].split() == ["acme", "inXhouse-1", "1", "10", "0", "10", "2026-03-21", "2026-03-21"]


@pytest.mark.parametrize(("text", "problem"), [
    ("provider,model,input_per_mtok\n", "line 1: missing column(s) cached_input_per_mtok, output_per_mtok, valid_from"),
    (HEADER.replace("valid_to", "valid_until"), "line 1: unknown column(s) valid_until"),
    (HEADER + "openai,,1,1,1,2026-01-01,\n", "line 2: provider and model must not be empty"),
    (HEADER + "openai,**,1,1,1,2026-01-01,\n", "line 2: model '**' must name at least one character besides *"),
    (HEADER + "openai,gpt-4o,-1,1,1,2026-01-01,\n", "line 2: input_per_mtok '-1' must be a number from 0 to 10000"),
    (HEADER + "openai,gpt-4o,1,NaN,1,2026-01-01,\n", "line 2: cached_input_per_mtok 'NaN' must be a number from 0 to 10000"),
    (HEADER + "openai,gpt-4o,1,1,10001,2026-01-01,\n", "line 2: output_per_mtok '10001' must be a number from 0 to 10000"),
    (HEADER + "openai,gpt-4o,0.0000001,1,1,2026-01-01,\n", "line 2: input_per_mtok '0.0000001' has more than 6 decimals"),
    (HEADER + "openai,gpt-4o,1,1,1,2026-13-01,\n", "line 2: valid_from '2026-13-01' is not a date YYYY-MM-DD"),
    (HEADER + "openai,gpt-4o,1,1,1,2026-03-01,2026-03-01\n", "line 2: valid_to 2026-03-01 must be after valid_from"),
    (HEADER + "openai,gpt-4o,1,1,1,2026-03-01\n", "line 2: 6 fields, the header has 7"),
    (HEADER + "openai,gpt-4o,1,1,1,2026-03-01,2026-04-01\n\nopenai,gpt-4o,1,1,1,2026-03-31,\n",
     "line 4: openai,gpt-4o from 2026-03-31 overlaps line 2"),
    (HEADER + "openai,gpt-4o,1,1,1,2026-03-01,\ngcp.gemini,x,1,1,1,2026-03-01,\nGoogle,x,2,2,2,2026-01-01,\n",
     "line 4: google,x from 2026-01-01 overlaps line 3"),
])
def test_a_bad_prices_file_is_one_line_naming_the_line_and_the_problem(tmp_path, text, problem):
    path = tmp_path / "prices.csv"
    path.write_text(text)
    with pytest.raises(PricesFileError) as raised:
        load_prices(path)
    message = str(raised.value)
    assert message.startswith(f"prices file {path}, {problem}")
    assert "\n" not in message


def test_a_good_prices_file_and_its_patterns(tmp_path):
    path = tmp_path / "prices.csv"
    assert load_prices(path) == []  # no file: no company prices
    path.write_text(PRICES_V2)
    prices = load_prices(path)
    assert [(p.provider, p.model, p.valid_from, p.valid_to, p.line) for p in prices[:3]] == [
        ("openai", "gpt-4o", date(2026, 3, 1), date(2026, 3, 15), 2),
        ("openai", "gpt-4o", date(2026, 3, 15), date(2026, 3, 21), 3),
        ("openai", "gpt-4o", date(2026, 3, 21), None, 4),
    ]
    assert prices[3].input_per_mtok == Decimal("0.50") and prices[3].is_pattern
    assert [p.model for p in load_prices(Path(__file__).parents[1] / "config" / "prices.example.csv")] == [
        "gpt-4o", "gpt-4o", "gpt-4o-mini*", "support-ft-*", "support-ft-v2"]
    assert like_pattern("in_house*") == "in!_house%"
    assert like_pattern("a%b!c*") == "a!%b!!c%"
