"""Vectorized validation of contract records: SQL that gives every line one verdict.

Input: a relation `lines(line_number bigint, line_bytes bigint, line_text varchar)`, one row
per physical line; `line_text` is NULL when the line is not valid UTF-8.

Two passes, both plain DuckDB SQL (no per-line Python):

1. `PARSE_SQL` parses every line once with `json_transform` into typed fields (strings as
   VARCHAR, numbers and booleans as their raw JSON text, `llm_calls` / `tool_calls` as lists of
   such structs; `tool_calls` via its JSON text, see ARRAYS_TYPED_LATER) and computes
   `quick_ok`: a cheap conjunction of checks that together imply every rule below (a string
   field's value cannot have come from a JSON number, boolean, object or array; a number's
   text starts with a digit; and so on). Nearly every real line passes it, and then its typed
   fields are its final values.
2. `reason_sql(source)` runs the full rule list on the few lines that did not pass (the
   caller feeds them as `source`). It parses them into raw JSON fragments and derives each
   fragment's JSON kind from its first byte (`"` string, `{` object, `[` array, `t`/`f`
   boolean, `-`/digit number; JSON null reads as SQL NULL, i.e. absent). Every rule of
   docs/events.md is one `when ... then 'reason'` branch; the first failing rule names
   the reason, and for nested `llm_calls` / `tool_calls` the first failing item's. A line
   that passes every rule here is valid too (it was only unusual, e.g. a numeric-looking id).

`quick_ok` may reject a valid line (pass 2 then accepts it) but must never accept an invalid
one; tests/test_ingest.py holds a line for every rule.

Limits beyond the contract's types, each quarantined with its own reason instead of failing
the file: a line over 1 MiB, ids over 200 and texts over 1,000 characters (descriptions
10,000), token counts above 10^9 per call (no model has such a context; it also keeps every
cost estimate inside the stored decimal(18,10)), `cost_usd` of 10^8 or more (the
decimal(18,10) range), durations (`response_time_ms`, every `latency_ms`) over one day, queue
depths over 10^9, and non-finite numbers (`1e400`). Sums of bounded values stay finite, so no
output can show `inf`.

Parses that are strict on purpose (what a lenient parser would let through):
- JSON is RFC 8259: a trailing comma in an object or array makes the line "not JSON" (DuckDB's
  parser accepts it). `NaN` / `Infinity` in a field we read is "must be a number"; in a field we do
  not read it is ignored with the rest of that field, and a repeated key keeps its first value.
- `occurred_at` is RFC 3339 (`T`, `t` or a space between date and time, seconds required, an
  optional fraction, `Z` or a `+hh:mm` / `-hh:mm` offset up to 23:59; no offset is read as UTC,
  as the contract allows): hour 24, minute 60, offset +25:00 or a missing colon are
  "unparseable"; a leap second (:60) is read as the next second.
- `occurred_at` must fall in the accepted range (`AcceptedTimes`: from 2000-01-01 to one day
  after the load by default); outside it the line is quarantined with a reason naming the bound
  and its setting (the same text for every load, so the quarantine groups by reason).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING

from agent_analytics.sql import literal

if TYPE_CHECKING:
    from agent_analytics.settings import Settings

MAX_LINE_BYTES = 1_048_576
MAX_ID_CHARS = 200
MAX_TEXT_CHARS = 1_000
MAX_DESCRIPTION_CHARS = 10_000
MAX_TOKENS = 1_000_000_000
MAX_COST_USD = 100_000_000  # exclusive: decimal(18, 10) holds < 10^8
MAX_DURATION_MS = 86_400_000  # one day: response times and latencies
MAX_DEPTH = 1_000_000_000
EVENT_TYPES = ("message", "health_check", "queue_sample", "deployment")

# Top-level fields: name -> kind of value ("string", "number", "integer", "boolean", "array").
FIELDS: dict[str, str] = {
    "event_id": "string",
    "type": "string",
    "occurred_at": "string",
    "user_id": "string",
    "agent_id": "string",
    "agent_name": "string",
    "agent_version": "string",
    "conversation_id": "string",
    "status": "string",
    "error_type": "string",
    "response_time_ms": "number",
    "llm_calls": "array",
    "tool_calls": "array",
    "component": "string",
    "is_up": "boolean",
    "latency_ms": "number",
    "queue": "string",
    "depth": "integer",
    "description": "string",
}
CALL_FIELDS: dict[str, str] = {
    "provider": "string",
    "model": "string",
    "input_tokens": "integer",
    "output_tokens": "integer",
    "cache_read_tokens": "integer",
    "cost_usd": "number",
    "latency_ms": "number",
}
TOOL_FIELDS: dict[str, str] = {"name": "string", "latency_ms": "number", "status": "string"}
ITEM_FIELDS = {"llm_calls": CALL_FIELDS, "tool_calls": TOOL_FIELDS}

# RFC 3339 date-time (section 5.6), the offset optional (the contract reads none as UTC). Day
# numbers a month does not have (02-30) pass here and fail the cast.
_RFC3339 = (
    r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])[Tt ]([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d+)?"
    r"([Zz]|[+-]([01]\d|2[0-3]):[0-5]\d)?$"
)
# A trailing comma before a closing bracket (outside strings, which pass 2 strips first).
_TRAILING_COMMA = r",[ \t\r\n]*[}\]]"
_STRING_LITERAL = r'"([^"\\]|\\.)*"'


@dataclass(frozen=True)
class AcceptedTimes:
    """The range of `occurred_at` a load accepts: [earliest, load time + ahead)."""

    earliest: datetime = datetime(2000, 1, 1)
    ahead: timedelta = timedelta(days=1)

    @classmethod
    def of(cls, settings: Settings) -> AcceptedTimes:
        """The range AGENT_ANALYTICS_EVENT_TIME_MIN and _MAX_AHEAD_H set."""
        return cls(earliest=datetime.combine(settings.event_time_min, time()),
                   ahead=timedelta(hours=settings.event_time_max_ahead_hours))

    def bounds(self, now: datetime) -> tuple[datetime, datetime]:
        return self.earliest, now + self.ahead

    def reasons(self) -> tuple[str, str]:
        """The quarantine reasons for a time before the range and after it: the same text for
        every load under the same settings, so the quarantine groups by reason."""
        hours = self.ahead.total_seconds() / 3600
        return (f"occurred_at before {self.earliest:%Y-%m-%d %H:%M} UTC (AGENT_ANALYTICS_EVENT_TIME_MIN)",
                f"occurred_at more than {hours:g} h after the load (AGENT_ANALYTICS_EVENT_TIME_MAX_AHEAD_H)")


# The bounds reach the SQL as DuckDB variables, set by the load for each file.
EARLIEST_VAR = "accepted_occurred_at_min"
LATEST_VAR = "accepted_occurred_at_max"
TOO_EARLY_VAR = "accepted_too_early_reason"
TOO_LATE_VAR = "accepted_too_late_reason"


def _occurred_at(v: str) -> str:
    """RFC 3339 text -> UTC timestamp (no offset: read as UTC, the session time zone); else NULL.
    A leap second (:60) is the next second: DuckDB refuses second 60."""
    text = f"(case when substr({v}, 18, 2) = '60' then substr({v}, 1, 17) || '59' || substr({v}, 20) else {v} end)"
    parsed = f"try_cast(coalesce(try_cast({text} as timestamptz), try_cast(upper({text}) as timestamptz)) as timestamp)"
    leap = f"case when substr({v}, 18, 2) = '60' then interval 1 second else interval 0 second end"
    return f"case when regexp_full_match({v}, '{_RFC3339}') then {parsed} + {leap} end"


def _in_accepted_range(ts: str) -> str:
    return f"({ts} >= getvariable('{EARLIEST_VAR}') and {ts} < getvariable('{LATEST_VAR}'))"


def set_accepted_times(con, accepted: AcceptedTimes, now: datetime) -> None:
    """Hand the accepted range of `occurred_at` to the validation SQL of this connection."""
    earliest, latest = accepted.bounds(now)
    con.execute(f"set variable {EARLIEST_VAR} = cast(? as timestamp)", [earliest])
    con.execute(f"set variable {LATEST_VAR} = cast(? as timestamp)", [latest])
    too_early, too_late = accepted.reasons()
    con.execute(f"set variable {TOO_EARLY_VAR} = ?", [too_early])
    con.execute(f"set variable {TOO_LATE_VAR} = ?", [too_late])


class Sql(str):
    """A reason that is an SQL expression (computed per line), not literal text."""


# --------------------------------------------------------------------------- pass 1: parse + quick checks


# Arrays that most lines leave out are kept as JSON text by the line parse and typed on their
# own: then a NULL is exactly an absent (or null) field, while a typed list is also NULL for a
# value of the wrong kind, which only a search of the whole line for the key could rule out.
ARRAYS_TYPED_LATER = ("tool_calls",)


def _typed_spec(fields: dict[str, str], *, top: bool = True) -> str:
    parts = []
    for name, kind in fields.items():
        if kind == "string":
            parts.append(f'"{name}":"VARCHAR"')
        elif kind == "array" and not (top and name in ARRAYS_TYPED_LATER):
            parts.append(f'"{name}":{_list_spec(name)}')
        else:
            parts.append(f'"{name}":"JSON"')
    return "{" + ",".join(parts) + "}"


def _list_spec(field: str) -> str:
    return f"[{_typed_spec(ITEM_FIELDS[field], top=False)}]"


# First bytes of the text a non-string JSON value turns into when read as VARCHAR
# (digits and '-' for numbers, true/false, nan/NaN/inf/Infinity, objects, arrays).
_NON_STRING_STARTS = "(45, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 116, 102, 110, 78, 105, 73, 123, 91)"


# In a projection DuckDB evaluates both sides of AND / OR for every row, but the branches of a
# CASE only for the rows that reach them: the costly tests below sit in CASE branches.


def _either(condition: str, otherwise: str) -> str:
    """`condition or otherwise`, evaluating `otherwise` only where `condition` is not true."""
    return f"(case when {condition} then true else {otherwise} end)"


def _surely_string(v: str) -> str:
    """The VARCHAR value `v` can only have come from a JSON string."""
    return _either(
        f"ord({v}) not in {_NON_STRING_STARTS}",
        f"ord({v}) not in (123, 91) and {v} not in ('true', 'false') and try_cast({v} as double) is null",
    )


def _quick_string(v: str, max_chars: int, required: bool) -> str:
    # strlen (bytes) within bounds implies length (characters) within bounds
    core = f"strlen({v}) between 1 and {max_chars} and {_surely_string(v)}"
    return f"coalesce({core}, false)" if required else _either(f"{v} is null", core)


def _quick_number(f: str, required: bool = False, below: int | None = None, at_most: int | None = None) -> str:
    """A JSON number text starting with a digit (so >= 0), finite (and below `below`, at most `at_most`)."""
    value = f"try_cast(cast({f} as varchar) as double)"
    core = f"ord({f}) between 48 and 57 and isfinite({value})"
    if below is not None:
        core += f" and {value} < {below}"
    if at_most is not None:
        core += f" and {value} <= {at_most}"
    return f"coalesce({core}, false)" if required else _either(f"{f} is null", core)


def _quick_integer(f: str, required: bool, digits: int) -> str:
    """A plain integer text of at most `digits` digits (so below 10^digits)."""
    core = (
        f"ord({f}) between 48 and 57 and strlen({f}) <= {digits} "
        f"and not (contains({f}, '.') or contains({f}, 'e') or contains({f}, 'E'))"
    )
    return f"coalesce({core}, false)" if required else _either(f"{f} is null", core)


def _quick_array(field: str, item_ok: str) -> str:
    items_ok = f"coalesce(list_bool_and(list_transform({field}, lambda c: {item_ok})), true)"
    if field in ARRAYS_TYPED_LATER:  # t.<field> is the JSON text, `<field>` the typed list
        return f"case when t.{field} is null then true else {field} is not null and {items_ok} end"
    # a NULL list is an absent field only if the key does not occur in the line at all
    return f"case when {field} is null then not contains(line_text, '\"{field}\"') else {items_ok} end"


def _quick_ok() -> str:
    call_ok = " and ".join([
        "c is not null",
        _quick_string("c.provider", MAX_TEXT_CHARS, True),
        _quick_string("c.model", MAX_TEXT_CHARS, True),
        _quick_integer("c.input_tokens", True, len(str(MAX_TOKENS)) - 1),
        _quick_integer("c.output_tokens", True, len(str(MAX_TOKENS)) - 1),
        _quick_integer("c.cache_read_tokens", False, len(str(MAX_TOKENS)) - 1),
        _either("c.cache_read_tokens is null", "cast(cast(c.cache_read_tokens as varchar) as bigint)"
                " <= cast(cast(c.input_tokens as varchar) as bigint)"),
        _quick_number("c.cost_usd", below=MAX_COST_USD),
        _quick_number("c.latency_ms", at_most=MAX_DURATION_MS),
    ])
    tool_ok = " and ".join([
        "c is not null",
        _quick_string("c.name", MAX_TEXT_CHARS, True),
        _quick_number("c.latency_ms", at_most=MAX_DURATION_MS),
        _quick_string("c.status", MAX_ID_CHARS, False),
    ])
    message = " and ".join([
        _quick_string("t.user_id", MAX_TEXT_CHARS, True),
        _quick_string("t.agent_id", MAX_TEXT_CHARS, True),
        _quick_string("t.agent_name", MAX_TEXT_CHARS, False),
        _quick_string("t.agent_version", MAX_TEXT_CHARS, False),
        _quick_string("t.conversation_id", MAX_TEXT_CHARS, False),
        "t.status in ('ok', 'error')",
        _quick_string("t.error_type", MAX_TEXT_CHARS, False),
        _quick_number("t.response_time_ms", at_most=MAX_DURATION_MS),
        "(t.status = 'error' or t.response_time_ms is not null)",  # cheap: plain OR
        _quick_array("llm_calls", call_ok),
        _quick_array("tool_calls", tool_ok),
    ])
    health_check = " and ".join([
        _quick_string("t.component", MAX_TEXT_CHARS, False),
        "cast(t.is_up as varchar) in ('true', 'false')",
        _quick_number("t.latency_ms", at_most=MAX_DURATION_MS),
    ])
    queue_sample = " and ".join([
        _quick_string("t.queue", MAX_TEXT_CHARS, False),
        _quick_integer("t.depth", True, len(str(MAX_DEPTH)) - 1),
    ])
    deployment = " and ".join([
        _quick_string("t.agent_id", MAX_TEXT_CHARS, True),
        _quick_string("t.agent_version", MAX_TEXT_CHARS, True),
        _quick_string("t.description", MAX_DESCRIPTION_CHARS, False),
    ])
    return f"""coalesce(
            line_text is not null and t is not null and ord(line_text) = 123
            and not regexp_matches(line_text, '{_TRAILING_COMMA}')
            and {_quick_string("t.event_id", MAX_ID_CHARS, True)}
            and {_in_accepted_range("occurred_at")}
            and case t.type
                when 'message' then {message}
                when 'health_check' then {health_check}
                when 'queue_sample' then {queue_sample}
                when 'deployment' then {deployment}
                else false
            end, false)"""


def _array_column(field: str) -> str:
    if field in ARRAYS_TYPED_LATER:
        return f"json_transform(t.{field}, '{_list_spec(field)}') as {field}"
    return f"t.{field} as {field}"


# Output of pass 1 (the `parsed` table): typed values; numbers inside llm_calls / tool_calls
# stay JSON text until the raw layer is written. `reason` / `raw_line` are filled by pass 2.
PARSE_SQL = f"""
with parsed as (
    select
        line_number,
        line_text,
        case when line_bytes <= {MAX_LINE_BYTES} then try(json_transform(line_text, '{_typed_spec(FIELDS)}')) end as t
    from lines
),
timed as (
    select
        *,
        {_occurred_at("t.occurred_at")} as occurred_at,
        {", ".join(_array_column(field) for field in ITEM_FIELDS)}
    from parsed
)
select
    line_number,
    {_quick_ok()} as quick_ok,
    null::varchar as reason,
    null::varchar as raw_line,
    t.type as event_type,
    t.event_id,
    occurred_at,
    t.user_id,
    t.agent_id,
    t.agent_name,
    t.agent_version,
    t.conversation_id,
    t.status,
    t.error_type,
    try_cast(cast(t.response_time_ms as varchar) as double) as response_time_ms,
    t.component,
    cast(t.is_up as varchar) = 'true' as is_up,
    try_cast(cast(t.latency_ms as varchar) as double) as latency_ms,
    t.queue as queue_name,
    try_cast(cast(t.depth as varchar) as bigint) as depth,
    t.description,
    llm_calls,
    tool_calls,
    cast(coalesce(len(llm_calls), 0) as integer) as llm_call_count,
    cast(coalesce(len(tool_calls), 0) as integer) as tool_call_count
from timed
"""


# --------------------------------------------------------------------------- pass 2: every rule, with its reason


def _spec(fields: dict[str, str]) -> str:
    return "{" + ",".join(f'"{f}":"JSON"' for f in fields) + "}"


def _kind(fragment: str) -> str:
    """JSON kind of a raw fragment from its first byte: s, n, b, a, o; NULL when absent/null."""
    return (
        f"case when {fragment} is not null then case ord({fragment}) "
        f"when 34 then 's' when 123 then 'o' when 91 then 'a' when 116 then 'b' when 102 then 'b' when 45 then 'n' "
        f"else case when ord({fragment}) between 48 and 57 then 'n' else '?' end end end"
    )


def _is_integer_text(fragment: str) -> str:
    """A number fragment written without fraction or exponent (the parser keeps big ones as text)."""
    return f"not (contains({fragment}, '.') or contains({fragment}, 'e') or contains({fragment}, 'E'))"


def _string_rules(p: str, name: str, required: bool, max_chars: int) -> list[tuple[str, str]]:
    rules = []
    if required:
        rules.append((f"{p}k_{name} is null", f"missing field {name}"))
    rules += [
        (f"{p}k_{name} <> 's'", f"field {name} must be a string"),
        (f"length({p}v_{name}) = 0", f"field {name} is empty"),
        (f"length({p}v_{name}) > {max_chars}", f"oversized field {name} (over {max_chars} chars)"),
    ]
    return rules


def _number_rules(
    p: str, name: str, required: bool, maximum: int | None = None, *, at_most: int | None = None
) -> list[tuple[str, str]]:
    """Rules for a number (`maximum` None: a finite double, at most `at_most` when given) or an
    integer up to `maximum`."""
    rules = []
    if required:
        rules.append((f"{p}k_{name} is null", f"missing field {name}"))
    if maximum is None:
        rules += [
            (f"{p}k_{name} <> 'n'", f"field {name} must be a number"),
            (f"{p}v_{name} < 0", f"negative number in field {name}"),
            (f"not isfinite({p}v_{name})", f"field {name} out of range"),
        ]
        if at_most is not None:
            rules.append((f"{p}v_{name} > {at_most}", f"field {name} out of range (over {at_most})"))
    else:
        rules += [
            (f"{p}k_{name} <> 'n' or not {p}i_{name}", f"field {name} must be an integer"),
            (f"{p}v_{name} < 0", f"negative number in field {name}"),
            (f"{p}k_{name} = 'n' and ({p}v_{name} is null or {p}v_{name} > {maximum})",
             f"field {name} out of range (over {maximum})"),
        ]
    return rules


def _array_rules(p: str, name: str) -> list[tuple[str, str]]:
    return [(f"{p}k_{name} <> 'a'", f"field {name} must be an array")]


def _guard(condition: str, rules: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(f"{condition} and ({cond})", reason) for cond, reason in rules]


def _line_rules() -> list[tuple[str, str]]:
    msg, hc, qs, dep = (f"v_type = '{t}'" for t in EVENT_TYPES)
    ws = "' \t\r\n'"
    rules: list[tuple[str, str]] = [
        ("line_text is null", "not valid UTF-8"),
        (f"line_bytes > {MAX_LINE_BYTES}", f"oversized line (over {MAX_LINE_BYTES} bytes)"),
        (f"j is null and trim(line_text, {ws}) = ''", "empty line"),
        ("j is null and not json_valid(line_text)", "not JSON"),
        (f"j is null or (ord(line_text) <> 123 and ord(ltrim(line_text, {ws})) <> 123)", "not a JSON object"),
        (f"regexp_matches(regexp_replace(line_text, '{_STRING_LITERAL}', '\"\"', 'g'), '{_TRAILING_COMMA}')",
         "not JSON (trailing comma)"),
    ]
    rules += _string_rules("", "event_id", True, MAX_ID_CHARS)
    rules += _string_rules("", "type", True, MAX_ID_CHARS)
    rules.append((f"v_type not in {EVENT_TYPES}", Sql("'unknown type ' || v_type")))
    rules.append(("k_occurred_at is null", "missing field occurred_at"))
    rules.append(("k_occurred_at <> 's'", "field occurred_at must be a string"))
    rules.append(("occurred_at is null", "unparseable timestamp occurred_at"))
    rules.append((f"occurred_at < getvariable('{EARLIEST_VAR}')", Sql(f"getvariable('{TOO_EARLY_VAR}')")))
    rules.append((f"occurred_at >= getvariable('{LATEST_VAR}')", Sql(f"getvariable('{TOO_LATE_VAR}')")))
    rules += _guard(
        msg,
        _string_rules("", "user_id", True, MAX_TEXT_CHARS)
        + _string_rules("", "agent_id", True, MAX_TEXT_CHARS)
        + _string_rules("", "agent_name", False, MAX_TEXT_CHARS)
        + _string_rules("", "agent_version", False, MAX_TEXT_CHARS)
        + _string_rules("", "conversation_id", False, MAX_TEXT_CHARS)
        + _string_rules("", "status", True, MAX_ID_CHARS)
        + [("v_status not in ('ok', 'error')", "field status must be ok or error")]
        + _string_rules("", "error_type", False, MAX_TEXT_CHARS)
        + _number_rules("", "response_time_ms", False, at_most=MAX_DURATION_MS)
        + [("v_status = 'ok' and k_response_time_ms is null", "missing field response_time_ms (required when status is ok)")]
        + _array_rules("", "llm_calls")
        + _array_rules("", "tool_calls"),
    )
    rules += _guard(
        hc,
        _string_rules("", "component", False, MAX_TEXT_CHARS)
        + [("k_is_up is null", "missing field is_up"), ("k_is_up <> 'b'", "field is_up must be a boolean")]
        + _number_rules("", "latency_ms", False, at_most=MAX_DURATION_MS),
    )
    rules += _guard(qs, _string_rules("", "queue", False, MAX_TEXT_CHARS) + _number_rules("", "depth", True, MAX_DEPTH))
    rules += _guard(
        dep,
        _string_rules("", "agent_id", True, MAX_TEXT_CHARS)
        + _string_rules("", "agent_version", True, MAX_TEXT_CHARS)
        + _string_rules("", "description", False, MAX_DESCRIPTION_CHARS),
    )
    return rules


def _case(rules: list[tuple[str, str]]) -> str:
    branches = "\n".join(
        f"        when {cond} then {reason if isinstance(reason, Sql) else literal(reason)}" for cond, reason in rules
    )
    return f"case\n{branches}\n    end"


def _not_object(fields: dict[str, str], array: str) -> tuple[str, str]:
    """An item whose fields are all absent: an empty object, or not an object at all."""
    all_absent = " and ".join(f"x.k_{f} is null" for f in fields)
    return (f"{all_absent} and json_type({array}, '$[' || (i - 1) || ']') <> 'OBJECT'", "item must be an object")


def _call_rules() -> list[tuple[str, str]]:
    p = "x."
    rules = [_not_object(CALL_FIELDS, "j.llm_calls")]
    rules += _string_rules(p, "provider", True, MAX_TEXT_CHARS)
    rules += _string_rules(p, "model", True, MAX_TEXT_CHARS)
    rules += _number_rules(p, "input_tokens", True, MAX_TOKENS)
    rules += _number_rules(p, "output_tokens", True, MAX_TOKENS)
    rules += _number_rules(p, "cache_read_tokens", False, MAX_TOKENS)
    rules.append(("x.v_cache_read_tokens > x.v_input_tokens", "cache_read_tokens exceeds input_tokens"))
    rules += _number_rules(p, "cost_usd", False)
    rules.append((f"x.v_cost_usd >= {MAX_COST_USD}", f"field cost_usd out of range (over {MAX_COST_USD})"))
    rules += _number_rules(p, "latency_ms", False, at_most=MAX_DURATION_MS)
    return rules


def _tool_rules() -> list[tuple[str, str]]:
    p = "x."
    rules = [_not_object(TOOL_FIELDS, "j.tool_calls")]
    rules += _string_rules(p, "name", True, MAX_TEXT_CHARS)
    rules += _number_rules(p, "latency_ms", False, at_most=MAX_DURATION_MS)
    rules += _string_rules(p, "status", False, MAX_ID_CHARS)
    return rules


def _typed(frag: str, name: str, kind: str) -> list[tuple[str, str]]:
    """(alias, expression) pairs checking JSON fragment `frag`: its kind, typed value, integer flag."""
    parts = [(f"k_{name}", _kind(frag))]
    if kind == "string":
        parts.append((f"v_{name}", f"case when ord({frag}) = 34 then {frag} ->> '$' end"))
    elif kind == "number":
        parts.append((f"v_{name}", f"try_cast(cast({frag} as varchar) as double)"))
    elif kind == "integer":
        parts.append((f"i_{name}", _is_integer_text(frag)))
        parts.append((f"v_{name}", f"case when {_is_integer_text(frag)} then try_cast(cast({frag} as varchar) as hugeint) end"))
    elif kind == "boolean":
        parts.append((f"v_{name}", f"cast({frag} as varchar) = 'true'"))
    return parts


def _item_struct(fields: dict[str, str]) -> str:
    """Struct literal of kinds, values and integer flags for one item fragment struct `c`."""
    parts = [part for name, kind in fields.items() for part in _typed(f"c.{name}", name, kind)]
    return "{" + ", ".join(f"'{alias}': {expr}" for alias, expr in parts) + "}"


def _items(field: str, fields: dict[str, str], rules: list[tuple[str, str]]) -> str:
    """List of checked items of the array fragment `j.<field>`: struct(kinds, values, reason)."""
    spec = "[" + _spec(fields) + "]"
    checked = f"""list_transform(
            list_transform(json_transform(j.{field}, '{spec}'), lambda c: {_item_struct(fields)}),
            lambda x, i: struct_insert(x, reason := '{field}[' || i || ']: ' || ({_case(rules)})))"""
    return f"case when v_type = 'message' and k_{field} = 'a' then {checked} end"


def _line_columns() -> list[str]:
    return [f"{expr} as {alias}" for name, kind in FIELDS.items() for alias, expr in _typed(f"j.{name}", name, kind)]


def _first_reason(items: str) -> str:
    return f"list_filter(list_transform({items}, lambda x: x.reason), lambda r: r is not null)[1]"


_LINE_COLUMNS = ",\n        ".join(_line_columns())


def reason_sql(source: str) -> str:
    """(line_number, reason, raw_line) for the lines of relation `source` (same columns as `lines`)."""
    return f"""
with parsed as (
    select
        line_number,
        line_bytes,
        line_text,
        case when line_bytes <= {MAX_LINE_BYTES} then try(json_transform(line_text, '{_spec(FIELDS)}')) end as j
    from {source}
),
fields as (
    select
        line_number, line_bytes, line_text, j,
        {_LINE_COLUMNS}
    from parsed
),
timed as (
    select
        *,
        {_occurred_at("v_occurred_at")} as occurred_at,
        {_items("llm_calls", CALL_FIELDS, _call_rules())} as llm_items,
        {_items("tool_calls", TOOL_FIELDS, _tool_rules())} as tool_items
    from fields
),
judged as (
    select
        line_number,
        line_text,
        coalesce(
            {_case(_line_rules())},
            {_first_reason("llm_items")},
            {_first_reason("tool_items")}
        ) as reason
    from timed
)
select
    line_number,
    reason,
    case when reason is not null then rtrim(line_text, chr(13) || chr(10)) end as raw_line
from judged
"""
