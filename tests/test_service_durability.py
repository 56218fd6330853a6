"""Nothing acknowledged is lost, nothing is loaded twice: the landing writer of the HTTP
service, and a server killed with SIGKILL during a burst of POST /v1/events."""

from __future__ import annotations

import os
import time

from ingestion.landing import INCOMING_PREFIX, remove_stale_incoming, scan, write_landing_file


def test_the_writer_publishes_the_exact_bytes_under_a_new_name(tmp_path):
    landing = tmp_path / "landing"
    data = b'{"event_id":"a"}\n{"event_id":"b"}\n'
    first = write_landing_file(landing, "events", data)
    second = write_landing_file(landing, "events", data)
    assert first != second and first.parent == second.parent == landing
    for path in (first, second):
        prefix, stamp, rest = path.name.split("-", 2)
        assert prefix == "events" and len(stamp) == len("20261130T051333") and stamp[8] == "T"
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
