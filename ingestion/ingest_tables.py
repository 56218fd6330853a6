"""The ingest bookkeeping tables (schema `ingest`): ledger, quarantine, duplicates, event ids,
rejected files; and the 64-bit id hash the duplicate check scans."""

from __future__ import annotations

import duckdb

INGEST_SCHEMA_DDL = """
create schema if not exists ingest;
create table if not exists ingest.ledger (
    batch_id varchar not null,
    file_name varchar not null,
    file_path varchar not null,
    content_hash varchar not null,
    lines bigint not null,
    loaded bigint not null,
    duplicates bigint not null,
    quarantined bigint not null,
    ingested_at timestamp not null,
    record_type varchar default 'event',  -- event (native JSONL) or span (OTLP/JSON)
    records bigint,  -- events or spans: loaded + duplicates + quarantined
    traces bigint  -- OTLP files: distinct traces among the loaded spans
);
create table if not exists ingest.quarantine (
    batch_id varchar not null,
    file_name varchar not null,
    line_number bigint not null,
    reason varchar not null,
    raw_line varchar,
    quarantined_at timestamp not null
);
create table if not exists ingest.duplicates (
    batch_id varchar not null,
    file_name varchar not null,
    line_number bigint not null,
    event_id varchar not null,
    first_batch_id varchar not null
);
create table if not exists ingest.event_ids (
    event_id varchar not null,
    batch_id varchar not null,
    id_hash ubigint  -- ID_HASH below
);
create table if not exists ingest.id_hash_probe (probe varchar not null);
create table if not exists ingest.rejected_files (
    file_name varchar not null,
    moved_to varchar,  -- landing/rejected/<name>; NULL when the move failed
    reason varchar not null,
    rejected_at timestamp not null
);
"""

# The duplicate check first matches a file's ids against the stored 64-bit `id_hash` column
# (a scan of 8 bytes per loaded event instead of its id text), then compares the few candidate
# ids as text. DuckDB's `hash()` is not promised stable across versions, so the hashes of a
# few probe strings (short ones are stored inline, long ones not) are kept beside the table;
# when they differ from what this DuckDB computes, every stored hash is computed again.
ID_HASH = "hash(event_id)"
ID_HASH_PROBE = """
    select cast(list(hash(p) order by p) as varchar)
    from (values ('a'), ('evt-0001'), ('msg-0f8e4c1a-5b7d-4e2f-9a3c-6d1b8e7f0a25')) probes(p)"""


# OpenTelemetry spans kept for trace assembly across batches, and each assembled trace's
# latest revision (ingestion/traces.py).
OTEL_TABLES_DDL = """
create table if not exists ingest.otel_spans (
    trace_id varchar not null,
    span_id varchar not null,
    parent_span_id varchar,
    span_kind varchar not null,  -- llm, tool or other
    occurred_at timestamp not null,
    start_ns bigint not null,
    duration_ms double not null,
    is_error boolean not null,
    error_type varchar,
    span_name varchar,
    provider_raw varchar,
    model varchar,
    input_tokens bigint,
    output_tokens bigint,
    cache_read_tokens bigint,
    tool_name varchar,
    agent_id varchar,
    agent_name varchar,
    agent_version varchar,
    conversation_id varchar,
    user_id varchar,
    service_name varchar,
    batch_id varchar not null,
    file_name varchar not null,
    line_number bigint not null,
    loaded_at timestamp not null,
    state varchar not null,  -- pending, assembled or orphaned
    span_json varchar  -- kept while pending: the quarantine's raw record if the span is orphaned
);
create table if not exists ingest.otel_traces (
    trace_id varchar not null,
    revision integer not null,
    batch_id varchar not null,
    -- fixed by the first revision: a later one never moves the message to another user,
    -- agent or time (the sessions of the marts are rebuilt by those)
    user_id varchar not null,
    agent_id varchar not null,
    occurred_at timestamp not null
);
"""


# Columns added since the first release, for warehouses created before them.
LEDGER_ADDED_COLUMNS = """
alter table ingest.ledger add column if not exists record_type varchar default 'event';
alter table ingest.ledger add column if not exists records bigint;
alter table ingest.ledger add column if not exists traces bigint;
update ingest.ledger set records = lines where records is null;
"""


def ensure_ingest_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the ingest tables; fill `event_ids.id_hash` where it is missing or out of date."""
    con.execute(INGEST_SCHEMA_DDL)
    con.execute(LEDGER_ADDED_COLUMNS)
    con.execute(OTEL_TABLES_DDL)
    columns = {
        row[0]
        for row in con.execute(
            """select column_name from information_schema.columns
               where table_catalog = current_database() and table_schema = 'ingest' and table_name = 'event_ids'"""
        ).fetchall()
    }
    if "id_hash" not in columns:  # a warehouse from before the column
        con.execute("alter table ingest.event_ids add column id_hash ubigint")
    probe = con.execute(ID_HASH_PROBE).fetchall()[0][0]
    if con.execute("select probe from ingest.id_hash_probe").fetchall() != [(probe,)]:
        con.execute("begin transaction")
        try:
            con.execute(f"update ingest.event_ids set id_hash = {ID_HASH}")
            con.execute("delete from ingest.id_hash_probe")
            con.execute("insert into ingest.id_hash_probe values (?)", [probe])
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
