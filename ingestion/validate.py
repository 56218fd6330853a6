"""Vectorized validation of contract records: SQL that gives every line one verdict.

Input: a relation `lines(line_number bigint, line_blob blob)`, one row per physical line.
Output of `CHECK_SQL`: the parsed fields of every line and `reason`, NULL when the line is a
valid record. Every rule of CONTRACT.md section 1 is one `when ... then 'reason'` branch;
the first failing rule names the reason. Nested `llm_calls` / `tool_calls` items are checked
by `CALL_ITEMS_SQL` / `TOOL_ITEMS_SQL` and their first failure is folded into the line's reason.
"""

from __future__ import annotations

MAX_LINE_BYTES = 1_048_576
MAX_ID_CHARS = 200
MAX_TEXT_CHARS = 1_000
MAX_DESCRIPTION_CHARS = 10_000
EVENT_TYPES = ("message", "health_check", "queue_sample", "deployment")

_FIELDS = (
    "event_id type occurred_at user_id agent_id agent_name agent_version conversation_id status "
    "error_type response_time_ms llm_calls tool_calls component is_up latency_ms queue depth description"
).split()
_SPEC = "{" + ",".join(f'"{f}":"JSON"' for f in _FIELDS) + "}"

_CALL_FIELDS = "provider model input_tokens output_tokens cache_read_tokens cost_usd latency_ms".split()
_CALL_SPEC = "[{" + ",".join(f'"{f}":"JSON"' for f in _CALL_FIELDS) + "}]"
_TOOL_FIELDS = "name latency_ms status".split()
_TOOL_SPEC = "[{" + ",".join(f'"{f}":"JSON"' for f in _TOOL_FIELDS) + "}]"

_RFC3339 = r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:?\d{2})?$"


class Sql(str):
    """A reason that is an SQL expression (computed per line), not literal text."""


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _absent(expr: str) -> str:
    return f"({expr} is null or json_type({expr}) = 'NULL')"


def _string_rules(expr: str, name: str, required: bool, max_chars: int) -> list[tuple[str, str]]:
    rules = []
    if required:
        rules.append((_absent(expr), f"missing field {name}"))
    present = f"not {_absent(expr)}"
    rules += [
        (f"{present} and json_type({expr}) <> 'VARCHAR'", f"field {name} must be a string"),
        (f"{present} and length({expr} ->> '$') = 0", f"field {name} is empty"),
        (f"{present} and length({expr} ->> '$') > {max_chars}", f"oversized field {name} (over {max_chars} chars)"),
    ]
    return rules


def _number_rules(expr: str, name: str, required: bool, integer: bool = False) -> list[tuple[str, str]]:
    kinds = "('UBIGINT', 'BIGINT')" if integer else "('UBIGINT', 'BIGINT', 'DOUBLE')"
    what = "an integer" if integer else "a number"
    rules = []
    if required:
        rules.append((_absent(expr), f"missing field {name}"))
    present = f"not {_absent(expr)}"
    rules += [
        (f"{present} and json_type({expr}) not in {kinds}", f"field {name} must be {what}"),
        (f"{present} and json_type({expr}) = 'BIGINT'", f"negative number in field {name}"),
        (f"{present} and json_type({expr}) = 'DOUBLE' and cast({expr} as double) < 0", f"negative number in field {name}"),
    ]
    return rules


def _array_rules(expr: str, name: str) -> list[tuple[str, str]]:
    return [(f"not {_absent(expr)} and json_type({expr}) <> 'ARRAY'", f"field {name} must be an array")]


def _line_rules() -> list[tuple[str, str]]:
    msg, hc, qs, dep = (f"j_type = '{t}'" for t in EVENT_TYPES)
    rules: list[tuple[str, str]] = [
        ("line_text is null", "not valid UTF-8"),
        (f"line_bytes > {MAX_LINE_BYTES}", f"oversized line (over {MAX_LINE_BYTES} bytes)"),
        ("trim(line_text, ' \t\r\n') = ''", "empty line"),
        ("j is null", "not JSON"),
        ("left(ltrim(line_text, ' \t\r\n'), 1) <> '{'", "not a JSON object"),
    ]
    rules += _string_rules("j.event_id", "event_id", True, MAX_ID_CHARS)
    rules += _string_rules("j.type", "type", True, MAX_ID_CHARS)
    rules.append((f"j_type not in {EVENT_TYPES}", Sql("'unknown type ' || j_type")))
    rules.append((_absent("j.occurred_at"), "missing field occurred_at"))
    rules.append(("json_type(j.occurred_at) <> 'VARCHAR'", "field occurred_at must be a string"))
    rules.append(("occurred_at is null", "unparseable timestamp occurred_at"))
    for rule in (
        _string_rules("j.user_id", "user_id", True, MAX_TEXT_CHARS)
        + _string_rules("j.agent_id", "agent_id", True, MAX_TEXT_CHARS)
        + _string_rules("j.agent_name", "agent_name", False, MAX_TEXT_CHARS)
        + _string_rules("j.agent_version", "agent_version", False, MAX_TEXT_CHARS)
        + _string_rules("j.conversation_id", "conversation_id", False, MAX_TEXT_CHARS)
        + _string_rules("j.status", "status", True, MAX_ID_CHARS)
        + [("(j.status ->> '$') not in ('ok', 'error')", "field status must be ok or error")]
        + _string_rules("j.error_type", "error_type", False, MAX_TEXT_CHARS)
        + _number_rules("j.response_time_ms", "response_time_ms", False)
        + [(f"(j.status ->> '$') = 'ok' and {_absent('j.response_time_ms')}", "missing field response_time_ms (required when status is ok)")]
        + _array_rules("j.llm_calls", "llm_calls")
        + _array_rules("j.tool_calls", "tool_calls")
    ):
        rules.append((f"{msg} and ({rule[0]})", rule[1]))
    for rule in (
        _string_rules("j.component", "component", False, MAX_TEXT_CHARS)
        + [(_absent("j.is_up"), "missing field is_up"), ("json_type(j.is_up) <> 'BOOLEAN'", "field is_up must be a boolean")]
        + _number_rules("j.latency_ms", "latency_ms", False)
    ):
        rules.append((f"{hc} and ({rule[0]})", rule[1]))
    for rule in _string_rules("j.queue", "queue", False, MAX_TEXT_CHARS) + _number_rules("j.depth", "depth", True, integer=True):
        rules.append((f"{qs} and ({rule[0]})", rule[1]))
    for rule in (
        _string_rules("j.agent_id", "agent_id", True, MAX_TEXT_CHARS)
        + _string_rules("j.agent_version", "agent_version", True, MAX_TEXT_CHARS)
        + _string_rules("j.description", "description", False, MAX_DESCRIPTION_CHARS)
    ):
        rules.append((f"{dep} and ({rule[0]})", rule[1]))
    return rules


def _case(rules: list[tuple[str, str]]) -> str:
    branches = "\n".join(
        f"        when {cond} then {reason if isinstance(reason, Sql) else _lit(reason)}"
        for cond, reason in rules
    )
    return f"case\n{branches}\n    end"


def _call_rules() -> list[tuple[str, str]]:
    rules = _string_rules("c.provider", "provider", True, MAX_TEXT_CHARS)
    rules += _string_rules("c.model", "model", True, MAX_TEXT_CHARS)
    rules += _number_rules("c.input_tokens", "input_tokens", True, integer=True)
    rules += _number_rules("c.output_tokens", "output_tokens", True, integer=True)
    rules += _number_rules("c.cache_read_tokens", "cache_read_tokens", False, integer=True)
    rules.append(
        (
            "not " + _absent("c.cache_read_tokens") + " and cast(c.cache_read_tokens as bigint) > cast(c.input_tokens as bigint)",
            "cache_read_tokens exceeds input_tokens",
        )
    )
    rules += _number_rules("c.cost_usd", "cost_usd", False)
    rules += _number_rules("c.latency_ms", "latency_ms", False)
    return rules


def _tool_rules() -> list[tuple[str, str]]:
    rules = _string_rules("c.name", "name", True, MAX_TEXT_CHARS)
    rules += _number_rules("c.latency_ms", "latency_ms", False)
    rules += _string_rules("c.status", "status", False, MAX_ID_CHARS)
    return rules


CHECK_SQL = f"""
with decoded as (
    select line_number, octet_length(line_blob) as line_bytes, try(decode(line_blob)) as line_text
    from lines
),
parsed as (
    select
        line_number,
        line_bytes,
        line_text,
        case when line_bytes <= {MAX_LINE_BYTES} then try(json_transform(line_text, '{_SPEC}')) end as j
    from decoded
),
typed as (
    select
        *,
        j.type ->> '$' as j_type,
        case when json_type(j.occurred_at) = 'VARCHAR'
                  and regexp_full_match(j.occurred_at ->> '$', '{_RFC3339}')
             then try_cast(try_cast(j.occurred_at ->> '$' as timestamptz) as timestamp) end as occurred_at
    from parsed
)
select
    line_number,
    line_text,
    j,
    j_type as event_type,
    occurred_at,
    {_case(_line_rules())} as reason
from typed
"""


def _items_sql(field: str, spec: str, rules: list[tuple[str, str]], label: str) -> str:
    return f"""
with arrays as (
    select line_number, try(json_transform(j.{field}, '{spec}')) as items
    from checked
    where reason is null and event_type = 'message' and json_type(j.{field}) = 'ARRAY'
),
items as (
    select line_number, unnest(list_transform(items, lambda x, i: {{'idx': i, 'item': x}})) as u
    from arrays
),
flat as (
    select line_number, u.idx as call_index, u.item as c from items
)
select
    line_number,
    call_index,
    c,
    '{label}[' || call_index || ']: ' || ({_case(rules)}) as reason
from flat
"""


CALL_ITEMS_SQL = _items_sql("llm_calls", _CALL_SPEC, _call_rules(), "llm_calls")
TOOL_ITEMS_SQL = _items_sql("tool_calls", _TOOL_SPEC, _tool_rules(), "tool_calls")
