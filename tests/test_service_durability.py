"""Nothing acknowledged is lost, nothing is loaded twice: the landing writer of the HTTP
service, and a server killed with SIGKILL during a burst of POST /v1/events."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import threading
import time
from pathlib import Path

import duckdb
import httpx

from ingestion.landing import INCOMING_PREFIX, ingest_landing, remove_stale_incoming, scan, write_landing_file
from tests.service_server import make_tokens, start_server


def test_the_writer_publishes_the_exact_bytes_under_a_new_name(tmp_path):
    landing = tmp_path / "landing"
    data = b'{"event_id":"a"}\n{"event_id":"b"}\n'
    first = write_landing_file(landing, "events", data)
    second = write_landing_file(landing, "events", data)
    assert first.name < second.name and first.parent == second.parent == landing  # in the order written
    for path in (first, second):
        prefix, stamp, rest = path.name.split("-", 2)
        assert prefix == "events" and len(stamp) == len("20261130T051333.123456") and stamp[8] == "T"
        assert rest.endswith(".jsonl") and len(rest) == 32 + len(".jsonl")
        assert path.read_bytes() == data
    assert sorted(os.listdir(landing)) == sorted([first.name, second.name])  # no temporary left behind


def test_scan_skips_writes_in_progress_silently(tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / f"{INCOMING_PREFIX}0123").write_bytes(b'{"event_id":"half')
    (landing / ".part.jsonl").write_bytes(b"{}\n")
    (landing / "notes.txt").write_text("x")
    ready = write_landing_file(landing, "otlp", b"{}\n")
    assert scan(landing) == ([ready], ["notes.txt: not a .jsonl or .jsonl.gz file"])


def test_stale_temporaries_are_removed_fresh_ones_kept(tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    stale, fresh = landing / f"{INCOMING_PREFIX}old", landing / f"{INCOMING_PREFIX}new"
    stale.write_bytes(b"x")
    fresh.write_bytes(b"y")
    an_hour_ago = time.time() - 3601
    os.utime(stale, (an_hour_ago, an_hour_ago))
    assert remove_stale_incoming(landing, 3600) == [stale.name]
    assert sorted(p.name for p in landing.iterdir()) == [fresh.name]
    assert remove_stale_incoming(tmp_path / "missing", 3600) == []


# ----------------------------------------------------------------- kill -9 during a burst

THREADS = 4
BATCHES_PER_THREAD = 30
EVENTS_PER_BATCH = 400
KILL_AFTER_ACKS = 30  # of the 120 batches: the kill lands in the middle of the burst


def _batch(thread: int, number: int) -> bytes:
    """EVENTS_PER_BATCH valid message events with ids unique to this batch."""
    lines = []
    for i in range(EVENTS_PER_BATCH):
        event = {
            "event_id": f"t{thread}-b{number}-e{i}", "type": "message",
            "occurred_at": f"2026-11-02T{i % 24:02d}:{number % 60:02d}:{thread:02d}Z", "user_id": f"u{i % 50}",
            "agent_id": "support", "status": "ok", "response_time_ms": 1000 + i,
            "llm_calls": [{"provider": "openai", "model": "gpt-4o-2024-08-06", "input_tokens": 100, "output_tokens": 10}],
        }
        lines.append(json.dumps(event, separators=(",", ":")))
    return ("\n".join(lines) + "\n").encode()


def _send(url: str, token: str, body: bytes) -> bool:
    """True when the server acknowledged the batch (202); False when the connection failed."""
    try:
        response = httpx.post(f"{url}/v1/events", content=body, headers={"Authorization": f"Bearer {token}"}, timeout=60)
    except httpx.TransportError:
        return False
    assert response.status_code == 202, response.text
    return True


def test_a_server_killed_mid_burst_loses_no_acknowledged_event_and_loads_none_twice(tmp_path):
    home = tmp_path / "home"
    token = make_tokens(home, burst="ingest")["burst"]
    server = start_server(home, tmp_path / "server.log")
    acknowledged: set[tuple[int, int]] = set()
    lock = threading.Lock()
    enough = threading.Event()

    def client(thread: int) -> None:
        for number in range(BATCHES_PER_THREAD):
            if not _send(server.url, token, _batch(thread, number)):
                return  # the server is gone: the rest is re-sent after the restart
            with lock:
                acknowledged.add((thread, number))
                if len(acknowledged) >= KILL_AFTER_ACKS:
                    enough.set()

    threads = [threading.Thread(target=client, args=(t,)) for t in range(THREADS)]
    for t in threads:
        t.start()
    assert enough.wait(timeout=300)
    server.stop(signal.SIGKILL)
    for t in threads:
        t.join()
    everything = {(t, n) for t in range(THREADS) for n in range(BATCHES_PER_THREAD)}
    assert KILL_AFTER_ACKS <= len(acknowledged) < len(everything)  # killed in the middle
    landing = home / "landing"
    written_before_restart = {p.name for p in landing.iterdir()}

    server = start_server(home, tmp_path / "server.log")
    # A client re-sends what was not acknowledged. A batch whose answer was lost on the way looks
    # the same to it, so acknowledged batches are sent again too: one as it was (the same file
    # content: the ledger knows it), three rebuilt in another order (each event a duplicate).
    again, *rebuilt = sorted(acknowledged)[:4]
    try:
        for thread, number in sorted(everything - acknowledged) + [again]:
            assert _send(server.url, token, _batch(thread, number))
        for thread, number in rebuilt:
            assert _send(server.url, token, b"".join(reversed(_batch(thread, number).splitlines(keepends=True))))
    finally:
        server.stop()

    files = sorted(p for p in landing.iterdir() if p.name.startswith("events-"))
    first_of_content: dict[str, Path] = {}
    for path in files:  # loaded in name order: the first file of a content is the one loaded
        first_of_content.setdefault(hashlib.sha256(path.read_bytes()).hexdigest(), path)
    lines_landed = sum(p.read_bytes().count(b"\n") for p in first_of_content.values())
    distinct = len(everything) * EVENTS_PER_BATCH
    warehouse = home / "warehouse.duckdb"
    run = ingest_landing(landing, warehouse, home / "raw", quiet_s=0)
    assert sorted(r.file_name for r in run.results) == [p.name for p in files]  # no temporary is a file to load
    assert not run.rejected and not run.waiting and not run.ignored
    assert sorted(r.file_name for r in run.results if not r.already_loaded) == sorted(p.name for p in first_of_content.values())
    with duckdb.connect(str(warehouse), read_only=True) as con:
        loaded, duplicates, quarantined, ledger_lines = con.execute(
            "select sum(loaded), sum(duplicates), sum(quarantined), sum(lines) from ingest.ledger").fetchone()
        ids, distinct_ids = con.execute("select count(*), count(distinct event_id) from ingest.event_ids").fetchone()
        acked_missing = con.execute(
            "select count(*) from unnest($ids) t(id) anti join ingest.event_ids e on e.event_id = t.id",
            {"ids": [f"t{t}-b{n}-e{i}" for t, n in acknowledged for i in range(EVENTS_PER_BATCH)]},
        ).fetchone()[0]
        in_duplicates = con.execute("select count(*) from ingest.duplicates").fetchone()[0]
    assert acked_missing == 0
    assert loaded == ids == distinct_ids == distinct and quarantined == 0
    assert ledger_lines == lines_landed and duplicates == in_duplicates == lines_landed - distinct
    assert duplicates >= len(rebuilt) * EVENTS_PER_BATCH and len(files) - len(first_of_content) >= 1
    # whatever a killed write left behind is a dot-name: never loaded, never counted
    leftovers = [name for name in written_before_restart if name.startswith(".")]
    assert all(name.startswith(INCOMING_PREFIX) for name in leftovers)
    assert {p.name for p in landing.iterdir() if p.is_file()} == set(leftovers)
