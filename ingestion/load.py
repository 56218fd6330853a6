"""Load contract files into the raw layer: every line loaded, duplicate or quarantined.

One file is one batch:
1. read the bytes (gunzip `.gz`), hash them; a content hash already in the ledger is
   reported as already loaded and changes nothing;
2. split into lines with numpy (no per-line Python) and validate them in DuckDB SQL
   (`validate.py`): every line gets one verdict;
3. valid records whose `event_id` was seen earlier in the file or in an earlier batch are
   duplicates; the rest are loaded;
4. write the batch's Parquet files into `raw/_tmp/<batch>`, rename the folder into
   `raw/batches/` and commit ledger, quarantine, duplicates and event ids in one DuckDB
   transaction. A failure before the commit removes the folder; a hard crash leaves a folder
   without a ledger row, which `sweep_orphans` deletes at the start of the next load.
"""

from __future__ import annotations

import gzip
import hashlib
import shutil
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from ingestion import pricing, raw_layer
from ingestion.validate import CALL_ITEMS_SQL, CHECK_SQL, TOOL_ITEMS_SQL
from ingestion.warehouse import ensure_ingest_schema, open_warehouse


class IngestError(Exception):
    """A path that cannot be ingested at all (missing, unreadable); the message says why."""


@dataclass(frozen=True)
class FileResult:
    file_name: str
    content_hash: str
    lines: int
    loaded: int
    duplicates: int
    quarantined: int
    batch_id: str
    already_loaded: bool = False


# Test hook: raise after this step to prove that a failed load leaves nothing behind.
FAIL_POINTS = ("after_raw_write", "after_publish")


class InjectedFailure(RuntimeError):
    pass


def expand_paths(paths: list[Path]) -> list[Path]:
    """Files to load: each file as given, each folder's *.jsonl / *.jsonl.gz sorted by name."""
    files: list[Path] = []
    for path in paths:
        if not path.exists():
            raise IngestError(f"{path}: no such file or folder")
        if path.is_dir():
            files.extend(sorted(p for p in path.iterdir() if p.name.endswith((".jsonl", ".jsonl.gz"))))
        else:
            files.append(path)
    return files


def read_file_bytes(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise IngestError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise IngestError(f"{path}: not a readable gzip file ({exc})") from None
    return data


def split_lines(data: bytes) -> pa.Table:
    """(line_number, line_blob) for every line, built from buffers without a Python loop."""
    buf = np.frombuffer(data, dtype=np.uint8)
    newlines = np.flatnonzero(buf == 10)
    ends = newlines + 1
    if len(buf) and (len(newlines) == 0 or newlines[-1] != len(buf) - 1):
        ends = np.append(ends, len(buf))
    offsets = np.concatenate(([0], ends)).astype(np.int64)
    count = len(offsets) - 1
    blobs = pa.LargeBinaryArray.from_buffers(pa.large_binary(), count, [None, pa.py_buffer(offsets), pa.py_buffer(data)])
    numbers = pa.array(np.arange(1, count + 1, dtype=np.int64))
    return pa.table({"line_number": numbers, "line_blob": blobs})


@lru_cache(maxsize=4096)
def _rates(provider: str, model: str, price_date) -> tuple[pricing.RateRow, ...]:
    return tuple(pricing.rates_for(provider, model, price_date))


def _rate_table(con: duckdb.DuckDBPyConnection) -> pa.Table:
    keys = con.execute(
        "select distinct provider, model, cast(occurred_at as date) from calls where reported_cost_usd is null"
    ).fetchall()
    rows = [r for key in keys for r in _rates(*key)]
    return pa.table(
        {
            "provider": pa.array([r.provider for r in rows], pa.string()),
            "model": pa.array([r.model for r in rows], pa.string()),
            "price_date": pa.array([r.price_date for r in rows], pa.date32()),
            "min_input_tokens": pa.array([r.min_input_tokens for r in rows], pa.int64()),
            "input_rate": pa.array([r.input_rate for r in rows], pa.decimal128(38, 18)),
            "cache_read_rate": pa.array([r.cache_read_rate for r in rows], pa.decimal128(38, 18)),
            "output_rate": pa.array([r.output_rate for r in rows], pa.decimal128(38, 18)),
        }
    )


def _provider_case(column: str) -> str:
    branches = " ".join(f"when '{alias}' then '{name}'" for alias, name in pricing.PROVIDER_ALIASES.items())
    return f"case lower(trim({column})) {branches} else lower(trim({column})) end"


def _classify(con: duckdb.DuckDBPyConnection) -> None:
    """Build temp tables: checked (verdict per line), good (loadable records), calls, tools."""
    con.execute(f"create or replace temp table checked as {CHECK_SQL}")
    con.execute(f"create or replace temp table call_items as {CALL_ITEMS_SQL}")
    con.execute(f"create or replace temp table tool_items as {TOOL_ITEMS_SQL}")
    con.execute(
        """
        create or replace temp table verdicts as
        with item_reasons as (
            select line_number, min_by(reason, call_index) as reason
            from call_items where reason is not null group by line_number
            union all
            select line_number, min_by(reason, call_index) as reason
            from tool_items where reason is not null group by line_number
        ),
        first_item_reason as (
            select line_number, min(reason) as reason from item_reasons group by line_number
        ),
        judged as (
            select c.line_number, c.event_type, c.occurred_at, c.j, c.line_text,
                   coalesce(c.reason, f.reason) as reason,
                   c.j.event_id ->> '$' as event_id
            from checked c left join first_item_reason f using (line_number)
        ),
        ranked as (
            select *,
                   case when reason is null
                        then row_number() over (partition by event_id order by line_number) end as copy_number
            from judged
        )
        select r.*, e.batch_id as first_batch_id,
               case when r.reason is not null then 'quarantined'
                    when r.copy_number > 1 or e.event_id is not null then 'duplicate'
                    else 'loaded' end as verdict
        from ranked r
        left join ingest.event_ids e on r.reason is null and e.event_id = r.event_id
        """
    )


def _write_batch(con: duckdb.DuckDBPyConnection, folder: Path, file_name: str, batch_id: str, loaded_at: datetime) -> None:
    meta = f"'{batch_id}' as batch_id, timestamp '{loaded_at:%Y-%m-%d %H:%M:%S.%f}' as loaded_at"
    con.execute(
        f"""
        create or replace temp table calls as
        select v.event_id, i.call_index, v.occurred_at,
               {_provider_case("i.c.provider ->> '$'")} as provider,
               i.c.provider ->> '$' as provider_raw,
               i.c.model ->> '$' as model,
               cast(i.c.input_tokens as bigint) as input_tokens,
               cast(i.c.output_tokens as bigint) as output_tokens,
               coalesce(cast(i.c.cache_read_tokens as bigint), 0) as cache_read_tokens,
               cast(cast(i.c.cost_usd as double) as decimal(18, 10)) as reported_cost_usd,
               cast(i.c.latency_ms as double) as latency_ms
        from call_items i join verdicts v using (line_number)
        where v.verdict = 'loaded'
        """
    )
    con.register("rates", _rate_table(con))
    copy = "(format parquet, compression zstd)"
    tables = {
        "messages": f"""
            select event_id, occurred_at,
                   j.user_id ->> '$' as user_id, j.agent_id ->> '$' as agent_id,
                   j.agent_name ->> '$' as agent_name, j.agent_version ->> '$' as agent_version,
                   j.conversation_id ->> '$' as conversation_id, j.status ->> '$' as status,
                   j.error_type ->> '$' as error_type, cast(j.response_time_ms as double) as response_time_ms,
                   cast(coalesce(json_array_length(j.llm_calls), 0) as integer) as llm_call_count,
                   cast(coalesce(json_array_length(j.tool_calls), 0) as integer) as tool_call_count,
                   '{file_name.replace("'", "''")}' as source_file, line_number, {meta}
            from verdicts where verdict = 'loaded' and event_type = 'message' order by occurred_at""",
        "llm_calls": f"""
            with priced as (
                select c.*,
                       cast(arg_max((c.input_tokens - c.cache_read_tokens) * r.input_rate
                                    + c.cache_read_tokens * r.cache_read_rate
                                    + c.output_tokens * r.output_rate, r.min_input_tokens) as decimal(18, 10)) as estimated_cost_usd
                from calls c
                left join rates r
                  on c.reported_cost_usd is null and r.provider = c.provider and r.model = c.model
                 and r.price_date = cast(c.occurred_at as date) and r.min_input_tokens <= c.input_tokens
                group by all
            )
            select event_id, cast(call_index as integer) as call_index, occurred_at, provider, provider_raw, model,
                   input_tokens, output_tokens, cache_read_tokens, reported_cost_usd, estimated_cost_usd,
                   coalesce(reported_cost_usd, estimated_cost_usd) as cost_usd,
                   case when reported_cost_usd is not null then 'reported'
                        when estimated_cost_usd is not null then 'estimated' else 'unpriced' end as cost_source,
                   latency_ms, {meta}
            from priced order by occurred_at, event_id, call_index""",
        "tool_calls": f"""
            select v.event_id, cast(i.call_index as integer) as call_index, v.occurred_at,
                   i.c.name ->> '$' as tool_name, cast(i.c.latency_ms as double) as latency_ms,
                   coalesce(i.c.status ->> '$', 'ok') as status, {meta}
            from tool_items i join verdicts v using (line_number)
            where v.verdict = 'loaded' order by v.occurred_at, v.event_id, i.call_index""",
        "health_checks": f"""
            select event_id, occurred_at, coalesce(j.component ->> '$', 'default') as component,
                   cast(j.is_up as boolean) as is_up, cast(j.latency_ms as double) as latency_ms, {meta}
            from verdicts where verdict = 'loaded' and event_type = 'health_check' order by occurred_at""",
        "queue_samples": f"""
            select event_id, occurred_at, coalesce(j.queue ->> '$', 'default') as queue_name,
                   cast(j.depth as bigint) as depth, {meta}
            from verdicts where verdict = 'loaded' and event_type = 'queue_sample' order by occurred_at""",
        "deployments": f"""
            select event_id, occurred_at, j.agent_id ->> '$' as agent_id, j.agent_version ->> '$' as agent_version,
                   j.description ->> '$' as description, {meta}
            from verdicts where verdict = 'loaded' and event_type = 'deployment' order by occurred_at""",
    }
    for table, query in tables.items():
        con.execute(f"copy ({query}) to '{folder / (table + '.parquet')}' {copy}")
    con.unregister("rates")


def _commit(con: duckdb.DuckDBPyConnection, result: FileResult, path: Path, now: datetime) -> None:
    ts = f"timestamp '{now:%Y-%m-%d %H:%M:%S.%f}'"
    con.execute(
        "insert into ingest.ledger values (?, ?, ?, ?, ?, ?, ?, ?, " + ts + ")",
        [result.batch_id, result.file_name, str(path), result.content_hash, result.lines, result.loaded,
         result.duplicates, result.quarantined],
    )
    con.execute(
        f"""insert into ingest.quarantine
            select ?, ?, line_number, reason, coalesce(rtrim(line_text, chr(13) || chr(10)), '<not valid UTF-8>'), {ts}
            from verdicts where verdict = 'quarantined' order by line_number""",
        [result.batch_id, result.file_name],
    )
    con.execute(
        """insert into ingest.duplicates
           select ?, ?, line_number, event_id, coalesce(first_batch_id, ?)
           from verdicts where verdict = 'duplicate' order by line_number""",
        [result.batch_id, result.file_name, result.batch_id],
    )
    con.execute(
        "insert into ingest.event_ids select event_id, ? from verdicts where verdict = 'loaded'", [result.batch_id]
    )


def _already_loaded(con: duckdb.DuckDBPyConnection, content_hash: str) -> FileResult | None:
    row = con.execute(
        """select file_name, lines, loaded, duplicates, quarantined, batch_id from ingest.ledger
           where content_hash = ? order by ingested_at limit 1""",
        [content_hash],
    ).fetchone()
    if row is None:
        return None
    return FileResult(row[0], content_hash, row[1], row[2], row[3], row[4], row[5], already_loaded=True)


def load_file(con: duckdb.DuckDBPyConnection, path: Path, raw_dir: Path, fail_at: str | None = None) -> FileResult:
    data = read_file_bytes(path)
    content_hash = hashlib.sha256(data).hexdigest()
    previous = _already_loaded(con, content_hash)
    if previous is not None:
        return previous
    batch_id = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:12]
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    con.register("lines", split_lines(data))
    staging = raw_layer.tmp_dir(raw_dir) / batch_id
    published: Path | None = None
    try:
        _classify(con)
        counts = dict(con.execute("select verdict, count(*) from verdicts group by verdict").fetchall())
        result = FileResult(
            file_name=path.name,
            content_hash=content_hash,
            lines=sum(counts.values()),
            loaded=counts.get("loaded", 0),
            duplicates=counts.get("duplicate", 0),
            quarantined=counts.get("quarantined", 0),
            batch_id=batch_id,
        )
        staging.mkdir(parents=True)
        _write_batch(con, staging, path.name, batch_id, now)
        if fail_at == "after_raw_write":
            raise InjectedFailure(fail_at)
        published = raw_layer.publish(staging, raw_dir, batch_id)
        if fail_at == "after_publish":
            raise InjectedFailure(fail_at)
        con.execute("begin transaction")
        try:
            _commit(con, result, path, now)
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
        return result
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if published is not None:
            shutil.rmtree(published, ignore_errors=True)
        raise
    finally:
        con.unregister("lines")
        for temp in ("checked", "call_items", "tool_items", "verdicts", "calls"):
            con.execute(f"drop table if exists {temp}")


def recover(con: duckdb.DuckDBPyConnection, raw_dir: Path) -> list[str]:
    """Make the raw layer match the ledger: create schema files, drop uncommitted batches."""
    ensure_ingest_schema(con)
    raw_layer.ensure_schema_files(raw_dir)
    committed = {row[0] for row in con.execute("select distinct batch_id from ingest.ledger").fetchall()}
    return raw_layer.sweep_orphans(raw_dir, committed)


def ingest_paths(paths: list[Path], warehouse_path: Path, raw_dir: Path, fail_at: str | None = None) -> list[FileResult]:
    """Load every file under `paths`; raises IngestError before loading anything if a path is bad."""
    files = expand_paths(paths)
    for file in files:
        if not file.is_file():
            raise IngestError(f"{file}: not a regular file")
    results = []
    with open_warehouse(warehouse_path) as con:
        recover(con, raw_dir)
        for file in files:
            results.append(load_file(con, file, raw_dir, fail_at=fail_at))
    return results
