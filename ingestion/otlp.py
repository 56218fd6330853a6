"""OpenTelemetry traces in OTLP/JSON: every span of a file parsed and given one verdict in SQL.

A file of OTLP/JSON holds one `ExportTraceServiceRequest` per line (the layout of the
Collector's file exporter and of `agent-analytics serve`): `resourceSpans[].resource` and
`.scopeSpans[].spans[]`, lowerCamelCase keys. It is recognised by its content (`is_otlp`),
not by its name, and read into the table `ingest_work.spans`, one row per span (or per
line that holds no readable request), with the fields the GenAI semantic conventions give,
under their current names or the deprecated aliases instrumentations still emit:

- operation: `gen_ai.operation.name`; a span without one is an LLM call when it has
  `llm.request.type` `chat` or `completion` (OpenLLMetry) or token counts;
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
    "llm_request_type": ("llm.request.type",),  # OpenLLMetry / Traceloop, which set no operation name
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


def _hex_id(text: str, size: int) -> str:
    """A span or trace id of `size` bytes (a JSON string of hex or base64 digits) as lowercase
    hex; else NULL."""
    hex_digits = size * 2
    b64_chars = (size + 2) // 3 * 4
    return (f"case when regexp_full_match({text}, '[0-9a-fA-F]{{{hex_digits}}}') then lower({text}) "
            f"when length({text}) = {b64_chars} and octet_length(try(from_base64({text}))) = {size} "
            f"then lower(hex(from_base64({text}))) end")


def _id(text: str, size: int) -> str:
    """`_hex_id`, NULL for all zero bytes too (invalid, as OTLP says)."""
    return f"nullif({_hex_id(text, size)}, '{'0' * size * 2}')"


_LIST_OF_ATTRIBUTES = """'[{"key":"VARCHAR","value":"JSON"}]'"""
# A non-negative integer of at most 19 digits (a JSON number or string), as text.
_UNSIGNED = "'[0-9]{1,19}'"


def _nanos(text: str) -> str:
    return f"case when regexp_full_match({text}, {_UNSIGNED}) then try_cast({text} as bigint) end"


# (path of a list's items, what they must be, the reason): a request whose nesting breaks one
# holds spans that cannot be read, so the whole line is quarantined.
_NESTING = (
    ("$.resourceSpans[*]", "OBJECT", "resourceSpans must be an array of objects"),
    ("$.resourceSpans[*].scopeSpans", "ARRAY", "scopeSpans must be an array"),
    ("$.resourceSpans[*].scopeSpans[*]", "OBJECT", "scopeSpans must be an array of objects"),
    ("$.resourceSpans[*].scopeSpans[*].spans", "ARRAY", "spans must be an array"),
)


def _nesting_rules() -> str:
    return "\n".join(
        f"when len(list_filter(json_type(line_text, '{path}'), lambda t: t <> '{kind}')) > 0 then '{reason}'"
        for path, kind, reason in _NESTING
    )


def requests_sql(first_line: int) -> str:
    """Each line of the chunk (`lines` view) with why it is not a request, NULL when it is one."""
    return f"""
    select line_number, line_text,
           case when line_text is null then 'not valid UTF-8'
                when trim(line_text, ' \t\r\n') = '' then 'empty line'
                when not json_valid(line_text) then 'not JSON'
                when json_type(line_text) <> 'OBJECT' then 'not an OTLP ExportTraceServiceRequest (a JSON object)'
                when json_type(line_text, '$.resourceSpans') is null and json_keys(line_text) <> []
                    then 'not an OTLP ExportTraceServiceRequest (no resourceSpans)'
                when json_type(line_text, '$.resourceSpans') <> 'ARRAY' then 'resourceSpans must be an array'
                {_nesting_rules()}
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
        select line_number, json_extract(request, '$.resourceSpans[*]') as items from requests
    ),
    resource_items as (
        select line_number, unnest(items) as resource_spans, generate_subscripts(items, 1) as resource_index
        from resources
    ),
    scopes as (
        select line_number, resource_index, json_extract(resource_spans, '$.resource.attributes') as resource_json,
               json_extract(resource_spans, '$.scopeSpans[*]') as items
        from resource_items
    ),
    scope_items as (
        select line_number, resource_index, resource_json, unnest(items) as scope_spans,
               generate_subscripts(items, 1) as scope_index
        from scopes
    ),
    span_lists as (
        select line_number, resource_index, scope_index, resource_json, json_extract(scope_spans, '$.spans[*]') as items
        from scope_items
    ),
    raw_spans as (
        select line_number, resource_index, scope_index, resource_json, unnest(items) as span,
               generate_subscripts(items, 1) as item_index
        from span_lists
    ),
    numbered as (
        select * exclude (resource_index, scope_index, item_index),
               row_number() over (partition by line_number order by resource_index, scope_index, item_index)
                   as span_index,
               coalesce(try(from_json(span->'attributes', {_LIST_OF_ATTRIBUTES})), []) as span_attrs,
               coalesce(try(from_json(resource_json, {_LIST_OF_ATTRIBUTES})), []) as resource_attrs,
               case when json_type(span, '$.traceId') = 'VARCHAR' then span->>'traceId' end as trace_text,
               case when json_type(span, '$.spanId') = 'VARCHAR' then span->>'spanId' end as span_text,
               case when json_type(span, '$.parentSpanId') = 'VARCHAR' then nullif(span->>'parentSpanId', '')
                    else span->>'parentSpanId' end as parent_text,
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
               coalesce({_hex_id("parent_text", 8)} = '{'0' * 16}', false) as parent_is_zero,
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
        f"when {field} is not null and not coalesce(try_cast({field} as bigint) between 0 and {MAX_TOKENS} "
        f"and regexp_full_match({field}, '[0-9]{{1,10}}'), false) "
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
    ) + f"\nwhen length(span_name) > {MAX_TEXT_CHARS} then 'oversized span name (over {MAX_TEXT_CHARS} chars)'"
    return f"""case
        when not is_object then 'span is not a JSON object'
        when trace_id is null then 'traceId must be 16 bytes: 32 hex digits (or base64), not all zero'
        when span_id is null then 'spanId must be 8 bytes: 16 hex digits (or base64), not all zero'
        when parent_text is not null and parent_span_id is null and not parent_is_zero
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
