"""LLM call cost estimates from the genai-prices snapshot, turned into a rate table for SQL.

Calling genai-prices once per call would be per-row Python on the hot path. Prices only
change with (provider, model, day) and, for tiered models, with the prompt size, so we ask
genai-prices once per distinct (provider, model, day) and per price segment, and let DuckDB
multiply: cost = uncached_input * input_rate + cache_read * cache_rate + output * output_rate
(+ a per-request fee for the few models that have one),
using the segment whose `[min_input_tokens, next)` range holds the call's input tokens
(genai-prices' "cliff" tiers: crossing a threshold re-prices every token of the call).

A (provider, model) that genai-prices does not know yields no rate rows: its calls stay
unpriced (cost NULL), never $0.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import date, datetime, time, timezone
from decimal import Decimal

_PROBE = 1_000_000  # tokens used to read a per-token rate (rates are per million tokens)


@dataclass(frozen=True)
class RateRow:
    provider: str
    model: str
    price_date: date
    min_input_tokens: int
    input_rate: Decimal  # USD per uncached input token
    cache_read_rate: Decimal  # USD per cached input token
    output_rate: Decimal  # USD per output token
    request_rate: Decimal = Decimal(0)  # USD per call (a few providers charge per request)


def _total(model: str, provider_id: str, when: datetime, inp: int, cache: int, out: int) -> Decimal:
    from genai_prices import Usage, calc_price

    usage = Usage(input_tokens=inp, cache_read_tokens=cache, output_tokens=out)
    return calc_price(usage, model_ref=model, provider_id=provider_id, genai_request_timestamp=when).total_price


def _tier_starts(model: str, provider_id: str, when: datetime) -> list[int]:
    from genai_prices import Usage, calc_price
    from genai_prices.types import TieredPrices

    found = calc_price(Usage(input_tokens=1), model_ref=model, provider_id=provider_id, genai_request_timestamp=when)
    starts = {0}
    for value in vars(found.model_price).values():
        if isinstance(value, TieredPrices):
            starts.update(tier.start for tier in value.tiers)
    return sorted(starts)


_QUANTUM = Decimal("1e-18")  # the scale of the SQL rate columns


def rates_for(provider: str, model: str, price_date: date) -> list[RateRow]:
    """Rate segments for one (provider, model, day); [] when genai-prices has no price.

    Within a segment the price is linear: total = fee + uncached * input + cached * cache +
    output * output_rate. The rates are read off genai-prices by differences of probes inside
    the segment, so a per-request fee is not mistaken for a token price.
    """
    when = datetime.combine(price_date, time(12), tzinfo=timezone.utc)
    try:
        starts = _tier_starts(model, provider, when)
    except (LookupError, ValueError):
        return []
    rows = []
    for start in starts:
        # A prompt size inside this segment: a tier applies when input tokens > its start.
        n = start + 1
        base = _total(model, provider, when, n, 0, 0)
        input_rate = _total(model, provider, when, n + 1, 0, 0) - base
        cached = _total(model, provider, when, n, n, 0)
        with_output = _total(model, provider, when, n, 0, _PROBE)
        rows.append(
            RateRow(
                provider=provider,
                model=model,
                price_date=price_date,
                min_input_tokens=n if start else 0,
                input_rate=input_rate.quantize(_QUANTUM),
                cache_read_rate=(input_rate + (cached - base) / n).quantize(_QUANTUM),
                output_rate=((with_output - base) / _PROBE).quantize(_QUANTUM),
                request_rate=(base - n * input_rate).quantize(_QUANTUM),
            )
        )
    return rows


def warm_up_in_background() -> None:
    """Start importing genai-prices and loading its price data (once per process) in a thread,
    so the file's validation overlaps it; a price lookup made meanwhile waits for the import
    (Python's import lock)."""

    def warm_up() -> None:
        try:
            from genai_prices import data_snapshot

            data_snapshot.get_snapshot()
        except Exception:  # the lookup itself will raise it where it can be reported
            pass

    threading.Thread(target=warm_up, name="genai-prices-warm-up").start()
