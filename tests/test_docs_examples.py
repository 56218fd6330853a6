"""The examples of docs/events.md (and the README's), loaded through `agent-analytics ingest`, do
what the page says.

The page is the input format users write their exporters against: every JSON example in it
is extracted here and loaded into a fresh home, the complete examples must load, the bad
lines must be quarantined with the reasons the page lists, and the console output it shows
must be the command's. A change to the loader that the page does not follow fails here.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import duckdb
import pytest

from agent_analytics_cli.main import main
from ingestion.validate import CALL_FIELDS, FIELDS, TOOL_FIELDS

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "events.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.S | re.M)


def blocks(kind: str, page: Path = DOC) -> list[tuple[int, str]]:
    """(offset in the page, text) of every fenced block of the given language."""
    text = page.read_text(encoding="utf-8")
    return [(m.start(), m.group(2)) for m in FENCE.finditer(text) if m.group(1) == kind]


def table_rows(after: int, header: str) -> list[list[str]]:
    """Cells of the first table with this header after `after` in the page, backticks removed."""
    text = DOC.read_text(encoding="utf-8")
    start = text.index(header, after)
    rows = []
    for row in text[start:].splitlines()[2:]:
        if not row.startswith("|"):
            break
        rows.append([cell.strip().strip("`") for cell in row.strip("|").split("|")])
    return rows


@pytest.fixture
def cli(tmp_path, monkeypatch, capsys):
    """`agent-analytics ARGS...` in this process on a fresh home with default settings; returns
    (exit code, stdout) and the home's warehouse file."""
    for name in [n for n in os.environ if n.startswith("AGENT_ANALYTICS_")]:
        monkeypatch.delenv(name)
    home = tmp_path / "home"
    monkeypatch.setenv("AGENT_ANALYTICS_HOME", str(home))
    monkeypatch.chdir(tmp_path)

    def run(*args: str) -> tuple[int, str]:
        capsys.readouterr()
        code = main(["ingest", *args])
        return code, capsys.readouterr().out

    run.warehouse = home / "warehouse.duckdb"
    return run


def query(warehouse: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def one_line(event: dict) -> str:
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False)


def test_the_complete_examples_load_and_match_the_file_to_copy(cli, tmp_path):
    events = [json.loads(text) for _, text in blocks("json")]
    ready_to_copy = blocks("jsonl")[0][1]
    assert sorted({e["type"] for e in events}) == ["deployment", "health_check", "message", "queue_sample"]
    # the one-line file holds exactly the events shown over several lines
    assert ready_to_copy == "".join(one_line(e) + "\n" for e in events)

    (tmp_path / "examples.jsonl").write_text(ready_to_copy, encoding="utf-8")
    code, out = cli("examples.jsonl")

    assert code == 0
    assert query(cli.warehouse, "select lines, loaded, duplicates, quarantined from ingest.ledger") == [(5, 5, 0, 0)]
    assert query(cli.warehouse, "select event_id from ingest.event_ids order by event_id") == sorted(
        (e["event_id"],) for e in events)


def test_every_field_is_documented_and_shown_in_a_complete_example():
    text = DOC.read_text(encoding="utf-8")
    documented = set()
    start = 0
    while (start := text.find("| field | type | rule |", start + 1)) >= 0:
        documented |= {row[0] for row in table_rows(start, "| field | type | rule |")}
    assert documented == set(FIELDS) | set(CALL_FIELDS) | set(TOOL_FIELDS)

    shown = set()
    for _, block in blocks("json"):
        event = json.loads(block)
        shown |= set(event)
        for item in event.get("llm_calls", []) + event.get("tool_calls", []):
            shown |= set(item)
    assert shown == documented


def test_the_bad_lines_are_quarantined_with_the_reasons_the_page_lists(cli, tmp_path):
    offset, lines = next((at, text) for at, text in blocks("jsonl") if "this is not json" in text)
    expected = [(int(line), reason) for line, reason in table_rows(offset, "| line | reason |")]
    stated = re.search(r"prints `lines (\d+), loaded (\d+), duplicates (\d+),\s+quarantined (\d+)`",
                       DOC.read_text(encoding="utf-8")[offset:])

    (tmp_path / "mixed.jsonl").write_text(lines, encoding="utf-8")
    code, out = cli("mixed.jsonl")

    assert code == 0
    assert len(expected) == 30 and lines.count("\n") == 32
    assert query(cli.warehouse, "select line_number, reason from ingest.quarantine order by line_number") == expected
    assert query(cli.warehouse, "select lines, loaded, duplicates, quarantined from ingest.ledger") == [
        tuple(int(n) for n in stated.groups())]
    assert query(cli.warehouse, "select event_id from ingest.event_ids order by event_id") == [("h-3",), ("m-1",)]


def test_the_duplicates_example_prints_the_console_output_shown(cli, tmp_path):
    [(_, console)] = blocks("console")
    command, *shown = console.splitlines()
    assert command == "$ agent-analytics ingest events/"
    repeated = next(text for _, text in blocks("jsonl") if '"dup-1"' in text)
    (tmp_path / "events").mkdir()
    (tmp_path / "events" / "day1.jsonl").write_text(repeated, encoding="utf-8")

    code, out = cli("events/")

    assert code == 0
    assert out.splitlines() == shown
    assert query(cli.warehouse, "select line_number, event_id from ingest.duplicates") == [(3, "dup-1")]


def test_the_readme_example_loads(cli, tmp_path):
    [(_, example)] = blocks("jsonl", REPO / "README.md")
    (tmp_path / "readme.jsonl").write_text(example, encoding="utf-8")

    code, out = cli("readme.jsonl")

    assert code == 0
    assert query(cli.warehouse, "select lines, loaded, duplicates, quarantined from ingest.ledger") == [(2, 2, 0, 0)]
    assert query(cli.warehouse, "select event_id from ingest.event_ids order by event_id") == [("h-1",), ("m-1",)]
