"""Load contract files into the raw layer: every line loaded, duplicate or quarantined.

One file is one batch:
1. read the bytes in line-aligned chunks (gunzip `.gz`) and hash them (sha256); a content
   hash already in the ledger is reported as already loaded and changes nothing. Threads hash
   and split ahead (the next chunk, and in `load_files` the next file's first chunk) while
   DuckDB works on the current one. The hash runs beside the validation and is checked after
   it, except for a one-chunk file whose name is already in the ledger: that one waits for its
   hash and, when loaded before, is skipped without being validated;
2. split each chunk into lines with numpy (no per-line Python) and validate them in DuckDB
   SQL (`validate.py`: one typed JSON parse per line and cheap checks that prove nearly every
   line valid; the full rule list, with reasons, only for the rest): every line gets one verdict;
3. valid records whose `event_id` was seen earlier in the file or in an earlier batch are
   duplicates (earlier batches: stored 64-bit hashes first, then the candidates' ids as
   text); the rest are loaded;
4. write the batch's Parquet files into `raw/_tmp/<batch>`, rename the folder into
   `raw/batches/` and commit ledger, quarantine, duplicates and event ids in one DuckDB
   transaction. A failure before the commit removes the folder; a hard crash leaves a folder
   without a ledger row, which `sweep_orphans` deletes at the start of the next load.

Memory stays bounded by the chunk size (plus DuckDB's typed copy of the file), whatever the
size of the file.
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import logging
import os
import shutil
import stat
import uuid
import zlib
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from datetime import date, datetime, timezone
from functools import lru_cache
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from agent_analytics.providers import PROVIDER_ALIASES
from agent_analytics.sql import literal, stored_text
from agent_analytics.warehouse import open_warehouse, transaction
from ingestion import compaction, otlp, pricing, raw_layer, traces
from ingestion.ingest_tables import ID_HASH, ensure_ingest_schema
from ingestion.validate import PARSE_SQL, AcceptedTimes, reason_sql, set_accepted_times

logger = logging.getLogger(__name__)

# Bytes of (decompressed) input handled at once; a file larger than this is read in chunks.
CHUNK_BYTES = 256 * 1024 * 1024
_BOM = b"\xef\xbb\xbf"
# Working tables live in `ingest_work`, an in-memory database attached to the warehouse
# connection for the duration of one load (not TEMP tables, which a cursor cannot see), so the
# Parquet writes can run side by side on cursors of that connection.
_WRITERS = 3


class IngestError(Exception):
    """A path that cannot be ingested at all (missing, unreadable, not a regular file, corrupt
    compression); the message says why."""


class TruncatedFile(IngestError):
    """A gzip file that ends before its end-of-stream marker: corrupt, or still being copied."""


# A "line" this long without a newline is not JSON Lines (a JSON array export, a binary file):
# the file is refused instead of held in memory whole. Lines up to it are quarantined as oversized.
MAX_CARRY_BYTES = 64 * 1024 * 1024



@dataclass(frozen=True)
class FileResult:
    """One file's accounting. `loaded`, `duplicates` and `quarantined` count records: events
    in a native file (one per line), spans in an OTLP file (a line that holds no readable
    request is one quarantined record), so records = loaded + duplicates + quarantined."""

    file_name: str
    content_hash: str
    lines: int
    loaded: int
    duplicates: int
    quarantined: int
    batch_id: str
    already_loaded: bool = False
    record_type: str = "event"  # event (native JSONL) or span (OTLP/JSON)
    records: int | None = None  # None: one per line
    traces: int | None = None  # distinct traces among the loaded spans (OTLP files)

    @property
    def record_count(self) -> int:
        return self.lines if self.records is None else self.records


def expand_paths(paths: list[Path]) -> list[Path]:
    """Files to load: each file as given, each folder's *.jsonl / *.jsonl.gz sorted by name."""
    files: list[Path] = []
    for path in paths:
        try:  # stat and listing raise PermissionError for a folder on the way we may not enter
            if not path.exists():
                raise IngestError(f"{path}: no such file or folder")
            if path.is_dir():
                files.extend(sorted(p for p in path.iterdir() if p.name.endswith((".jsonl", ".jsonl.gz"))))
            else:
                files.append(path)
        except OSError as exc:
            raise IngestError(f"{path}: cannot read ({exc.strerror or exc})") from None
    return files


def _open_regular(path: Path, follow_links: bool):
    """A binary handle on `path`, which must be a regular file. Without `follow_links` a symbolic
    link is refused by the open itself (O_NOFOLLOW), so a link swapped in after a check is too;
    O_NONBLOCK keeps a FIFO from blocking the open."""
    flags = os.O_RDONLY | os.O_NONBLOCK | (0 if follow_links else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP and not follow_links:
            raise IngestError(f"{path}: a symbolic link (links in the landing folder are not followed)") from None
        raise IngestError(f"{path}: cannot read ({exc.strerror or exc})") from None
    kind = stat.S_IFMT(os.fstat(fd).st_mode)
    if kind != stat.S_IFREG:
        os.close(fd)
        raise IngestError(f"{path}: not a regular file ({_KINDS.get(kind, 'special file')})")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


_KINDS = {stat.S_IFDIR: "a directory", stat.S_IFIFO: "a FIFO", stat.S_IFCHR: "a character device",
          stat.S_IFBLK: "a block device", stat.S_IFSOCK: "a socket"}


def read_chunks(path: Path, *, follow_links: bool = True) -> Iterator[bytes]:
    """The file's (decompressed) content in pieces that end at a line end (the last may not)."""
    size = CHUNK_BYTES
    raw = _open_regular(path, follow_links)
    try:
        gz = raw.read(2) == b"\x1f\x8b"
        raw.seek(0)
    except OSError as exc:
        raw.close()
        raise IngestError(f"{path}: cannot read ({exc.strerror or exc})") from None
    handle = gzip.GzipFile(fileobj=raw, mode="rb") if gz else raw
    with raw, handle:
        carry = b""
        while True:
            try:
                block = handle.read(size)
            except EOFError as exc:
                raise TruncatedFile(f"{path}: not a readable gzip file ({exc})") from None
            except (OSError, zlib.error) as exc:
                what = "not a readable gzip file" if gz else "cannot read"
                raise IngestError(f"{path}: {what} ({exc})") from None
            if not block:
                if carry:
                    yield carry
                return
            data = carry + block if carry else block
            cut = data.rfind(b"\n") + 1
            if cut == 0:  # one line longer than the chunk: keep reading
                if len(data) > MAX_CARRY_BYTES:
                    raise IngestError(f"{path}: a line of over {MAX_CARRY_BYTES:,} bytes without a line end "
                                      "(not JSON Lines)")
                carry = data
                continue
            carry = data[cut:]
            yield data[:cut]


# Newlines are searched block by block into one reused mask: a mask of the whole chunk would
# be a fresh allocation as large as the chunk, and its page faults cost more than the search.
_SCAN_BLOCK = 4 * 1024 * 1024


def _line_offsets(data: bytes) -> np.ndarray:
    """Start offsets of the lines, then the end of the data (int64, no per-line Python)."""
    buf = np.frombuffer(data, dtype=np.uint8)
    mask = np.empty(min(len(buf), _SCAN_BLOCK), dtype=bool)
    parts = [np.zeros(1, dtype=np.int64)]
    for start in range(0, len(buf), _SCAN_BLOCK):
        block = buf[start:start + _SCAN_BLOCK]
        parts.append(np.flatnonzero(np.equal(block, 10, out=mask[:len(block)])).astype(np.int64) + (start + 1))
    offsets = np.concatenate(parts)
    if len(buf) and offsets[-1] != len(buf):
        offsets = np.append(offsets, len(buf))
    return offsets


def _int64_array(values: np.ndarray) -> pa.Array:
    """An Arrow view of an int64 numpy array, without the set-up `pa.array` pays on its first call."""
    return pa.Array.from_buffers(pa.int64(), len(values), [None, pa.py_buffer(values)])


def split_lines(data: bytes, first_line_number: int = 1) -> pa.Table:
    """(line_number, line_blob) for every line (with its newline), built from buffers without a Python loop."""
    offsets = _line_offsets(data)
    count = len(offsets) - 1
    blobs = pa.LargeBinaryArray.from_buffers(pa.large_binary(), count, [None, pa.py_buffer(offsets), pa.py_buffer(data)])
    numbers = _int64_array(np.arange(first_line_number, first_line_number + count, dtype=np.int64))
    return pa.table({"line_number": numbers, "line_blob": blobs})


@dataclass
class Lines:
    """One chunk's lines as Arrow: `text` (valid UTF-8 everywhere) or per-line `blobs`."""

    first_line_number: int
    count: int
    table: pa.Table  # line_number + line_text (large_string) or line_blob (large_binary)
    blobs: pa.LargeBinaryArray | None  # set when some line is not valid UTF-8


def prepare_lines(data: bytes, first_line_number: int) -> Lines:
    """Split a chunk and check its UTF-8 as a whole (Arrow, no copy); runs outside DuckDB."""
    table = split_lines(data, first_line_number)
    blobs = table.column("line_blob").chunk(0)
    text = pa.LargeStringArray.from_buffers(len(blobs), blobs.buffers()[1], blobs.buffers()[2])
    if not data.isascii():  # ASCII is valid UTF-8; otherwise Arrow checks every line
        try:
            text.validate(full=True)
        except pa.ArrowInvalid:
            return Lines(first_line_number, len(blobs), table, blobs)
    return Lines(first_line_number, len(blobs), pa.table({"line_number": table.column("line_number"), "line_text": text}), None)


def _lines_relation(con: duckdb.DuckDBPyConnection, lines: Lines) -> None:
    """Register the chunk's lines as the view `lines(line_number, line_bytes, line_text)`.

    Valid UTF-8 is handed over as text without a copy; otherwise each line is decoded on its
    own (an invalid one gets NULL text).
    """
    con.register("lines_arrow", lines.table)
    if lines.blobs is not None:
        con.execute(
            """create or replace temp view lines as
               select line_number, octet_length(line_blob) as line_bytes, try(decode(line_blob)) as line_text
               from lines_arrow"""
        )
    else:
        con.execute(
            """create or replace temp view lines as
               select line_number, strlen(line_text) as line_bytes, line_text from lines_arrow"""
        )


@lru_cache(maxsize=4096)
def _rates(provider: str, model: str, price_date) -> tuple[pricing.RateRow, ...]:
    """Rate segments of one (provider, model, day); none (the calls stay unpriced) for anything
    genai-prices cannot price, whatever it raises: a price lookup never fails a file."""
    if not isinstance(price_date, date):  # a day Python cannot hold (validation keeps them out)
        return ()
    try:
        return tuple(pricing.rates_for(provider, model, price_date))
    except Exception as exc:  # noqa: BLE001 - the calls are counted as unpriced instead
        logger.warning("no price for %s/%s on %s: genai-prices raised %s", provider, model, price_date, type(exc).__name__)
        return ()


_ATTO = 10**18  # rates go to SQL as integer atto-dollars (1e-18 USD) per token / per call
_INT64_MAX = 2**63 - 1


def _json_number(fragment: str, sql_type: str) -> str:
    """A validated JSON number text (kept as JSON by the parse) as an SQL number."""
    return f"cast(cast({fragment} as varchar) as {sql_type})"


def _calls_sql() -> str:
    """The loaded LLM calls, one row per call, with SQL types and the normalized provider."""
    return f"""
    with items as (
        select event_id, occurred_at, unnest(llm_calls) as c, generate_subscripts(llm_calls, 1) as call_index
        from ingest_work.loaded where event_type = 'message'
    )
    select event_id, call_index, occurred_at,
           {_provider_case("c.provider")} as provider,
           c.provider as provider_raw,
           c.model,
           {_json_number("c.input_tokens", "bigint")} as input_tokens,
           {_json_number("c.output_tokens", "bigint")} as output_tokens,
           coalesce({_json_number("c.cache_read_tokens", "bigint")}, 0) as cache_read_tokens,
           cast({_json_number("c.cost_usd", "double")} as decimal(18, 10)) as reported_cost_usd,
           {_json_number("c.latency_ms", "double")} as latency_ms,
           0 as revision
    from items"""


def _create_rates(con: duckdb.DuckDBPyConnection, calls: str) -> None:
    """The table `ingest_work.rates`: genai-prices rate segments of every (provider, model, day)
    of an LLM call of the query `calls` without a reported cost, in integer atto-dollars."""
    keys = con.execute(
        f"""select distinct provider, model, cast(occurred_at as date)
            from ({calls}) where reported_cost_usd is null"""
    ).fetchall()
    rows = []
    for r in (r for key in keys for r in _rates(*key)):
        rates = [int(getattr(r, name) * _ATTO) for name in ("input_rate", "cache_read_rate", "output_rate", "request_rate")]
        # A rate of over $9 per token does not fit; such a (model, day) stays unpriced.
        if all(0 <= rate <= _INT64_MAX for rate in rates):
            rows.append((r.provider, r.model, r.price_date, r.min_input_tokens, *rates))
    # (A few dozen rows: plain parameters, not Arrow, whose first conversion imports pandas.)
    con.execute(
        """create or replace table ingest_work.rate_rows (provider varchar, model varchar, price_date date,
           min_input_tokens bigint, input_rate bigint, cache_read_rate bigint, output_rate bigint, request_rate bigint)"""
    )
    if rows:
        con.executemany("insert into ingest_work.rate_rows values (?, ?, ?, ?, ?, ?, ?, ?)", rows)
    con.execute(
        """create or replace table ingest_work.rates as
           select *, lead(min_input_tokens) over (
                      partition by provider, model, price_date order by min_input_tokens) as next_min_input_tokens
           from ingest_work.rate_rows"""
    )


# The estimate is computed exactly in integer atto-dollars (HUGEINT) and rounded half up to the
# stored 10 decimals with 64-bit integer division where it fits. (Casting a decimal(38, 18)
# product down to decimal(18, 10) divides 128-bit integers row by row, far slower.)
_ATTO_SQL = """(c.input_tokens - c.cache_read_tokens)::hugeint * r.input_rate
               + c.cache_read_tokens::hugeint * r.cache_read_rate
               + c.output_tokens::hugeint * r.output_rate
               + r.request_rate"""
# (10^8 USD and more does not fit decimal(18, 10): such an estimate stays NULL, i.e. unpriced.)
_UNITS_SQL = """case when atto < 9000000000000000000 then (atto::bigint + 50000000) // 100000000
                    when atto < 99999999999999999950000000 then ((atto + 50000000) // 100000000)::bigint end"""
_ESTIMATE_SQL = "cast(cast(units as decimal(18, 0)) * 0.0000000001 as decimal(18, 10))"


def _provider_case(column: str) -> str:
    branches = " ".join(f"when '{alias}' then '{name}'" for alias, name in PROVIDER_ALIASES.items())
    return f"case lower(trim({column})) {branches} else lower(trim({column})) end"


def _parse_spans(con: duckdb.DuckDBPyConnection, lines: Lines) -> None:
    """Read one chunk of an OTLP file into `ingest_work.spans` (otlp.py)."""
    _lines_relation(con, lines)
    try:
        otlp.parse_chunk(con, int(lines.first_line_number))
    finally:
        con.execute("drop view if exists lines")
        con.unregister("lines_arrow")


def _is_otlp(lines: Lines) -> bool:
    column = lines.table.column(1).slice(0, 20).to_pylist()
    return otlp.is_otlp([line.encode() if isinstance(line, str) else line for line in column])


def _parse(con: duckdb.DuckDBPyConnection, lines: Lines) -> None:
    """Validate one chunk of lines into the table `ingest_work.parsed` (created by the first chunk).

    Pass 1 types every line and proves most of them valid with cheap checks; pass 2 runs the
    full rule list on the rest and records each failing line's reason (validate.py).
    """
    _lines_relation(con, lines)
    first = int(lines.first_line_number)
    try:
        if first == 1:
            con.execute(f"create or replace table ingest_work.parsed as {PARSE_SQL}")
        else:
            con.execute(f"insert into ingest_work.parsed {PARSE_SQL}")
        unproven = f"(select line_number from ingest_work.parsed where not quick_ok and line_number >= {first})"
        if con.execute(f"select count(*) from {unproven}").fetchone()[0]:
            source = f"(select l.* from lines l semi join {unproven} u using (line_number))"
            con.execute(f"create or replace table ingest_work.rechecked as {reason_sql(source)}")
            con.execute(
                """update ingest_work.parsed as p set reason = r.reason, raw_line = r.raw_line
                   from ingest_work.rechecked r where p.line_number = r.line_number and r.reason is not null"""
            )
            con.execute("drop table ingest_work.rechecked")
        # Pass 1's typed values are what gets loaded: a valid line must have its key fields.
        incomplete = con.execute(
            f"""select min(line_number) from ingest_work.parsed where reason is null and line_number >= {first}
                and (event_id is null or event_type is null or occurred_at is null)"""
        ).fetchone()[0]
        if incomplete is not None:
            raise RuntimeError(f"line {incomplete}: valid by the rules but its fields were not parsed")
    finally:
        con.execute("drop view if exists lines")
        con.unregister("lines_arrow")
    if lines.blobs is not None:
        _describe_invalid_utf8(con, lines.blobs, first)


def _describe_invalid_utf8(con: duckdb.DuckDBPyConnection, blobs: pa.LargeBinaryArray, first_line_number: int) -> None:
    """Keep the text of lines that are not UTF-8 with the bad bytes as \\xNN (a quarantine-only path)."""
    numbers = [
        row[0]
        for row in con.execute(
            "select line_number from ingest_work.parsed where raw_line is null and reason is not null and line_number >= ?",
            [first_line_number],
        ).fetchall()
    ]
    texts = [
        blobs[n - first_line_number].as_py().rstrip(b"\r\n").decode("utf-8", "backslashreplace") for n in numbers
    ]
    con.register("invalid_lines", pa.table({"line_number": pa.array(numbers, pa.int64()), "raw_line": texts}))
    try:
        con.execute(
            """update ingest_work.parsed as p set raw_line = i.raw_line
               from invalid_lines i where p.line_number = i.line_number"""
        )
    finally:
        con.unregister("invalid_lines")


def _find_loaded_before(con: duckdb.DuckDBPyConnection) -> None:
    """The table `ingest_work.loaded_before(event_id, batch_id)`: the earlier loads of this
    file's valid event ids. The first query scans only the stored 64-bit `id_hash` column
    (the scan grows with the warehouse); the second fetches the few candidate rows by row id
    and the join in `_classify` compares their ids as text, so a hash collision loads nothing
    wrongly as a duplicate."""
    con.execute(
        f"""create or replace table ingest_work.id_candidates as
            select e.rowid as row_id from ingest.event_ids e
            semi join (select {ID_HASH} as id_hash from ingest_work.parsed where reason is null) v using (id_hash)"""
    )
    con.execute(
        """create or replace table ingest_work.loaded_before as
           select event_id, batch_id from ingest.event_ids where rowid in (select row_id from ingest_work.id_candidates)"""
    )


def _classify(con: duckdb.DuckDBPyConnection, batch_id: str) -> dict[str, int]:
    """Find duplicates (earlier in the file, or in an earlier batch); define the view `loaded`."""
    _find_loaded_before(con)
    con.execute(
        """
        create or replace table ingest_work.duplicates_found as
        with valid as (
            select line_number, event_id from ingest_work.parsed where reason is null
        ),
        repeated as (
            select event_id, min(line_number) as first_line from valid group by event_id having count(*) > 1
        ),
        later_copies as (
            select v.line_number, v.event_id
            from valid v join repeated r on v.event_id = r.event_id and v.line_number > r.first_line
        ),
        seen_before as (
            select v.line_number, v.event_id, e.batch_id
            from valid v join ingest_work.loaded_before e on v.event_id = e.event_id
        )
        select line_number, coalesce(s.event_id, c.event_id) as event_id, coalesce(s.batch_id, ?) as first_batch_id
        from later_copies c full outer join seen_before s using (line_number)
        """,
        [batch_id],
    )
    con.execute(
        """create or replace view ingest_work.loaded as
           select p.* from ingest_work.parsed p anti join ingest_work.duplicates_found d using (line_number)
           where p.reason is null"""
    )
    lines, quarantined = con.execute("select count(*), count(reason) from ingest_work.parsed").fetchone()
    duplicates = con.execute("select count(*) from ingest_work.duplicates_found").fetchone()[0]
    return {"lines": lines, "quarantined": quarantined, "duplicates": duplicates,
            "loaded": lines - quarantined - duplicates}


def _priced_calls_sql(calls: str, meta: str) -> str:
    """The llm_calls raw table from the query `calls` (one row per call, provider normalised):
    a reported cost wins; otherwise the estimate from `ingest_work.rates` (see _create_rates)."""
    return f"""
            with rated as (
                select c.*, {_ATTO_SQL} as atto
                from ({calls}) c
                left join ingest_work.rates r
                  on c.reported_cost_usd is null and r.provider = c.provider and r.model = c.model
                 and r.price_date = cast(c.occurred_at as date) and c.input_tokens >= r.min_input_tokens
                 and (r.next_min_input_tokens is null or c.input_tokens < r.next_min_input_tokens)
            ),
            rounded as (
                select * exclude (atto), {_UNITS_SQL} as units from rated
            ),
            priced as (
                select * exclude (units), {_ESTIMATE_SQL} as estimated_cost_usd from rounded
            )
            select event_id, cast(call_index as integer) as call_index, occurred_at, provider, provider_raw, model,
                   input_tokens, output_tokens, cache_read_tokens, reported_cost_usd, estimated_cost_usd,
                   coalesce(reported_cost_usd, estimated_cost_usd) as cost_usd,
                   case when reported_cost_usd is not null then 'reported'
                        when estimated_cost_usd is not null then 'estimated' else 'unpriced' end as cost_source,
                   latency_ms, {meta}, revision
            from priced"""


def _native_tables(con: duckdb.DuckDBPyConnection, file_name: str, meta: str) -> dict[str, str]:
    """The raw tables of a native batch, as queries over `ingest_work.loaded`."""
    _create_rates(con, _calls_sql())
    return {
        "messages": f"""
            select event_id, occurred_at, user_id, agent_id, agent_name, agent_version, conversation_id, status,
                   error_type, response_time_ms, llm_call_count, tool_call_count,
                   {literal(file_name)} as source_file, line_number, {meta}, 0 as revision
            from ingest_work.loaded where event_type = 'message'""",
        "llm_calls": _priced_calls_sql(_calls_sql(), meta),
        "tool_calls": f"""
            with items as (
                select event_id, occurred_at, unnest(tool_calls) as c, generate_subscripts(tool_calls, 1) as call_index
                from ingest_work.loaded where event_type = 'message'
            )
            select event_id, cast(call_index as integer) as call_index, occurred_at,
                   c.name as tool_name, {_json_number("c.latency_ms", "double")} as latency_ms,
                   coalesce(c.status, 'ok') as status, {meta}, 0 as revision
            from items""",
        "health_checks": f"""
            select event_id, occurred_at, coalesce(component, 'default') as component,
                   is_up, latency_ms, {meta}
            from ingest_work.loaded where event_type = 'health_check'""",
        "queue_samples": f"""
            select event_id, occurred_at, coalesce(queue_name, 'default') as queue_name, depth, {meta}
            from ingest_work.loaded where event_type = 'queue_sample'""",
        "deployments": f"""
            select event_id, occurred_at, agent_id, agent_version, description, {meta}
            from ingest_work.loaded where event_type = 'deployment'""",
    }


def _trace_tables(con: duckdb.DuckDBPyConnection, meta: str) -> dict[str, str]:
    """The raw tables of an OTLP batch: the messages its spans completed (traces.py)."""
    calls = traces.llm_calls_sql(_provider_case)
    _create_rates(con, calls)
    return {"messages": traces.messages_sql(meta), "llm_calls": _priced_calls_sql(calls, meta),
            "tool_calls": traces.tool_calls_sql(meta)}


def _write_batch(con: duckdb.DuckDBPyConnection, folder: Path, file_name: str, batch_id: str, loaded_at: datetime,
                 spans: bool) -> None:
    meta = f"'{batch_id}' as batch_id, timestamp '{loaded_at:%Y-%m-%d %H:%M:%S.%f}' as loaded_at"
    tables = _trace_tables(con, meta) if spans else _native_tables(con, file_name, meta)

    # One COPY writes one Parquet file on one thread: run them side by side, biggest first.
    def write(table: str) -> None:
        cursor = con.cursor()
        try:
            cursor.execute("set enable_progress_bar = false")
            target = literal(folder / (table + ".parquet"))
            cursor.execute(f"copy ({tables[table]}) to {target} (format parquet, compression zstd)")
        finally:
            cursor.close()

    with ThreadPoolExecutor(max_workers=_WRITERS) as pool:
        for done in [pool.submit(write, table) for table in tables]:
            done.result()


def _commit(con: duckdb.DuckDBPyConnection, result: FileResult, path: Path, now: datetime) -> None:
    ts = f"timestamp '{now:%Y-%m-%d %H:%M:%S.%f}'"
    spans = result.record_type == "span"
    con.execute(
        """insert into ingest.ledger (batch_id, file_name, file_path, content_hash, lines, loaded, duplicates,
               quarantined, ingested_at, record_type, records, traces)
           values (?, ?, ?, ?, ?, ?, ?, ?, """ + ts + ", ?, ?, ?)",
        [result.batch_id, result.file_name, stored_text(str(path)), result.content_hash, result.lines, result.loaded,
         result.duplicates, result.quarantined, result.record_type, result.record_count, result.traces],
    )
    quarantined = (
        "select line_number, reason, span_json as raw_line from ingest_work.spans where reason is not null "
        "order by line_number, span_index" if spans else
        "select line_number, reason, raw_line from ingest_work.parsed where reason is not null order by line_number"
    )
    con.execute(f"insert into ingest.quarantine select ?, ?, line_number, reason, raw_line, {ts} from ({quarantined})",
                [result.batch_id, result.file_name])
    duplicates = "ingest_work.span_duplicates" if spans else "ingest_work.duplicates_found"
    con.execute(
        f"""insert into ingest.duplicates
           select ?, ?, line_number, event_id, first_batch_id from {duplicates} order by line_number""",
        [result.batch_id, result.file_name],
    )
    if spans:
        traces.commit(con, result.batch_id, now)
    else:
        con.execute(
            f"insert into ingest.event_ids (event_id, batch_id, id_hash) select event_id, ?, {ID_HASH} from ingest_work.loaded",
            [result.batch_id],
        )


def _already_loaded(con: duckdb.DuckDBPyConnection, content_hash: str, file_name: str) -> FileResult | None:
    """The first batch that loaded this content, reported under the name the file has now."""
    row = con.execute(
        """select lines, loaded, duplicates, quarantined, batch_id, record_type, records, traces from ingest.ledger
           where content_hash = ? order by ingested_at limit 1""",
        [content_hash],
    ).fetchone()
    if row is None:
        return None
    return FileResult(file_name, content_hash, *row[:5], already_loaded=True, record_type=row[5], records=row[6],
                      traces=row[7])


def _attach_work(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("attach if not exists ':memory:' as ingest_work")


def _drop_work(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("drop view if exists lines")
    con.execute("detach database if exists ingest_work")


@dataclass
class _Opening:
    """A file's first chunk, read and split (possibly ahead of time, in a thread) and being hashed."""

    chunks: Iterator[bytes]  # the remaining chunks
    hasher: object  # sha256 of everything read so far, once `hashed` is done
    hashed: Future  # the hash of the first chunk, running in its own thread
    prepared: Lines
    following: bytes | None  # the second chunk, None when the file is one chunk


def _open(path: Path, follow_links: bool = True) -> _Opening:
    chunks = read_chunks(path, follow_links=follow_links)
    try:
        chunk = next(chunks, b"")
        hasher = hashlib.sha256()
        # hashlib releases the GIL on big buffers: the hash runs beside the split and the
        # validation, and only the ledger check waits for it.
        pool = ThreadPoolExecutor(max_workers=1)
        hashed = pool.submit(hasher.update, chunk)
        pool.shutdown(wait=False)
        prepared = prepare_lines(chunk[len(_BOM):] if chunk.startswith(_BOM) else chunk, 1)
        following = next(chunks, None)
    except BaseException:
        chunks.close()
        raise
    return _Opening(chunks, hasher, hashed, prepared, following)


def _name_in_ledger(con: duckdb.DuckDBPyConnection, file_name: str) -> bool:
    return con.execute("select count(*) from ingest.ledger where file_name = ?", [file_name]).fetchall()[0][0] > 0


def load_file(
    con: duckdb.DuckDBPyConnection, path: Path, raw_dir: Path, *,
    opening: _Opening | None = None, accepted: AcceptedTimes = AcceptedTimes(),
) -> FileResult:
    """Load one file as one batch (see the module docstring); `opening` is its first chunk read
    ahead; `accepted` is the range of event times loaded (others are quarantined)."""
    con.execute("set TimeZone = 'UTC'")
    con.execute("set enable_progress_bar = false")
    set_accepted_times(con, accepted, datetime.now(timezone.utc).replace(tzinfo=None))
    _attach_work(con)
    staging: Path | None = None
    published: Path | None = None
    opening = opening or _open(path)
    name = stored_text(path.name)
    hasher = opening.hasher
    try:
        with closing(opening.chunks) as chunks, ThreadPoolExecutor(max_workers=2) as pool:
            prepared: Lines | None = opening.prepared
            following = opening.following
            hashed = opening.hashed
            spans = _is_otlp(prepared)
            line_count = 0
            if following is None and _name_in_ledger(con, name):
                # A file of one chunk loaded again under its name: skip it before validating.
                # (Content loaded under another name is found by the check after validation.)
                hashed.result()
                previous = _already_loaded(con, hasher.hexdigest(), name)
                if previous is not None:
                    return previous
            # Worker threads hash and split the next chunk while DuckDB validates this one.
            while prepared is not None:
                upcoming = None
                if following is not None:
                    hashed.result()  # hash the chunks in order
                    hashed = pool.submit(hasher.update, following)
                    upcoming = pool.submit(prepare_lines, following, prepared.first_line_number + prepared.count)
                (_parse_spans if spans else _parse)(con, prepared)
                line_count += prepared.count
                prepared = upcoming.result() if upcoming is not None else None
                following = next(chunks, None) if upcoming is not None else None
            hashed.result()
        content_hash = hasher.hexdigest()
        previous = _already_loaded(con, content_hash, name)
        if previous is not None:
            return previous
        batch_id = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:12]
        now = datetime.now(timezone.utc).replace(tzinfo=None)
        if spans:
            counts = traces.classify(con, batch_id, name)
            traces.assemble(con)
            result = FileResult(file_name=name, content_hash=content_hash, batch_id=batch_id, lines=line_count,
                                record_type="span", **counts)
        else:
            result = FileResult(file_name=name, content_hash=content_hash, batch_id=batch_id, **_classify(con, batch_id))
        staging = raw_layer.tmp_dir(raw_dir) / batch_id
        staging.mkdir(parents=True)
        _write_batch(con, staging, name, batch_id, now, spans)
        published = raw_layer.publish(staging, raw_dir, batch_id)
        with transaction(con):
            _commit(con, result, path, now)
        return result
    except BaseException:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        if published is not None:
            shutil.rmtree(published, ignore_errors=True)
        raise
    finally:
        _drop_work(con)


def recover(con: duckdb.DuckDBPyConnection, raw_dir: Path) -> list[str]:
    """Make the raw layer match the ledger: create schema files, finish or undo an interrupted
    compaction, drop uncommitted batches."""
    ensure_ingest_schema(con)
    raw_layer.ensure_schema_files(raw_dir)
    compaction.recover(con, raw_dir)
    committed = {row[0] for row in con.execute("select distinct batch_id from ingest.ledger").fetchall()}
    return raw_layer.sweep_orphans(raw_dir, committed)


# Failures that say nothing about the file: they are raised, and the file is tried again by the
# next run. Every other failure of one file's load rejects that file (`load_each`).
ENVIRONMENT_ERRORS = (OSError, MemoryError, duckdb.IOException,
                      duckdb.OutOfMemoryException, duckdb.InterruptException)


def load_each(
    con: duckdb.DuckDBPyConnection, files: list[Path], raw_dir: Path, *,
    accepted: AcceptedTimes = AcceptedTimes(), follow_links: bool = True,
) -> Iterator[tuple[Path, FileResult | Exception]]:
    """`load_file` for each file in order, yielding (file, its result) once its batch is
    committed, or (file, the exception) when that file cannot be read or loaded, and going on
    with the next file. A thread reads, hashes and splits the next file's first chunk while the
    current one is validated and written."""
    if files:
        pricing.warm_up_in_background()
    with ThreadPoolExecutor(max_workers=1) as ahead:
        upcoming = ahead.submit(_open, files[0], follow_links) if files else None
        try:
            for i, file in enumerate(files):
                this = upcoming
                upcoming = ahead.submit(_open, files[i + 1], follow_links) if i + 1 < len(files) else None
                try:
                    result = load_file(con, file, raw_dir, opening=this.result(), accepted=accepted)
                except IngestError as exc:
                    yield file, exc
                    continue
                except ENVIRONMENT_ERRORS:
                    raise
                except Exception as exc:  # noqa: BLE001 - whatever this file's content triggers
                    logger.debug("%s: the load failed", file, exc_info=True)
                    yield file, IngestError(f"{file}: cannot be loaded ({type(exc).__name__}: {exc})")
                    continue
                yield file, result
        finally:
            if upcoming is not None:  # stopped early: close the file read ahead
                try:
                    upcoming.result().chunks.close()
                except Exception:
                    pass


def load_files(
    con: duckdb.DuckDBPyConnection, files: list[Path], raw_dir: Path, *,
    accepted: AcceptedTimes = AcceptedTimes(),
) -> list[FileResult]:
    """`load_each`, stopping at the first file that cannot be loaded (the files before it stay
    loaded) with its IngestError."""
    results = []
    for _, outcome in load_each(con, files, raw_dir, accepted=accepted):
        if isinstance(outcome, Exception):
            raise outcome
        results.append(outcome)
    return results


def ingest_paths(
    paths: list[Path], warehouse_path: Path, raw_dir: Path, *,
    accepted: AcceptedTimes = AcceptedTimes(), orphan_after_s: float | None = None,
) -> list[FileResult]:
    """Load every file under `paths`; raises IngestError before loading anything if a path is bad.
    With `orphan_after_s`, spans that waited longer for their root are then quarantined."""
    files = expand_paths(paths)
    for file in files:
        if not file.is_file():
            raise IngestError(f"{file}: not a regular file")
    with open_warehouse(warehouse_path) as con:
        recover(con, raw_dir)
        results = load_files(con, files, raw_dir, accepted=accepted)
        if orphan_after_s is not None:
            traces.quarantine_orphans(con, orphan_after_s, datetime.now(timezone.utc).replace(tzinfo=None))
        return results
