"""Tests for ingestion.load: every input line ends in exactly one place (docs/events.md).

Each test writes a small hand-made JSON Lines file into tmp_path, ingests it and checks the
ledger, the quarantine (reason, line number, raw line), the duplicates and the Parquet raw
layer against values written down by hand next to the fixture lines.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import textwrap
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

import duckdb
import pytest

from ingestion import load
from ingestion.load import IngestError, ingest_paths

REPO = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------- helpers


def line(**fields) -> str:
    return json.dumps(fields, separators=(",", ":"))


def message(event_id: str, occurred_at: str = "2026-11-02T12:00:00Z", **extra) -> str:
    fields = {
        "event_id": event_id,
        "type": "message",
        "occurred_at": occurred_at,
        "user_id": "u-1",
        "agent_id": "support",
        "status": "ok",
        "response_time_ms": 1000,
    }
    fields.update(extra)
    return line(**{k: v for k, v in fields.items() if v is not DROP})


DROP = object()  # message(..., field=DROP) leaves the field out


def write_lines(path: Path, lines: list[str | bytes]) -> Path:
    path.write_bytes(b"".join((x if isinstance(x, bytes) else x.encode()) + b"\n" for x in lines))
    return path


def query(home, sql: str, params: list | None = None) -> list[tuple]:
    con = duckdb.connect(str(home.warehouse), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def raw(home, table: str, columns: str, order: str = "event_id") -> list[tuple]:
    con = duckdb.connect()
    try:
        con.execute("set TimeZone = 'UTC'")
        glob = home.raw / "batches" / "*" / f"{table}.parquet"
        return con.execute(f"select {columns} from read_parquet(?) order by {order}", [str(glob)]).fetchall()
    finally:
        con.close()


def batch_folders(home) -> list[str]:
    return sorted(p.name for p in (home.raw / "batches").iterdir() if p.name != "0-schema")


def counts(result) -> tuple[int, int, int, int]:
    return (result.lines, result.loaded, result.duplicates, result.quarantined)


# --------------------------------------------------------------------------- per-file accounting

BAD_UTF8 = b'{"event_id":"m-utf","type":"message","occurred_at":"2026-11-02T12:00:00Z","user_id":"u\xff"}'
LONG_ID = "e" * 201

# (line, expected quarantine reason or None when the line is valid)
ACCOUNTING = [
    (message("m-1", "2026-11-02T12:00:03.120Z", agent_name="Support Agent", agent_version="v2",
             conversation_id="c-1", response_time_ms=1840,
             llm_calls=[{"provider": "openai", "model": "gpt-4o-2024-08-06", "input_tokens": 612, "output_tokens": 143}],
             tool_calls=[{"name": "search_kb", "latency_ms": 120, "status": "ok"}]), None),
    (line(event_id="h-1", type="health_check", occurred_at="2026-11-02T12:00:00Z", component="api", is_up=True,
          latency_ms=41), None),
    (line(event_id="q-1", type="queue_sample", occurred_at="2026-11-02T12:01:00Z", queue="default", depth=3), None),
    (line(event_id="d-1", type="deployment", occurred_at="2026-11-02T09:00:00Z", agent_id="support",
          agent_version="v2", description="A/B test"), None),
    (message("m-2", status="error", response_time_ms=DROP, error_type="timeout"), None),
    ("this is not json", "not JSON"),
    ('{"event_id":"x-1","type":"message"', "not JSON"),
    ("[1,2,3]", "not a JSON object"),
    ('"just a string"', "not a JSON object"),
    ("null", "not a JSON object"),
    (message("m-3", user_id=DROP), "missing field user_id"),
    (line(type="queue_sample", occurred_at="2026-11-02T12:00:00Z", depth=1), "missing field event_id"),
    (message("m-4", user_id=17), "field user_id must be a string"),
    (line(event_id="h-2", type="health_check", occurred_at="2026-11-02T12:00:00Z", is_up="yes"),
     "field is_up must be a boolean"),
    (line(event_id="q-2", type="queue_sample", occurred_at="2026-11-02T12:00:00Z", depth=1.5),
     "field depth must be an integer"),
    (line(event_id="q-3", type="queue_sample", occurred_at="2026-11-02T12:00:00Z", depth=-1),
     "negative number in field depth"),
    (message("m-5", response_time_ms=-5), "negative number in field response_time_ms"),
    (message("m-6", response_time_ms="fast"), "field response_time_ms must be a number"),
    (message("m-7", status="maybe"), "field status must be ok or error"),
    (message("m-8", response_time_ms=DROP), "missing field response_time_ms (required when status is ok)"),
    (line(event_id="x-2", type="pageview", occurred_at="2026-11-02T12:00:00Z"), "unknown type pageview"),
    (line(event_id="x-3", type="deployment", occurred_at="yesterday", agent_id="a", agent_version="v1"),
     "unparseable timestamp occurred_at"),
    (line(event_id=LONG_ID, type="deployment", occurred_at="2026-11-02T12:00:00Z", agent_id="a", agent_version="v1"),
     "oversized field event_id (over 200 chars)"),
    (message("m-9", llm_calls=[{"provider": "openai", "model": "gpt-4o", "input_tokens": -1, "output_tokens": 5}]),
     "llm_calls[1]: negative number in field input_tokens"),
    (message("m-10", llm_calls=[{"provider": "openai", "model": "gpt-4o", "input_tokens": 1, "output_tokens": 5},
                                {"provider": "openai", "input_tokens": 1, "output_tokens": 5}]),
     "llm_calls[2]: missing field model"),
    (message("m-11", llm_calls=[7]), "llm_calls[1]: item must be an object"),
    (message("m-12", tool_calls=[{"latency_ms": 5}]), "tool_calls[1]: missing field name"),
    (message("m-13", llm_calls={"provider": "openai"}), "field llm_calls must be an array"),
    (message("m-15", tool_calls={"name": "search_kb"}), "field tool_calls must be an array"),
    (message("m-16", tool_calls="search_kb"), "field tool_calls must be an array"),
    ("", "empty line"),
    ("   ", "empty line"),
    (BAD_UTF8, "not valid UTF-8"),
    # Values that used to abort the whole file with a cast error:
    (line(event_id="q-4", type="queue_sample", occurred_at="2026-11-02T12:00:00Z", depth=18446744073709551615),
     "field depth out of range (over 1000000000)"),
    (message("m-14", llm_calls=[{"provider": "openai", "model": "gpt-4o", "input_tokens": 1, "output_tokens": 1,
                                 "cost_usd": 1e9}]),
     "llm_calls[1]: field cost_usd out of range (over 100000000)"),
]


def test_every_line_is_loaded_or_quarantined_with_its_reason(tmp_path, home):
    path = write_lines(tmp_path / "mixed.jsonl", [text for text, _ in ACCOUNTING])

    [result] = ingest_paths([path], home.warehouse, home.raw)

    bad = [(n, reason) for n, (_, reason) in enumerate(ACCOUNTING, start=1) if reason]
    assert counts(result) == (35, 5, 0, 30)
    assert result.lines == result.loaded + result.duplicates + result.quarantined
    assert len(bad) == 30
    assert not result.already_loaded
    expected = [
        (n, reason, (text if isinstance(text, str) else text.decode("utf-8", "backslashreplace")))
        for n, (text, reason) in enumerate(ACCOUNTING, start=1)
        if reason
    ]
    assert query(home, "select line_number, reason, raw_line from ingest.quarantine order by line_number") == expected
    assert expected[-3][2] == '{"event_id":"m-utf","type":"message","occurred_at":"2026-11-02T12:00:00Z","user_id":"u\\xff"}'
    assert query(home, "select file_name, lines, loaded, duplicates, quarantined, batch_id from ingest.ledger") == [
        ("mixed.jsonl", 35, 5, 0, 30, result.batch_id)
    ]
    assert query(home, "select count(*), count(distinct batch_id) from ingest.quarantine") == [(30, 1)]
    assert query(home, "select event_id from ingest.event_ids order by event_id") == [
        ("d-1",), ("h-1",), ("m-1",), ("m-2",), ("q-1",)
    ]


def test_loaded_records_land_in_the_raw_layer_with_their_values(tmp_path, home):
    path = write_lines(tmp_path / "mixed.jsonl", [text for text, _ in ACCOUNTING])
    [result] = ingest_paths([path], home.warehouse, home.raw)
    b = result.batch_id

    assert raw(home, "messages",
               "event_id, occurred_at, user_id, agent_id, agent_name, agent_version, conversation_id, status, "
               "error_type, response_time_ms, llm_call_count, tool_call_count, source_file, line_number, batch_id") == [
        ("m-1", datetime(2026, 11, 2, 12, 0, 3, 120000), "u-1", "support", "Support Agent", "v2", "c-1", "ok",
         None, 1840.0, 1, 1, "mixed.jsonl", 1, b),
        ("m-2", datetime(2026, 11, 2, 12, 0), "u-1", "support", None, None, None, "error",
         "timeout", None, 0, 0, "mixed.jsonl", 5, b),
    ]
    assert raw(home, "llm_calls", "event_id, call_index, provider, model, input_tokens, output_tokens, "
                                  "cache_read_tokens, cost_source") == [
        ("m-1", 1, "openai", "gpt-4o-2024-08-06", 612, 143, 0, "estimated")
    ]
    assert raw(home, "tool_calls", "event_id, call_index, tool_name, latency_ms, status") == [
        ("m-1", 1, "search_kb", 120.0, "ok")
    ]
    assert raw(home, "health_checks", "event_id, occurred_at, component, is_up, latency_ms") == [
        ("h-1", datetime(2026, 11, 2, 12, 0), "api", True, 41.0)
    ]
    assert raw(home, "queue_samples", "event_id, occurred_at, queue_name, depth") == [
        ("q-1", datetime(2026, 11, 2, 12, 1), "default", 3)
    ]
    assert raw(home, "deployments", "event_id, occurred_at, agent_id, agent_version, description") == [
        ("d-1", datetime(2026, 11, 2, 9, 0), "support", "v2", "A/B test")
    ]


UNUSUAL_BUT_VALID = [
    message("12345"),  # a numeric-looking id is still a string
    message("m-true", user_id="true", agent_id="false"),
    message("m-brackets", agent_name="{curly", conversation_id="[square"),
    message("m-numbers", user_id="1e5", agent_version="-1", error_type="NaN", status="error"),
    message("é" * 150),  # 150 characters (300 bytes): within the 200-character limit
    message("m-zero", response_time_ms=0, llm_calls=[], tool_calls=[]),
    message("m-nulls", agent_name=None, llm_calls=None, tool_calls=None),  # JSON null reads as absent
    message("m-escaped", user_id='quote " and \\ backslash', agent_name="tab\tnew\nline"),
]


def test_unusual_values_are_valid_and_kept_exactly(tmp_path, home):
    path = write_lines(tmp_path / "unusual.jsonl", UNUSUAL_BUT_VALID)
    [result] = ingest_paths([path], home.warehouse, home.raw)
    assert counts(result) == (8, 8, 0, 0)
    assert raw(home, "messages", "event_id, user_id, agent_id, agent_name, agent_version, conversation_id, "
                                 "error_type, response_time_ms, llm_call_count", order="line_number") == [
        ("12345", "u-1", "support", None, None, None, None, 1000.0, 0),
        ("m-true", "true", "false", None, None, None, None, 1000.0, 0),
        ("m-brackets", "u-1", "support", "{curly", None, "[square", None, 1000.0, 0),
        ("m-numbers", "1e5", "support", None, "-1", None, "NaN", 1000.0, 0),
        ("é" * 150, "u-1", "support", None, None, None, None, 1000.0, 0),
        ("m-zero", "u-1", "support", None, None, None, None, 0.0, 0),
        ("m-nulls", "u-1", "support", None, None, None, None, 1000.0, 0),
        ("m-escaped", 'quote " and \\ backslash', "support", "tab\tnew\nline", None, None, None, 1000.0, 0),
    ]


def test_raw_utf8_text_is_kept_exactly(tmp_path, home):
    """Non-ASCII characters written as UTF-8 bytes (not as \\u escapes) take the checked-text path."""
    raw_line = '{"event_id":"m-ü","type":"message","occurred_at":"2026-11-02T12:00:00Z","user_id":"Zoë 😀",' \
               '"agent_id":"support","status":"ok","response_time_ms":5}'
    path = write_lines(tmp_path / "utf8.jsonl", [raw_line.encode("utf-8"), message("é" * 150)])
    assert not path.read_bytes().isascii()
    [result] = ingest_paths([path], home.warehouse, home.raw)
    assert counts(result) == (2, 2, 0, 0)
    assert raw(home, "messages", "event_id, user_id", order="line_number") == [("m-ü", "Zoë 😀"), ("é" * 150, "u-1")]


@pytest.mark.parametrize("data", [
    b"", b"a", b"a\n", b"\n", b"\n\n\nx", b"one\ntwo\r\nthree", "líne\nzwéi\n".encode(),
    b"".join(b"x" * (i % 11) + b"\n" for i in range(60)) + b"tail",
])
def test_lines_are_split_the_same_whatever_the_scan_block(data, monkeypatch):
    """`split_lines` searches newlines block by block: lines crossing a block edge stay whole."""
    expected, start = [], 0  # a second, simple implementation: find each newline in turn
    while (end := data.find(b"\n", start)) >= 0:
        expected.append(data[start:end + 1])
        start = end + 1
    if start < len(data):
        expected.append(data[start:])
    for block in (1, 2, 3, 7, 64, 1 << 22):
        monkeypatch.setattr(load, "_SCAN_BLOCK", block)
        table = load.split_lines(data, first_line_number=5)
        assert table.column("line_blob").to_pylist() == expected, block
        assert table.column("line_number").to_pylist() == list(range(5, 5 + len(expected)))


def test_quick_checks_never_accept_what_the_full_rules_reject():
    """validate.py pass 1 (`quick_ok`) against pass 2 (every rule) on every fixture line."""
    from ingestion.validate import PARSE_SQL, AcceptedTimes, reason_sql, set_accepted_times
    from tests.test_poison_records import NUMBERS, STRICT

    texts = [text for text, _ in ACCOUNTING] + UNUSUAL_BUT_VALID + [text for text, _ in NUMBERS + STRICT]
    data = b"".join((t if isinstance(t, bytes) else t.encode()) + b"\n" for t in texts)
    con = duckdb.connect()
    try:
        con.execute("set TimeZone = 'UTC'")
        set_accepted_times(con, AcceptedTimes(), datetime(2026, 11, 29))
        load._lines_relation(con, load.prepare_lines(data, 1))
        quick = dict(con.execute(f"select line_number, quick_ok from ({PARSE_SQL})").fetchall())
        full = dict(con.execute(f"select line_number, reason from ({reason_sql('lines')})").fetchall())
    finally:
        con.close()
    expected = ([reason for _, reason in ACCOUNTING] + [None] * len(UNUSUAL_BUT_VALID)
                + [reason for _, reason in NUMBERS + STRICT])
    assert [full[n] for n in range(1, len(texts) + 1)] == expected
    assert [n for n in quick if quick[n] and full[n] is not None] == []
    # the ordinary valid lines take the quick path
    assert [quick[n] for n, (_, reason) in enumerate(ACCOUNTING, start=1) if reason is None] == [True] * 5


def test_defaults_and_windows_line_ends(tmp_path, home):
    path = tmp_path / "crlf.jsonl"
    path.write_bytes(
        b"\xef\xbb\xbf"  # a byte order mark before the first line is not part of the record
        + line(event_id="h-1", type="health_check", occurred_at="2026-11-02T12:00:00Z", is_up=False).encode() + b"\r\n"
        + line(event_id="q-1", type="queue_sample", occurred_at="2026-11-02T12:00:00Z", depth=0).encode() + b"\r\n"
        + b"oops\r\n"
    )
    [result] = ingest_paths([path], home.warehouse, home.raw)
    assert counts(result) == (3, 2, 0, 1)
    assert query(home, "select line_number, reason, raw_line from ingest.quarantine") == [(3, "not JSON", "oops")]
    assert raw(home, "health_checks", "event_id, component, is_up, latency_ms") == [("h-1", "default", False, None)]
    assert raw(home, "queue_samples", "event_id, queue_name, depth") == [("q-1", "default", 0)]


def test_estimates_use_the_rate_segment_of_the_call_and_skip_rates_that_do_not_fit(tmp_path, home, monkeypatch):
    """The rate table ingest builds from the price rows: a call takes the segment of its input
    size; a model whose rate does not fit the integer atto-dollar columns stays unpriced."""
    from decimal import Decimal

    from ingestion.pricing import RateRow

    def rates(provider, model, price_date):
        row = {"provider": provider, "model": model, "price_date": price_date}
        if model == "huge":  # $10 per input token: 10^19 atto-dollars, over the 64-bit range
            return (RateRow(**row, min_input_tokens=0, input_rate=Decimal(10), cache_read_rate=Decimal(10),
                            output_rate=Decimal(10)),)
        return (  # $1 / $2 per million tokens up to 1000 input tokens, then twice that
            RateRow(**row, min_input_tokens=0, input_rate=Decimal("0.000001"), cache_read_rate=Decimal("0.0000005"),
                    output_rate=Decimal("0.000002")),
            RateRow(**row, min_input_tokens=1001, input_rate=Decimal("0.000002"), cache_read_rate=Decimal("0.000001"),
                    output_rate=Decimal("0.000004"), request_rate=Decimal("0.01")),
        )

    monkeypatch.setattr(load, "_rates", rates)
    calls = [
        {"provider": "acme", "model": "cheap", "input_tokens": 1000, "output_tokens": 500},
        {"provider": "acme", "model": "cheap", "input_tokens": 2000, "output_tokens": 500, "cache_read_tokens": 1000},
        {"provider": "acme", "model": "huge", "input_tokens": 10, "output_tokens": 5},
    ]
    path = write_lines(tmp_path / "rates.jsonl", [message("m-1", llm_calls=calls)])
    ingest_paths([path], home.warehouse, home.raw)
    assert raw(home, "llm_calls", "call_index, model, cost_usd, cost_source", order="call_index") == [
        # 1000 * $0.000001 + 500 * $0.000002
        (1, "cheap", Decimal("0.0020000000"), "estimated"),
        # second segment: 1000 uncached * $0.000002 + 1000 cached * $0.000001 + 500 * $0.000004 + $0.01
        (2, "cheap", Decimal("0.0150000000"), "estimated"),
        (3, "huge", None, "unpriced"),
    ]


# --------------------------------------------------------------------------- duplicates


def test_duplicates_inside_a_file_and_across_files(tmp_path, home):
    first = write_lines(tmp_path / "a.jsonl", [
        message("m-1"),
        message("m-2"),
        message("m-1", user_id="u-other"),  # same id again: a duplicate, the first copy wins
        message("m-3", response_time_ms=-1),  # quarantined ...
        message("m-3"),  # ... so this copy is the first valid one and is loaded
    ])
    second = write_lines(tmp_path / "b.jsonl", [
        message("m-2"),  # loaded by a.jsonl
        message("m-4"),
        message("m-4"),
        message("m-1"),
    ])

    a, b = ingest_paths([first, second], home.warehouse, home.raw)

    assert counts(a) == (5, 3, 1, 1)
    assert counts(b) == (4, 1, 3, 0)
    assert query(home, "select batch_id, file_name, line_number, event_id, first_batch_id from ingest.duplicates "
                       "order by batch_id = ?, line_number", [b.batch_id]) == [
        (a.batch_id, "a.jsonl", 3, "m-1", a.batch_id),
        (b.batch_id, "b.jsonl", 1, "m-2", a.batch_id),
        (b.batch_id, "b.jsonl", 3, "m-4", b.batch_id),
        (b.batch_id, "b.jsonl", 4, "m-1", a.batch_id),
    ]
    assert raw(home, "messages", "event_id, user_id, line_number, batch_id") == [
        ("m-1", "u-1", 1, a.batch_id),
        ("m-2", "u-1", 2, a.batch_id),
        ("m-3", "u-1", 5, a.batch_id),
        ("m-4", "u-1", 2, b.batch_id),
    ]
    assert query(home, "select event_id, batch_id from ingest.event_ids order by event_id") == [
        ("m-1", a.batch_id), ("m-2", a.batch_id), ("m-3", a.batch_id), ("m-4", b.batch_id)
    ]


def tamper(home, *statements: str) -> None:
    con = duckdb.connect(str(home.warehouse))
    try:
        for statement in statements:
            con.execute(statement)
    finally:
        con.close()


def test_a_hash_collision_with_an_earlier_id_is_not_a_duplicate(tmp_path, home):
    a = ingest_paths([write_lines(tmp_path / "a.jsonl", [message("m-1"), message("m-2")])], home.warehouse, home.raw)[0]
    # The duplicate check matches stored 64-bit hashes first: make m-2's look like m-9's.
    tamper(home, "update ingest.event_ids set id_hash = hash('m-9') where event_id = 'm-2'")

    [b] = ingest_paths([write_lines(tmp_path / "b.jsonl", [message("m-9"), message("m-1")])], home.warehouse, home.raw)

    assert counts(b) == (2, 1, 1, 0)  # m-9 is new although its hash matched; m-1 was loaded by a
    assert query(home, "select line_number, event_id, first_batch_id from ingest.duplicates") == [(2, "m-1", a.batch_id)]
    assert raw(home, "messages", "event_id, batch_id") == [("m-1", a.batch_id), ("m-2", a.batch_id), ("m-9", b.batch_id)]


@pytest.mark.parametrize("change", [
    # a warehouse written before event_ids had its hash column
    ("alter table ingest.event_ids drop column id_hash", "drop table ingest.id_hash_probe"),
    # hashes written by a DuckDB whose hash() differs from this one's
    ("update ingest.event_ids set id_hash = 0", "update ingest.id_hash_probe set probe = 'another hash()'"),
])
def test_stored_id_hashes_are_filled_again_when_missing_or_from_another_hash(tmp_path, home, change):
    a = ingest_paths([write_lines(tmp_path / "a.jsonl", [message("m-1"), message("m-2")])], home.warehouse, home.raw)[0]
    tamper(home, *change)

    [b] = ingest_paths([write_lines(tmp_path / "b.jsonl", [message("m-2"), message("m-3")])], home.warehouse, home.raw)

    assert counts(b) == (2, 1, 1, 0)
    assert query(home, "select event_id, first_batch_id from ingest.duplicates") == [("m-2", a.batch_id)]
    assert query(home, "select event_id, id_hash = hash(event_id) from ingest.event_ids order by event_id") == [
        ("m-1", True), ("m-2", True), ("m-3", True)
    ]


def test_reingesting_the_same_content_changes_nothing(tmp_path, home, monkeypatch):
    path = write_lines(tmp_path / "day.jsonl", [message("m-1"), message("m-2"), "bad line", message("m-1")])
    [first] = ingest_paths([path], home.warehouse, home.raw)
    assert counts(first) == (4, 2, 1, 1)

    def state():
        return (
            query(home, "select * from ingest.ledger"),
            query(home, "select * from ingest.quarantine"),
            query(home, "select * from ingest.duplicates"),
            query(home, "select * from ingest.event_ids order by event_id"),
            batch_folders(home),
        )

    before = state()
    copy = tmp_path / "copy-with-another-name.jsonl"
    copy.write_bytes(path.read_bytes())
    validated = []
    parse = load._parse
    monkeypatch.setattr(load, "_parse", lambda con, lines: validated.append(lines.count) or parse(con, lines))

    again, renamed = ingest_paths([path, copy], home.warehouse, home.raw)

    assert again.already_loaded and renamed.already_loaded
    assert (again.file_name, renamed.file_name) == ("day.jsonl", "copy-with-another-name.jsonl")
    assert again.batch_id == renamed.batch_id == first.batch_id
    assert counts(again) == counts(renamed) == counts(first)
    # the file under its loaded name is skipped before validation; the renamed copy is found
    # by its content hash once validated
    assert validated == [4]
    assert state() == before
    assert len(before[4]) == 1


# --------------------------------------------------------------------------- timestamps and formats


def test_timestamps_are_stored_in_utc_and_late_events_keep_their_time(tmp_path, home):
    path = write_lines(tmp_path / "times.jsonl", [
        message("z", "2026-11-05T10:00:00Z"),
        message("offset", "2026-11-05T10:00:00+02:00"),
        message("negative-offset", "2026-11-05T10:00:00.250-05:30"),
        message("no-offset", "2026-11-05T10:00:00"),
        message("lower-case", "2026-11-05t10:00:00z"),
        message("late", "2026-11-01T23:59:59.5Z"),  # arrives with 11-05 data, occurred four days before
    ])
    [result] = ingest_paths([path], home.warehouse, home.raw)
    assert counts(result) == (6, 6, 0, 0)
    assert raw(home, "messages", "event_id, occurred_at", order="line_number") == [
        ("z", datetime(2026, 11, 5, 10, 0)),
        ("offset", datetime(2026, 11, 5, 8, 0)),
        ("negative-offset", datetime(2026, 11, 5, 15, 30, 0, 250000)),
        ("no-offset", datetime(2026, 11, 5, 10, 0)),
        ("lower-case", datetime(2026, 11, 5, 10, 0)),
        ("late", datetime(2026, 11, 1, 23, 59, 59, 500000)),
    ]


def test_gzip_loads_the_same_as_plain(tmp_path):
    lines = [message("m-1"), "not json", message("m-2", "2026-11-03T00:00:00+01:00"), message("m-1")]
    plain = write_lines(tmp_path / "events.jsonl", lines)
    packed = tmp_path / "events.jsonl.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    results = {}
    for name, path in (("plain", plain), ("gz", packed)):
        home = SimpleNamespace(warehouse=tmp_path / name / "w.duckdb", raw=tmp_path / name / "raw")
        [results[name]] = ingest_paths([path], home.warehouse, home.raw)
        results[name + "_rows"] = raw(home, "messages", "event_id, occurred_at, line_number")
        results[name + "_quarantine"] = query(home, "select line_number, reason, raw_line from ingest.quarantine")
    assert counts(results["gz"]) == counts(results["plain"]) == (4, 2, 1, 1)
    assert results["gz"].content_hash == results["plain"].content_hash
    assert results["gz_rows"] == results["plain_rows"] == [
        ("m-1", datetime(2026, 11, 2, 12, 0), 1),
        ("m-2", datetime(2026, 11, 2, 23, 0), 3),
    ]
    assert results["gz_quarantine"] == results["plain_quarantine"] == [(2, "not JSON", "not json")]


def test_a_file_read_in_many_chunks_gives_the_same_result(tmp_path, home, monkeypatch):
    lines = [message(f"m-{i % 7}", user_id="u-" + "x" * (i * 3)) for i in range(20)] + ["{broken", message("m-99")]
    path = write_lines(tmp_path / "chunks.jsonl", lines)
    monkeypatch.setattr(load, "CHUNK_BYTES", 150)  # several lines per chunk, some lines longer than a chunk
    assert len(path.read_bytes()) > 10 * 150

    [result] = ingest_paths([path], home.warehouse, home.raw)

    assert counts(result) == (22, 8, 13, 1)
    assert query(home, "select line_number, reason from ingest.quarantine") == [(21, "not JSON")]
    assert query(home, "select list(line_number order by line_number) from ingest.duplicates") == [
        ([8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20],)
    ]
    assert raw(home, "messages", "event_id, line_number") == [
        ("m-0", 1), ("m-1", 2), ("m-2", 3), ("m-3", 4), ("m-4", 5), ("m-5", 6), ("m-6", 7), ("m-99", 22)
    ]
    [again] = ingest_paths([path], home.warehouse, home.raw)
    assert again.already_loaded and again.batch_id == result.batch_id


def test_empty_file(tmp_path, home):
    path = tmp_path / "empty.jsonl"
    path.write_bytes(b"")
    [result] = ingest_paths([path], home.warehouse, home.raw)
    assert counts(result) == (0, 0, 0, 0)
    assert query(home, "select lines from ingest.ledger") == [(0,)]


def test_missing_path_is_a_clear_error(tmp_path, home):
    missing = tmp_path / "nope.jsonl"
    with pytest.raises(IngestError) as error:
        ingest_paths([missing], home.warehouse, home.raw)
    assert str(error.value) == f"{missing}: no such file or folder"
    assert not home.warehouse.exists()


def test_unreadable_gzip_is_a_clear_error(tmp_path, home):
    path = tmp_path / "broken.jsonl.gz"
    packed = gzip.compress("".join(message(f"m-{i}") + "\n" for i in range(200)).encode())
    path.write_bytes(packed[: len(packed) // 2])  # cut off mid-stream
    with pytest.raises(IngestError, match=r"broken\.jsonl\.gz: not a readable gzip file"):
        ingest_paths([path], home.warehouse, home.raw)
    assert query(home, "select count(*) from ingest.ledger") == [(0,)]


# --------------------------------------------------------------------------- failures and crashes


class InjectedFailure(OSError):
    """A failure of the machine (disk, process) in the middle of a load."""


# Where a load is made to fail: after the batch is written to raw/_tmp/ (its publish fails),
# and after it is published to raw/batches/ (the commit of its ledger row fails).
FAIL_POINTS = {"after_raw_write": (load.raw_layer, "publish"), "after_publish": (load, "_commit")}


@pytest.mark.parametrize("fail_at", FAIL_POINTS)
def test_injected_failure_leaves_nothing_and_a_rerun_loads_everything(tmp_path, home, fail_at, monkeypatch):
    path = write_lines(tmp_path / "day.jsonl", [message("m-1"), message("m-2"), "bad", message("m-1")])

    def fail(*args, **kwargs):
        staged, published = list((home.raw / "_tmp").iterdir()), batch_folders(home)
        assert (len(staged), len(published)) == ((1, 0) if fail_at == "after_raw_write" else (0, 1))
        raise InjectedFailure(fail_at)

    with monkeypatch.context() as patch:
        patch.setattr(*FAIL_POINTS[fail_at], fail)
        with pytest.raises(InjectedFailure):
            ingest_paths([path], home.warehouse, home.raw)

    assert batch_folders(home) == []
    assert list((home.raw / "_tmp").iterdir()) == []
    for table in ("ledger", "quarantine", "duplicates", "event_ids"):
        assert query(home, f"select count(*) from ingest.{table}") == [(0,)]

    [result] = ingest_paths([path], home.warehouse, home.raw)
    assert counts(result) == (4, 2, 1, 1)
    assert batch_folders(home) == [result.batch_id]
    assert raw(home, "messages", "event_id, line_number") == [("m-1", 1), ("m-2", 2)]


CRASH_AFTER_PUBLISH = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    from ingestion import load

    def crash(*args, **kwargs):
        os._exit(1)  # the process dies between the rename into batches/ and the ledger commit

    load._commit = crash
    load.ingest_paths([Path(sys.argv[1])], Path(sys.argv[2]), Path(sys.argv[3]))
    """
)


def test_hard_crash_leaves_an_orphan_that_the_next_load_removes(tmp_path, home):
    path = write_lines(tmp_path / "day.jsonl", [message("m-1"), message("m-2"), "bad"])
    crashed = subprocess.run(
        [sys.executable, "-c", CRASH_AFTER_PUBLISH, str(path), str(home.warehouse), str(home.raw)],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert crashed.returncode == 1, crashed.stderr
    [orphan] = batch_folders(home)
    assert (home.raw / "batches" / orphan / "messages.parquet").exists()
    assert query(home, "select count(*) from ingest.ledger") == [(0,)]

    [result] = ingest_paths([path], home.warehouse, home.raw)

    assert not result.already_loaded and counts(result) == (3, 2, 0, 1)
    assert batch_folders(home) == [result.batch_id] and result.batch_id != orphan
    assert raw(home, "messages", "event_id, batch_id") == [("m-1", result.batch_id), ("m-2", result.batch_id)]
    assert query(home, "select count(*) from ingest.quarantine") == [(1,)]


INGEST_ONE = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from ingestion.load import ingest_paths

    [r] = ingest_paths([Path(sys.argv[1])], Path(sys.argv[2]), Path(sys.argv[3]))
    print(r.lines, r.loaded, r.duplicates, r.quarantined)
    """
)


def test_two_processes_ingesting_at_once_are_serialized(tmp_path, home):
    a = write_lines(tmp_path / "a.jsonl", [message(f"a-{i}") for i in range(500)] + ["bad"])
    b = write_lines(tmp_path / "b.jsonl", [message(f"b-{i}") for i in range(300)] + [message("b-7")])
    procs = [
        subprocess.Popen([sys.executable, "-c", INGEST_ONE, str(p), str(home.warehouse), str(home.raw)],
                         cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for p in (a, b)
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in outputs]

    assert [out.split() for out, _ in outputs] == [["501", "500", "0", "1"], ["301", "300", "1", "0"]]
    assert query(home, "select file_name, lines, loaded, duplicates, quarantined from ingest.ledger order by 1") == [
        ("a.jsonl", 501, 500, 0, 1),
        ("b.jsonl", 301, 300, 1, 0),
    ]
    assert query(home, "select count(*), count(distinct event_id) from ingest.event_ids") == [(800, 800)]
    assert raw(home, "messages", "count(*), count(distinct event_id), count(distinct batch_id)", order="1") == [
        (800, 800, 2)
    ]


def test_open_warehouse_waits_for_the_lock(tmp_path, home):
    """A second process blocks on the lock file instead of failing on DuckDB's own lock."""
    from agent_analytics.warehouse import open_warehouse

    path = write_lines(tmp_path / "a.jsonl", [message("m-1")])
    with open_warehouse(home.warehouse):
        proc = subprocess.Popen([sys.executable, "-c", INGEST_ONE, str(path), str(home.warehouse), str(home.raw)],
                                cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        with pytest.raises(subprocess.TimeoutExpired):
            proc.wait(timeout=2)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert out.split() == ["1", "1", "0", "0"]

