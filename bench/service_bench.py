"""The HTTP service's part of `make bench` (issue 14): one `agent-analytics serve` process on
the bench home, after the first build, measured from outside as clients see it.

1. `POST /v1/events`: `--clients` concurrent clients (threads, one keep-alive connection each)
   send `--event-batches` bodies of `--batch-events` native JSONL lines each, generated before
   the clock starts (`agent_analytics.synthetic_events`, unique event ids), until none is left.
   Accepted (202) means written and fsynced, so events/s accepted is events/s durable. Then
   the new `events-*.jsonl` files of the bench home's landing/ are compared with the bodies
   accepted (same count, same lines, same bytes) and removed, so later bench steps never see
   them. Before that, `--ingest-sample-files` of them are loaded with `agent-analytics ingest`
   into a scratch home, as written (one file per request) and joined into one file: what the
   next refresh pays for the files the service writes.
2. `POST /v1/traces`: the same clients send `--trace-requests` protobuf
   `ExportTraceServiceRequest` bodies of `--traces-per-request` traces of 4 spans (an
   `invoke_agent` root, two `chat` spans, one `execute_tool` span). The OTLP files written are
   moved out of landing/ and loaded with `agent-analytics ingest <files>` into a scratch home
   (`<workdir>/service/ingest-home`), timed as a whole command; then the same lines joined in
   one file, likewise.
3. `POST /v1/analytics/export` with `{"period": "30d", "format": "json"}`: one warm-up, then
   `--export-requests` sequential requests; p50 and p95 latency (nearest rank).

The server's CPU seconds (utime + stime of its process, from /proc) are reported for each
phase next to the client process's, since on a 2-core machine both share the CPUs.
Tokens are created for the run in the bench home, never printed, and revoked at the end.

Run alone against a bench workdir kept by `python -m bench.run --keep`:
    .venv/bin/python -m bench.service_bench --workdir /tmp/agent_analytics_bench
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import queue
import resource
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import httpx

CLI = Path(sys.executable).with_name("agent-analytics")
TICKS = os.sysconf("SC_CLK_TCK")
SPANS_PER_TRACE = 4
TARGET_EVENTS_PER_S = 50_000
TARGET_EXPORT_P95_S = 2.0
EXPORT_BODY = {"period": "30d", "format": "json"}


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    ingest_token: str
    read_token: str

    def cpu_s(self) -> float:
        """User + system CPU seconds of the server process so far (all its threads)."""
        with open(f"/proc/{self.process.pid}/stat", "rb") as f:
            stat = f.read()
        fields = stat[stat.rindex(b")") + 2 :].split()
        return (int(fields[11]) + int(fields[12])) / TICKS


# --------------------------------------------------------------------------- the server


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _cli(env: dict[str, str], *args: str) -> str:
    """Run an agent-analytics command; its stdout (which may hold a token: never printed)."""
    done = subprocess.run([str(CLI), *args], env=env, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"agent-analytics {args[0]} {args[1] if len(args) > 1 else ''} exited with "
                           f"{done.returncode}: {done.stderr.strip()[-2000:]}")
    return done.stdout


@contextmanager
def running_server(env: dict[str, str], log_path: Path) -> Iterator[Server]:
    """`agent-analytics serve` on a free port of 127.0.0.1 with an ingest and a read token made
    for this run; stopped (SIGTERM) and the tokens revoked afterwards."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    names = {scope: f"bench-{scope}-{stamp}-{os.getpid()}" for scope in ("ingest", "read")}
    tokens = {scope: _cli(env, "tokens", "create", "--scope", scope, "--name", name).strip()
              for scope, name in names.items()}
    port = _free_port()
    try:
        with open(log_path, "ab") as log:
            process = subprocess.Popen([str(CLI), "serve", "--host", "127.0.0.1", "--port", str(port)], env=env,
                                       stdout=log, stderr=subprocess.STDOUT)
        server = Server(f"http://127.0.0.1:{port}", process, tokens["ingest"], tokens["read"])
        try:
            _wait_healthy(server)
            yield server
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    finally:
        for name in names.values():
            _cli(env, "tokens", "revoke", name)


def _wait_healthy(server: Server, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"the server exited with {server.process.returncode} (see its log)")
        try:
            if httpx.get(f"{server.url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"the server did not answer /healthz within {timeout_s:g} s")


# --------------------------------------------------------------------------- clients


@dataclass
class Burst:
    """What `post_concurrently` saw: statuses per body index, latencies, wall time."""

    statuses: dict[int, int]
    answers: dict[int, bytes]
    latencies_s: list[float]
    errors: list[str]
    seconds: float

    def accepted(self) -> list[int]:
        return sorted(i for i, status in self.statuses.items() if 200 <= status < 300)


def post_concurrently(url: str, path: str, token: str, content_type: str, bodies: list[bytes], clients: int) -> Burst:
    """POST every body once from `clients` threads, each on its own keep-alive connection,
    taking the next unsent body until none is left. The clock runs from the moment all
    clients are connected and ready to the last answer."""
    todo: queue.SimpleQueue[int] = queue.SimpleQueue()
    for i in range(len(bodies)):
        todo.put(i)
    statuses: dict[int, int] = {}
    answers: dict[int, bytes] = {}
    latencies: list[float] = []
    errors: list[str] = []
    ready = threading.Barrier(clients + 1, timeout=60)  # a client that cannot connect breaks it: no hang
    headers = {"Authorization": f"Bearer {token}", "Content-Type": content_type}

    def client() -> None:
        with httpx.Client(base_url=url, headers=headers, timeout=120,
                          limits=httpx.Limits(max_connections=1, max_keepalive_connections=1)) as http:
            http.get("/healthz")  # open the connection before the clock starts
            ready.wait()
            while True:
                try:
                    i = todo.get_nowait()
                except queue.Empty:
                    return
                t0 = time.perf_counter()
                try:
                    response = http.post(path, content=bodies[i])
                except httpx.HTTPError as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")
                    continue
                latencies.append(time.perf_counter() - t0)
                statuses[i] = response.status_code
                answers[i] = response.content

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    ready.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    return Burst(statuses, answers, latencies, errors, time.perf_counter() - start)


def nearest_rank(values: list[float], q: float) -> float:
    """The q-quantile by the nearest-rank method (p95 of 20 values: the 19th smallest)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def _latency_summary(latencies: list[float]) -> dict:
    if not latencies:
        return {}
    return {"p50_ms": round(nearest_rank(latencies, 0.5) * 1000, 1), "p95_ms": round(nearest_rank(latencies, 0.95) * 1000, 1),
            "max_ms": round(max(latencies) * 1000, 1)}


# --------------------------------------------------------------------------- bodies


def event_batches(scratch: Path, batches: int, batch_events: int, seed: int) -> list[bytes]:
    """`batches` bodies of `batch_events` valid JSONL events each, every event id once: the
    generator's events of one day (today), without its malformed lines and duplicate copies."""
    from agent_analytics.synthetic_events import generate

    wanted = batches * batch_events
    shutil.rmtree(scratch, ignore_errors=True)
    # the generator adds health and queue samples and a few bad lines; ask for a little more
    result = generate(scratch, math.ceil(wanted * 1.01), 1, seed)
    bodies: list[bytes] = []
    batch: list[bytes] = []
    seen: set[str] = set()
    with open(result.files[0], "rb") as f:
        for line in f:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            event_id = event.get("event_id") if isinstance(event, dict) else None
            if not isinstance(event_id, str) or event_id.startswith("bad-") or event_id in seen:
                continue  # malformed on purpose, or a duplicate copy
            seen.add(event_id)
            batch.append(line if line.endswith(b"\n") else line + b"\n")
            if len(batch) == batch_events:
                bodies.append(b"".join(batch))
                batch = []
                if len(bodies) == batches:
                    break
    shutil.rmtree(scratch, ignore_errors=True)
    if len(bodies) < batches:
        raise RuntimeError(f"the generator gave {len(bodies)} full batches of valid events, {batches} wanted")
    return bodies


def trace_requests(requests: int, traces_per_request: int, now_ns: int) -> list[bytes]:
    """`requests` serialized protobuf ExportTraceServiceRequests, each of `traces_per_request`
    whole traces (children before their root, as a batch span processor exports them), every
    trace id once; about 1% of the LLM calls fail."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
    from opentelemetry.proto.resource.v1.resource_pb2 import Resource
    from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

    def attributes(**values) -> list[KeyValue]:
        out = []
        for key, value in values.items():
            any_value = AnyValue(int_value=value) if isinstance(value, int) else AnyValue(string_value=value)
            out.append(KeyValue(key=key.replace("__", "."), value=any_value))
        return out

    ms = 1_000_000
    resource = Resource(attributes=attributes(**{"service__name": "bench-agents"}))
    scope = InstrumentationScope(name="bench.service_bench", version="1")
    bodies = []
    n = 0
    for _ in range(requests):
        spans = []
        for _ in range(traces_per_request):
            n += 1
            trace_id = n.to_bytes(16, "big")
            root_id, chat1, chat2, tool = ((n * 4 + k).to_bytes(8, "big") for k in range(4))
            start = now_ns - 600_000 * ms + (n % 500_000) * ms  # within the last 10 minutes
            error = n % 100 == 0
            chat_attrs = {"gen_ai__operation__name": "chat", "gen_ai__provider__name": "openai",
                          "gen_ai__request__model": "gpt-4o-mini", "gen_ai__response__model": "gpt-4o-mini",
                          "gen_ai__usage__input_tokens": 1200 + n % 300, "gen_ai__usage__output_tokens": 180 + n % 50}
            spans += [
                Span(trace_id=trace_id, span_id=chat1, parent_span_id=root_id, name="chat gpt-4o-mini",
                     kind=Span.SPAN_KIND_CLIENT, start_time_unix_nano=start + 5 * ms, end_time_unix_nano=start + 805 * ms,
                     attributes=attributes(**chat_attrs)),
                Span(trace_id=trace_id, span_id=tool, parent_span_id=root_id, name="execute_tool search_kb",
                     kind=Span.SPAN_KIND_INTERNAL, start_time_unix_nano=start + 810 * ms,
                     end_time_unix_nano=start + 1010 * ms,
                     attributes=attributes(gen_ai__operation__name="execute_tool", gen_ai__tool__name="search_kb")),
                Span(trace_id=trace_id, span_id=chat2, parent_span_id=root_id, name="chat gpt-4o-mini",
                     kind=Span.SPAN_KIND_CLIENT, start_time_unix_nano=start + 1015 * ms,
                     end_time_unix_nano=start + 1615 * ms, attributes=attributes(**chat_attrs),
                     status=Status(code=Status.STATUS_CODE_ERROR) if error else None),
                Span(trace_id=trace_id, span_id=root_id, name="invoke_agent support", kind=Span.SPAN_KIND_INTERNAL,
                     start_time_unix_nano=start, end_time_unix_nano=start + 1650 * ms,
                     attributes=attributes(gen_ai__operation__name="invoke_agent", gen_ai__agent__id="support",
                                           gen_ai__agent__name="Support", gen_ai__agent__version="v2",
                                           gen_ai__conversation__id=f"c-{n // 4}", user__id=f"u-{n % 997}"),
                     status=Status(code=Status.STATUS_CODE_ERROR) if error else None),
            ]
        request = ExportTraceServiceRequest(resource_spans=[
            ResourceSpans(resource=resource, scope_spans=[ScopeSpans(scope=scope, spans=spans)])])
        bodies.append(request.SerializeToString())
    return bodies


# --------------------------------------------------------------------------- phases


def _new_landing_files(landing: Path, before: set[str], prefix: str) -> list[Path]:
    return sorted(p for p in landing.glob(f"{prefix}-*.jsonl") if p.name not in before)


def timed_ingest(env: dict[str, str], home: Path, paths: list[Path], records: int, unit: str) -> dict:
    """`agent-analytics ingest <paths>` into the fresh home `home`, timed as a whole command
    (interpreter start-up included); the CPU is that command's."""
    shutil.rmtree(home, ignore_errors=True)
    children0, t0 = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    printed = _cli({**env, "AGENT_ANALYTICS_HOME": str(home)}, "ingest", *map(str, paths))
    seconds, children = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_CHILDREN)
    shutil.rmtree(home, ignore_errors=True)
    total = _ingest_total(printed)
    return {"files": len(paths), "seconds": round(seconds, 2),
            "cpu_s": round(children.ru_utime + children.ru_stime - children0.ru_utime - children0.ru_stime, 2),
            f"{unit}_per_s": round(records / seconds), **total, "all_loaded": total.get("loaded") == records}


def joined(paths: list[Path], into: Path) -> Path:
    """The files' bytes one after the other in one file `into` (the same records, one file)."""
    into.parent.mkdir(parents=True, exist_ok=True)
    with open(into, "wb") as out:
        for path in paths:
            out.write(path.read_bytes())
    return into


def bench_events(server: Server, landing: Path, bodies: list[bytes], clients: int, scratch: Path,
                 env: dict[str, str], sample_files: int) -> dict:
    before = {p.name for p in landing.iterdir()}
    cpu0, client0 = server.cpu_s(), time.process_time()
    burst = post_concurrently(server.url, "/v1/events", server.ingest_token, "application/x-ndjson", bodies, clients)
    server_cpu, client_cpu = server.cpu_s() - cpu0, time.process_time() - client0
    accepted = burst.accepted()
    events = sum(bodies[i].count(b"\n") for i in accepted)
    answered_lines = sum(json.loads(burst.answers[i])["lines"] for i in accepted)

    # the landing files hold exactly the accepted bodies: same number, same bytes
    files = _new_landing_files(landing, before, "events")
    file_digests = Counter()
    file_lines = 0
    for path in files:
        data = path.read_bytes()
        file_lines += data.count(b"\n")
        file_digests[hashlib.sha256(data).hexdigest()] += 1
    sent_digests = Counter(hashlib.sha256(bodies[i]).hexdigest() for i in accepted)

    # what loading such files costs: a sample of them as written (one per request), and joined
    sample = files[:sample_files]
    sample_events = sum(p.read_bytes().count(b"\n") for p in sample)
    ingest = {"as_written": timed_ingest(env, scratch / "ingest-home", sample, sample_events, "events"),
              "joined": timed_ingest(env, scratch / "ingest-home", [joined(sample, scratch / "joined" / "events.jsonl")],
                                     sample_events, "events")}
    shutil.rmtree(scratch / "joined")
    for path in files:
        path.unlink()
    return {
        "clients": clients, "batches": len(bodies), "events_per_batch": bodies[0].count(b"\n"),
        "body_mb_avg": round(sum(map(len, bodies)) / len(bodies) / 2**20, 3),
        "accepted_batches": len(accepted), "accepted_events": events,
        "other_statuses": dict(Counter(s for s in burst.statuses.values() if not 200 <= s < 300)),
        "transport_errors": burst.errors[:5], "transport_error_count": len(burst.errors),
        "seconds": round(burst.seconds, 3), "events_per_s": round(events / burst.seconds),
        "mb_per_s": round(sum(len(bodies[i]) for i in accepted) / burst.seconds / 2**20, 1),
        "request_latency": _latency_summary(burst.latencies_s),
        "server_cpu_s": round(server_cpu, 2), "client_cpu_s": round(client_cpu, 2),
        "landing_files": len(files), "landing_lines": file_lines, "answered_lines": answered_lines,
        "landing_matches_accepted": file_digests == sent_digests and file_lines == events == answered_lines,
        "landing_files_removed": len(files),
        "ingest_sample": {"command": f"agent-analytics ingest <{len(sample)} of the files> (scratch home), then the same "
                                     "lines joined in one file; wall time of the whole command", **ingest},
    }


def bench_traces(server: Server, landing: Path, bodies: list[bytes], traces_per_request: int, clients: int,
                 scratch: Path, env: dict[str, str]) -> dict:
    before = {p.name for p in landing.iterdir()}
    cpu0, client0 = server.cpu_s(), time.process_time()
    burst = post_concurrently(server.url, "/v1/traces", server.ingest_token, "application/x-protobuf", bodies, clients)
    server_cpu, client_cpu = server.cpu_s() - cpu0, time.process_time() - client0
    accepted = burst.accepted()
    spans = len(accepted) * traces_per_request * SPANS_PER_TRACE
    partial = sum(1 for i in accepted if burst.answers[i])  # an empty ExportTraceServiceResponse: nothing rejected

    # the OTLP files leave the bench home, then load into a scratch home: as written, and joined
    files = _new_landing_files(landing, before, "otlp")
    otlp_dir = scratch / "otlp"
    shutil.rmtree(otlp_dir, ignore_errors=True)
    otlp_dir.mkdir(parents=True)
    moved = [Path(shutil.move(path, otlp_dir / path.name)) for path in files]
    landing_mb = round(sum(p.stat().st_size for p in moved) / 2**20, 1)
    ingest = timed_ingest(env, scratch / "ingest-home", moved, spans, "spans")
    ingest_joined = timed_ingest(env, scratch / "ingest-home", [joined(moved, scratch / "joined" / "otlp.jsonl")],
                                 spans, "spans")
    shutil.rmtree(otlp_dir)
    shutil.rmtree(scratch / "joined")
    return {
        "clients": clients, "requests": len(bodies), "traces_per_request": traces_per_request,
        "spans_per_request": traces_per_request * SPANS_PER_TRACE,
        "body_kb_avg": round(sum(map(len, bodies)) / len(bodies) / 1024, 1),
        "accepted_requests": len(accepted), "accepted_spans": spans, "answers_with_partial_success": partial,
        "other_statuses": dict(Counter(s for s in burst.statuses.values() if not 200 <= s < 300)),
        "transport_errors": burst.errors[:5], "transport_error_count": len(burst.errors),
        "seconds": round(burst.seconds, 3), "spans_per_s": round(spans / burst.seconds),
        "request_latency": _latency_summary(burst.latencies_s),
        "server_cpu_s": round(server_cpu, 2), "client_cpu_s": round(client_cpu, 2),
        "landing_files": len(files), "landing_mb": landing_mb,
        "ingest": {"command": "agent-analytics ingest <the OTLP files> (scratch home), then the same lines joined in "
                              "one file; wall time of the whole command",
                   "as_written": ingest, "joined": ingest_joined},
    }


def _ingest_total(printed: str) -> dict:
    """The 'total (new files)' line of `agent-analytics ingest`: lines, loaded, duplicates, quarantined."""
    for line in printed.splitlines():
        if line.startswith("total (new files)"):
            numbers = [int(x) for x in line.removeprefix("total (new files)").split()]
            return dict(zip(("lines", "loaded", "duplicates", "quarantined"), numbers, strict=True))
    return {}


def bench_export(server: Server, requests: int) -> dict:
    headers = {"Authorization": f"Bearer {server.read_token}"}
    latencies, statuses = [], Counter()
    with httpx.Client(base_url=server.url, headers=headers, timeout=120) as http:
        t0 = time.perf_counter()
        warm = http.post("/v1/analytics/export", json=EXPORT_BODY)
        warm_s = time.perf_counter() - t0
        cpu0 = server.cpu_s()
        for _ in range(requests):
            t0 = time.perf_counter()
            response = http.post("/v1/analytics/export", json=EXPORT_BODY)
            latencies.append(time.perf_counter() - t0)
            statuses[response.status_code] += 1
    document = warm.json() if warm.status_code == 200 else {}
    p95 = nearest_rank(latencies, 0.95)
    return {
        "body": EXPORT_BODY, "requests": requests, "statuses": dict(statuses), "warm_up_status": warm.status_code,
        "warm_up_s": round(warm_s, 3), "p50_s": round(nearest_rank(latencies, 0.5), 3), "p95_s": round(p95, 3),
        "min_s": round(min(latencies), 3), "max_s": round(max(latencies), 3),
        "latencies_s": [round(x, 3) for x in latencies],
        "server_cpu_s_per_request": round((server.cpu_s() - cpu0) / requests, 2),
        "response_kb": round(len(warm.content) / 1024, 1), "period": document.get("period"),
        "messages": document.get("performance", {}).get("messages"),
    }


# --------------------------------------------------------------------------- the whole


def run(workdir: Path, clients: int = 8, event_batches_n: int = 2000, batch_events: int = 1000,
        trace_requests_n: int = 200, traces_per_request: int = 100, export_requests: int = 20,
        ingest_sample_files: int = 100, seed: int = 1414) -> dict:
    """The three phases against one server on `<workdir>/home`; the result (all figures)."""
    from agent_analytics.settings import load_settings

    home = workdir / "home"
    env = {**os.environ, "AGENT_ANALYTICS_HOME": str(home)}
    settings = load_settings(env)
    if not settings.warehouse_path.exists():
        raise RuntimeError(f"no warehouse at {settings.warehouse_path}: run `python -m bench.run --keep` first")
    landing = settings.landing_dir
    landing.mkdir(parents=True, exist_ok=True)
    scratch = workdir / "service"
    logs = workdir / "logs"
    logs.mkdir(parents=True, exist_ok=True)

    t0 = time.perf_counter()
    events = event_batches(scratch / "generated", event_batches_n, batch_events, seed)
    traces = trace_requests(trace_requests_n, traces_per_request, time.time_ns())
    prepared_s = time.perf_counter() - t0

    result: dict = {"prepare_bodies_s": round(prepared_s, 2), "home": str(home),
                    "server": "agent-analytics serve --host 127.0.0.1 --port <free> (one process), on the bench home"}
    before = {p.name for p in landing.iterdir()}
    start = time.perf_counter()
    try:
        with running_server(env, logs / "service.server.log") as server:
            result["events"] = bench_events(server, landing, events, clients, scratch, env, ingest_sample_files)
            del events
            result["traces"] = bench_traces(server, landing, traces, traces_per_request, clients, scratch, env)
            result["export"] = bench_export(server, export_requests)
    finally:
        # whatever happened, the later bench steps (the Dagster build reads landing/) never see our files
        for path in landing.iterdir():
            if path.name not in before and path.is_file():
                path.unlink()
        shutil.rmtree(scratch, ignore_errors=True)
    result["seconds"] = round(time.perf_counter() - start, 2)
    result["ok"] = (result["events"]["landing_matches_accepted"]
                    and result["events"]["accepted_batches"] == event_batches_n
                    and result["traces"]["accepted_requests"] == trace_requests_n
                    and all(r["all_loaded"] for r in result["events"]["ingest_sample"].values() if isinstance(r, dict))
                    and all(r["all_loaded"] for r in result["traces"]["ingest"].values() if isinstance(r, dict))
                    and result["export"]["statuses"] == {200: export_requests})
    result["targets"] = {
        "events_per_s": {"target": TARGET_EVENTS_PER_S, "pass": result["events"]["events_per_s"] >= TARGET_EVENTS_PER_S},
        "export_p95_s": {"target": TARGET_EXPORT_P95_S, "pass": result["export"]["p95_s"] <= TARGET_EXPORT_P95_S},
    }
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.service_bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, required=True, help="a bench workdir whose home/ holds a built warehouse")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients of the ingest endpoints (default 8)")
    parser.add_argument("--event-batches", type=int, default=2000, help="bodies sent to /v1/events (default 2000)")
    parser.add_argument("--batch-events", type=int, default=1000, help="events per body (default 1000)")
    parser.add_argument("--trace-requests", type=int, default=200, help="bodies sent to /v1/traces (default 200)")
    parser.add_argument("--traces-per-request", type=int, default=100, help="traces of 4 spans per body (default 100)")
    parser.add_argument("--export-requests", type=int, default=20, help="timed export requests after one warm-up (default 20)")
    parser.add_argument("--ingest-sample-files", type=int, default=100,
                        help="event files the server wrote that are also loaded by the CLI, as written and joined (default 100)")
    parser.add_argument("--result", type=Path, help="write the result JSON here (default <workdir>/logs/service.result.json)")
    args = parser.parse_args(argv)
    workdir = args.workdir.expanduser().resolve()
    result = run(workdir, args.clients, args.event_batches, args.batch_events, args.trace_requests,
                 args.traces_per_request, args.export_requests, args.ingest_sample_files)
    out = args.result or workdir / "logs" / "service.result.json"
    out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    summary = {k: result[k] for k in ("seconds", "ok", "targets")}
    summary["events_per_s"] = result["events"]["events_per_s"]
    summary["spans_per_s"] = result["traces"]["spans_per_s"]
    summary["otlp_ingest_spans_per_s"] = {k: v["spans_per_s"] for k, v in result["traces"]["ingest"].items() if k != "command"}
    summary["events_ingest_per_s"] = {k: v["events_per_s"] for k, v in result["events"]["ingest_sample"].items()
                                      if k != "command"}
    summary["export_p50_p95_s"] = (result["export"]["p50_s"], result["export"]["p95_s"])
    print(json.dumps(summary, indent=2))
    print(f"result: {out}")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
