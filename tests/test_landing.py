"""The landing folder never blocks: a file that cannot be read or loaded moves to
landing/rejected/ with its reason, the files around it load and move to landing/loaded/, and
links, FIFOs and directories are refused or left alone with a reason (issue: no poison pills)."""

from __future__ import annotations

import gzip
import json
import os
import time
from pathlib import Path

import duckdb
import pytest

from ingestion import load
from ingestion.landing import ingest_landing
from tests.test_ingest import counts, message, query, raw, write_lines


@pytest.fixture
def landing(tmp_path: Path) -> Path:
    folder = tmp_path / "home" / "landing"
    folder.mkdir(parents=True)
    return folder


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_a_corrupt_gzip_is_rejected_and_the_other_files_load(landing, home):
    write_lines(landing / "a.jsonl", [message("a-1"), message("a-2")])
    good = gzip.compress(write_lines(landing.parent / "b.tmp", [message(f"b-{i}") for i in range(50)]).read_bytes())
    (landing / "b-truncated.jsonl.gz").write_bytes(good[: len(good) // 2])
    (landing / "c-garbage.jsonl.gz").write_bytes(b"\x1f\x8b" + b"not really gzip" * 10)
    write_lines(landing / "d.jsonl", [message("d-1")])

    run = ingest_landing(landing, home.warehouse, home.raw, quiet_s=0)

    assert [(r.file_name, counts(r)) for r in run.results] == [("a.jsonl", (2, 2, 0, 0)), ("d.jsonl", (1, 1, 0, 0))]
    assert [r.file_name for r in run.rejected] == ["b-truncated.jsonl.gz", "c-garbage.jsonl.gz"]
    assert run.rejected[0].reason.startswith("not a readable gzip file (")
    assert run.rejected[1].reason.startswith("not a readable gzip file (")
    assert _files(landing) == ["loaded", "rejected"]
    assert _files(landing / "loaded") == ["a.jsonl", "d.jsonl"]
    assert _files(landing / "rejected") == ["b-truncated.jsonl.gz", "c-garbage.jsonl.gz"]
    assert (landing / "rejected" / "b-truncated.jsonl.gz").read_bytes() == good[: len(good) // 2]  # kept as it came
    rows = query(home, "select file_name, moved_to, reason from ingest.rejected_files order by file_name")
    assert [(name, Path(moved).parent.name) for name, moved, _ in rows] == [
        ("b-truncated.jsonl.gz", "rejected"), ("c-garbage.jsonl.gz", "rejected")]
    assert [reason for _, _, reason in rows] == [r.reason for r in run.rejected]
    # nothing of the rejected files reached the raw layer, the ledger or the quarantine
    assert raw(home, "messages", "event_id") == [("a-1",), ("a-2",), ("d-1",)]
    assert query(home, "select file_name from ingest.ledger order by 1") == [("a.jsonl",), ("d.jsonl",)]
    assert query(home, "select count(*) from ingest.quarantine") == [(0,)]
    # the next run has nothing left to do and fails on nothing
    again = ingest_landing(landing, home.warehouse, home.raw, quiet_s=0)
    assert (again.results, again.rejected) == ([], [])


def test_links_fifos_and_directories_are_never_read(tmp_path, landing, home):
    secret = tmp_path / "outside" / "secret.jsonl"
    secret.parent.mkdir()
    secret.write_text('{"password": "hunter2"}\n' + message("outside-1") + "\n")
    (landing / "link.jsonl").symlink_to(secret)
    write_lines(landing / "inside.jsonl", [message("in-1")])
    (landing / "link-inside.jsonl").symlink_to(landing / "inside.jsonl")
    os.mkfifo(landing / "pipe.jsonl")
    (landing / "folder.jsonl").mkdir()
    (landing / "sub").mkdir()
    (landing / "notes.txt").write_text("hello")

    run = ingest_landing(landing, home.warehouse, home.raw, quiet_s=0)

    assert [r.file_name for r in run.results] == ["inside.jsonl"]
    assert {r.file_name: r.reason for r in run.rejected} == {
        "folder.jsonl": "not a regular file (a directory)",
        "link-inside.jsonl": "a symbolic link (links in the landing folder are not followed)",
        "link.jsonl": "a symbolic link (links in the landing folder are not followed)",
        "pipe.jsonl": "not a regular file (a FIFO)",
    }
    assert run.ignored == ["notes.txt: not a .jsonl or .jsonl.gz file",
                           "sub: a directory (only files at the top of landing/ are read)"]
    assert _files(landing / "rejected") == ["folder.jsonl", "link-inside.jsonl", "link.jsonl", "pipe.jsonl"]
    assert (landing / "rejected" / "link.jsonl").is_symlink()  # the link moved, its target untouched
    assert secret.read_text().startswith('{"password"')
    assert raw(home, "messages", "event_id") == [("in-1",)]
    con = duckdb.connect(str(home.warehouse), read_only=True)
    try:
        stored = con.execute("select count(*) from ingest.quarantine where raw_line like '%hunter2%'").fetchone()
    finally:
        con.close()
    assert stored == (0,)


def test_a_file_whose_load_fails_is_rejected_with_the_error(landing, home, monkeypatch):
    write_lines(landing / "a.jsonl", [message("a-1")])
    write_lines(landing / "b.jsonl", [message("b-1")])
    write_lines(landing / "c.jsonl", [message("c-1")])
    classify = load._classify

    def failing_for_b(con, batch_id):
        if con.execute("select count(*) from ingest_work.parsed where event_id = 'b-1'").fetchone()[0]:
            raise TypeError("combine() argument 1 must be datetime.date, not str")
        return classify(con, batch_id)

    monkeypatch.setattr(load, "_classify", failing_for_b)
    run = ingest_landing(landing, home.warehouse, home.raw, quiet_s=0)

    assert [r.file_name for r in run.results] == ["a.jsonl", "c.jsonl"]
    assert [(r.file_name, r.reason) for r in run.rejected] == [
        ("b.jsonl", "cannot be loaded (TypeError: combine() argument 1 must be datetime.date, not str)")]
    assert raw(home, "messages", "event_id") == [("a-1",), ("c-1",)]
    assert _files(landing / "loaded") == ["a.jsonl", "c.jsonl"]


def test_a_failure_of_the_machine_is_not_blamed_on_the_file(landing, home, monkeypatch):
    """A full disk or an I/O error is raised (the run fails and retries); the file stays waiting."""
    write_lines(landing / "a.jsonl", [message("a-1")])

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(load, "_write_batch", disk_full)
    with pytest.raises(OSError, match="No space left"):
        ingest_landing(landing, home.warehouse, home.raw, quiet_s=0)
    assert _files(landing) == ["a.jsonl"]


def test_a_home_with_a_quote_in_its_path(tmp_path):
    from ingestion.load import ingest_paths

    home = tmp_path / "it's home"
    path = write_lines(tmp_path / "q.jsonl", [message("q-1")])
    [result] = ingest_paths([path], home / "warehouse.duckdb", home / "raw")
    assert counts(result) == (1, 1, 0, 0)
    con = duckdb.connect()
    try:
        messages = str(home / "raw" / "batches" / "*" / "messages.parquet")
        rows = con.execute("select event_id from read_parquet(?)", [messages]).fetchall()
    finally:
        con.close()
    assert rows == [("q-1",)]


def test_a_file_still_being_written_waits_for_a_later_run(landing, home):
    """A plain file whose last line has no line end yet, or a gzip ending before its end marker,
    changed moments ago, is being written or copied: it stays in landing/ (not loaded in part,
    not rejected). Once it has been quiet for `quiet_s`, it is judged as it is."""
    partial = landing / "a-partial.jsonl"
    partial.write_text(message("p-1") + "\n" + message("p-2")[:40])
    copied = gzip.compress("".join(message(f"g-{i}") + "\n" for i in range(200)).encode())
    (landing / "b-copying.jsonl.gz").write_bytes(copied[: len(copied) // 2])
    write_lines(landing / "c-done.jsonl", [message("c-1")])

    run = ingest_landing(landing, home.warehouse, home.raw, quiet_s=60)

    assert [r.file_name for r in run.results] == ["c-done.jsonl"]
    assert run.rejected == []
    assert [w.split(":")[0] for w in run.waiting] == ["a-partial.jsonl", "b-copying.jsonl.gz"]
    assert "no line end yet" in run.waiting[0] and "still being copied" in run.waiting[1]
    assert _files(landing) == ["a-partial.jsonl", "b-copying.jsonl.gz", "loaded"]

    # the writers finish: the next run loads both
    partial.write_text(message("p-1") + "\n" + message("p-2") + "\n")
    (landing / "b-copying.jsonl.gz").write_bytes(copied)
    run = ingest_landing(landing, home.warehouse, home.raw, quiet_s=60)
    assert [(r.file_name, counts(r)) for r in run.results] == [("a-partial.jsonl", (2, 2, 0, 0)),
                                                               ("b-copying.jsonl.gz", (200, 200, 0, 0))]

    # a truncated gzip that has been quiet for longer is broken: rejected
    (landing / "d-broken.jsonl.gz").write_bytes(copied[:100])
    long_ago = time.time() - 120
    os.utime(landing / "d-broken.jsonl.gz", (long_ago, long_ago))
    run = ingest_landing(landing, home.warehouse, home.raw, quiet_s=60)
    assert [r.file_name for r in run.rejected] == ["d-broken.jsonl.gz"] and run.waiting == []


def test_a_file_name_that_is_not_utf8_loads_or_is_rejected_by_its_bytes(landing, home):
    """Python holds such a name with surrogates, which DuckDB refused: the whole run failed."""
    good = Path(os.fsdecode(bytes(landing) + b"/good\xff.jsonl"))
    write_lines(good, [message("u-1")])
    broken = Path(os.fsdecode(bytes(landing) + b"/broken\xfe.jsonl.gz"))
    broken.write_bytes(b"\x1f\x8bnot gzip at all")
    write_lines(landing / "plain.jsonl", [message("u-2")])

    run = ingest_landing(landing, home.warehouse, home.raw, quiet_s=0)

    assert [r.file_name for r in run.results] == ["good\\xff.jsonl", "plain.jsonl"]
    assert [r.file_name for r in run.rejected] == ["broken\\xfe.jsonl.gz"]
    assert query(home, "select file_name from ingest.ledger order by 1") == [("good\\xff.jsonl",), ("plain.jsonl",)]
    assert query(home, "select file_name from ingest.rejected_files") == [("broken\\xfe.jsonl.gz",)]
    assert raw(home, "messages", "event_id, source_file") == [("u-1", "good\\xff.jsonl"), ("u-2", "plain.jsonl")]


def test_a_line_without_end_is_refused_not_held_in_memory(landing, home, monkeypatch):
    monkeypatch.setattr(load, "MAX_CARRY_BYTES", 1000)
    monkeypatch.setattr(load, "CHUNK_BYTES", 256)
    (landing / "array.jsonl").write_text("[" + ",".join(message(f"x-{i}") for i in range(50)) + "]")
    write_lines(landing / "fine.jsonl", [message("f-1")])
    run = ingest_landing(landing, home.warehouse, home.raw, quiet_s=0)
    assert [r.file_name for r in run.results] == ["fine.jsonl"]
    assert [(r.file_name, r.reason) for r in run.rejected] == [
        ("array.jsonl", "a line of over 1,000 bytes without a line end (not JSON Lines)")]


def test_files_of_the_same_name_never_replace_each_other_in_loaded(landing, home):
    for content in ("first", "second", "third"):
        write_lines(landing / "daily.jsonl", [message(f"{content}-1")])
        ingest_landing(landing, home.warehouse, home.raw, quiet_s=0)
    kept = _files(landing / "loaded")
    assert len(kept) == 3 and kept[-1] == "daily.jsonl" and all(k.endswith(".jsonl") for k in kept)
    assert "first-1" in (landing / "loaded" / "daily.jsonl").read_text()
    assert sorted(next(iter(json.loads(line)["event_id"] for line in (landing / "loaded" / k).read_text().splitlines()))
                  for k in kept) == ["first-1", "second-1", "third-1"]


def test_unfinished_gzip_and_future_times(landing, home):
    """An empty or two-byte .jsonl.gz just created is still being copied (it was loaded as an
    empty plain file and moved away); a file stamped in the future is judged now, never left
    waiting forever."""
    (landing / "a.jsonl.gz").write_bytes(b"")
    (landing / "b.jsonl.gz").write_bytes(b"\x1f")
    write_lines(landing / "c.jsonl", [message("c-1")])
    (landing / "d-future.jsonl").write_text(message("d-1") + "\n" + message("d-2")[:30])
    in_a_day = time.time() + 86400
    os.utime(landing / "d-future.jsonl", (in_a_day, in_a_day))

    run = ingest_landing(landing, home.warehouse, home.raw, quiet_s=60)

    assert [w.split(":")[0] for w in run.waiting] == ["a.jsonl.gz", "b.jsonl.gz"]
    assert [(r.file_name, counts(r)) for r in run.results] == [("c.jsonl", (1, 1, 0, 0)), ("d-future.jsonl", (2, 1, 0, 1))]
