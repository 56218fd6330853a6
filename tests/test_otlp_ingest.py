"""OpenTelemetry traces in OTLP/JSON files: every span loaded, duplicate or quarantined, and
each trace becomes the message the equivalent native event would be.

The oracle for the mapping is the native path itself: a trace and the native `message` event
written by hand from the same facts must give the same raw rows (message, LLM calls with
their prices, tool calls). Arrival orders, orphans, rules and duplicates are checked against
counts written down by hand.
"""

from __future__ import annotations

import gzip
import itertools
import json
import os
import re
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from ingestion.load import ingest_paths
from ingestion.traces import quarantine_orphans
from tests.otlp_fixtures import b64, lines, request, span, span_id, trace_id

T1 = trace_id(0x5B8EFFF798038103D269B633813FC60C)
ROOT, CHAT1, CHAT2, TOOL = span_id(0xA1), span_id(0xA2), span_id(0xA3), span_id(0xA4)

ROOT_ATTRS = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.id": "support", "gen_ai.agent.name": "Support Agent",
              "gen_ai.agent.version": "v7", "gen_ai.conversation.id": "c-9", "user.id": "u-17"}
# Current attribute names.
CHAT1_ATTRS = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o",
               "gen_ai.response.model": "gpt-4o-2024-08-06", "gen_ai.usage.input_tokens": 612,
               "gen_ai.usage.output_tokens": 143, "gen_ai.usage.cache_read.input_tokens": 100}
# Deprecated aliases, and an OpenTelemetry provider name the pricing maps.
CHAT2_ATTRS = {"gen_ai.operation.name": "generate_content", "gen_ai.system": "gcp.gemini",
               "gen_ai.request.model": "gemini-1.5-flash", "gen_ai.usage.prompt_tokens": 2000,
               "gen_ai.usage.completion_tokens": 50}
TOOL_ATTRS = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "search"}


def root_span(**kw):
    return span(T1, ROOT, start_ms=0, duration_ms=1840, attributes=ROOT_ATTRS, name="invoke_agent support", **kw)


def chat1():
    return span(T1, CHAT1, ROOT, start_ms=10, duration_ms=900, attributes=CHAT1_ATTRS, name="chat gpt-4o")


def chat2():
    return span(T1, CHAT2, ROOT, start_ms=1000, duration_ms=600, attributes=CHAT2_ATTRS, name="generate_content")


def tool():
    return span(T1, TOOL, ROOT, start_ms=920, duration_ms=70, attributes=TOOL_ATTRS, error=True, name="execute_tool")


NATIVE = {
    "event_id": T1, "type": "message", "occurred_at": "2026-11-02T12:00:00Z", "user_id": "u-17", "agent_id": "support",
    "agent_name": "Support Agent", "agent_version": "v7", "conversation_id": "c-9", "status": "ok",
    "response_time_ms": 1840,
    "llm_calls": [
        {"provider": "openai", "model": "gpt-4o-2024-08-06", "input_tokens": 612, "output_tokens": 143,
         "cache_read_tokens": 100, "latency_ms": 900},
        {"provider": "gcp.gemini", "model": "gemini-1.5-flash", "input_tokens": 2000, "output_tokens": 50,
         "latency_ms": 600},
    ],
    "tool_calls": [{"name": "search", "latency_ms": 70, "status": "error"}],
}

MESSAGE_COLUMNS = ("event_id, occurred_at, user_id, agent_id, agent_name, agent_version, conversation_id, status, "
                   "error_type, response_time_ms, llm_call_count, tool_call_count")
CALL_COLUMNS = ("event_id, call_index, occurred_at, provider, provider_raw, model, input_tokens, output_tokens, "
                "cache_read_tokens, reported_cost_usd, estimated_cost_usd, cost_usd, cost_source, latency_ms")
TOOL_COLUMNS = "event_id, call_index, occurred_at, tool_name, latency_ms, status"


def load(tmp_path: Path, name: str, text: str, home: str = "home") -> list:
    path = tmp_path / name
    path.write_text(text)
    return ingest_paths([path], tmp_path / home / "warehouse.duckdb", tmp_path / home / "raw")


def query(tmp_path: Path, sql: str, home: str = "home") -> list[tuple]:
    con = duckdb.connect(str(tmp_path / home / "warehouse.duckdb"), read_only=True)
    try:
        raw = str(tmp_path / home / "raw" / "batches")
        for table in ("messages", "llm_calls", "tool_calls"):
            con.execute(f"create temp view {table} as select * from read_parquet('{raw}/*/{table}.parquet', "
                        "union_by_name = true)")
            # What the staging models keep: each message's latest revision.
            con.execute(f"""create temp view latest_{table} as select t.* from {table} t
                where coalesce(t.revision, 0) = (select max(coalesce(m.revision, 0)) from messages m
                                                 where m.event_id = t.event_id)""")
        return con.execute(sql).fetchall()
    finally:
        con.close()


def rows(tmp_path: Path, home: str = "home") -> dict[str, list[tuple]]:
    return {
        "messages": query(tmp_path, f"select {MESSAGE_COLUMNS} from latest_messages order by all", home),
        "llm_calls": query(tmp_path, f"select {CALL_COLUMNS} from latest_llm_calls order by all", home),
        "tool_calls": query(tmp_path, f"select {TOOL_COLUMNS} from latest_tool_calls order by all", home),
    }


@pytest.fixture
def native_rows(tmp_path):
    load(tmp_path, "native.jsonl", json.dumps(NATIVE) + "\n", home="native")
    return rows(tmp_path, "native")


def test_a_trace_is_the_native_message_of_the_same_facts(tmp_path, native_rows):
    [result] = load(tmp_path, "traces.jsonl", lines(request(root_span(), chat1(), tool(), chat2())))
    assert (result.record_type, result.lines, result.records, result.loaded, result.duplicates, result.quarantined,
            result.traces) == ("span", 1, 4, 4, 0, 0, 1)
    assert rows(tmp_path) == native_rows
    # The prices are real: the first call is estimated from genai-prices, cached tokens apart.
    assert native_rows["llm_calls"][0][12] == "estimated" and native_rows["llm_calls"][0][11] > 0
    assert native_rows["llm_calls"][1][3] == "google"


@pytest.mark.parametrize("variant", ["base64 ids", "int64 as numbers", "status as enum name", "agent from service.name",
                                     "no user"])
def test_attribute_variants(tmp_path, variant):
    root, chat = root_span(), chat1()
    expected_user, expected_agent, expected_status = "u-17", "support", "ok"
    if variant == "base64 ids":
        for s in (root, chat):
            s["traceId"], s["spanId"] = b64(s["traceId"]), b64(s["spanId"])
        chat["parentSpanId"] = b64(chat["parentSpanId"])
    elif variant == "int64 as numbers":
        for s in (root, chat):
            s["startTimeUnixNano"], s["endTimeUnixNano"] = int(s["startTimeUnixNano"]), int(s["endTimeUnixNano"])
        for a in chat["attributes"]:
            if "intValue" in a["value"]:
                a["value"]["intValue"] = int(a["value"]["intValue"])
    elif variant == "status as enum name":
        root["status"] = {"code": "STATUS_CODE_ERROR", "message": "boom"}
        root["attributes"].append({"key": "error.type", "value": {"stringValue": "timeout"}})
        expected_status = "error"
    elif variant == "agent from service.name":
        root["attributes"] = [a for a in root["attributes"] if not a["key"].startswith("gen_ai.agent")]
        expected_agent = "support-service"
    elif variant == "no user":
        root["attributes"] = [a for a in root["attributes"] if a["key"] != "user.id"]
        expected_user = ""
    [result] = load(tmp_path, "t.jsonl", lines(request(root, chat)))
    assert (result.loaded, result.quarantined) == (2, 0)
    got = rows(tmp_path)
    [(event_id, occurred_at, user, agent, *_, status, error_type, response_ms, calls, tools)] = got["messages"]
    assert (event_id, str(occurred_at), user, agent, status, response_ms, calls, tools) == (
        T1, "2026-11-02 12:00:00", expected_user, expected_agent, expected_status, 1840.0, 1, 0)
    assert error_type == ("timeout" if expected_status == "error" else None)
    [call] = got["llm_calls"]
    assert call[3:9] == ("openai", "openai", "gpt-4o-2024-08-06", 612, 143, 100)


def test_each_arrival_order_of_a_split_trace_gives_the_same_message(tmp_path, native_rows):
    pieces = {"root": root_span(), "chat1": chat1(), "tool": tool(), "chat2": chat2()}
    for n, order in enumerate(itertools.permutations(pieces)):
        home = f"order{n}"
        for i, piece in enumerate(order):
            load(tmp_path, f"{home}-{i}.jsonl", lines(request(pieces[piece])), home=home)
        assert rows(tmp_path, home) == native_rows, order
        # One revision per batch from the root's on that brought a call (every batch here).
        revisions = query(tmp_path, "select max(revision) from messages", home)[0][0]
        assert revisions == 3 - order.index("root"), order
        assert query(tmp_path, "select count(*) from ingest.otel_spans where state <> 'assembled'", home) == [(0,)]


def test_a_late_span_without_a_call_writes_no_new_revision(tmp_path):
    load(tmp_path, "a.jsonl", lines(request(root_span(), chat1())))
    http = span(T1, span_id(0xB1), CHAT1, start_ms=20, duration_ms=5, attributes={"http.method": "POST"})
    [result] = load(tmp_path, "b.jsonl", lines(request(http)))
    assert (result.loaded, result.traces) == (1, 1)
    assert query(tmp_path, "select count(*), max(revision) from messages") == [(1, 0)]
    assert query(tmp_path, f"select state from ingest.otel_spans where span_id = '{span_id(0xB1)}'") == [("assembled",)]


def test_orphan_spans_are_quarantined_after_the_setting(tmp_path):
    load(tmp_path, "children.jsonl", lines(request(chat1()), request(tool())))
    con = duckdb.connect(str(tmp_path / "home" / "warehouse.duckdb"))
    try:
        now = datetime.utcnow()
        assert quarantine_orphans(con, 3600, now) == 0  # still waiting for the root
        assert quarantine_orphans(con, 3600, now + timedelta(hours=1, seconds=1)) == 2
        quarantined = con.execute(
            "select file_name, line_number, reason, raw_line from ingest.quarantine order by line_number").fetchall()
        assert [(f, n, r) for f, n, r, _ in quarantined] == [("children.jsonl", 1, "orphan span"),
                                                            ("children.jsonl", 2, "orphan span")]
        assert json.loads(quarantined[0][3])["spanId"] == CHAT1
        # The file's ledger row moves them from loaded to quarantined: its records still add up.
        assert con.execute("select records, loaded, duplicates, quarantined from ingest.ledger").fetchall() == [(2, 0, 0, 2)]
        assert quarantine_orphans(con, 3600, now + timedelta(hours=5)) == 0  # never twice
    finally:
        con.close()
    # The root arrives after all: a message without the quarantined calls, which are not counted twice.
    load(tmp_path, "root.jsonl", lines(request(root_span())))
    got = rows(tmp_path)
    assert [m[10:12] for m in got["messages"]] == [(0, 0)] and got["llm_calls"] == []


SPAN_RULES = [
    ({"traceId": "xyz"}, "traceId must be 16 bytes: 32 hex digits (or base64), not all zero"),
    ({"traceId": "0" * 32}, "traceId must be 16 bytes: 32 hex digits (or base64), not all zero"),
    ({"spanId": "abc"}, "spanId must be 8 bytes: 16 hex digits (or base64), not all zero"),
    ({"parentSpanId": "12"}, "parentSpanId must be 8 bytes: 16 hex digits (or base64), not all zero"),
    ({"startTimeUnixNano": "soon"}, "startTimeUnixNano must be an integer (nanoseconds since 1970)"),
    ({"startTimeUnixNano": None}, "startTimeUnixNano must be an integer (nanoseconds since 1970)"),
    ({"endTimeUnixNano": "1"}, "endTimeUnixNano must be an integer, not before startTimeUnixNano"),
    ({"attributes": {"a": 1}}, "attributes must be an array of key/value"),
    ({"attributes": [{"key": "gen_ai.usage.input_tokens", "value": {"intValue": "-5"}}]},
     "gen_ai.usage.input_tokens must be an integer from 0 to 1,000,000,000"),
    ({"attributes": [{"key": "gen_ai.usage.prompt_tokens", "value": {"doubleValue": 1.5}}]},
     "gen_ai.usage.input_tokens must be an integer from 0 to 1,000,000,000"),
    ({"attributes": [{"key": "user.id", "value": {"stringValue": "u" * 201}}]}, "oversized attribute user.id (over 200 chars)"),
    ({"traceId": int("1" * 32)}, "traceId must be 16 bytes: 32 hex digits (or base64), not all zero"),
    ({"name": "n" * 1001}, "oversized span name (over 1000 chars)"),
] + [  # token values that are no integer of the range, whatever their JSON kind
    ({"attributes": [{"key": "gen_ai.usage.output_tokens", "value": value}]},
     "gen_ai.usage.output_tokens must be an integer from 0 to 1,000,000,000")
    for value in ({"doubleValue": 1e30}, {"doubleValue": "NaN"}, {"stringValue": "many"}, {"boolValue": True},
                  {"intValue": str(2**70)}, {"intValue": "1000000001"})
]


def test_each_span_rule_quarantines_only_its_span(tmp_path):
    bad = []
    for n, (change, _) in enumerate(SPAN_RULES):
        s = span(trace_id(0x100 + n), span_id(0x100 + n), start_ms=n)
        s.update(change)
        bad.append({k: v for k, v in s.items() if v is not None})
    good = span(trace_id(0x999), span_id(0x999), attributes={"user.id": "u-1", "gen_ai.agent.id": "a"})
    nested = {"resourceSpans must be an array of objects": {"resourceSpans": [1, "x", None]},
              "scopeSpans must be an array": {"resourceSpans": [{"scopeSpans": {"spans": [good]}}]},
              "scopeSpans must be an array of objects": {"resourceSpans": [{"scopeSpans": [[good]]}]},
              "spans must be an array": {"resourceSpans": [{"scopeSpans": [{"spans": {"a": good}}]}]},
              "not an OTLP ExportTraceServiceRequest (no resourceSpans)": {"resourcespans": []}}
    text = (lines(request(*bad[:5], good), request(*bad[5:])) + "not json\n[1, 2]\n\n"
            + lines(*nested.values()) + '{"event_id": "m-1", "type": "message"}\n{}\n')
    [result] = load(tmp_path, "rules.jsonl", text)
    expected = [reason for _, reason in SPAN_RULES] + [
        "not JSON", "not an OTLP ExportTraceServiceRequest (a JSON object)", "empty line", *nested,
        "not an OTLP ExportTraceServiceRequest (no resourceSpans)"]
    # Every line is accounted for but the empty request `{}`, which holds nothing.
    assert (result.lines, result.records, result.loaded, result.quarantined) == (12, len(expected) + 1, 1, len(expected))
    got = query(tmp_path, "select line_number, reason from ingest.quarantine order by line_number, rowid")
    assert sorted(r for _, r in got) == sorted(expected)
    page = (Path(__file__).resolve().parents[1] / "docs" / "opentelemetry.md").read_text(encoding="utf-8")
    assert [reason for reason in expected if f"`{reason}`" not in page] == []  # the page lists every reason
    assert [n for n, _ in got][-9:] == [3, 4, 5, 6, 7, 8, 9, 10, 11]
    assert query(tmp_path, "select event_id, user_id, agent_id from messages") == [(trace_id(0x999), "u-1", "a")]


def test_resent_spans_are_duplicates_and_change_nothing(tmp_path):
    first = lines(request(root_span(), chat1()))
    [a] = load(tmp_path, "a.jsonl", first)
    [again] = load(tmp_path, "a-copy.jsonl", first)
    assert again.already_loaded and again.batch_id == a.batch_id
    # The same spans inside a new request, beside a new one: two duplicates, one new span.
    [b] = load(tmp_path, "b.jsonl", lines(request(chat1(), root_span(), chat2())))
    assert (b.records, b.loaded, b.duplicates, b.quarantined) == (3, 1, 2, 0)
    assert query(tmp_path, "select event_id, first_batch_id from ingest.duplicates order by event_id") == [
        (f"{T1}/{ROOT}", a.batch_id), (f"{T1}/{CHAT1}", a.batch_id)]
    assert [m[10] for m in rows(tmp_path)["messages"]] == [2]
    # Twice in one file: the second copy is the duplicate.
    [c] = load(tmp_path, "c.jsonl", lines(request(tool()), request(tool())))
    assert (c.loaded, c.duplicates) == (1, 1)


def test_a_gzip_otlp_file_is_recognised_by_its_content(tmp_path):
    path = tmp_path / "export.jsonl.gz"
    path.write_bytes(gzip.compress(lines(request(root_span(), chat1())).encode()))
    [result] = ingest_paths([path], tmp_path / "home" / "warehouse.duckdb", tmp_path / "home" / "raw")
    assert (result.record_type, result.loaded) == ("span", 2)
    assert query(tmp_path, "select record_type, records, traces from ingest.ledger") == [("span", 2, 1)]


def test_the_example_of_docs_opentelemetry_is_the_native_message_it_shows(tmp_path):
    page = (Path(__file__).resolve().parents[1] / "docs" / "opentelemetry.md").read_text(encoding="utf-8")
    trace, native = (json.loads(block) for block in re.findall(r"^```json\n(.*?)^```$", page, re.S | re.M))
    [result] = load(tmp_path, "example.jsonl", lines(trace))
    assert (result.records, result.loaded, result.quarantined, result.traces) == (3, 3, 0, 1)
    load(tmp_path, "native.jsonl", json.dumps(native) + "\n", home="native")
    assert rows(tmp_path) == rows(tmp_path, "native")


def test_the_ingest_command_counts_spans_and_traces(tmp_path, monkeypatch, capsys):
    from agent_analytics_cli.main import main

    for name in [n for n in os.environ if n.startswith("AGENT_ANALYTICS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AGENT_ANALYTICS_HOME", str(tmp_path / "home"))
    (tmp_path / "t.jsonl").write_text(lines(request(root_span(), chat1()), request(chat1())) + "oops\n")
    assert main(["ingest", str(tmp_path / "t.jsonl")]) == 0
    header, row, total, where = capsys.readouterr().out.splitlines()
    assert header.split() == ["file", "records", "loaded", "duplicates", "quarantined", "note"]
    assert row.split() == ["t.jsonl", "4", "2", "1", "1", "spans", "of", "1", "traces", "(OpenTelemetry)"]
    assert total.split()[-4:] == ["4", "2", "1", "1"]
    assert where.startswith("quarantined records: table ingest.quarantine")


def test_openllmetry_spans_without_an_operation_name_are_llm_calls(tmp_path, native_rows):
    """OpenLLMetry (Traceloop) marks a call with llm.request.type and the deprecated names only."""
    old_style = chat1()
    old_style["attributes"] = [a for a in old_style["attributes"] if a["key"] != "gen_ai.operation.name"] + [
        {"key": "llm.request.type", "value": {"stringValue": "chat"}}]
    tokens_only = chat2()
    tokens_only["attributes"] = [a for a in tokens_only["attributes"] if a["key"] != "gen_ai.operation.name"]
    load(tmp_path, "t.jsonl", lines(request(root_span(), old_style, tool(), tokens_only)))
    assert rows(tmp_path) == native_rows


def test_a_zero_parent_in_base64_is_a_root(tmp_path):
    root = root_span()
    root["parentSpanId"] = b64("0" * 16)
    [result] = load(tmp_path, "t.jsonl", lines(request(root)))
    assert (result.loaded, result.quarantined) == (1, 0)
    assert query(tmp_path, "select count(*) from messages") == [(1,)]


def test_a_revision_keeps_the_user_agent_and_time_of_the_first(tmp_path):
    """The sessions are built by user, agent and time: a late span must not move its message."""
    root = root_span()
    root["attributes"] = [a for a in root["attributes"] if a["key"] not in ("user.id", "gen_ai.agent.id")]
    load(tmp_path, "a.jsonl", lines(request(root)))
    late = span(T1, CHAT1, ROOT, start_ms=10, duration_ms=900, name="chat",
                attributes={**CHAT1_ATTRS, "user.id": "u-late", "gen_ai.agent.id": "other-agent"})
    load(tmp_path, "b.jsonl", lines(request(late)))
    assert query(tmp_path, "select revision, user_id, agent_id, llm_call_count from messages order by revision") == [
        (0, "", "support-service", 0), (1, "", "support-service", 1)]


def test_a_resent_orphan_is_loaded_not_a_duplicate_of_its_quarantined_copy(tmp_path):
    load(tmp_path, "a.jsonl", lines(request(chat1())))
    con = duckdb.connect(str(tmp_path / "home" / "warehouse.duckdb"))
    try:
        assert quarantine_orphans(con, 0, datetime.utcnow() + timedelta(seconds=1)) == 1
    finally:
        con.close()
    [b] = load(tmp_path, "b.jsonl", lines(request(root_span(), chat1())))
    assert (b.loaded, b.duplicates) == (2, 0)
    assert [m[10] for m in rows(tmp_path)["messages"]] == [1]
