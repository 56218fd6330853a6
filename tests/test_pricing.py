"""Tests for LLM call costs: reported cost wins, estimates from genai-prices, unpriced stays NULL.

Expected costs are computed by hand from the providers' published per-million-token prices
(the same numbers genai-prices 0.2.3 ships; each is also cross-checked against
`genai_prices.calc_price` directly):

  openai gpt-4o-2024-08-06   $2.50 input, $1.25 cached input, $10.00 output
  google gemini-1.5-pro      $1.25 input / $5.00 output up to 128k prompt tokens,
                             $2.50 / $10.00 for every token of a prompt over 128k; no cache price
  google gemini-1.5-flash    $0.075 input, $0.01875 cached input, $0.30 output (up to 128k)
  azure gpt-4o               $2.50 input / $10.00 output
  aws anthropic.claude-3-5-sonnet-20241022-v2:0   $3.00 input / $15.00 output
  perplexity sonar           $1.00 input / $1.00 output + $12 per 1,000 requests
"""

from __future__ import annotations

import json
from datetime import date, datetime, timezone
from decimal import ROUND_HALF_UP, Decimal

import duckdb
import pytest
from genai_prices import Usage, calc_price

from ingestion import pricing
from ingestion.load import ingest_paths

DAY = date(2026, 11, 2)
M = Decimal(1_000_000)


def call(provider, model, inp, out, **extra):
    return {"provider": provider, "model": model, "input_tokens": inp, "output_tokens": out, **extra}


# event id -> (llm call, expected provider, expected cost_usd, expected cost_source)
CASES = {
    "reported": (call("openai", "gpt-4o-2024-08-06", 612, 143, cost_usd=0.5), "openai", Decimal("0.5"), "reported"),
    "reported-zero": (call("openai", "gpt-4o-2024-08-06", 612, 143, cost_usd=0), "openai", Decimal(0), "reported"),
    "estimated": (call("openai", "gpt-4o-2024-08-06", 612, 143), "openai",
                  612 * Decimal("2.5") / M + 143 * Decimal(10) / M, "estimated"),  # 0.00296
    "cached": (call("openai", "gpt-4o-2024-08-06", 1000, 100, cache_read_tokens=400), "openai",
               (600 * Decimal("2.5") + 400 * Decimal("1.25") + 100 * Decimal(10)) / M, "estimated"),  # 0.003
    "tier-low": (call("google", "gemini-1.5-pro", 128_000, 1000), "google",
                 (128_000 * Decimal("1.25") + 1000 * Decimal(5)) / M, "estimated"),  # 0.165
    "tier-high": (call("google", "gemini-1.5-pro", 128_001, 1000), "google",
                  (128_001 * Decimal("2.5") + 1000 * Decimal(10)) / M, "estimated"),  # 0.3300025
    "tier-high-cached": (call("google", "gemini-1.5-pro", 200_000, 1000, cache_read_tokens=50_000), "google",
                         (200_000 * Decimal("2.5") + 1000 * Decimal(10)) / M, "estimated"),  # 0.51
    "unknown-model": (call("openai", "acme-internal-1", 10, 10), "openai", None, "unpriced"),
    "unknown-provider": (call("acme", "gpt-4o", 10, 10), "acme", None, "unpriced"),
    "otel-gcp": (call("gcp.gemini", "gemini-1.5-flash", 1000, 100), "google",
                 (1000 * Decimal("0.075") + 100 * Decimal("0.3")) / M, "estimated"),  # 0.000105
    "otel-azure": (call("azure.ai.openai", "gpt-4o", 1000, 100), "azure",
                   (1000 * Decimal("2.5") + 100 * Decimal(10)) / M, "estimated"),  # 0.0035
    "otel-aws": (call("aws.bedrock", "anthropic.claude-3-5-sonnet-20241022-v2:0", 1000, 100), "aws",
                 (1000 * Decimal(3) + 100 * Decimal(15)) / M, "estimated"),  # 0.0045
    "spelling": (call(" OpenAI ", "gpt-4o-2024-08-06", 612, 143), "openai",
                 612 * Decimal("2.5") / M + 143 * Decimal(10) / M, "estimated"),
    "per-request": (call("perplexity", "sonar", 1000, 100), "perplexity",
                    (1000 + 100) * Decimal(1) / M + Decimal(12) / 1000, "estimated"),  # 0.0131
    # one cached token at $0.01875/M = $0.00000001875: stored to 10 decimals, half rounded up
    "rounding": (call("google", "gemini-1.5-flash", 1, 0, cache_read_tokens=1), "google",
                 Decimal("0.0000000188"), "estimated"),
}

# genai-prices provider ids for the cross-check (our names after normalization)
GENAI_PROVIDER = {"google": "google", "openai": "openai", "azure": "azure", "aws": "aws", "perplexity": "perplexity"}


@pytest.fixture(scope="module")
def priced(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pricing")
    path = tmp / "calls.jsonl"
    path.write_text(
        "".join(
            json.dumps({
                "event_id": event_id, "type": "message", "occurred_at": f"{DAY}T12:00:00Z", "user_id": "u-1",
                "agent_id": "support", "status": "ok", "response_time_ms": 100, "llm_calls": [llm_call],
            }) + "\n"
            for event_id, (llm_call, *_) in CASES.items()
        )
    )
    [result] = ingest_paths([path], tmp / "w.duckdb", tmp / "raw")
    assert (result.loaded, result.quarantined) == (len(CASES), 0)
    con = duckdb.connect()
    try:
        rows = con.execute(
            f"""select event_id, provider, provider_raw, reported_cost_usd, estimated_cost_usd, cost_usd, cost_source
                from read_parquet('{tmp / "raw" / "batches" / "*" / "llm_calls.parquet"}')"""
        ).fetchall()
    finally:
        con.close()
    return {row[0]: row[1:] for row in rows}


@pytest.mark.parametrize("event_id", list(CASES))
def test_call_cost(priced, event_id):
    llm_call, provider, cost, source = CASES[event_id]
    got_provider, provider_raw, reported, estimated, cost_usd, cost_source = priced[event_id]
    assert (got_provider, provider_raw) == (provider, llm_call["provider"])
    assert cost_source == source
    assert cost_usd == cost  # Decimal: exact, to the last of the 10 stored decimals
    if source == "reported":
        assert reported == cost and estimated is None
    else:
        assert reported is None and estimated == cost


@pytest.mark.parametrize("event_id", [k for k, v in CASES.items() if v[3] == "estimated"])
def test_estimate_matches_genai_prices(event_id):
    llm_call, provider, cost, _ = CASES[event_id]
    usage = Usage(
        input_tokens=llm_call["input_tokens"],
        cache_read_tokens=llm_call.get("cache_read_tokens"),
        output_tokens=llm_call["output_tokens"],
    )
    expected = calc_price(
        usage, model_ref=llm_call["model"], provider_id=GENAI_PROVIDER[provider],
        genai_request_timestamp=datetime(DAY.year, DAY.month, DAY.day, 12, tzinfo=timezone.utc),
    ).total_price
    assert expected.quantize(Decimal("1e-10"), ROUND_HALF_UP) == cost  # cost_usd has 10 decimals


def test_unknown_model_has_no_rates():
    assert pricing.rates_for("openai", "acme-internal-1", DAY) == []
    assert pricing.rates_for("acme", "gpt-4o", DAY) == []


@pytest.mark.parametrize("provider, model, segments", [
    # (min input tokens, $/M input, $/M cached input, $/M output, $ per call)
    ("openai", "gpt-4o-2024-08-06", [(0, "2.5", "1.25", "10", "0")]),
    ("google", "gemini-1.5-pro", [(0, "1.25", "1.25", "5", "0"), (128_001, "2.5", "2.5", "10", "0")]),
    ("perplexity", "sonar", [(0, "1", "1", "1", "0.012")]),
])
def test_rates_read_from_genai_prices(provider, model, segments):
    rows = pricing.rates_for(provider, model, DAY)
    assert [
        (r.min_input_tokens, r.input_rate * M, r.cache_read_rate * M, r.output_rate * M, r.request_rate) for r in rows
    ] == [(n, Decimal(i), Decimal(c), Decimal(o), Decimal(f)) for n, i, c, o, f in segments]


@pytest.mark.parametrize("alias, name", [("gcp.gemini", "google"), ("azure.ai.openai", "azure"),
                                         ("aws.bedrock", "aws"), ("x_ai", "x-ai"), (" OpenAI ", "openai")])
def test_provider_aliases(alias, name):
    """The load's SQL normalization of provider names (OpenTelemetry names, case, spaces)."""
    from ingestion.load import _provider_case

    with duckdb.connect() as con:  # not the shared default connection: fetchone leaves its result open
        assert con.execute(f"select {_provider_case('p')} from (select ? as p)", [alias]).fetchone() == (name,)
