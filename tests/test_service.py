"""`agent-analytics serve` as a client sees it: a real server in a subprocess on 127.0.0.1.

Tokens and scopes (401, 403), limits (413, a gzip bomb), malformed requests (400, 415), the
ingest endpoints writing exactly what was sent into landing/ and the ingest loading it, OTLP
traces in protobuf and JSON, the export and metrics endpoints answering what the command line
prints, health and readiness, and a server log that names every error once and never a token.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import subprocess
import threading
import zlib
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import httpx
import pytest
from google.protobuf.json_format import MessageToDict
from google.rpc.status_pb2 import Status as RpcStatus
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from agent_analytics.tokens import revoke_token, tokens_path
from agent_analytics.warehouse import warehouse_lock
from ingestion.landing import ingest_landing
from tests.service_server import SCRIPT, copy_built_home, make_tokens, start_server

FIXTURES = Path(__file__).parent / "fixtures"
MAX_BODY_MB = 1
LIMIT = MAX_BODY_MB * 1024 * 1024
AS_JSON = {"Content-Type": "application/json"}
AS_PROTOBUF = {"Content-Type": "application/x-protobuf"}
AS_OF = "2026-11-04"  # after the fixture's two days, so the CLI and the API count up to the same instant


def _env(home: Path) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("AGENT_ANALYTICS_")}
    return {**environ, "AGENT_ANALYTICS_HOME": str(home)}


def cli(home: Path, *argv: str) -> str:
    proc = subprocess.run([str(SCRIPT), *argv], env=_env(home), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


class Calls:
    """An httpx client that counts the error answers it got, to match them with the log."""

    def __init__(self, url: str):
        self.errors = 0
        self.client = httpx.Client(base_url=url, timeout=60, event_hooks={"response": [self._count]})

    def _count(self, response: httpx.Response) -> None:
        self.errors += response.status_code >= 400

    def __getattr__(self, name):
        return getattr(self.client, name)


@pytest.fixture(scope="module")
def built(tmp_path_factory, built_fixture_home):
    """A home built from the fixture, served with a read, an ingest and a revoked token."""
    home = copy_built_home(built_fixture_home, tmp_path_factory.mktemp("built") / "home")
    tokens = make_tokens(home, reader="read", sender="ingest", former="read")
    revoke_token(tokens_path(home), "former")
    server = start_server(home, home / "server.log")
    yield server, tokens, Calls(server.url)
    server.stop()


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    """A home without a warehouse, served with a body limit of MAX_BODY_MB."""
    home = tmp_path_factory.mktemp("fresh")
    tokens = make_tokens(home, sender="ingest", reader="read")
    server = start_server(home, home / "server.log", {"AGENT_ANALYTICS_MAX_BODY_MB": str(MAX_BODY_MB)})
    yield server, tokens, Calls(server.url)
    server.stop()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# The gRPC codes the OTLP/HTTP specification pairs with HTTP statuses, for /v1/traces errors.
OTLP_CODES = {400: 3, 401: 16, 403: 7, 413: 8, 415: 3, 503: 14}


def error_of(response: httpx.Response) -> str:
    """The message of an error answer, checked to be in the form of its endpoint: JSON
    {"error"}; on /v1/traces a google.rpc.Status, protobuf for a protobuf request."""
    if response.request.url.path == "/v1/traces":
        if response.request.headers.get("content-type") == "application/x-protobuf":
            assert response.headers["content-type"] == "application/x-protobuf"
            status = RpcStatus.FromString(response.content)
            assert status.code == OTLP_CODES[response.status_code]
            return status.message
        body = response.json()
        assert list(body) == ["error", "code", "message"] and body["message"] == body["error"]
        assert body["code"] == OTLP_CODES[response.status_code]
        return body["error"]
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert list(body) == ["error"] and isinstance(body["error"], str)
    return body["error"]


# ----------------------------------------------------------------- tokens and scopes


def test_without_a_known_token_every_data_endpoint_is_401(built):
    server, tokens, calls = built
    endpoints = [("POST", "/v1/events"), ("POST", "/v1/traces"), ("POST", "/v1/analytics/export"), ("GET", "/v1/metrics")]
    for headers in ({}, bearer("aat_not-a-token"), bearer(tokens["former"]), {"Authorization": f"Basic {tokens['reader']}"}):
        for method, path in endpoints:
            response = calls.request(method, path, headers={**headers, "Content-Type": "application/json"}, content=b"{}")
            assert response.status_code == 401, (path, headers)
            assert response.headers["www-authenticate"].startswith("Bearer")
            assert error_of(response) in ("unknown or revoked token",
                                          "missing bearer token: send the header 'Authorization: Bearer <token>'")


def test_a_token_revoked_while_the_server_runs_is_refused_from_the_next_request(built):
    server, _tokens, calls = built
    token = make_tokens(server.home, shortlived="read")["shortlived"]
    assert calls.get("/v1/metrics", params={"as_of": AS_OF}, headers=bearer(token)).status_code == 200
    revoke_token(tokens_path(server.home), "shortlived")
    response = calls.get("/v1/metrics", params={"as_of": AS_OF}, headers=bearer(token))
    assert response.status_code == 401 and error_of(response) == "unknown or revoked token"


def test_each_scope_opens_only_its_endpoints(built):
    server, tokens, calls = built
    for path in ("/v1/events", "/v1/traces"):
        response = calls.post(path, headers={**bearer(tokens["reader"]), "Content-Type": "application/json"}, content=b"{}")
        assert response.status_code == 403
        assert error_of(response) == "token 'reader' has the scope read; this endpoint needs ingest"
    response = calls.post("/v1/analytics/export", headers=bearer(tokens["sender"]), content=b"{}")
    assert response.status_code == 403 and error_of(response) == "token 'sender' has the scope ingest; this endpoint needs read"
    assert calls.get("/v1/metrics", headers=bearer(tokens["sender"])).status_code == 403


# ----------------------------------------------------------------- limits and malformed requests


def test_a_body_over_the_limit_is_413(fresh):
    server, tokens, calls = fresh
    line = b'{"event_id":"x"}\n'
    just_fits = line * (LIMIT // len(line))
    assert calls.post("/v1/events", headers=bearer(tokens["sender"]), content=just_fits).status_code == 202
    response = calls.post("/v1/events", headers=bearer(tokens["sender"]), content=just_fits + b" " * (LIMIT - len(just_fits) + 1))
    assert response.status_code == 413
    assert error_of(response) == f"the body is over the limit of {LIMIT} bytes (AGENT_ANALYTICS_MAX_BODY_MB, after decompression)"
    response = calls.post("/v1/analytics/export", headers=bearer(tokens["reader"]), content=b" " * (LIMIT + 1))
    assert response.status_code == 413
    # a streamed body (no Content-Length) is counted as it arrives
    chunks = (b"x" * 65536 for _ in range(LIMIT // 65536 + 1))
    response = calls.post("/v1/events", headers=bearer(tokens["sender"]), content=chunks)
    assert response.status_code == 413


def _peak_rss_kb(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1))


def test_a_gzip_bomb_is_refused_without_inflating_it(fresh):
    """A 200 KB gzip of 200 MB of zeros: refused once the limit (1 MB) is passed; the server's
    peak memory does not grow by anything near 200 MB."""
    server, tokens, calls = fresh
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    bomb = b"".join(packer.compress(bytes(1024 * 1024)) for _ in range(200)) + packer.flush()
    assert len(bomb) < 250_000
    before = _peak_rss_kb(server.process.pid)
    for path, content_type in (("/v1/events", "application/x-ndjson"), ("/v1/traces", "application/x-protobuf")):
        response = calls.post(path, content=bomb, headers={**bearer(tokens["sender"]), "Content-Encoding": "gzip",
                                                           "Content-Type": content_type})
        assert response.status_code == 413, path
    assert _peak_rss_kb(server.process.pid) - before < 50 * 1024
    assert not list((server.home / "landing").glob("*bomb*"))


@pytest.mark.parametrize(
    "path, headers, content, expected",
    [
        ("/v1/events", {"Content-Encoding": "gzip"}, b"not gzip at all", "the body is not valid gzip ("),
        ("/v1/events", {"Content-Encoding": "gzip"}, gzip.compress(b'{"event_id":"a"}\n')[:-12], "the gzip body is cut short"),
        ("/v1/events", {}, b"", "the body holds no events: send JSON Lines, one event per line"),
        ("/v1/traces", AS_JSON, b'{"resourceSpans": [', "the body is not JSON ("),
        ("/v1/traces", AS_JSON, b"[]", "the body must be one JSON object"),
        ("/v1/traces", AS_JSON, b'{"resourceSpans": {}}', "resourceSpans must be an array of objects"),
        ("/v1/traces", AS_JSON, b'{"resourceSpans": [{"scopeSpans": [{"spans": [1]}]}]}',
         "spans must be an array of objects"),
        ("/v1/traces", AS_JSON, b'{"a": NaN}', "the body is not JSON (NaN is not a JSON number)"),
        ("/v1/traces", AS_JSON, b'{"resourceSpans": [{"resource": {"k": "\\ud800"}}]}',
         "the body holds a string that is not valid Unicode"),
        ("/v1/traces", AS_PROTOBUF, b"\xff\xff\xff", "the body is not a protobuf ExportTraceServiceRequest"),
    ],
    ids=["bad-gzip", "cut-gzip", "empty-events", "bad-json", "json-array", "spans-shape", "span-not-object", "nan",
         "surrogate", "bad-protobuf"],
)
def test_malformed_ingest_bodies_are_400(fresh, path, headers, content, expected):
    server, tokens, calls = fresh
    before = sorted(os.listdir(server.home / "landing"))
    response = calls.post(path, headers={**bearer(tokens["sender"]), **headers}, content=content)
    assert response.status_code == 400 and error_of(response).startswith(expected), response.text
    assert sorted(os.listdir(server.home / "landing")) == before


@pytest.mark.parametrize(
    "headers, expected",
    [
        ({"Content-Type": "text/plain"}, "Content-Type 'text/plain' is not supported: send application/x-protobuf or "),
        ({}, "no Content-Type: send application/x-protobuf or application/json"),
        ({"Content-Type": "application/json", "Content-Encoding": "br"}, "Content-Encoding 'br' is not supported: send gzip"),
    ],
    ids=["text-plain", "none", "brotli"],
)
def test_unsupported_media_is_415(fresh, headers, expected):
    server, tokens, calls = fresh
    response = calls.post("/v1/traces", headers={**bearer(tokens["sender"]), **headers}, content=b"{}")
    assert response.status_code == 415 and error_of(response).startswith(expected)


# ----------------------------------------------------------------- native events


def test_events_are_written_as_sent_and_the_ingest_loads_them(fresh, tmp_path):
    """day1 plain, day2 gzip: landing holds exactly their bytes, and loading landing/ counts
    each file as loading the fixture files themselves does."""
    server, tokens, calls = fresh
    landing = server.home / "landing"
    sent = {}
    for name, headers, content in (
        ("day1.jsonl", {}, (FIXTURES / "day1.jsonl").read_bytes()),
        ("day2.jsonl", {"Content-Encoding": "gzip"}, gzip.compress((FIXTURES / "day2.jsonl").read_bytes())),
    ):
        response = calls.post("/v1/events", headers={**bearer(tokens["sender"]), **headers,
                                                     "Content-Type": "application/x-ndjson"}, content=content)
        assert response.status_code == 202
        answer = response.json()
        expected = (FIXTURES / name).read_bytes()
        expected += b"" if expected.endswith(b"\n") else b"\n"
        assert answer["lines"] == expected.count(b"\n")
        assert re.fullmatch(r"events-\d{8}T\d{6}\.\d{6}-[0-9a-f]{32}\.jsonl", answer["file"])
        assert (landing / answer["file"]).read_bytes() == expected
        sent[answer["file"]] = name
    reference = tmp_path / "reference"
    cli(reference, "ingest", str(FIXTURES / "day1.jsonl"), str(FIXTURES / "day2.jsonl"))
    own_landing = tmp_path / "landing"  # only these two files, as the server named them
    own_landing.mkdir()
    for name in sent:
        shutil.copy2(landing / name, own_landing / name)
    run = ingest_landing(own_landing, tmp_path / "warehouse.duckdb", tmp_path / "raw", quiet_s=0)
    mine = {sent[r.file_name]: (r.lines, r.loaded, r.duplicates, r.quarantined) for r in run.results}
    with duckdb.connect(str(reference / "warehouse.duckdb"), read_only=True) as con:
        rows = con.execute("select file_name, lines, loaded, duplicates, quarantined from ingest.ledger").fetchall()
    assert mine == {name: tuple(rest) for name, *rest in rows}
    assert mine["day1.jsonl"][1] > 0 and mine["day2.jsonl"][2] == 1  # day2 repeats m2 of day1


def test_a_final_newline_is_added_when_missing(fresh):
    server, tokens, calls = fresh
    response = calls.post("/v1/events", headers=bearer(tokens["sender"]), content=b'{"event_id":"a"}\n{"event_id":"b"}')
    assert response.status_code == 202 and response.json()["lines"] == 2
    assert (server.home / "landing" / response.json()["file"]).read_bytes() == b'{"event_id":"a"}\n{"event_id":"b"}\n'


# ----------------------------------------------------------------- OTLP traces

TRACE = "5b8efff798038103d269b633813fc60c"
ROOT, CHILD = "eee19b7ec3c1b174", "3a1f0c9d2b4e5f60"


def _trace_request() -> ExportTraceServiceRequest:
    """A root span and a chat child (both valid), and four spans the ingest will quarantine:
    an all-zero trace id, a 4-byte span id, no start time, an end before the start."""
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    attribute = resource_spans.resource.attributes.add()
    attribute.key, attribute.value.string_value = "service.name", "support-agent"
    spans = resource_spans.scope_spans.add().spans
    root = spans.add(trace_id=bytes.fromhex(TRACE), span_id=bytes.fromhex(ROOT), name="invoke_agent support",
                     kind=Span.SPAN_KIND_SERVER, start_time_unix_nano=1_793_620_800_000_000_000,
                     end_time_unix_nano=1_793_620_801_500_000_000)
    root.status.code = Status.STATUS_CODE_OK
    chat = spans.add(trace_id=bytes.fromhex(TRACE), span_id=bytes.fromhex(CHILD), parent_span_id=bytes.fromhex(ROOT),
                     name="chat gpt-4o", kind=Span.SPAN_KIND_CLIENT, start_time_unix_nano=1_793_620_800_100_000_000,
                     end_time_unix_nano=1_793_620_801_000_000_000)
    tokens = chat.attributes.add()
    tokens.key, tokens.value.int_value = "gen_ai.usage.input_tokens", 612
    spans.add(trace_id=bytes(16), span_id=bytes.fromhex("0102030405060708"), start_time_unix_nano=1)
    spans.add(trace_id=bytes.fromhex(TRACE), span_id=b"\x01\x02\x03\x04", start_time_unix_nano=1)
    spans.add(trace_id=bytes.fromhex(TRACE), span_id=bytes.fromhex("0807060504030201"))
    spans.add(trace_id=bytes.fromhex(TRACE), span_id=bytes.fromhex("0a0b0c0d0e0f1011"), start_time_unix_nano=5,
              end_time_unix_nano=4)
    return request


EXPECTED_LINE = {"resourceSpans": [{
    "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "support-agent"}}]},
    "scopeSpans": [{"spans": [
        {"traceId": TRACE, "spanId": ROOT, "name": "invoke_agent support", "kind": "SPAN_KIND_SERVER",
         "startTimeUnixNano": "1793620800000000000", "endTimeUnixNano": "1793620801500000000",
         "status": {"code": "STATUS_CODE_OK"}},
        {"traceId": TRACE, "spanId": CHILD, "parentSpanId": ROOT, "name": "chat gpt-4o", "kind": "SPAN_KIND_CLIENT",
         "startTimeUnixNano": "1793620800100000000", "endTimeUnixNano": "1793620801000000000",
         "attributes": [{"key": "gen_ai.usage.input_tokens", "value": {"intValue": "612"}}]},
        {"traceId": "0" * 32, "spanId": "0102030405060708", "startTimeUnixNano": "1"},
        {"traceId": TRACE, "spanId": "01020304", "startTimeUnixNano": "1"},
        {"traceId": TRACE, "spanId": "0807060504030201"},
        {"traceId": TRACE, "spanId": "0a0b0c0d0e0f1011", "startTimeUnixNano": "5", "endTimeUnixNano": "4"},
    ]}],
}]}
REJECTED_MESSAGE = ("4 spans rejected (1 endTimeUnixNano missing or before startTimeUnixNano, 1 no startTimeUnixNano, "
                    "1 spanId not 8 bytes or all zero, 1 traceId not 16 bytes or all zero); "
                    "they are kept in the ingest's quarantine")


def _landed_line(landing: Path, before: set[str]) -> dict:
    new = sorted(set(os.listdir(landing)) - before)
    assert len(new) == 1 and re.fullmatch(r"otlp-\d{8}T\d{6}\.\d{6}-[0-9a-f]{32}\.jsonl", new[0]), new
    data = (landing / new[0]).read_bytes()
    assert data.endswith(b"\n") and data.count(b"\n") == 1
    return json.loads(data)


@pytest.mark.parametrize("gzipped", [False, True], ids=["plain", "gzip"])
def test_protobuf_traces_become_one_otlp_json_line_with_hex_ids(fresh, gzipped):
    server, tokens, calls = fresh
    landing = server.home / "landing"
    before = set(os.listdir(landing))
    body = _trace_request().SerializeToString()
    headers = {**bearer(tokens["sender"]), "Content-Type": "application/x-protobuf"}
    if gzipped:
        body, headers = gzip.compress(body), {**headers, "Content-Encoding": "gzip"}
    response = calls.post("/v1/traces", headers=headers, content=body)
    assert response.status_code == 200 and response.headers["content-type"] == "application/x-protobuf"
    answer = ExportTraceServiceResponse.FromString(response.content)
    assert answer.partial_success.rejected_spans == 4
    assert answer.partial_success.error_message == REJECTED_MESSAGE
    assert _landed_line(landing, before) == EXPECTED_LINE


def test_the_ingest_quarantines_exactly_the_spans_partial_success_counted(fresh, tmp_path):
    """The landed line through the OTLP ingest: its two good spans load, the four counted in
    partial_success are quarantined (the OTLP ingest's own rules, not the service's)."""
    server, tokens, calls = fresh
    landing = server.home / "landing"
    before = set(os.listdir(landing))
    response = calls.post("/v1/traces", headers={**bearer(tokens["sender"]), **AS_PROTOBUF},
                          content=_trace_request().SerializeToString())
    rejected = ExportTraceServiceResponse.FromString(response.content).partial_success.rejected_spans
    (new,) = set(os.listdir(landing)) - before
    own_landing = tmp_path / "landing"
    own_landing.mkdir()
    shutil.copy2(landing / new, own_landing / new)
    run = ingest_landing(own_landing, tmp_path / "warehouse.duckdb", tmp_path / "raw", quiet_s=0)
    (result,) = run.results
    assert (result.record_type, result.records, result.loaded, result.quarantined) == ("span", 6, 2, rejected)
    assert rejected == 4


def test_json_traces_are_written_compactly_as_sent(fresh):
    """The JSON of the same request, with one id in base64 (valid: 16 bytes) and a non-ASCII name."""
    server, tokens, calls = fresh
    landing = server.home / "landing"
    document = json.loads(json.dumps(EXPECTED_LINE))
    spans = document["resourceSpans"][0]["scopeSpans"][0]["spans"]
    spans[1]["traceId"] = "W47/95gDgQPSabYzgT/GDA=="  # TRACE in base64
    spans[1]["name"] = "chat gpt-4o ünïcode"
    before = set(os.listdir(landing))
    body = json.dumps(document, indent=2).encode()
    response = calls.post("/v1/traces", headers={**bearer(tokens["sender"]), "Content-Type": "application/json; charset=utf-8"},
                          content=body)
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    assert response.json() == {"partialSuccess": {"rejectedSpans": "4", "errorMessage": REJECTED_MESSAGE}}
    new = sorted(set(os.listdir(landing)) - before)
    assert (landing / new[0]).read_bytes() == json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def test_a_request_without_rejections_and_an_empty_request(fresh):
    server, tokens, calls = fresh
    landing = server.home / "landing"
    request = ExportTraceServiceRequest()
    request.resource_spans.add().scope_spans.add().spans.append(_trace_request().resource_spans[0].scope_spans[0].spans[0])
    for media, encode, decode in (
        ("application/x-protobuf", lambda r: r.SerializeToString(), ExportTraceServiceResponse.FromString),
        ("application/json", lambda r: json.dumps(MessageToDict(r)).encode(), json.loads),
    ):
        headers = {**bearer(tokens["sender"]), "Content-Type": media}
        response = calls.post("/v1/traces", headers=headers, content=encode(request))
        assert response.status_code == 200
        assert decode(response.content) in ({}, ExportTraceServiceResponse())  # no partial_success at all
        before = set(os.listdir(landing))
        response = calls.post("/v1/traces", headers=headers, content=encode(ExportTraceServiceRequest()))
        assert response.status_code == 200 and decode(response.content) in ({}, ExportTraceServiceResponse())
        assert set(os.listdir(landing)) == before  # nothing to write


# ----------------------------------------------------------------- export and metrics


def _without_generated_at(document: dict) -> dict:
    return {k: v for k, v in document.items() if k != "generated_at"}


@pytest.mark.parametrize(
    "body, argv",
    [
        ({"period": "30d", "format": "json", "as_of": AS_OF}, ["--period", "30d"]),
        ({"start": "2026-11-02", "end": "2026-11-03", "agents": ["support"], "as_of": AS_OF},
         ["--start", "2026-11-02", "--end", "2026-11-03", "--agent", "support"]),
        ({"month": "2026-11", "tz": "America/Los_Angeles", "as_of": AS_OF},
         ["--month", "2026-11", "--tz", "America/Los_Angeles"]),
    ],
    ids=["30d", "days-agent", "month-tz"],
)
def test_export_json_is_the_metrics_document(built, body, argv):
    server, tokens, calls = built
    response = calls.post("/v1/analytics/export", headers=bearer(tokens["reader"]), json=body)
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    printed = json.loads(cli(server.home, "metrics", "--format", "json", "--as-of", AS_OF, *argv))
    assert _without_generated_at(response.json()) == _without_generated_at(printed)
    assert response.json()["overview"]["messages"]["value"] == printed["overview"]["messages"]["value"] > 0


def test_export_csv_and_get_metrics_are_the_export_csv(built):
    server, tokens, calls = built
    printed = cli(server.home, "export", "--format", "csv", "--start", "2026-11-01", "--end", "2026-11-03", "--agent", "sales",
                  "--agent", "support", "--as-of", AS_OF)
    body = {"start": "2026-11-01", "end": "2026-11-03", "agents": ["sales", "support"], "format": "csv", "as_of": AS_OF}
    response = calls.post("/v1/analytics/export", headers=bearer(tokens["reader"]), json=body)
    assert response.status_code == 200 and response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.text == printed and len(printed.splitlines()) == 4
    params = [("start", "2026-11-01"), ("end", "2026-11-03"), ("agent", "sales"), ("agent", "support"), ("format", "csv"),
              ("as_of", AS_OF)]
    response = calls.get("/v1/metrics", headers=bearer(tokens["reader"]), params=params)
    assert response.status_code == 200 and response.text == printed


def test_get_metrics_json_is_the_metrics_document(built):
    server, tokens, calls = built
    response = calls.get("/v1/metrics", headers=bearer(tokens["reader"]), params={"period": "week", "as_of": AS_OF})
    printed = json.loads(cli(server.home, "metrics", "--format", "json", "--period", "week", "--as-of", AS_OF))
    assert response.status_code == 200 and _without_generated_at(response.json()) == _without_generated_at(printed)


def test_the_guides_curl_works_as_written(built):
    """curl -d sends application/x-www-form-urlencoded; the JSON body is read all the same."""
    server, tokens, _calls = built
    proc = subprocess.run(
        ["curl", "-s", "-w", "\n%{http_code} %{content_type}", f"{server.url}/v1/analytics/export",
         "-H", f"Authorization: Bearer {tokens['reader']}", "-d", '{"period": "30d", "format": "json"}'],
        capture_output=True, text=True, timeout=120, check=True,
    )
    body, status = proc.stdout.rsplit("\n", 1)
    assert status == "200 application/json"
    document = json.loads(body)
    assert document["schema_version"] == "3.2" and document["period"]["label"] == "30d"


@pytest.mark.parametrize(
    "body, expected",
    [
        (b'{"period": "30d",', "the body is not JSON ("),
        (b'"30d"', "the body must be one JSON object"),
        (b'{"period": "fortnight"}', "unknown period 'fortnight': use today, week, month or Nd"),
        (b'{"period": "0d"}', "period '0d' must be between 1d and 3660d"),
        (b'{"agents": ["nobody"]}', "unknown agent 'nobody' (known agents: sales, support)"),
        (b'{"perod": "30d"}', "unknown key 'perod'"),
        (b'{"tz": "Mars/Olympus"}', "unknown time zone 'Mars/Olympus'"),
        (b'{"format": "xml"}', "format: Input should be 'json' or 'csv'"),
        (b'{"agents": "support"}', "agents: Input should be a valid list"),
        (b'{"period": "week", "month": "2026-11"}', "give only one of --period, --month"),
        (b'{"month": "2026-13"}', "--month '2026-13' is not a month in YYYY-MM form"),
        (b'{"as_of": "9999-12-31"}', "--as-of '9999-12-31' is outside the supported dates"),
    ],
    ids=["bad-json", "not-object", "bad-period", "zero-days", "unknown-agent", "unknown-key", "bad-tz", "bad-format",
         "agents-not-list", "two-periods", "bad-month", "as-of-range"],
)
def test_bad_export_requests_are_400_naming_the_problem(built, body, expected):
    server, tokens, calls = built
    response = calls.post("/v1/analytics/export", headers=bearer(tokens["reader"]), content=body)
    assert response.status_code == 400 and error_of(response).startswith(expected), response.text


def test_bad_metrics_parameters_are_400(built):
    server, tokens, calls = built
    for params, expected in (
        ({"perod": "30d"}, "unknown parameter 'perod' (known: agent, as_of, end, format, month, period, start, tz)"),
        ({"period": "fortnight"}, "unknown period 'fortnight'"),
        ({"agent": "nobody"}, "unknown agent 'nobody'"),
        ({"format": "xlsx"}, "format: Input should be 'json' or 'csv'"),
    ):
        response = calls.get("/v1/metrics", headers=bearer(tokens["reader"]), params=params)
        assert response.status_code == 400 and error_of(response).startswith(expected), response.text


def test_while_a_build_holds_the_warehouse_reads_are_answered_from_the_serving_copy(built):
    server, tokens, calls = built
    with warehouse_lock(server.home / "warehouse.duckdb", timeout_s=10):
        response = calls.get("/v1/metrics", headers=bearer(tokens["reader"]), params={"as_of": AS_OF})
        assert response.status_code == 200 and response.json()["performance"]["messages"] > 0
        assert calls.get("/readyz").status_code == 200


def test_before_the_first_publication_a_build_holding_the_warehouse_makes_reads_503_with_retry_after(built):
    server, tokens, calls = built
    published, aside = server.home / "serving", server.home / "serving-aside"
    published.rename(aside)  # as before the first build that published a serving copy
    try:
        with warehouse_lock(server.home / "warehouse.duckdb", timeout_s=10):
            response = calls.get("/v1/metrics", headers=bearer(tokens["reader"]))
            assert response.status_code == 503 and response.headers["retry-after"] == "5"
            assert error_of(response) == "a build is writing the warehouse; retry shortly"
            assert calls.get("/readyz").status_code == 503
        assert calls.get("/v1/metrics", headers=bearer(tokens["reader"]), params={"as_of": AS_OF}).status_code == 200
    finally:
        aside.rename(published)


def test_reads_at_once_take_turns_instead_of_failing(built):
    """Eight long reads at once (ten years each, about a second here): each waits for the one
    before it, however long, and none is answered 503 as if a build held the warehouse."""
    server, tokens, calls = built
    answers: list[httpx.Response] = []

    def read() -> None:
        answers.append(httpx.get(f"{server.url}/v1/metrics", params={"period": "3660d", "as_of": AS_OF},
                                 headers=bearer(tokens["reader"]), timeout=300))

    threads = [threading.Thread(target=read) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [a.status_code for a in answers] == [200] * 8
    assert len({json.dumps(_without_generated_at(a.json()), sort_keys=True) for a in answers}) == 1


def test_without_a_warehouse_reads_are_503(fresh):
    server, tokens, calls = fresh
    response = calls.post("/v1/analytics/export", headers=bearer(tokens["reader"]), json={"period": "30d"})
    assert response.status_code == 503 and response.headers["retry-after"] == "60"
    assert error_of(response) == "no warehouse yet: run a build first"


# ----------------------------------------------------------------- health


def test_healthz_and_readyz(built, fresh):
    server, _tokens, calls = built
    assert calls.get("/healthz").json() == {"status": "ok"}
    (server.home / "landing" / "waiting.jsonl").write_text('{"event_id":"w"}\n')
    try:
        ready = calls.get("/readyz")
        assert ready.status_code == 200
        body = ready.json()
        mtime = (server.home / "exports" / "analytics.json").stat().st_mtime
        assert datetime.fromisoformat(body["last_build"]) == datetime.fromtimestamp(mtime, timezone.utc)
        assert body["status"] == "ready" and body["waiting_files"] == 1
        assert 0 <= body["newest_waiting_file_age_s"] == body["oldest_waiting_file_age_s"] < 60
    finally:
        (server.home / "landing" / "waiting.jsonl").unlink()
    _server, _tokens, fresh_calls = fresh
    assert fresh_calls.get("/healthz").json() == {"status": "ok"}
    response = fresh_calls.get("/readyz")
    assert response.status_code == 503 and error_of(response) == "no warehouse yet: run a build first"


def test_serving_without_tokens_warns_that_every_request_gets_401(tmp_path):
    server = start_server(tmp_path / "home", tmp_path / "server.log")
    try:
        response = httpx.get(f"{server.url}/v1/metrics")
        assert response.status_code == 401
    finally:
        server.stop()
    assert ("agent-analytics: warning: no tokens exist yet, so every request but /healthz and /readyz gets 401 "
            "(create one with 'agent-analytics tokens create --scope ingest|read --name NAME')") in server.log().splitlines()


def test_a_landing_folder_that_cannot_be_written_is_503_not_500(tmp_path):
    home = tmp_path / "home"
    token = make_tokens(home, sender="ingest")["sender"]
    server = start_server(home, tmp_path / "server.log")
    try:
        (home / "landing").rmdir()
        (home / "landing").write_text("a file where the folder was\n")
        response = httpx.post(f"{server.url}/v1/events", content=b'{"event_id":"x"}\n', headers=bearer(token))
        assert response.status_code == 503 and response.headers["retry-after"] == "30"
        assert error_of(response) == "cannot write into landing/ now (File exists); retry later"
    finally:
        server.stop()
    assert "Traceback" not in server.log()


def test_https_with_a_certificate(tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    home = tmp_path / "home"
    token = make_tokens(home, sender="ingest")["sender"]
    server = start_server(home, tmp_path / "server.log", certificate=(cert, key))
    try:
        assert server.url.startswith("https://")
        response = httpx.post(f"{server.url}/v1/events", content=b'{"event_id":"tls"}\n', headers=bearer(token), verify=str(cert))
        assert response.status_code == 202
        with pytest.raises(httpx.TransportError):  # plain HTTP is not served on that port
            httpx.get(f"http://127.0.0.1:{server.port}/healthz", timeout=5)
    finally:
        server.stop()


def test_an_unexpected_exception_is_500_without_details_logged_once(tmp_path, caplog):
    """In process: a route that fails as a bug would; the client sees no traceback."""
    from starlette.testclient import TestClient

    from agent_analytics.settings import load_settings
    from service.app import create_app

    app = create_app(load_settings({"AGENT_ANALYTICS_HOME": str(tmp_path / "home")}))

    @app.get("/boom")
    def boom():
        raise RuntimeError("internal detail /secret/path")

    with TestClient(app) as client, caplog.at_level("INFO", logger="agent_analytics.service"):
        response = client.get("/boom")
    assert response.status_code == 500 and response.json() == {"error": "internal error"}
    assert "secret" not in response.text
    records = [r for r in caplog.records if r.name == "agent_analytics.service"]
    assert [r.getMessage() for r in records] == ["500 GET /boom: unexpected error"] and records[0].exc_info


# ----------------------------------------------------------------- the log (runs last in this file)


@pytest.mark.parametrize("which", ["built", "fresh"])
def test_the_log_names_every_error_once_and_never_a_token(which, request):
    """Every error answer this module's client got from the server is one WARNING line."""
    server, tokens, calls = request.getfixturevalue(which)
    for headers in ({}, bearer("aat_not-a-token"), bearer(tokens["sender"]), {"Authorization": f"Basic {tokens['reader']}"}):
        assert calls.post("/v1/analytics/export", headers=headers, content=b"{}").status_code in (401, 403)
    log = server.log()
    error_lines = [line for line in log.splitlines() if re.search(r" WARNING agent_analytics\.service: [45]\d\d ", line)]
    assert len(error_lines) == calls.errors, log
    assert "Traceback" not in log and " ERROR " not in log
    for token in tokens.values():
        assert token not in log and token[len("aat_"):] not in log
    assert "aat_not-a-token" not in log
