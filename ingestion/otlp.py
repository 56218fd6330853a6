"""OpenTelemetry traces in OTLP/JSON: every span of a file parsed and given one verdict in SQL.

A file of OTLP/JSON holds one `ExportTraceServiceRequest` per line (the layout of the
Collector's file exporter and of `agent-analytics serve`): `resourceSpans[].resource` and
`.scopeSpans[].spans[]`, lowerCamelCase keys. It is recognised by its content (`is_otlp`),
not by its name, and read into the table `ingest_work.spans`, one row per span (or per
line that holds no readable request), with the fields the GenAI semantic conventions give,
under their current names or the deprecated aliases instrumentations still emit:

- operation: `gen_ai.operation.name`;
- provider: `gen_ai.provider.name` (`gen_ai.system`);
- model: `gen_ai.response.model`, else `gen_ai.request.model`;
- tokens: `gen_ai.usage.input_tokens` (`gen_ai.usage.prompt_tokens`),
  `gen_ai.usage.output_tokens` (`gen_ai.usage.completion_tokens`),
  `gen_ai.usage.cache_read.input_tokens`;
- agent: `gen_ai.agent.id`, `gen_ai.agent.name`, `gen_ai.agent.version`; else the resource's
  `service.name`;
- conversation, user, tool: `gen_ai.conversation.id`, `user.id`, `gen_ai.tool.name`;
- error: span `status.code` 2 (or `STATUS_CODE_ERROR`), `error.type`.

Attributes are read from the span, else from its resource. Ids are hex (32 / 16 digits) or
base64 (the protobuf JSON mapping), stored as lowercase hex; 64-bit integers may be JSON
strings or numbers; enums ints or names. A span that breaks a rule is quarantined with the
first failing rule as its reason; a line that is not a request is quarantined whole.
`traces.py` assembles the accepted spans into messages.
"""

from __future__ import annotations

import json

import duckdb

from ingestion.validate import (
    EARLIEST_VAR,
    LATEST_VAR,
    MAX_DURATION_MS,
    MAX_ID_CHARS,
    MAX_TEXT_CHARS,
    MAX_TOKENS,
    TOO_EARLY_VAR,
    TOO_LATE_VAR,
)

# Lines looked at to tell an OTLP file from a native one.
_SNIFF_LINES = 20

LLM_OPERATIONS = ("chat", "text_completion", "generate_content")
TOOL_OPERATION = "execute_tool"

# field -> attribute names, the first present wins (span attributes before resource ones).
ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "operation": ("gen_ai.operation.name",),
    "provider_raw": ("gen_ai.provider.name", "gen_ai.system"),
    "model": ("gen_ai.response.model", "gen_ai.request.model"),
    "input_tokens": ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens"),
    "output_tokens": ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens"),
    "cache_read_tokens": ("gen_ai.usage.cache_read.input_tokens",),
    "agent_id": ("gen_ai.agent.id",),
    "agent_name": ("gen_ai.agent.name",),
    "agent_version": ("gen_ai.agent.version",),
    "conversation_id": ("gen_ai.conversation.id",),
    "user_id": ("user.id",),
    "tool_name": ("gen_ai.tool.name",),
    "error_type": ("error.type",),
    "service_name": ("service.name",),
}
TOKEN_FIELDS = ("input_tokens", "output_tokens", "cache_read_tokens")
ID_FIELDS = ("agent_id", "conversation_id", "user_id")


def is_otlp(first_lines: list[bytes]) -> bool:
    """True when the first line that is a JSON object has the key `resourceSpans`."""
    for line in first_lines[:_SNIFF_LINES]:
        text = line.strip().removeprefix(b"\xef\xbb\xbf")
        if not text.startswith(b"{"):
            continue
        try:
            document = json.loads(text)
        except ValueError:
            continue
        return isinstance(document, dict) and "resourceSpans" in document
    return False


def _value_text(value: str) -> str:
    """The text of an OTLP `AnyValue` (JSON) holding a scalar; NULL for arrays, maps, bytes."""
    return (f"coalesce({value}->>'stringValue', {value}->>'intValue', {value}->>'doubleValue', "
            f"{value}->>'boolValue')")


def _attribute(names: tuple[str, ...]) -> str:
    """The first of `names` present among the span's attributes, else the resource's."""
    found = [f"list_filter({where}, lambda x: x.key = '{name}')[1].value"
             for where in ("span_attrs", "resource_attrs") for name in names]
    return _value_text(f"coalesce({', '.join(found)})")


def _id(text: str, size: int) -> str:
    """A span or trace id of `size` bytes, as lowercase hex, from hex or base64; else NULL (all
    zero bytes is invalid, as OTLP says)."""
    hex_digits = size * 2
    b64_chars = (size + 2) // 3 * 4
    parsed = (f"case when regexp_full_match({text}, '[0-9a-fA-F]{{{hex_digits}}}') then lower({text}) "
              f"when length({text}) = {b64_chars} and octet_length(try(from_base64({text}))) = {size} "
              f"then lower(hex(from_base64({text}))) end")
    return f"nullif({parsed}, '{'0' * hex_digits}')"


_LIST_OF_ATTRIBUTES = """'[{"key":"VARCHAR","value":"JSON"}]'"""
# A non-negative integer of at most 19 digits (a JSON number or string), as text.
_UNSIGNED = "'[0-9]{1,19}'"


def _nanos(text: str) -> str:
    return f"case when regexp_full_match({text}, {_UNSIGNED}) then try_cast({text} as bigint) end"


def requests_sql(first_line: int) -> str:
    """Each line of the chunk (`lines` view) with why it is not a request, NULL when it is one."""
    return f"""
    select line_number, line_text,
           case when line_text is null then 'not valid UTF-8'
                when trim(line_text, ' \t\r\n') = '' then 'empty line'
                when not json_valid(line_text) then 'not JSON'
                when json_type(line_text) <> 'OBJECT' then 'not an OTLP ExportTraceServiceRequest (a JSON object)'
                when coalesce(json_type(line_text, '$.resourceSpans'), 'ARRAY') <> 'ARRAY'
                    then 'resourceSpans must be an array'
           end as reason
    from lines where line_number >= {first_line}"""


def spans_sql() -> str:
    """One row per span of the readable requests in `ingest_work.requests_chunk`, with its fields."""
    fields = ",\n           ".join(f"{_attribute(names)} as {field}" for field, names in ATTRIBUTES.items())
    return f"""
    with requests as (
        select line_number, cast(line_text as json) as request from ingest_work.requests_chunk where reason is null
    ),
    resources as (
        select line_number, unnest(json_extract(request, '$.resourceSpans[*]')) as resource_spans from requests
    ),
    scopes as (
        select line_number, json_extract(resource_spans, '$.resource.attributes') as resource_json,
               unnest(json_extract(resource_spans, '$.scopeSpans[*]')) as scope_spans
        from resources
    ),
    raw_spans as (
        select line_number, resource_json, unnest(json_extract(scope_spans, '$.spans[*]')) as span
        from scopes
    ),
    numbered as (
        select *, row_number() over (partition by line_number) as span_index,
               coalesce(try(from_json(span->'attributes', {_LIST_OF_ATTRIBUTES})), []) as span_attrs,
               coalesce(try(from_json(resource_json, {_LIST_OF_ATTRIBUTES})), []) as resource_attrs,
               span->>'traceId' as trace_text, span->>'spanId' as span_text,
               nullif(span->>'parentSpanId', '') as parent_text,
               {_nanos("span->>'startTimeUnixNano'")} as start_ns,
               {_nanos("span->>'endTimeUnixNano'")} as end_ns
        from raw_spans
    ),
    fields as (
        select line_number, span_index, cast(span as varchar) as span_json,
               json_type(span) = 'OBJECT' as is_object,
               json_type(span, '$.attributes') as attributes_type,
               {_id("trace_text", 16)} as trace_id,
               {_id("span_text", 8)} as span_id,
               parent_text,
               {_id("parent_text", 8)} as parent_span_id,
               span->>'name' as span_name,
               start_ns, end_ns,
               make_timestamp(start_ns // 1000) as occurred_at,
               (end_ns - start_ns) / 1e6 as duration_ms,
               coalesce(span->>'$.status.code' in ('2', 'STATUS_CODE_ERROR'), false) as is_error,
               {fields}
        from numbered
    )
    select *, {_span_reason()} as reason from fields"""


def _span_reason() -> str:
    """The first rule the span breaks, NULL when it keeps them all."""
    token_rules = "\n".join(
        f"when {field} is not null and not coalesce(regexp_full_match({field}, '[0-9]{{1,10}}') "
        f"and cast({field} as bigint) <= {MAX_TOKENS}, false) "
        f"then '{ATTRIBUTES[field][0]} must be an integer from 0 to {MAX_TOKENS:,}'"
        for field in TOKEN_FIELDS
    )
    id_rules = "\n".join(
        f"when length({field}) > {MAX_ID_CHARS} then 'oversized attribute {ATTRIBUTES[field][0]} (over {MAX_ID_CHARS} chars)'"
        for field in ID_FIELDS
    )
    text_rules = "\n".join(
        f"when length({field}) > {MAX_TEXT_CHARS} then 'oversized attribute {ATTRIBUTES[field][0]} (over {MAX_TEXT_CHARS} chars)'"
        for field in ("provider_raw", "model", "agent_name", "agent_version", "tool_name", "error_type", "service_name")
    )
    return f"""case
        when not is_object then 'span is not a JSON object'
        when trace_id is null then 'traceId must be 16 bytes: 32 hex digits (or base64), not all zero'
        when span_id is null then 'spanId must be 8 bytes: 16 hex digits (or base64), not all zero'
        when parent_text is not null and parent_span_id is null and not regexp_full_match(parent_text, '0{16}')
            then 'parentSpanId must be 8 bytes: 16 hex digits (or base64), not all zero'
        when start_ns is null then 'startTimeUnixNano must be an integer (nanoseconds since 1970)'
        when end_ns is null or end_ns < start_ns then 'endTimeUnixNano must be an integer, not before startTimeUnixNano'
        when duration_ms > {MAX_DURATION_MS} then 'span longer than one day'
        when attributes_type is not null and attributes_type <> 'ARRAY' then 'attributes must be an array of key/value'
        {token_rules}
        {id_rules}
        {text_rules}
        when parent_span_id is null and occurred_at < getvariable('{EARLIEST_VAR}')
            then replace(getvariable('{TOO_EARLY_VAR}'), 'occurred_at', 'root span start')
        when parent_span_id is null and occurred_at >= getvariable('{LATEST_VAR}')
            then replace(getvariable('{TOO_LATE_VAR}'), 'occurred_at', 'root span start')
    end"""


def parse_chunk(con: duckdb.DuckDBPyConnection, first_line: int) -> None:
    """Read the chunk in the `lines` view into `ingest_work.spans` (created by the first chunk):
    every span with its fields and verdict, and every line that is not a request as one
    quarantined record (span_index 0)."""
    con.execute(f"create or replace table ingest_work.requests_chunk as {requests_sql(first_line)}")
    target_exists = first_line > 1
    select = f"""
        select * from ({spans_sql()})
        union all by name
        select line_number, 0 as span_index, rtrim(line_text, chr(13) || chr(10)) as span_json, reason
        from ingest_work.requests_chunk where reason is not null"""
    if target_exists:
        con.execute(f"insert into ingest_work.spans by name {select}")
    else:
        con.execute(f"create or replace table ingest_work.spans as {select}")
    con.execute("drop table ingest_work.requests_chunk")
