"""`agent-analytics prices check [--format table|json]`: the models seen in the data that no
source prices (no reported cost, no company price, no genai-prices price), with their calls and
tokens, as of the last build; and the prices file validated (a bad file is one error line)."""

from __future__ import annotations

import json

import duckdb

from agent_analytics.prices import APPLIED_FILE, PricesFileError, changed_rows, load_prices, price_table, prices_dir
from agent_analytics.settings import Settings


class PricesCommandError(Exception):
    """A user mistake or a state the command cannot read; printed as one line."""


def add_prices_parser(sub, parser_class) -> None:
    prices = sub.add_parser("prices", help="the company's prices file (AGENT_ANALYTICS_PRICES): check it")
    commands = prices.add_subparsers(dest="prices_command", required=True, parser_class=parser_class)
    check = commands.add_parser("check", help="validate the prices file and list the models no source prices, "
                                              "with their calls and tokens (as of the last build)")
    check.add_argument("--format", choices=("table", "json"), default="table")


UNPRICED_SQL = """
    select provider, model, count(*) as calls,
           cast(coalesce(sum(input_tokens), 0) as bigint) as input_tokens,
           cast(coalesce(sum(cache_read_tokens), 0) as bigint) as cached_input_tokens,
           cast(coalesce(sum(output_tokens), 0) as bigint) as output_tokens,
           cast(min(message_date) as varchar) as first_day, cast(max(message_date) as varchar) as last_day
    from fct_llm_calls
    where price_source = 'none'
    group by provider, model
    order by calls desc, provider, model"""


def unpriced_models(con: duckdb.DuckDBPyConnection) -> list[dict]:
    """One row per (provider, model) of the marts' calls that nothing priced."""
    cursor = con.execute(UNPRICED_SQL)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def pending_changes(settings: Settings) -> bool:
    """Whether the prices file differs from the prices of the last successful build."""
    import pyarrow.parquet as pq

    current = price_table(load_prices(settings.prices_path))
    try:
        applied = pq.read_table(prices_dir(settings) / APPLIED_FILE)
    except (FileNotFoundError, OSError):
        applied = price_table([])
    try:
        return changed_rows(applied, current).num_rows > 0
    except KeyError:  # a file of another layout: the next build replaces it
        return True


def run_prices(args, settings: Settings) -> int:
    from agent_analytics.exports import NoWarehouseError, open_marts

    try:
        pending = pending_changes(settings)
    except PricesFileError as exc:
        raise PricesCommandError(str(exc)) from None
    try:
        with open_marts(settings, lock_timeout_s=60) as con:
            rows = unpriced_models(con)
    except NoWarehouseError as exc:
        raise PricesCommandError(str(exc)) from None
    except TimeoutError:
        raise PricesCommandError("the warehouse stayed locked by a build for 60 s; try again") from None
    except duckdb.Error:
        raise PricesCommandError("the marts have no price_source yet: run 'agent-analytics build' first") from None
    if args.format == "json":
        print(json.dumps({"prices_file": str(settings.prices_path), "prices_file_exists": settings.prices_path.exists(),
                          "changed_since_last_build": pending, "unpriced_models": rows}, indent=2))
        return 0
    file_note = "" if settings.prices_path.exists() else " (none: genai-prices and reported costs only)"
    print(f"prices file: {settings.prices_path}{file_note}: ok")
    if pending:
        print("the prices file changed since the last build: run 'agent-analytics build' to apply it")
    if not rows:
        print("every call of the last build has a price (reported, company or genai-prices)")
        return 0
    print("models with no price from any source (as of the last build):")
    headers = ("provider", "model", "calls", "input_tokens", "cached_input_tokens", "output_tokens", "first_day", "last_day")
    cells = [[str(row[h]) for h in headers] for row in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    numeric = {"calls", "input_tokens", "cached_input_tokens", "output_tokens"}
    for line in (list(headers), *cells):
        aligned = (c.rjust(w) if h in numeric else c.ljust(w) for c, w, h in zip(line, widths, headers, strict=True))
        print("  ".join(aligned).rstrip())
    return 0
