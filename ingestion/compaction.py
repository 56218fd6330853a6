"""Compaction of the raw layer: the batches of closed days merged into day files.

Every ingested file is one batch folder `raw/batches/<batch_id>/`; a refresh every 5 minutes
makes 288 a day, and every reader opens every file. Compaction moves the rows of old batches
into one file per table and day (UTC date of `occurred_at`, Hive layout):

    raw/<table>/event_date=YYYY-MM-DD/part-<compaction_id>.parquet

Which batches: a batch is compacted when it was loaded before the cutoff and every row it
holds, in every table, occurred before the cutoff. The cutoff is 00:00 UTC of the day
CLOSED_AFTER_DAYS before today: the refreshes rebuild the last `lookback_days` (2, dbt var)
days before the newest data, and one day more covers any company time zone. A batch is
compacted whole or not at all, so its rows are in its folder or in day files, never split;
a batch with a late row of a recent day waits until that day is closed too. A late batch of
an already compacted day adds one more file to that day's folder (nothing is rewritten).

The rows are copied unchanged (batch_id, loaded_at, revision and every other column), so
the marts, the ledger, `ingest.event_ids` and `ingest.duplicates` (which name batches, not
files) and the revision rule of the staging models see the same rows before and after.
Inside a day file rows are sorted by `occurred_at`, then `loaded_at`: row groups cover
narrow time ranges, so a filter on `occurred_at` skips them by their statistics, and a whole
file has a `loaded_at` range that ends before the next refresh, so `loaded_at > watermark`
skips it.

Steps, under the warehouse lock (builds and loads take turns with it):
1. write each table's rows of the chosen batches into `raw/_compaction/<id>/` (never read),
   check that the files hold as many rows as the batches, flush them to disk;
2. commit the plan in one transaction: `ingest.compactions` (one row per plan),
   `ingest.compacted_batches`, `ingest.compaction_files`;
3. move each file into `raw/<table>/event_date=.../` (a rename), flush the folders;
4. delete the batches' folders and the staging folder, and mark the plan finished.
The commit is the point of no return. A crash before it leaves a staging folder without a
plan, which `recover` deletes (the batches were not touched); a crash after it is finished by
`recover` (steps 3 and 4 again, each of which can be repeated). `recover` runs before every
load (`ingestion.load.recover`) and every compaction, and every pipeline job loads first,
so the layer is whole again before a build reads it (docs/raw-layer.md).
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path

import duckdb

from agent_analytics.files import sync_folder
from agent_analytics.sql import literal
from ingestion import raw_layer

logger = logging.getLogger(__name__)

# Days before today (UTC) that are still open; see the module docstring.
CLOSED_AFTER_DAYS = 3
# Batches merged by one plan at most: the first compaction of a long history runs as several
# plans, each committed on its own, so its sort stays bounded and its progress is kept.
MAX_BATCHES_PER_PLAN = 2000

COMPACTION_TABLES_DDL = """
create table if not exists ingest.compactions (
    compaction_id varchar not null,
    cutoff timestamp not null,
    committed_at timestamp not null,
    finished_at timestamp  -- NULL until the files are in place and the batch folders gone
);
create table if not exists ingest.compacted_batches (
    batch_id varchar not null,
    compaction_id varchar not null
);
create table if not exists ingest.compaction_files (
    compaction_id varchar not null,
    path varchar not null,  -- relative to raw/: <table>/event_date=YYYY-MM-DD/part-<id>.parquet
    table_name varchar not null,
    event_date date not null,
    row_count bigint not null
);
"""


class CompactionError(RuntimeError):
    """The raw layer is not as a plan says (a file of a committed plan is gone): nothing is
    deleted, and the message names what is missing."""


@dataclass(frozen=True)
class Plan:
    """One committed compaction: its batches and the day files that replace them."""

    compaction_id: str
    batches: list[str]
    files: list[str]  # relative to raw/
    rows: dict[str, int] = field(default_factory=dict)  # per table
    days: list[date] = field(default_factory=list)


def closed_cutoff(now: datetime) -> datetime:
    """00:00 UTC of the first day still open (naive, like the raw layer's timestamps)."""
    utc = now.astimezone(timezone.utc) if now.tzinfo else now
    return datetime.combine(utc.date() - timedelta(days=CLOSED_AFTER_DAYS), time())


def staging_root(raw_dir: Path) -> Path:
    return raw_dir / "_compaction"


def ensure_compaction_tables(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(COMPACTION_TABLES_DDL)


def compact(warehouse_path: Path, raw_dir: Path, cutoff: datetime, *,
            max_batches: int = MAX_BATCHES_PER_PLAN) -> list[Plan]:
    """Compact every batch closed at `cutoff` (see the module docstring), under the warehouse
    lock; one plan per `max_batches` batches, oldest first. Returns the plans carried out."""
    from agent_analytics.warehouse import open_warehouse
    from ingestion.load import recover  # load calls this module's `recover`

    with open_warehouse(warehouse_path) as con:
        recover(con, raw_dir)
        closed = closed_batches(con, raw_dir, cutoff)
        return [compact_batches(con, raw_dir, closed[i:i + max_batches], cutoff)
                for i in range(0, len(closed), max_batches)]


def closed_batches(con: duckdb.DuckDBPyConnection, raw_dir: Path, cutoff: datetime) -> list[str]:
    """Batches not yet compacted, loaded before `cutoff`, whose rows all occurred before it;
    oldest load first."""
    ensure_compaction_tables(con)
    loaded_before = [row[0] for row in con.execute(
        """select batch_id from ingest.ledger
           where ingested_at < ? and batch_id not in (select batch_id from ingest.compacted_batches)
             and coalesce(record_type, 'event') <> 'bill'
           order by ingested_at, batch_id""", [cutoff]).fetchall()]
    present = {p.name for p in raw_layer.batches_dir(raw_dir).iterdir()} if raw_layer.batches_dir(raw_dir).exists() else set()
    loaded_before = [b for b in loaded_before if b in present]
    if not loaded_before:
        return []
    open_batches: set[str] = set()
    for table in raw_layer.RAW_TABLES:
        pattern = glob_literal(raw_layer.batches_dir(raw_dir), f"*/{table}.parquet")
        open_batches |= {row[0] for row in con.execute(
            f"""select batch_id from read_parquet({pattern}, union_by_name = true, hive_partitioning = false)
                where occurred_at >= ? group by batch_id""", [cutoff]).fetchall()}
    return [b for b in loaded_before if b not in open_batches]


def compact_batches(con: duckdb.DuckDBPyConnection, raw_dir: Path, batches: list[str], cutoff: datetime) -> Plan:
    """Steps 1 to 4 of the module docstring for `batches` (closed, not yet compacted)."""
    compaction_id = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:12]
    staging = staging_root(raw_dir) / compaction_id
    try:
        files = write_day_files(con, raw_dir, staging, batches, compaction_id)
        commit_plan(con, compaction_id, cutoff, batches, files)
    except BaseException:  # no plan: the staged files are nobody's
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finish(con, raw_dir, compaction_id)
    rows: dict[str, int] = {}
    for file in files:
        rows[file.table] = rows.get(file.table, 0) + file.rows
    return Plan(compaction_id, batches, [f.path for f in files], rows, sorted({f.event_date for f in files}))


@dataclass(frozen=True)
class DayFile:
    path: str  # relative to raw/
    table: str
    event_date: date
    rows: int


def write_day_files(con: duckdb.DuckDBPyConnection, raw_dir: Path, staging: Path, batches: list[str],
                    compaction_id: str) -> list[DayFile]:
    """Step 1: each table's rows of `batches`, one file per day under `staging`, flushed.

    The rows are sorted once into a temporary table, then each day is one COPY with its own
    ORDER BY: DuckDB's partitioned COPY does not keep the order inside a file."""
    schema_batch = raw_layer.batches_dir(raw_dir) / raw_layer.SCHEMA_BATCH
    staging.mkdir(parents=True)
    files: list[DayFile] = []
    for table in raw_layer.RAW_TABLES:
        # The schema file gives every column of this version, in order (older batches lack newer ones).
        schema_file = glob_literal(schema_batch / f"{table}.parquet")
        names = ", ".join(row[0] for row in con.execute(f"describe select * from read_parquet({schema_file})").fetchall())
        # (A batch of OpenTelemetry spans has only the message tables.)
        sources = [schema_batch / f"{table}.parquet"] + [path for path in (
            raw_layer.batches_dir(raw_dir) / b / f"{table}.parquet" for b in batches) if path.exists()]
        read = f"read_parquet([{', '.join(glob_literal(s) for s in sources)}], union_by_name = true, hive_partitioning = false)"
        con.execute(f"""create or replace temp table compacting as
                        select {names} from {read} order by occurred_at, loaded_at""")
        try:
            days = con.execute("""select cast(occurred_at as date) as day, count(*) from compacting
                                  group by day order by day""").fetchall()
            for day, rows in days:
                path = f"{table}/event_date={day.isoformat()}/part-{compaction_id}.parquet"
                (staging / path).parent.mkdir(parents=True)
                con.execute(
                    f"""copy (select * from compacting
                              where occurred_at >= timestamp '{day}' and occurred_at < timestamp '{day + timedelta(days=1)}'
                              order by occurred_at, loaded_at)
                        to {literal(staging / path)} (format parquet, compression zstd)""")
                files.append(DayFile(path, table, day, rows))
            batch_rows = con.execute(f"select count(*) from {read}").fetchone()[0]
        finally:
            con.execute("drop table if exists compacting")
        counted = con.execute(f"select count(*) from read_parquet({glob_literal(staging / table, '*/*.parquet')})"
                              ).fetchone()[0] if days else 0
        if not counted == batch_rows == sum(rows for _, rows in days):
            raise CompactionError(f"{table}: the day files hold {counted} rows, the batches {batch_rows}")
    for file in files:
        _fsync(staging / file.path)
    for folder in {(staging / f.path).parent for f in files} | {(staging / f.path).parent.parent for f in files} | {staging}:
        sync_folder(folder)
    return files


def commit_plan(con: duckdb.DuckDBPyConnection, compaction_id: str, cutoff: datetime, batches: list[str],
                files: list[DayFile]) -> None:
    """Step 2: the plan, in one transaction. From here on the day files replace the batches."""
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    con.execute("begin transaction")
    try:
        con.execute("insert into ingest.compactions values (?, ?, ?, null)", [compaction_id, cutoff, now])
        con.executemany("insert into ingest.compacted_batches values (?, ?)", [[b, compaction_id] for b in batches])
        if files:
            con.executemany("insert into ingest.compaction_files values (?, ?, ?, ?, ?)",
                            [[compaction_id, f.path, f.table, f.event_date, f.rows] for f in files])
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise


def finish(con: duckdb.DuckDBPyConnection, raw_dir: Path, compaction_id: str) -> None:
    """Steps 3 and 4 of a committed plan; each can be repeated after a crash."""
    staging = staging_root(raw_dir) / compaction_id
    files = [row[0] for row in con.execute(
        "select path from ingest.compaction_files where compaction_id = ? order by path", [compaction_id]).fetchall()]
    missing = [p for p in files if not (staging / p).exists() and not (raw_dir / p).exists()]
    if missing:  # checked before any file moves, so the batches are never read beside a part of the plan
        raise CompactionError(f"compaction {compaction_id}: its day files {', '.join(missing)} are missing under "
                              f"{raw_dir}; its batches are kept")
    for path in files:
        publish_file(staging / path, raw_dir / path)
    for folder in {(raw_dir / p).parent for p in files} | {(raw_dir / p).parent.parent for p in files} | {raw_dir}:
        sync_folder(folder)
    batches = [row[0] for row in con.execute(
        "select batch_id from ingest.compacted_batches where compaction_id = ? order by batch_id", [compaction_id]).fetchall()]
    for batch in batches:
        remove_batch(raw_dir, batch)
    sync_folder(raw_layer.batches_dir(raw_dir))
    shutil.rmtree(staging, ignore_errors=True)
    con.execute("update ingest.compactions set finished_at = ? where compaction_id = ?",
                [datetime.now(timezone.utc).replace(tzinfo=None), compaction_id])


def publish_file(staged: Path, target: Path) -> None:
    """Move one day file into place (already there after a crash: nothing to do)."""
    if staged.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        os.rename(staged, target)


def remove_batch(raw_dir: Path, batch_id: str) -> None:
    shutil.rmtree(raw_layer.batches_dir(raw_dir) / batch_id, ignore_errors=True)


def recover(con: duckdb.DuckDBPyConnection, raw_dir: Path) -> list[str]:
    """Finish every committed plan a crash interrupted and delete staging folders without a
    plan; returns the ids of the plans finished."""
    ensure_compaction_tables(con)
    interrupted = [row[0] for row in con.execute(
        "select compaction_id from ingest.compactions where finished_at is null order by compaction_id").fetchall()]
    for compaction_id in interrupted:
        logger.warning("compaction %s was interrupted: finishing it", compaction_id)
        finish(con, raw_dir, compaction_id)
    root = staging_root(raw_dir)
    if root.exists():
        committed = {row[0] for row in con.execute("select compaction_id from ingest.compactions").fetchall()}
        for folder in root.iterdir():
            if folder.name not in committed:
                shutil.rmtree(folder, ignore_errors=True)
    return interrupted


def glob_literal(prefix: Path, pattern: str = "") -> str:
    """An SQL literal of the glob `pattern` under the folder `prefix` (or of the file `prefix`),
    whose own glob characters are bracketed, so a home named "it's [home]" is read as named."""
    text = str(prefix).replace("[", "[[]").replace("*", "[*]").replace("?", "[?]")
    return literal(f"{text}/{pattern}" if pattern else text)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
