"""Compaction of the raw layer (ingestion/compaction.py, docs/raw-layer.md).

One home goes through: load (a generated week whose daily files hold late events of earlier
days, the hand fixture, an OpenTelemetry trace, a file with an event three hours ahead), build,
compact, build again incrementally and in full. Every table of the warehouse (marts and the
intermediate model) must be the same row for row before and after, and so must the raw rows,
the ledger and the duplicate bookkeeping. Then, on the compacted layer: a file loaded again is
"already loaded", the same events in a new file are all duplicates of the compacted batches, a
late event of a compacted day loads and reaches the marts, a later span of the compacted trace
writes a newer revision that the marts keep, and a second compaction adds a second file to
that day.

The crash tests kill a compaction at each step (os._exit in a subprocess) and check that the
next load's recovery leaves every raw row exactly once.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace

import duckdb
import pyarrow.dataset as ds
import pytest

from agent_analytics.settings import load_settings
from agent_analytics.synthetic_events import generate
from ingestion import compaction, raw_layer
from ingestion.load import ingest_paths
from orchestration.build import run_build
from tests.otlp_fixtures import lines, request, span, span_id, trace_id

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures"
TABLES = list(raw_layer.RAW_TABLES)
BOOKKEEPING = ("ledger", "quarantine", "duplicates", "event_ids", "otel_spans", "otel_traces")


def utc_now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def raw_rows(raw_dir: Path, table: str) -> list[tuple]:
    """Every row of a raw table as the dbt sources read it (both layouts), sorted."""
    globs = [str(raw_dir / "batches" / "*" / f"{table}.parquet"), str(raw_dir / table / "event_date=*" / "*.parquet")]
    with duckdb.connect() as con:
        con.execute("set TimeZone = 'UTC'")
        present = [g for g in globs if con.execute("select count(*) from glob(?)", [g]).fetchone()[0]]
        schema = raw_dir / "batches" / raw_layer.SCHEMA_BATCH / f"{table}.parquet"
        names = ", ".join(r[0] for r in con.execute("describe select * from read_parquet(?)", [str(schema)]).fetchall())
        return con.execute(f"select {names} from read_parquet(?, union_by_name = true, hive_partitioning = false) "
                           "order by all", [present]).fetchall()


def all_raw(raw_dir: Path) -> dict[str, list[tuple]]:
    return {table: raw_rows(raw_dir, table) for table in TABLES}


def warehouse_tables(warehouse: Path, schema: str, tables=None) -> dict[str, list[tuple]]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        con.execute("set TimeZone = 'UTC'")
        if tables is None:
            tables = [r[0] for r in con.execute(
                "select table_name from information_schema.tables where table_schema = ? and table_type = 'BASE TABLE' "
                "order by 1", [schema]).fetchall()]
        return {t: con.execute(f"select * from {schema}.{t} order by all").fetchall() for t in tables}


def same_rows(before: list[tuple], after: list[tuple]) -> bool:
    """Equal row for row; doubles (sums of response times) may differ in the last bits when
    the rows arrive in another order, everything else must be equal."""
    if len(before) != len(after):
        return False
    for a, b in zip(before, after, strict=True):
        for x, y in zip(a, b, strict=True):
            if isinstance(x, float) and isinstance(y, float):
                if not math.isclose(x, y, rel_tol=1e-12, abs_tol=1e-9):
                    return False
            elif x != y:
                return False
    return True


def assert_same_marts(before: dict, after: dict) -> None:
    assert set(before) == set(after)
    different = [t for t in before if not same_rows(before[t], after[t])]
    assert different == []


T = trace_id(1)
ROOT, CHAT1, CHAT2 = span_id(0xA1), span_id(0xA2), span_id(0xA3)
ROOT_ATTRS = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.id": "support", "user.id": "u-otel"}
CHAT_ATTRS = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o",
              "gen_ai.usage.input_tokens": 100, "gen_ai.usage.output_tokens": 10}


def otel_first() -> str:
    """The trace's root and first call (2026-11-02 12:00 UTC): revision 0."""
    return lines(request(span(T, ROOT, start_ms=0, duration_ms=1500, attributes=ROOT_ATTRS, name="invoke_agent"),
                         span(T, CHAT1, ROOT, start_ms=10, duration_ms=500, attributes=CHAT_ATTRS, name="chat")))


def otel_late() -> str:
    """A second call of the same trace arriving later: the message again, revision 1."""
    return lines(request(span(T, CHAT2, ROOT, start_ms=600, duration_ms=400, attributes=CHAT_ATTRS, name="chat")))


def message(event_id: str, at: str, user: str = "u-late") -> str:
    return json.dumps({"event_id": event_id, "type": "message", "occurred_at": at, "user_id": user,
                       "agent_id": "support", "status": "ok", "response_time_ms": 1200}) + "\n"


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """A built home, then compacted and built again (incrementally, then in full); the
    snapshots of each stage."""
    base = tmp_path_factory.mktemp("compaction")
    generated = generate(base / "generated", 3_000, 7, seed=11, end=date(2026, 11, 12))
    otel = base / "otel-1.jsonl"
    otel.write_text(otel_first())
    ahead = base / "ahead.jsonl"  # an event three hours from now: its batch is not closed
    ahead.write_text(message("m-ahead", (utc_now() + timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%SZ"), "u-ahead")
                     + message("m-old", "2026-11-03T08:00:00Z", "u-ahead"))
    files = [*generated.files, FIXTURES / "day1.jsonl", FIXTURES / "day2.jsonl", otel, ahead]
    saved = dict(os.environ)
    os.environ.update(AGENT_ANALYTICS_HOME=str(base / "home"), AGENT_ANALYTICS_TZ="America/New_York")
    try:
        settings = load_settings()
        settings.ensure_dirs()
        results = ingest_paths(files, settings.warehouse_path, settings.raw_dir)
        assert run_build(settings)
        state = SimpleNamespace(base=base, settings=settings, results=results, ahead=ahead, files=files)
        state.marts = warehouse_tables(settings.warehouse_path, "main")
        state.bookkeeping = warehouse_tables(settings.warehouse_path, "ingest", BOOKKEEPING)
        state.raw = all_raw(settings.raw_dir)
        state.cutoff = utc_now() + timedelta(minutes=1)
        state.plans = compaction.compact(settings.warehouse_path, settings.raw_dir, state.cutoff, max_batches=5)
        state.raw_compacted = all_raw(settings.raw_dir)
        state.bookkeeping_compacted = warehouse_tables(settings.warehouse_path, "ingest", BOOKKEEPING)
        assert run_build(settings)
        state.marts_incremental = warehouse_tables(settings.warehouse_path, "main")
        assert run_build(settings, full_refresh=True)
        state.marts_full = warehouse_tables(settings.warehouse_path, "main")
        yield state
    finally:
        os.environ.clear()
        os.environ.update(saved)


def batch_folders(raw_dir: Path) -> set[str]:
    return {p.name for p in (raw_dir / "batches").iterdir()} - {raw_layer.SCHEMA_BATCH}


def test_every_closed_batch_is_compacted_and_the_open_one_waits(home):
    by_file = {Path(r.file_name).name: r.batch_id for r in home.results}
    open_batch = by_file["ahead.jsonl"]
    compacted = {b for plan in home.plans for b in plan.batches}
    assert compacted == set(by_file.values()) - {open_batch}
    assert len(home.plans) == 2  # 10 closed batches, at most 5 per plan
    assert batch_folders(home.settings.raw_dir) == {open_batch}
    assert not any((home.settings.raw_dir / "_compaction").iterdir())


def test_the_raw_rows_and_the_bookkeeping_are_unchanged(home):
    assert home.raw_compacted == home.raw
    assert home.bookkeeping_compacted == home.bookkeeping
    ledger = home.bookkeeping["ledger"]
    assert all(row[10] == row[5] + row[6] + row[7] for row in ledger)  # records = loaded + duplicates + quarantined


def test_day_files_are_hive_partitions_of_the_utc_day_sorted_by_time(home):
    raw_dir = home.settings.raw_dir
    for table in TABLES:
        for file in (raw_dir / table).glob("event_date=*/*.parquet"):
            day = date.fromisoformat(file.parent.name.removeprefix("event_date="))
            with duckdb.connect() as con:
                times = [r[0] for r in con.execute("select occurred_at from read_parquet(?)", [str(file)]).fetchall()]
            assert {t.date() for t in times} == {day}, file
            assert times == sorted(times), file
    # Plain Parquet in Hive folders: a reader other than DuckDB (Arrow here, Spark alike) gets
    # every compacted row and the partition column.
    dataset = ds.dataset(raw_dir / "messages", format="parquet", partitioning="hive")
    table = dataset.to_table(columns=["event_id", "occurred_at", "event_date"])
    compacted_ids = {r[0] for r in home.raw["messages"]} - {r[0] for r in raw_rows_of_batches(raw_dir, "messages")}
    assert set(table.column("event_id").to_pylist()) == compacted_ids
    assert all(str(d) == str(t.date()) for d, t in zip(table.column("event_date").to_pylist(),
                                                       table.column("occurred_at").to_pylist(), strict=True))


def raw_rows_of_batches(raw_dir: Path, table: str) -> list[tuple]:
    with duckdb.connect() as con:
        return con.execute("select event_id from read_parquet(?, union_by_name = true)",
                           [str(raw_dir / "batches" / "*" / f"{table}.parquet")]).fetchall()


def test_the_marts_are_the_same_after_compaction_incremental_and_full(home):
    assert_same_marts(home.marts, home.marts_incremental)
    assert_same_marts(home.marts, home.marts_full)


def test_the_sources_read_both_layouts_from_one_place(home):
    """The dbt sources' files are the vars raw_layer_root/raw_layer_files, and they name exactly
    the two layouts the raw layer writes (the Spark target reads the same vars)."""
    manifest = home.settings.home / "dbt_target" / "manifest.json"
    sources = json.loads(manifest.read_text())["sources"]
    location = sources["source.agent_analytics.raw.messages"]["meta"]["external_location"]
    raw = str(home.settings.raw_dir)
    assert location == (f"read_parquet(['{raw}/batches/*/{{name}}.parquet', '{raw}/{{name}}/event_date=*/*.parquet'], "
                        "union_by_name = true, hive_partitioning = false, allow_empty = true)")


def test_the_incremental_filter_reaches_the_parquet_scan(home):
    """The staging view's `loaded_at > watermark` (fct_messages' incremental read, the watermark
    written in as a literal) reaches the Parquet files' statistics: nothing is newer than the
    marts here, so DuckDB either plans no scan at all (the statistics prove the filter empty)
    or scans with the filter and emits no row."""
    profile = home.base / "profile.json"
    with duckdb.connect(str(home.settings.warehouse_path), read_only=True) as con:
        [(watermark,)] = con.execute("select max(loaded_at) from fct_messages").fetchall()
        con.execute("pragma enable_profiling = 'json'")
        con.execute(f"pragma profiling_output = '{profile}'")
        assert con.execute(f"select count(*) from stg_raw__messages "
                           f"where loaded_at > cast('{watermark}' as timestamp)").fetchone() == (0,)
        con.execute("pragma disable_profiling")
    operators = []

    def walk(node):
        for child in node.get("operator", []) + node.get("children", []):
            operators.append(child)
            walk(child)

    walk(json.loads(profile.read_text()))
    scans = [o for o in operators if o.get("name") == "READ_PARQUET"]
    if scans:
        assert all("loaded_at >" in str(s["extra_info"].get("Filters")) for s in scans)
        assert [s["intermediate_rows"] for s in scans] == [0] * len(scans)
    else:
        assert "EMPTY_RESULT" in {o.get("name") for o in operators}


def test_after_compaction_duplicates_late_events_and_revisions(home):
    settings = home.settings
    first_batches = {Path(r.file_name).name: r.batch_id for r in home.results}
    day1 = FIXTURES / "day1.jsonl"
    [again] = ingest_paths([day1], settings.warehouse_path, settings.raw_dir)
    assert again.already_loaded and again.batch_id == first_batches["day1.jsonl"]

    # The same events in a new file (other bytes): every one a duplicate of the compacted batch.
    reordered = home.base / "day1-reordered.jsonl"
    reordered.write_text("".join(reversed(day1.read_text().splitlines(keepends=True))))
    [dup] = ingest_paths([reordered], settings.warehouse_path, settings.raw_dir)
    assert (dup.loaded, dup.duplicates) == (0, day1_valid_lines(settings))
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        firsts = con.execute("select distinct first_batch_id from ingest.duplicates where batch_id = ?",
                             [dup.batch_id]).fetchall()
    assert firsts == [(first_batches["day1.jsonl"],)]

    # A late event of a compacted day, and a later span of the compacted trace.
    late = home.base / "late.jsonl"
    late.write_text(message("m-late", "2026-11-08T15:00:00Z"))
    otel = home.base / "otel-2.jsonl"
    otel.write_text(otel_late())
    [late_result, otel_result] = ingest_paths([late, otel], settings.warehouse_path, settings.raw_dir)
    assert (late_result.loaded, otel_result.loaded) == (1, 1)
    assert run_build(settings)
    incremental = warehouse_tables(settings.warehouse_path, "main")
    messages_of_day = {r[0]: r for r in home.marts_full["fct_daily_activity"]}
    after = {r[0]: r for r in incremental["fct_daily_activity"]}
    assert after[date(2026, 11, 8)][1:] != messages_of_day[date(2026, 11, 8)][1:]
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        assert con.execute("select message_date from fct_messages where message_id = 'm-late'").fetchall() == [
            (date(2026, 11, 8),)]
        assert con.execute("select revision, llm_call_count from fct_messages where message_id = ?", [T]).fetchall() == [
            (1, 2)]
        assert con.execute("select count(*) from fct_llm_calls where message_id = ?", [T]).fetchall() == [(2,)]

    # Compacting again puts the late batch into a second file of its (already compacted) day.
    plans = compaction.compact(settings.warehouse_path, settings.raw_dir, utc_now() + timedelta(minutes=1))
    assert {b for p in plans for b in p.batches} == {dup.batch_id, late_result.batch_id, otel_result.batch_id}
    assert len(list((settings.raw_dir / "messages" / "event_date=2026-11-08").glob("*.parquet"))) == 2
    assert run_build(settings, full_refresh=True)
    assert_same_marts(incremental, warehouse_tables(settings.warehouse_path, "main"))


def day1_valid_lines(settings) -> int:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        return con.execute("select loaded + duplicates from ingest.ledger where file_name = 'day1.jsonl'").fetchone()[0]


# --------------------------------------------------------------------------- crashes


@pytest.fixture
def small_home(tmp_path):
    """Three small closed batches over three days, one with rows of two days."""
    files = []
    for n, body in enumerate([message("a1", "2026-11-01T10:00:00Z") + message("a2", "2026-11-02T09:00:00Z"),
                              message("b1", "2026-11-02T11:00:00Z"),
                              message("c1", "2026-11-03T12:00:00Z") + '{"broken": \n']):
        path = tmp_path / f"f{n}.jsonl"
        path.write_text(body)
        files.append(path)
    home = SimpleNamespace(warehouse=tmp_path / "home" / "warehouse.duckdb", raw=tmp_path / "home" / "raw")
    results = ingest_paths(files, home.warehouse, home.raw)
    home.batches = {r.batch_id for r in results}
    home.rows = all_raw(home.raw)
    return home


CRASH = textwrap.dedent(
    """
    import os, sys
    from datetime import datetime
    from pathlib import Path
    from ingestion import compaction

    step, nth = sys.argv[1], int(sys.argv[2])
    original = getattr(compaction, step)
    calls = []

    def crash(*args, **kwargs):
        calls.append(1)
        if len(calls) == nth:
            os._exit(1)
        return original(*args, **kwargs)

    setattr(compaction, step, crash)
    compaction.compact(Path(sys.argv[3]), Path(sys.argv[4]), datetime.fromisoformat(sys.argv[5]))
    """
)

# (function the process dies in, at which call): before the plan's commit, after it (before the
# first file moves), between two files, between two batch folders' removal.
CRASH_POINTS = {"before_commit": ("commit_plan", 1), "after_commit": ("publish_file", 1),
                "between_files": ("publish_file", 2), "between_removals": ("remove_batch", 2)}


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_a_compaction_killed_at_any_step_is_repaired_by_the_next_load(small_home, point):
    step, nth = CRASH_POINTS[point]
    cutoff = utc_now() + timedelta(minutes=1)
    crashed = subprocess.run([sys.executable, "-c", CRASH, step, str(nth), str(small_home.warehouse),
                              str(small_home.raw), cutoff.isoformat()], cwd=REPO, capture_output=True, text=True,
                             timeout=120)
    assert crashed.returncode == 1, crashed.stderr
    committed = point != "before_commit"
    with duckdb.connect(str(small_home.warehouse), read_only=True) as con:
        assert con.execute("select count(*) from ingest.compactions where finished_at is null").fetchone()[0] == committed

    assert ingest_paths([], small_home.warehouse, small_home.raw) == []  # a load: its recovery runs first

    assert all_raw(small_home.raw) == small_home.rows
    assert not any((small_home.raw / "_compaction").iterdir())
    assert batch_folders(small_home.raw) == (set() if committed else small_home.batches)
    day_files = sorted(p.relative_to(small_home.raw).as_posix() for p in small_home.raw.glob("messages/*/*.parquet"))
    assert [f.split("/")[1] for f in day_files] == ([] if not committed else
                                                     ["event_date=2026-11-01", "event_date=2026-11-02",
                                                      "event_date=2026-11-03"])
    # A compaction afterwards finds the rest (or nothing) and the rows stay exactly once.
    compaction.compact(small_home.warehouse, small_home.raw, cutoff)
    assert all_raw(small_home.raw) == small_home.rows
    assert batch_folders(small_home.raw) == set()
    with duckdb.connect(str(small_home.warehouse), read_only=True) as con:
        assert con.execute("select count(*), count(finished_at) from ingest.compactions").fetchone() in ((1, 1),)
        assert sorted(r[0] for r in con.execute("select batch_id from ingest.compacted_batches").fetchall()) == sorted(
            small_home.batches)


def test_a_failure_before_the_commit_changes_nothing(small_home, monkeypatch):
    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(compaction, "commit_plan", fail)
    with pytest.raises(OSError, match="disk full"):
        compaction.compact(small_home.warehouse, small_home.raw, utc_now() + timedelta(minutes=1))
    assert all_raw(small_home.raw) == small_home.rows
    assert batch_folders(small_home.raw) == small_home.batches
    assert not any((small_home.raw / "_compaction").iterdir())
    assert not list(small_home.raw.glob("messages/*"))


def test_a_missing_file_of_a_committed_plan_keeps_the_batches(small_home, monkeypatch):
    """Never delete a batch whose day file is not in place: recovery stops and says which."""
    monkeypatch.setattr(compaction, "finish", lambda *args: None)  # committed, nothing moved yet
    compaction.compact(small_home.warehouse, small_home.raw, utc_now() + timedelta(minutes=1))
    monkeypatch.undo()
    [staged] = list((small_home.raw / "_compaction").glob("*/messages/event_date=2026-11-02/*.parquet"))
    staged.unlink()
    with pytest.raises(compaction.CompactionError, match="event_date=2026-11-02"):
        ingest_paths([], small_home.warehouse, small_home.raw)
    assert batch_folders(small_home.raw) == small_home.batches


def test_the_cutoff_is_midnight_utc_three_days_back():
    now = datetime(2026, 11, 30, 1, 30, tzinfo=timezone(timedelta(hours=5)))  # 2026-11-29 20:30 UTC
    assert compaction.closed_cutoff(now) == datetime(2026, 11, 26)


# --------------------------------------------------------------------------- orchestration


def test_the_compaction_asset_runs_in_its_own_daily_job_in_the_warehouse_pool():
    from orchestration.defs.dbt.project import prepare_manifest

    prepare_manifest()
    import dagster as dg

    from orchestration.definitions import defs
    from orchestration.pools import WAREHOUSE_POOL

    schedule = defs.resolve_schedule_def("compact_raw_layer_daily")
    assert (schedule.cron_schedule, schedule.execution_timezone, schedule.job_name) == (
        "30 2 * * *", "UTC", "compact_raw_layer")
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    key = dg.AssetKey("raw_compaction")
    assert defs.resolve_job_def("compact_raw_layer").asset_layer.selected_asset_keys == {key}
    for job in ("build_all", "refresh"):
        assert key not in defs.resolve_job_def(job).asset_layer.selected_asset_keys
    [asset] = [a for a in defs.resolve_asset_graph().assets_defs if key in a.keys]
    assert asset.node_def.pool == WAREHOUSE_POOL


def test_the_asset_and_the_command_leave_batches_loaded_today(small_home, monkeypatch, capsys):
    """Closed means loaded (and occurred) before 00:00 UTC three days ago: today's batches stay."""
    import dagster as dg

    from agent_analytics_cli.main import main
    from orchestration.defs.compaction.definitions import raw_compaction
    from orchestration.resources import AnalyticsSettings

    home = str(small_home.warehouse.parent)
    result = dg.materialize([raw_compaction], resources={"analytics": AnalyticsSettings(home=home)})
    [materialization] = result.asset_materializations_for_node("raw_compaction")
    assert (materialization.metadata["plans"].value, materialization.metadata["batches"].value) == (0, 0)
    monkeypatch.setenv("AGENT_ANALYTICS_HOME", home)
    assert main(["compact"]) == 0
    assert capsys.readouterr().out.startswith("nothing to compact: no batch loaded and closed before ")
    assert batch_folders(small_home.raw) == small_home.batches
