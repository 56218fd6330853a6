"""Import a provider's bill (an invoice or cost export for a month) into the raw layer.

A bill file is CSV with a header naming the columns `provider`, `month` (YYYY-MM) and
`amount_usd`, optionally `model` and `project` (other columns are ignored; docs/bills.md).
One file is one batch, with the accounting of an event file:

1. the bytes are hashed (sha256); content already in the ledger (as a bill) is reported as
   already imported and changes nothing;
2. every row gets a verdict in DuckDB SQL: the first failing rule names the reason, and a bad
   row goes to `ingest.quarantine` (file, line number, reason, the row's text); good rows are
   stored;
3. the good rows are written to `raw/batches/<batch_id>/bills.parquet` (published by one
   rename) and the ledger row (record_type `bill`), with the quarantined rows, is committed in
   one DuckDB transaction, as for events (ingestion/load.py).

Nothing is deleted on a re-import: a corrected export of a month is a new batch, and the
staging model `stg_raw__bills` keeps, for each provider and month, the rows of the latest
batch that has that provider-month, so the newer file replaces the older one's bill.
"""

from __future__ import annotations

import csv
import hashlib
import io
import shutil
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pyarrow as pa

from agent_analytics.sql import literal, stored_text
from agent_analytics.warehouse import open_warehouse, transaction
from ingestion import raw_layer
from ingestion.load import FileResult, IngestError, _open_regular, _provider_case, recover

RECORD_TYPE = "bill"
REQUIRED_COLUMNS = ("provider", "month", "amount_usd")
OPTIONAL_COLUMNS = ("model", "project")
MAX_BILL_BYTES = 64 * 1024 * 1024  # a month's cost export; a larger file is not a bill
MAX_TEXT = 200  # characters of provider, model and project
AMOUNT_DECIMALS = 6  # the stored decimal(18, 6)
AMOUNT_LIMIT = 10**12  # USD: keeps every amount inside decimal(18, 6)

# One `when ... then 'reason'` per rule, in order; the first that fails names the reason.
_VERDICT_SQL = f"""
    case
        when fields <> header_fields then 'wrong number of fields'
        when provider is null or trim(provider) = '' then 'provider is missing'
        when length(trim(provider)) > {MAX_TEXT} then 'provider is longer than {MAX_TEXT} characters'
        when month is null or trim(month) = '' then 'month is missing'
        when not regexp_full_match(trim(month), '[0-9]{{4}}-(0[1-9]|1[0-2])') then 'month is not YYYY-MM'
        when amount_usd is null or trim(amount_usd) = '' then 'amount_usd is missing'
        when regexp_full_match(trim(amount_usd), '-[0-9]+(\\.[0-9]+)?') then 'amount_usd is negative'
        when not regexp_full_match(trim(amount_usd), '[0-9]+(\\.[0-9]+)?')
            then 'amount_usd is not a decimal number (digits and an optional point)'
        when length(regexp_extract(trim(amount_usd), '\\.([0-9]+)$', 1)) > {AMOUNT_DECIMALS}
            then 'amount_usd has more than {AMOUNT_DECIMALS} decimal places'
        when length(ltrim(split_part(trim(amount_usd), '.', 1), '0')) > {len(str(AMOUNT_LIMIT)) - 1}
            then 'amount_usd is a trillion USD or more'
        when length(trim(coalesce(model, ''))) > {MAX_TEXT} then 'model is longer than {MAX_TEXT} characters'
        when length(trim(coalesce(project, ''))) > {MAX_TEXT} then 'project is longer than {MAX_TEXT} characters'
        when regexp_matches(provider || coalesce(model, '') || coalesce(project, ''), '[\\p{{Cc}}\\p{{Zl}}\\p{{Zp}}]')
            then 'a line break or control character in provider, model or project'
    end"""


@dataclass(frozen=True)
class BillRows:
    """A bill file's rows as read by the CSV parser, in columns (one entry per data row)."""

    header: list[str]
    table: pa.Table  # line_number, raw_line, fields, header_fields and the documented columns as text


def _read_text(path: Path) -> tuple[bytes, str]:
    """The file's bytes and its text (UTF-8, a byte order mark dropped)."""
    try:
        with _open_regular(path, follow_links=True) as handle:
            data = handle.read(MAX_BILL_BYTES + 1)
    except OSError as exc:
        raise IngestError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if len(data) > MAX_BILL_BYTES:
        raise IngestError(f"{path}: larger than {MAX_BILL_BYTES // (1024 * 1024)} MiB, not a month's bill")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise IngestError(f"{path}: not UTF-8 text (byte {exc.start}); save the export as UTF-8 CSV") from None
    return data, text


def parse_rows(path: Path, text: str) -> BillRows:
    """The header and the data rows of a bill's CSV text; IngestError when the header lacks a
    required column. A bill has at most a few thousand rows: the csv module reads them."""
    lines = io.StringIO(text).readlines()  # split as the reader splits (str.splitlines also splits at \x1c, \u2028...)
    reader = csv.reader(io.StringIO(text))
    try:
        header = [name.strip().lower() for name in next(reader, [])]
    except csv.Error as exc:
        raise IngestError(f"{path}: the header is not CSV ({exc})") from None
    missing = [name for name in REQUIRED_COLUMNS if name not in header]
    if missing:
        raise IngestError(f"{path}: the header has no column {', '.join(missing)} (a bill needs "
                          f"{', '.join(REQUIRED_COLUMNS)}, optionally {', '.join(OPTIONAL_COLUMNS)}; docs/bills.md)")
    duplicated = sorted({name for name in header if header.count(name) > 1 and name in REQUIRED_COLUMNS + OPTIONAL_COLUMNS})
    if duplicated:
        raise IngestError(f"{path}: the header names {', '.join(duplicated)} more than once")
    names = ("line_number", "raw_line", "fields", *REQUIRED_COLUMNS, *OPTIONAL_COLUMNS)
    columns: dict[str, list] = {name: [] for name in names}
    positions = {name: header.index(name) for name in REQUIRED_COLUMNS + OPTIONAL_COLUMNS if name in header}
    previous = reader.line_num
    try:
        for row in reader:
            if row:  # a blank line is no row
                columns["line_number"].append(previous + 1)
                columns["raw_line"].append("".join(lines[previous:reader.line_num]).rstrip("\r\n"))
                columns["fields"].append(len(row))
                for name in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS):
                    index = positions.get(name)
                    columns[name].append(row[index] if index is not None and index < len(row) else None)
            previous = reader.line_num
    except csv.Error as exc:
        raise IngestError(f"{path}: not CSV after line {previous} ({exc})") from None
    types = {"line_number": pa.int64(), "fields": pa.int64()}
    table = pa.table({name: pa.array(values, types.get(name, pa.string())) for name, values in columns.items()})
    return BillRows(header, table)


def _classify(con: duckdb.DuckDBPyConnection, rows: BillRows) -> None:
    """`bill_rows`: every row with its reason (NULL when stored) and its typed values."""
    con.register("bill_input", rows.table)
    con.execute(f"""
        create or replace temp table bill_rows as
        with verdicts as (
            select *, {_VERDICT_SQL} as reason
            from (select *, {len(rows.header)} as header_fields from bill_input)
        )
        select *,
               {_provider_case('provider')} as provider_name,
               try_cast(trim(month) || '-01' as date) as bill_month_typed,
               try_cast(trim(amount_usd) as decimal(18, {AMOUNT_DECIMALS})) as amount_typed
        from verdicts""")
    con.unregister("bill_input")


def import_bill(con: duckdb.DuckDBPyConnection, path: Path, raw_dir: Path) -> FileResult:
    """Import one bill file as one batch (module docstring); its accounting, or the first
    batch's when the same content was imported before."""
    data, text = _read_text(path)
    content_hash = hashlib.sha256(data).hexdigest()
    name = stored_text(path.name)
    previous = con.execute(
        """select lines, loaded, duplicates, quarantined, batch_id, record_type from ingest.ledger
           where content_hash = ? order by ingested_at limit 1""", [content_hash]).fetchone()
    if previous is not None and previous[5] != RECORD_TYPE:  # a file's content is in the ledger once
        raise IngestError(f"{path}: these bytes were ingested as events (batch {previous[4]}), not a bill")
    if previous is not None:
        return FileResult(name, content_hash, *previous[:5], already_loaded=True, record_type=RECORD_TYPE)
    rows = parse_rows(path, text)
    con.execute("set TimeZone = 'UTC'")
    _classify(con, rows)
    lines, quarantined = con.execute("select count(*), count(reason) from bill_rows").fetchone()
    batch_id = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:12]
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    result = FileResult(file_name=name, content_hash=content_hash, lines=lines, loaded=lines - quarantined,
                        duplicates=0, quarantined=quarantined, batch_id=batch_id, record_type=RECORD_TYPE)
    ts = f"timestamp '{now:%Y-%m-%d %H:%M:%S.%f}'"
    staging = raw_layer.tmp_dir(raw_dir) / batch_id
    published = None
    try:
        staging.mkdir(parents=True)
        target = staging / "bills.parquet"
        con.execute(
            f"""copy (select provider_name as provider, bill_month_typed as bill_month,
                             lower(nullif(trim(model), '')) as model, nullif(trim(project), '') as project,
                             amount_typed as amount_usd, ? as source_file, line_number,
                             ? as batch_id, {ts} as loaded_at
                      from bill_rows where reason is null order by line_number)
                to {literal(target)} (format parquet)""", [name, batch_id])
        published = raw_layer.publish(staging, raw_dir, batch_id)
        with transaction(con):
            con.execute(
                """insert into ingest.ledger (batch_id, file_name, file_path, content_hash, lines, loaded, duplicates,
                       quarantined, ingested_at, record_type, records)
                   values (?, ?, ?, ?, ?, ?, 0, ?, """ + ts + ", ?, ?)",
                [batch_id, name, stored_text(str(path)), content_hash, lines, result.loaded, quarantined,
                 RECORD_TYPE, lines])
            con.execute(f"""insert into ingest.quarantine
                            select ?, ?, line_number, reason, raw_line, {ts} from bill_rows
                            where reason is not null order by line_number""", [batch_id, name])
        return result
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if published is not None:
            shutil.rmtree(published, ignore_errors=True)
        raise
    finally:
        con.execute("drop table if exists bill_rows")


def import_bill_file(path: Path, warehouse_path: Path, raw_dir: Path) -> FileResult:
    """Open the warehouse (after any crash recovery of the raw layer) and import `path`."""
    if not path.exists():
        raise IngestError(f"{path}: no such file")
    if path.is_dir():
        raise IngestError(f"{path}: a folder, not a bill file")
    with open_warehouse(warehouse_path) as con:
        recover(con, raw_dir)
        return import_bill(con, path, raw_dir)


def quarantine_reasons(warehouse_path: Path, batch_id: str) -> list[tuple[str, int]]:
    """The quarantine reasons of one batch with their row counts, most frequent first."""
    with open_warehouse(warehouse_path, read_only=True) as con:
        return con.execute("""select reason, count(*) from ingest.quarantine where batch_id = ?
                              group by reason order by count(*) desc, reason""", [batch_id]).fetchall()
