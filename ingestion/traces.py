"""Spans assembled into messages across batches: one trace is one message.

An SDK's batch processor exports spans as they end, so the spans of one trace arrive in
pieces: an LLM-call span often in an earlier request (or file) than its root span, and a late
child after it. Every accepted span is kept in `ingest.otel_spans` with its fields:

- a trace becomes a message in the batch where its root span (no parent) arrives: the
  message, its `llm_calls` (its `chat` / `text_completion` / `generate_content` spans) and
  its `tool_calls` (its `execute_tool` spans) are written to that batch's raw tables, with
  `revision` 0 (`ingest.otel_traces` holds each trace's latest revision);
- a child that arrives after its root writes the whole message again, with every call so far,
  as the next revision (its user, agent and time stay those of the first revision, so a
  revision never moves a message between sessions): the marts keep the latest revision of a message and drop the earlier
  (see the staging models), so its calls, tokens and cost change at the next refresh;
- children whose root has not arrived wait (state `pending`, counted as loaded in the
  ledger); `quarantine_orphans` moves those that waited longer than the setting
  AGENT_ANALYTICS_OTEL_ORPHAN_AFTER_S into the quarantine with the reason `orphan span`
  (their file's ledger row moves them from loaded to quarantined), so nothing is lost unseen.

A trace without `user.id` is a message of the unknown user, stored as the empty user id (a
native event cannot have one): every such message counts, with its calls, tokens, cost and
errors, and the unknown user is one user (one active user on the days it has messages). The tables are created with the other
ingest tables (ingest_tables.py).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import duckdb

from agent_analytics.sql import literal
from ingestion.otlp import LLM_OPERATIONS, TOOL_OPERATION

UNKNOWN_USER = ""
ORPHAN_REASON = "orphan span"


# Instrumentations that predate `gen_ai.operation.name` (OpenLLMetry) mark LLM calls with
# `llm.request.type`, or only with their token counts.
_KIND = (f"case when operation in {LLM_OPERATIONS} then 'llm' "
         f"when operation = '{TOOL_OPERATION}' then 'tool' "
         "when operation is null and (llm_request_type in ('chat', 'completion') "
         "or input_tokens is not null or output_tokens is not null) then 'llm' else 'other' end")
_FIELD_COLUMNS = """trace_id, span_id, parent_span_id, span_kind, occurred_at, start_ns, duration_ms, is_error,
    error_type, span_name, provider_raw, model, input_tokens, output_tokens, cache_read_tokens, tool_name,
    agent_id, agent_name, agent_version, conversation_id, user_id, service_name"""
_SPAN_COLUMNS = _FIELD_COLUMNS + ", file_name, line_number"


def classify(con: duckdb.DuckDBPyConnection, batch_id: str, file_name: str) -> dict[str, int]:
    """Duplicates (a span id seen earlier in the file or stored by an earlier batch) and the
    table `ingest_work.new_spans`; the accounting of the file in spans and traces."""
    con.execute(
        """create or replace table ingest_work.span_duplicates as
        with valid as (
            select line_number, span_index, trace_id, span_id from ingest_work.spans where reason is null
        ),
        ordered as (
            select *, row_number() over (partition by trace_id, span_id order by line_number, span_index) as copy
            from valid
        ),
        stored as (
            select s.trace_id, s.span_id, min(s.batch_id) as batch_id
            from ingest.otel_spans s semi join valid v on s.trace_id = v.trace_id and s.span_id = v.span_id
            where s.state <> 'orphaned'  -- a quarantined copy does not claim its id
            group by all
        )
        select o.line_number, o.span_index, o.trace_id || '/' || o.span_id as event_id,
               coalesce(s.batch_id, ?) as first_batch_id
        from ordered o left join stored s on o.trace_id = s.trace_id and o.span_id = s.span_id
        where o.copy > 1 or s.trace_id is not null""",
        [batch_id],
    )
    con.execute(
        f"""create or replace table ingest_work.new_spans as
        select s.* exclude (operation, llm_request_type, input_tokens, output_tokens, cache_read_tokens),
               cast(input_tokens as bigint) as input_tokens, cast(output_tokens as bigint) as output_tokens,
               cast(cache_read_tokens as bigint) as cache_read_tokens,
               {_KIND} as span_kind, {literal(file_name)} as file_name
        from ingest_work.spans s anti join ingest_work.span_duplicates d using (line_number, span_index)
        where s.reason is null"""
    )
    records, quarantined, lines = con.execute(
        "select count(*), count(reason), count(distinct line_number) from ingest_work.spans"
    ).fetchone()
    duplicates = con.execute("select count(*) from ingest_work.span_duplicates").fetchone()[0]
    traces = con.execute("select count(distinct trace_id) from ingest_work.new_spans").fetchone()[0]
    return {"records": records, "quarantined": quarantined, "duplicates": duplicates,
            "loaded": records - quarantined - duplicates, "traces": traces}


def assemble(con: duckdb.DuckDBPyConnection) -> None:
    """The messages, LLM calls and tool calls this batch writes (`ingest_work.otel_messages`,
    `otel_llm_calls`, `otel_tool_calls`): every trace this batch touches that has its root and
    is new, or gained a call, a tool call or its root."""
    con.execute(
        f"""create or replace table ingest_work.trace_spans as
        with touched as (select distinct trace_id from ingest_work.new_spans)
        select {_SPAN_COLUMNS}, false as is_new from ingest.otel_spans s
        where s.state in ('pending', 'assembled') and s.trace_id in (select trace_id from touched)
        union all
        select {_SPAN_COLUMNS}, true as is_new from ingest_work.new_spans"""
    )
    con.execute(
        """create or replace table ingest_work.ready_traces as
        with roots as (
            select trace_id, arg_min(span_id, (start_ns, span_id)) as root_span_id
            from ingest_work.trace_spans where parent_span_id is null group by trace_id
        ),
        changed as (
            select distinct trace_id from ingest_work.trace_spans
            where is_new and (span_kind <> 'other' or parent_span_id is null)
        )
        select r.trace_id, r.root_span_id, coalesce(t.revision + 1, 0) as revision,
               t.user_id as kept_user_id, t.agent_id as kept_agent_id, t.occurred_at as kept_occurred_at
        from roots r
        join changed c using (trace_id)
        left join ingest.otel_traces t using (trace_id)"""
    )
    # Message fields: the root span's, else the first span's (by start) that has it.
    def first(field: str) -> str:
        return (f"coalesce(max({field}) filter (where s.span_id = r.root_span_id), "
                f"arg_min({field}, s.start_ns) filter (where {field} is not null))")

    con.execute(
        f"""create or replace table ingest_work.otel_messages as
        select r.trace_id as event_id,
               coalesce(any_value(r.kept_occurred_at),
                        max(s.occurred_at) filter (where s.span_id = r.root_span_id)) as occurred_at,
               coalesce(any_value(r.kept_user_id), {first("s.user_id")}, '{UNKNOWN_USER}') as user_id,
               coalesce(any_value(r.kept_agent_id), {first("s.agent_id")}, {first("s.service_name")}, 'unknown')
                   as agent_id,
               {first("s.agent_name")} as agent_name,
               {first("s.agent_version")} as agent_version,
               {first("s.conversation_id")} as conversation_id,
               case when bool_or(s.is_error) filter (where s.span_id = r.root_span_id) then 'error' else 'ok' end as status,
               max(s.error_type) filter (where s.span_id = r.root_span_id and s.is_error) as error_type,
               max(s.duration_ms) filter (where s.span_id = r.root_span_id) as response_time_ms,
               cast(count(*) filter (where s.span_kind = 'llm') as integer) as llm_call_count,
               cast(count(*) filter (where s.span_kind = 'tool') as integer) as tool_call_count,
               max(s.file_name) filter (where s.span_id = r.root_span_id) as source_file,
               max(s.line_number) filter (where s.span_id = r.root_span_id) as line_number,
               any_value(r.revision) as revision
        from ingest_work.ready_traces r join ingest_work.trace_spans s using (trace_id)
        group by r.trace_id"""
    )
    con.execute(
        """create or replace table ingest_work.otel_calls as
        select s.trace_id as event_id, s.span_kind, m.occurred_at, m.revision,
               cast(row_number() over (partition by s.trace_id, s.span_kind order by s.start_ns, s.span_id) as integer)
                   as call_index,
               s.provider_raw, s.model, s.input_tokens, s.output_tokens, s.cache_read_tokens, s.tool_name,
               s.span_name, s.duration_ms, s.is_error
        from ingest_work.trace_spans s join ingest_work.otel_messages m on m.event_id = s.trace_id
        where s.span_kind in ('llm', 'tool')"""
    )


def llm_calls_sql(provider_case) -> str:
    """The assembled LLM calls in the columns the loader prices (`provider_case` normalises a
    provider name as the native path does)."""
    return f"""
    select event_id, call_index, occurred_at,
           {provider_case("coalesce(provider_raw, 'unknown')")} as provider,
           coalesce(provider_raw, 'unknown') as provider_raw,
           coalesce(model, 'unknown') as model,
           coalesce(input_tokens, 0) as input_tokens,
           coalesce(output_tokens, 0) as output_tokens,
           coalesce(cache_read_tokens, 0) as cache_read_tokens,
           cast(null as decimal(18, 10)) as reported_cost_usd,
           duration_ms as latency_ms, revision
    from ingest_work.otel_calls where span_kind = 'llm'"""


def tool_calls_sql(meta: str) -> str:
    return f"""
    select event_id, call_index, occurred_at, coalesce(tool_name, span_name, 'unknown') as tool_name,
           duration_ms as latency_ms, case when is_error then 'error' else 'ok' end as status, {meta}, revision
    from ingest_work.otel_calls where span_kind = 'tool'"""


def messages_sql(meta: str) -> str:
    return f"""
    select event_id, occurred_at, user_id, agent_id, agent_name, agent_version, conversation_id, status,
           error_type, response_time_ms, llm_call_count, tool_call_count, source_file, line_number, {meta}, revision
    from ingest_work.otel_messages"""


def commit(con: duckdb.DuckDBPyConnection, batch_id: str, now: datetime) -> None:
    """Store the batch's new spans and the traces it assembled (inside the load's transaction)."""
    ts = f"timestamp '{now:%Y-%m-%d %H:%M:%S.%f}'"
    con.execute(
        f"""insert into ingest.otel_spans
        with assembled as (
            select trace_id from ingest_work.ready_traces
            union select trace_id from ingest.otel_traces semi join ingest_work.new_spans using (trace_id)
        )
        select {_FIELD_COLUMNS}, ?, file_name, line_number, {ts},
               case when a.trace_id is null then 'pending' else 'assembled' end,
               case when a.trace_id is null then span_json end
        from ingest_work.new_spans left join assembled a using (trace_id)""",
        [batch_id],
    )
    con.execute(
        """update ingest.otel_spans set state = 'assembled', span_json = null
        where state = 'pending' and trace_id in (select trace_id from ingest_work.ready_traces)"""
    )
    con.execute("delete from ingest.otel_traces where trace_id in (select trace_id from ingest_work.ready_traces)")
    con.execute(
        """insert into ingest.otel_traces
        select r.trace_id, r.revision, ?, m.user_id, m.agent_id, m.occurred_at
        from ingest_work.ready_traces r join ingest_work.otel_messages m on m.event_id = r.trace_id""",
        [batch_id],
    )


def quarantine_orphans(con: duckdb.DuckDBPyConnection, orphan_after_s: float, now: datetime) -> int:
    """Quarantine the spans that have waited for their root span longer than `orphan_after_s`
    seconds; returns how many. Their files' ledger rows count them as quarantined instead of
    loaded."""
    cutoff = now - timedelta(seconds=orphan_after_s)
    con.execute("begin transaction")
    try:
        con.execute(
            """create or replace temp table orphans as
            select rowid as row_id, batch_id, file_name, line_number, span_json from ingest.otel_spans
            where state = 'pending' and loaded_at <= ?""",
            [cutoff],
        )
        count = con.execute("select count(*) from orphans").fetchone()[0]
        if count:
            con.execute(
                "insert into ingest.quarantine select batch_id, file_name, line_number, ?, span_json, ? from orphans",
                [ORPHAN_REASON, now],
            )
            con.execute(
                """update ingest.ledger l set loaded = l.loaded - o.n, quarantined = l.quarantined + o.n
                from (select batch_id, count(*) as n from orphans group by batch_id) o where l.batch_id = o.batch_id"""
            )
            con.execute(
                """update ingest.otel_spans set state = 'orphaned', span_json = null
                where rowid in (select row_id from orphans)"""
            )
        con.execute("drop table orphans")
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return count
