"""A warehouse whose raw layer holds what ingestion now refuses (loaded before the rules
existed, or with wider settings): events in year 1 and year 9999, response times of 1.7e308.
The build stays small and every output stays valid (issue: no poison pills). The home is named
`it's [home]`: its quote used to break the dbt sources and the Parquet writes, and its brackets
made the dbt sources read a glob pattern (another folder's files, or none).

Expected values by hand: day1.jsonl has messages on 2026-11-02 and 2026-11-03 (UTC); old.jsonl
adds three on 2026-11-03 whose response times become 1.7e308 and two whose times become
0001-01-01 and 9999-12-31, which the staging views leave out.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import json
import math
import os
import time
from pathlib import Path

import duckdb
import pytest

from agent_analytics.settings import load_settings
from agent_analytics.sql import literal
from agent_analytics_cli.main import main
from orchestration.build import run_build
from tests.test_end_to_end import DAY1
from tests.test_ingest import message, write_lines

BUILD_OUTPUT: list[str] = []  # what the fixture's build printed
CALL = [{"provider": "openai", "model": "gpt-4o-2024-08-06", "input_tokens": 10, "output_tokens": 1}]


def _strict_json(text: str):
    def refuse(constant):
        raise ValueError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def _rewrite(batch: Path, table: str, replace: str) -> None:
    """Change stored rows in place, as an older load without today's rules could have stored them."""
    path = batch / f"{table}.parquet"
    tmp = batch / f"{table}.tmp.parquet"
    con = duckdb.connect()
    try:
        con.execute("set TimeZone = 'UTC'")
        con.execute(f"copy (select * replace ({replace}) from read_parquet(?)) to {literal(tmp)} (format parquet)", [str(path)])
    finally:
        con.close()
    os.replace(tmp, path)


@pytest.fixture(scope="module")
def poisoned(tmp_path_factory):
    home = tmp_path_factory.mktemp("poison") / "it's [home]"
    patch = pytest.MonkeyPatch()
    saved_env = dict(os.environ)
    patch.setenv("AGENT_ANALYTICS_HOME", str(home))
    patch.setenv("AGENT_ANALYTICS_TZ", "UTC")
    settings = load_settings()
    old = write_lines(home.parent / "old.jsonl",
                      [message(f"o{i}", "2026-11-03T13:00:00Z", llm_calls=CALL) for i in range(1, 6)])
    assert main(["ingest", str(DAY1), str(old)]) == 0
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    [batch_id] = con.execute("select batch_id from ingest.ledger where file_name = 'old.jsonl'").fetchone()
    con.close()
    batch = settings.raw_dir / "batches" / batch_id
    when = """case event_id when 'o4' then timestamp '0001-01-01 00:00:00'
                            when 'o5' then timestamp '9999-12-31 23:59:59' else occurred_at end as occurred_at"""
    _rewrite(batch, "messages", when + """, case when event_id in ('o1', 'o2', 'o3') then 1.7e308
                                               else response_time_ms end as response_time_ms""")
    _rewrite(batch, "llm_calls", when)
    # landing/ holds a truncated gzip between two good files: the build warns and goes on
    settings.landing_dir.mkdir(parents=True, exist_ok=True)
    write_lines(settings.landing_dir / "a-late.jsonl", [message("late-1", "2026-11-03T14:00:00Z")])
    (settings.landing_dir / "b-broken.jsonl.gz").write_bytes(gzip.compress(b"x" * 5000)[:30])
    write_lines(settings.landing_dir / "c-late.jsonl", [message("late-2", "2026-11-03T15:00:00Z")])
    an_hour_ago = time.time() - 3600  # written long ago: a truncated gzip is broken, not being copied
    for f in settings.landing_dir.iterdir():
        os.utime(f, (an_hour_ago, an_hour_ago))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert run_build(settings)
    BUILD_OUTPUT.append(out.getvalue())
    yield settings
    os.environ.clear()
    os.environ.update(saved_env)
    patch.undo()


def _query(settings, sql):
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_a_corrupt_landing_file_is_reported_and_the_rest_loads(poisoned):
    assert "  warning check: landing_files_loadable (rejected: b-broken.jsonl.gz: not a readable gzip file (" in BUILD_OUTPUT[0]
    assert "rejected_files=1" in BUILD_OUTPUT[0]
    assert sorted(p.name for p in (poisoned.landing_dir / "loaded").iterdir()) == ["a-late.jsonl", "c-late.jsonl"]
    assert [p.name for p in (poisoned.landing_dir / "rejected").iterdir()] == ["b-broken.jsonl.gz"]
    assert _query(poisoned, "select file_name from ingest.rejected_files") == [("b-broken.jsonl.gz",)]
    assert _query(poisoned, "select count(*) from fct_messages where message_id like 'late-%'") == [(2,)]


def test_events_outside_the_accepted_range_do_not_stretch_the_day_spine(poisoned):
    days = "select min(activity_date)::varchar, max(activity_date)::varchar, count(*) from fct_daily_activity"
    assert _query(poisoned, days) == [
        ("2026-11-02", "2026-11-03", 2)]
    assert _query(poisoned, "select count(*), count(*) filter (where message_id in ('o4', 'o5')) from fct_messages") == [(12, 0)]
    assert _query(poisoned, "select count(*) from fct_llm_calls where message_id in ('o4', 'o5')") == [(0,)]


def test_outputs_stay_valid_json_with_huge_numbers(poisoned, capsys):
    document = _strict_json((poisoned.exports_dir / "analytics.json").read_text())
    assert document["schema_version"]
    text = (poisoned.exports_dir / "daily.csv").read_text()
    assert "inf" not in text.lower() and "nan" not in text.lower()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["messages"] for r in rows if r["date"] == "2026-11-03"] == ["7"]
    for argv in (["export", "--start", "2026-11-02", "--end", "2026-11-03", "--format", "json"],
                 ["metrics", "--start", "2026-11-02", "--end", "2026-11-03", "--format", "json"]):
        capsys.readouterr()
        assert main(argv) == 0
        _strict_json(capsys.readouterr().out)
    assert main(["metrics", "--start", "2026-11-02", "--end", "2026-11-03"]) == 0
    assert "Agent analytics" in capsys.readouterr().out


def test_numbers_in_the_documents_are_finite_or_null(poisoned):
    def walk(value):
        if isinstance(value, float):
            assert math.isfinite(value)
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    walk(_strict_json((poisoned.exports_dir / "analytics.json").read_text()))


def test_a_broken_setting_fails_only_its_steps_and_says_why(poisoned, capsys):
    """A reports.toml that is not TOML fails the three report steps with the file's reason;
    the marts and exports of the same build are refreshed all the same. Runs last: it rebuilds."""
    bad = poisoned.home / "reports.toml"
    bad.write_text("[[report]\nname = 'weekly'\n")
    before = (poisoned.exports_dir / "analytics.json").stat().st_mtime_ns
    try:
        capsys.readouterr()
        assert not run_build(poisoned)
        err = capsys.readouterr().err.splitlines()
    finally:
        bad.unlink()
    # no traceback: the failed steps, then one line each with the first line of its error
    assert err[0] == "agent-analytics: build failed in step(s): daily_reports, monthly_reports, weekly_reports"
    assert len(err) == 4
    assert sorted(line.split(":")[0].strip() for line in err[1:]) == ["daily_reports", "monthly_reports", "weekly_reports"]
    assert all(f"{bad}: not valid TOML" in line for line in err[1:])
    assert (poisoned.exports_dir / "analytics.json").stat().st_mtime_ns > before
