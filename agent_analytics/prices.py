"""The company's prices file (CSV, `AGENT_ANALYTICS_PRICES`, default <home>/prices.csv):
negotiated rates, in-house or fine-tuned models, models newer than the genai-prices snapshot.

    provider,model,input_per_mtok,cached_input_per_mtok,output_per_mtok,valid_from,valid_to
    openai,gpt-4o,2.00,1.00,8.00,2026-01-01,2026-03-15
    openai,gpt-4o,1.80,0.90,7.20,2026-03-15,
    acme,support-ft-*,0.50,0.25,1.50,2025-01-01,

US dollars per million uncached input, cached input and output tokens; `valid_from` is the
first company-time day a row applies to and `valid_to` (optional) the first day it no longer
does. `model` is exact, or a pattern where `*` stands for any characters. For a call, the row
of its provider valid on its company day with an exact model wins; else the matching pattern
with the most characters besides `*`; on a tie, the pattern that sorts first.

`load_prices` validates the file and raises `PricesFileError` with one line naming the file,
the line and the problem. A missing file means no company prices.

The build applies the prices in dbt (fct_llm_calls), so a changed file re-prices history:
before dbt runs, `publish_prices` writes the file's rows to <home>/prices/company_prices.parquet
(per-token rates) and the rows that differ from the prices of the last successful build to
price_changes.parquet, from which the incremental models find the days to rebuild; after a
successful build, `promote_prices` records the published prices as applied. A bad file keeps
the last good prices (the build reports why).
"""

from __future__ import annotations

import csv
import shutil
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from agent_analytics.files import sync_folder
from agent_analytics.providers import normalize_provider
from agent_analytics.settings import Settings

REQUIRED = ("provider", "model", "input_per_mtok", "cached_input_per_mtok", "output_per_mtok", "valid_from")
COLUMNS = (*REQUIRED, "valid_to")
RATES = ("input_per_mtok", "cached_input_per_mtok", "output_per_mtok")
# The largest rate: with at most 10^9 tokens per call (ingest's limit) a call's cost stays
# below 10^8 USD, the range of the stored decimal(18, 10).
MAX_RATE = Decimal(10_000)
RATE_DECIMALS = 6  # per million tokens: a per-token rate of 12 decimals, exact in decimal(20, 12)
MAX_ROWS = 100_000
ESCAPE = "!"  # the LIKE escape character of model_like (the same on DuckDB and Spark)

CURRENT_FILE = "company_prices.parquet"  # read by dbt (source prices.company_prices)
CHANGES_FILE = "price_changes.parquet"  # read by dbt (source prices.price_changes)
APPLIED_FILE = "applied_prices.parquet"  # the prices of the last successful build

_RATE_TYPE = pa.decimal128(20, 12)
SCHEMA = pa.schema([
    ("provider", pa.string()),
    ("model", pa.string()),
    ("is_pattern", pa.bool_()),
    ("model_like", pa.string()),  # the model as an SQL LIKE pattern (escape '!')
    ("literal_chars", pa.int32()),  # characters besides `*`: the more, the more specific
    ("valid_from", pa.date32()),
    ("valid_to", pa.date32()),
    ("input_rate", _RATE_TYPE),  # USD per uncached input token
    ("cache_read_rate", _RATE_TYPE),  # USD per cached input token
    ("output_rate", _RATE_TYPE),  # USD per output token
])
CHANGE_COLUMNS = ("provider", "model", "is_pattern", "model_like", "valid_from", "valid_to")
CHANGES_SCHEMA = pa.schema([SCHEMA.field(name) for name in CHANGE_COLUMNS])


class PricesFileError(ValueError):
    """The prices file cannot be used; the message is one line."""


@dataclass(frozen=True)
class Price:
    provider: str
    model: str
    input_per_mtok: Decimal
    cached_input_per_mtok: Decimal
    output_per_mtok: Decimal
    valid_from: date
    valid_to: date | None
    line: int

    @property
    def is_pattern(self) -> bool:
        return "*" in self.model

    def overlaps(self, other: Price) -> bool:
        return ((other.valid_to is None or self.valid_from < other.valid_to)
                and (self.valid_to is None or other.valid_from < self.valid_to))


def load_prices(path: Path) -> list[Price]:
    """The prices of the file at `path` in file order; [] when there is no file."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as exc:
        raise PricesFileError(f"prices file {path}: cannot be read: {exc}") from None
    rows = csv.reader(text.splitlines())
    header = [name.strip() for name in next(rows, [])]
    missing = [name for name in REQUIRED if name not in header]
    unknown = [name for name in header if name not in COLUMNS]
    if missing or unknown or len(set(header)) != len(header):
        problem = (f"missing column(s) {', '.join(missing)}" if missing else
                   f"unknown column(s) {', '.join(unknown)}" if unknown else "a column is named twice")
        raise PricesFileError(f"prices file {path}, line 1: {problem} (expected {','.join(COLUMNS)}; valid_to optional)")
    prices: list[Price] = []
    for line, row in enumerate(rows, start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(prices) >= MAX_ROWS:
            raise PricesFileError(f"prices file {path}: more than {MAX_ROWS} rows")
        try:
            price = _price(dict(zip(header, row, strict=False)), len(row), len(header), line)
        except ValueError as exc:
            raise PricesFileError(f"prices file {path}, line {line}: {exc}") from None
        for earlier in prices:
            if (earlier.provider, earlier.model) == (price.provider, price.model) and earlier.overlaps(price):
                raise PricesFileError(
                    f"prices file {path}, line {line}: {price.provider},{price.model} from {price.valid_from} "
                    f"overlaps line {earlier.line} (valid_to is the first day a row no longer applies)")
        prices.append(price)
    return prices


def prices_file_problem(settings: Settings) -> str | None:
    """Why the prices file is not used (one line, the last good prices are kept), or None."""
    try:
        load_prices(settings.prices_path)
    except PricesFileError as exc:
        return f"{exc}; the last good prices are kept"
    return None


def _price(cells: dict[str, str], count: int, expected: int, line: int) -> Price:
    if count != expected:
        raise ValueError(f"{count} fields, the header has {expected}")
    provider = normalize_provider(cells["provider"])
    model = cells["model"].strip()
    if not provider or not model:
        raise ValueError("provider and model must not be empty")
    if model.strip("*") == "":
        raise ValueError(f"model {model!r} must name at least one character besides *")
    rates = {name: _rate(name, cells[name]) for name in RATES}
    valid_from = _day("valid_from", cells["valid_from"])
    valid_to = _day("valid_to", cells["valid_to"]) if (cells.get("valid_to") or "").strip() else None
    if valid_to is not None and valid_to <= valid_from:
        raise ValueError(f"valid_to {valid_to} must be after valid_from {valid_from} "
                         "(it is the first day the row no longer applies)")
    return Price(provider, model, valid_from=valid_from, valid_to=valid_to, line=line, **rates)


def _rate(name: str, raw: str) -> Decimal:
    text = raw.strip()
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{name} {text!r} is not a number") from None
    if not value.is_finite() or value < 0 or value > MAX_RATE:
        raise ValueError(f"{name} {text!r} must be a number from 0 to {MAX_RATE} (USD per million tokens)")
    if value != value.quantize(Decimal(1).scaleb(-RATE_DECIMALS)):
        raise ValueError(f"{name} {text!r} has more than {RATE_DECIMALS} decimals")
    return value


def _day(name: str, raw: str) -> date:
    text = raw.strip()
    try:
        return date.fromisoformat(text) if len(text) == 10 else date.fromisoformat("invalid")
    except ValueError:
        raise ValueError(f"{name} {text!r} is not a date YYYY-MM-DD") from None


def like_pattern(model: str) -> str:
    """`model` as an SQL LIKE pattern with escape character '!': `*` is any characters."""
    escaped = "".join(ESCAPE + ch if ch in "%_" + ESCAPE else ch for ch in model)
    return escaped.replace("*", "%")


def price_table(prices: list[Price]) -> pa.Table:
    """The rows dbt reads: per-token rates (a rate per million tokens / 10^6, exact)."""
    per_token = Decimal(1).scaleb(-6)
    return pa.Table.from_pylist([
        {
            "provider": p.provider,
            "model": p.model,
            "is_pattern": p.is_pattern,
            "model_like": like_pattern(p.model),
            "literal_chars": len(p.model.replace("*", "")),
            "valid_from": p.valid_from,
            "valid_to": p.valid_to,
            "input_rate": p.input_per_mtok * per_token,
            "cache_read_rate": p.cached_input_per_mtok * per_token,
            "output_rate": p.output_per_mtok * per_token,
        }
        for p in prices
    ], schema=SCHEMA)


def changed_rows(before: pa.Table, after: pa.Table) -> pa.Table:
    """The price ranges whose calls may be priced differently: every row of one table that the
    other does not hold identically (an added, removed or changed row; a changed row counts
    with its old and its new range)."""
    old, new = (set(map(_row_key, table.to_pylist())) for table in (before, after))
    rows = sorted((old ^ new), key=repr)
    changes = [dict(zip(CHANGE_COLUMNS, row[:len(CHANGE_COLUMNS)], strict=True)) for row in rows]
    return pa.Table.from_pylist(changes, schema=CHANGES_SCHEMA)


def _row_key(row: dict) -> tuple:
    return tuple(row[name] for name in CHANGE_COLUMNS) + tuple(row[name] for name in SCHEMA.names if name not in CHANGE_COLUMNS)


@dataclass(frozen=True)
class Published:
    prices: int  # rows now in use
    changes: int  # rows that differ from the last successful build's prices
    error: str | None  # why the file was not used (the last good prices are kept)


def prices_dir(settings: Settings) -> Path:
    """Where the engine's builds publish the prices (the DuckDB source, and var
    spark_prices_root of dbt_project.yml): one folder per engine, as each engine's tables were
    priced by its own builds."""
    return settings.home / "prices" if settings.engine == "duckdb" else settings.spark_dir / "prices"


def ensure_published(settings: Settings) -> None:
    """Empty published prices where none are yet, so that dbt run by hand (outside a build)
    reads no company prices rather than failing on a missing file."""
    folder = prices_dir(settings)
    for name, schema in ((CURRENT_FILE, SCHEMA), (CHANGES_FILE, CHANGES_SCHEMA), (APPLIED_FILE, SCHEMA)):
        if not (folder / name).exists():
            folder.mkdir(parents=True, exist_ok=True)
            _write(folder / name, schema.empty_table())


def publish_prices(settings: Settings) -> Published:
    """Validate the prices file and publish it for the next dbt build (see the module's doc)."""
    folder = prices_dir(settings)
    ensure_published(settings)
    applied = _read(folder / APPLIED_FILE)
    if applied is None:  # of another layout: the next changes re-price every company-priced call
        applied = price_table([])
        _write(folder / APPLIED_FILE, applied)
    error = None
    try:
        current = price_table(load_prices(settings.prices_path))
        _write(folder / CURRENT_FILE, current)
    except PricesFileError as exc:
        error = f"{exc}; the last good prices are kept"
        current = _read(folder / CURRENT_FILE)
        if current is None:  # of another layout
            current = price_table([])
            _write(folder / CURRENT_FILE, current)
    changes = changed_rows(applied, current)
    _write(folder / CHANGES_FILE, changes)
    return Published(prices=current.num_rows, changes=changes.num_rows, error=error)


def promote_prices(settings: Settings) -> None:
    """Record the published prices as those of a successful build: no change is pending."""
    folder = prices_dir(settings)
    current = folder / CURRENT_FILE
    if not current.exists():
        return
    tmp = folder / f".{APPLIED_FILE}.tmp"
    shutil.copyfile(current, tmp)
    tmp.replace(folder / APPLIED_FILE)
    _write(folder / CHANGES_FILE, CHANGES_SCHEMA.empty_table())
    sync_folder(folder)


def _read(path: Path) -> pa.Table | None:
    try:
        table = pq.read_table(path)
    except (FileNotFoundError, OSError, pa.ArrowInvalid):
        return None
    return table if table.schema.equals(SCHEMA) else None


def _write(path: Path, table: pa.Table) -> None:
    """A temporary file renamed into place: readers see the old table or the new one."""
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, tmp)
    tmp.replace(path)
