"""The raw layer: one folder of Parquet files per ingest batch, published by one rename.

Layout under `<home>/raw/`:

    batches/<batch_id>/<table>.parquet   one file per raw table, rows in the input file's order
    batches/0-schema/<table>.parquet     empty files that fix each table's schema
    <table>/event_date=YYYY-MM-DD/*.parquet
                                         compacted batches of closed days (compaction.py)
    _tmp/<batch_id>/                     a batch being written (never read)
    _compaction/<compaction_id>/         day files being written (never read)

A batch is written into `_tmp/`, then renamed into `batches/` (atomic on one file system),
then recorded in the ledger inside a DuckDB transaction. The ledger row is the commit: a
batch folder without a ledger row is the leftover of a crash and `sweep_orphans` removes it
before anything else reads or writes the raw layer.

Rows are not re-sorted: platforms write their files in time order, so row groups already
cover narrow time ranges, and a sort cost more than writing the Parquet itself (ingest budget).

`revision` (messages, llm_calls, tool_calls) is 0 except for a message assembled from
OpenTelemetry spans that gained spans after its first batch: each batch that adds to it
writes the whole message again with the next revision, and readers keep the latest.

Any engine reads a table as `raw/batches/*/<table>.parquet` plus `raw/<table>/event_date=*/*.parquet`
(DuckDB `read_parquet`, Spark `spark.read.parquet`; the dbt vars `raw_layer_root` and
`raw_layer_files` name them), which is why the raw layer is plain Parquet, not DuckDB tables.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import duckdb

from agent_analytics.sql import literal

SCHEMA_BATCH = "0-schema"

# Column definitions of each raw table (DuckDB types that map 1:1 to Parquet and Spark).
RAW_TABLES: dict[str, str] = {
    "messages": """
        event_id varchar, occurred_at timestamp, user_id varchar, agent_id varchar,
        agent_name varchar, agent_version varchar, conversation_id varchar, status varchar,
        error_type varchar, response_time_ms double, llm_call_count integer, tool_call_count integer,
        source_file varchar, line_number bigint, batch_id varchar, loaded_at timestamp, revision integer""",
    "llm_calls": """
        event_id varchar, call_index integer, occurred_at timestamp, provider varchar,
        provider_raw varchar, model varchar, input_tokens bigint, output_tokens bigint,
        cache_read_tokens bigint, reported_cost_usd decimal(18,10), estimated_cost_usd decimal(18,10),
        cost_usd decimal(18,10), cost_source varchar, latency_ms double,
        batch_id varchar, loaded_at timestamp, revision integer""",
    "tool_calls": """
        event_id varchar, call_index integer, occurred_at timestamp, tool_name varchar,
        latency_ms double, status varchar, batch_id varchar, loaded_at timestamp, revision integer""",
    "health_checks": """
        event_id varchar, occurred_at timestamp, component varchar, is_up boolean,
        latency_ms double, batch_id varchar, loaded_at timestamp""",
    "queue_samples": """
        event_id varchar, occurred_at timestamp, queue_name varchar, depth bigint,
        batch_id varchar, loaded_at timestamp""",
    "deployments": """
        event_id varchar, occurred_at timestamp, agent_id varchar, agent_version varchar,
        description varchar, batch_id varchar, loaded_at timestamp""",
}

# Provider bills (ingestion/bills.py): a batch of its own per imported bill file, in the same
# folder layout, so every engine reads them like the events. Not event tables: they have no
# occurred_at, and compaction (which merges event days) leaves their batches alone.
BILL_TABLES: dict[str, str] = {
    "bills": """
        provider varchar, bill_month date, model varchar, project varchar, amount_usd decimal(18,6),
        source_file varchar, line_number bigint, batch_id varchar, loaded_at timestamp""",
}
# Every table with a schema file in batches/0-schema/.
SCHEMA_TABLES: dict[str, str] = {**RAW_TABLES, **BILL_TABLES}


def batches_dir(raw_dir: Path) -> Path:
    return raw_dir / "batches"


def table_files(raw_dir: Path, table: str) -> list[Path]:
    """Every Parquet file of a raw table: its batch files and its compacted day files."""
    batches = [f for f in batches_dir(raw_dir).glob(f"*/{table}.parquet") if f.parent.name != SCHEMA_BATCH]
    return sorted(batches) + sorted((raw_dir / table).glob("event_date=*/*.parquet"))


def row_count(raw_dir: Path, table: str) -> int:
    """Rows of a raw table (revisions of a message included), from the Parquet footers only."""
    files = table_files(raw_dir, table)
    if not files:
        return 0
    with duckdb.connect() as con:
        return con.execute("select coalesce(sum(num_rows), 0) from parquet_file_metadata($files)",
                           {"files": [str(f) for f in files]}).fetchone()[0]


def tmp_dir(raw_dir: Path) -> Path:
    return raw_dir / "_tmp"


def _schema_current(folder: Path) -> bool:
    """The schema files exist and have this version's columns (a column added since rewrites them)."""
    try:
        con = duckdb.connect()
        try:
            for table, columns in SCHEMA_TABLES.items():
                con.execute(f"create table {table} ({columns})")
                expected = [row[0] for row in con.execute(f"describe {table}").fetchall()]
                found = [row[0] for row in con.execute(
                    f"describe select * from read_parquet({literal(folder / (table + '.parquet'))})").fetchall()]
                if found != expected:
                    return False
        finally:
            con.close()
    except duckdb.IOException:
        return False
    return True


def ensure_schema_files(raw_dir: Path) -> None:
    """Write the empty per-table files, so readers work before the first load and see every
    column of this version (older batches lack the newer columns: readers take them as NULL)."""
    folder = batches_dir(raw_dir) / SCHEMA_BATCH
    if _schema_current(folder):
        return
    staging = tmp_dir(raw_dir) / SCHEMA_BATCH
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    con = duckdb.connect()
    try:
        for table, columns in SCHEMA_TABLES.items():
            con.execute(f"create table {table} ({columns})")
            con.execute(f"copy {table} to {literal(staging / (table + '.parquet'))} (format parquet)")
    finally:
        con.close()
    folder.parent.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(folder, ignore_errors=True)
    os.rename(staging, folder)


def publish(staging: Path, raw_dir: Path, batch_id: str) -> Path:
    """Move a fully written batch folder into place in one rename."""
    target = batches_dir(raw_dir) / batch_id
    target.parent.mkdir(parents=True, exist_ok=True)
    os.rename(staging, target)
    return target


def sweep_orphans(raw_dir: Path, committed_batch_ids: set[str]) -> list[str]:
    """Remove batch folders that no ledger row commits, and abandoned temp folders."""
    removed = []
    shutil.rmtree(tmp_dir(raw_dir), ignore_errors=True)
    folder = batches_dir(raw_dir)
    if folder.exists():
        for child in sorted(folder.iterdir()):
            if child.name != SCHEMA_BATCH and child.name not in committed_batch_ids:
                shutil.rmtree(child)
                removed.append(child.name)
    return removed
