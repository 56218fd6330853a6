"""The serving copy for BI tools (agent_analytics/serving.py, orchestration/defs/serving/):
published after every build whose blocking checks pass, equal to the warehouse marts, with
the dbt descriptions as comments, no view and no path of the machine inside, and replaced
atomically while readers read it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from agent_analytics import serving
from agent_analytics.exports import MetricsQuery, metrics_document
from agent_analytics.serving import duckdb_file, parquet_set, tables
from agent_analytics.settings import load_settings
from orchestration.build import run_build
from orchestration.defs.dbt.project import prepare_manifest
from orchestration.defs.quality import definitions as quality
from orchestration.defs.quality.suites import SuiteResult

FIXTURES = Path(__file__).parent / "fixtures"
MARTS_DIR = Path(__file__).resolve().parents[1] / "dbt_project" / "models" / "marts"
MARTS = sorted(p.stem for p in MARTS_DIR.glob("*.sql"))
AS_OF = "2026-11-04T00:00:00Z"


def _sql(query: str):
    """A query on a connection of its own: the module-level default connection is shared with
    every test of the session, and one left with an unfinished result refuses new queries."""
    return duckdb.connect().sql(query)


def _rows(path: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


# ----------------------------------------------------------------- wiring


def test_the_copy_runs_in_both_jobs_after_every_mart_and_its_blocking_checks():
    prepare_manifest()
    from orchestration.definitions import defs

    graph = defs.resolve_asset_graph()
    marts = dg.AssetSelection.groups("marts").resolve(graph)
    assert {dg.AssetKey(name) for name in MARTS} == marts
    assert marts <= graph.get(dg.AssetKey("serving_copy")).parent_keys
    gx_steps = {f"{table}_gx_{table}" for table in ("fct_daily_activity", "fct_agent_daily", "fct_daily_cost_by_provider")}
    for job_name in ("build_all", "refresh"):
        job = defs.resolve_job_def(job_name)
        assert dg.AssetKey("serving_copy") in job.asset_layer.selected_asset_keys
        wiring = job.graph.dependency_structure
        upstream = {out.node.name for outs in wiring.input_to_upstream_outputs_for_node("serving_copy").values() for out in outs}
        assert {"warehouse_models", *gx_steps} <= upstream, (job_name, upstream)


def test_no_mart_column_is_hugeint(built_fixture_home):
    """ODBC drivers, Tableau, Power BI and Parquet readers handle int128 badly: sums are BIGINT."""
    names = ", ".join(f"'{name}'" for name in MARTS)
    huge = _rows(built_fixture_home / "warehouse.duckdb",
                 f"select table_name, column_name from duckdb_columns() where table_name in ({names}) and data_type = 'HUGEINT'")
    assert huge == []
    for yml in MARTS_DIR.glob("*.yml"):
        assert "data_type: hugeint" not in yml.read_text().lower(), yml.name


# ----------------------------------------------------------------- content


def test_the_copy_holds_every_mart_as_the_warehouse_has_it(built_fixture_home):
    home = built_fixture_home
    copy = home / "serving" / "analytics.duckdb"
    con = duckdb.connect(str(copy), read_only=True)
    try:
        con.execute(f"attach '{home / 'warehouse.duckdb'}' as warehouse (read_only)")
        tables = [r[0] for r in con.execute(
            "select table_name from duckdb_tables() where database_name = 'analytics' order by 1").fetchall()]
        assert tables == sorted([*MARTS, "_published", "_published_days"])
        views = con.execute("select view_name from duckdb_views() where database_name = 'analytics' and not internal")
        assert views.fetchall() == []
        published = dict(con.execute("select table_name, row_count from analytics._published").fetchall())
        assert sorted(published) == MARTS
        for table in MARTS:
            count = con.execute(f"select count(*) from warehouse.{table}").fetchone()[0]
            assert published[table] == count == con.execute(f"select count(*) from analytics.{table}").fetchone()[0]
            for a, b in (("analytics", "warehouse"), ("warehouse", "analytics")):
                missing = con.execute(f"select count(*) from (from {a}.{table} except all from {b}.{table})").fetchone()[0]
                assert missing == 0, (table, a, b)
        # a few sums, computed on each side
        for sql in ("select sum(total_tokens), sum(cost_usd) from {}.fct_messages",
                    "select sum(messages), sum(dau) from {}.fct_daily_activity",
                    "select sum(cost_usd), sum(llm_calls) from {}.fct_daily_cost_by_model"):
            assert con.execute(sql.format("analytics")).fetchall() == con.execute(sql.format("warehouse")).fetchall()
        builds = con.execute("select distinct build_id, dbt_invocation_id from analytics._published").fetchall()
        assert len(builds) == 1 and all(builds[0])
        # descriptions of the dbt YAML: on every table and column
        assert con.execute("select comment from duckdb_tables() where table_name = 'dim_agents' and database_name = 'analytics'"
                           ).fetchone()[0].startswith("Grain: one row per agent seen in messages or deployments")
        assert con.execute("select comment from duckdb_columns() where database_name = 'analytics' "
                           "and table_name = 'fct_messages' and column_name = 'message_id'").fetchone()[0] == (
            "The message's event id; primary key.")
        undocumented = con.execute("select table_name, column_name from duckdb_columns() where database_name = 'analytics' "
                                   "and coalesce(comment, '') = ''").fetchall()
        assert undocumented == []
    finally:
        con.close()
    data = copy.read_bytes()
    assert str(home).encode() not in data and b"/raw/" not in data


def test_the_parquet_set_holds_every_mart(built_fixture_home):
    link = built_fixture_home / "serving" / "parquet"
    target = os.readlink(link)
    assert not os.path.isabs(target) and target.startswith("parquet-versions/")
    by_day = sorted(tables.BY_DAY)
    assert sorted(p.name for p in link.iterdir()) == sorted(
        [f"{name}.parquet" for name in MARTS + ["_published", "_published_days"] if name not in by_day] + by_day)
    published = _sql(f"select table_name, row_count, build_id from '{link}/_published.parquet'").fetchall()
    copy = built_fixture_home / "serving" / "analytics.duckdb"
    assert sorted(published) == sorted(_rows(copy, "select table_name, row_count, build_id from _published"))
    for table, count, _ in published:
        assert _sql(f"select count(*) from '{link}/{parquet_set.location(table)}{'**/*.parquet' if table in by_day else ''}'"
                    ).fetchall() == [(count,)]
    # one folder per day of the facts, named by the day column, which the files also hold
    days = _rows(copy, "select distinct message_date from fct_messages order by 1")
    assert sorted(p.name for p in (link / "fct_messages").iterdir()) == [f"message_date={d}" for (d,) in days]
    day = days[0][0]
    in_file = _sql(f"select distinct message_date from read_parquet('{link}/fct_messages/message_date={day}/*.parquet', "
                   "hive_partitioning = false)").fetchall()
    assert in_file == [(day,)]
    # the copy's types, with no HUGEINT
    types = _sql(f"select distinct type from parquet_schema('{link}/fct_messages/*/*.parquet')").fetchall()
    assert ("INT64",) in types and all("128" not in str(t) for t in types)


def test_the_metrics_need_nothing_but_the_serving_copy(built_fixture_home, tmp_path, monkeypatch):
    """The same metrics document from a home with only the warehouse and one with only the copy."""
    monkeypatch.delenv("AGENT_ANALYTICS_TZ", raising=False)
    only_warehouse, only_copy = tmp_path / "warehouse", tmp_path / "copy"
    only_warehouse.mkdir()
    shutil.copy(built_fixture_home / "warehouse.duckdb", only_warehouse / "warehouse.duckdb")
    (only_copy / "serving").mkdir(parents=True)
    shutil.copy(built_fixture_home / "serving" / "analytics.duckdb", only_copy / "serving" / "analytics.duckdb")
    documents = []
    for home in (only_warehouse, only_copy):
        settings = load_settings({"AGENT_ANALYTICS_HOME": str(home)})
        document = metrics_document(settings, MetricsQuery(period="30d", as_of=AS_OF, agents=["support"]))
        document.pop("generated_at", None)
        documents.append(json.dumps(document, sort_keys=True, default=str))
    assert documents[0] == documents[1]
    assert not (only_copy / "warehouse.duckdb").exists()


# ----------------------------------------------------------------- atomic publication


def test_the_parquet_link_moves_to_a_whole_new_folder_and_old_ones_go_after_the_grace(tmp_path):
    warehouse = tmp_path / "w.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        con.execute("create table a as select 1 as x")
    marts = [serving.Mart("a", "Table a.", {"x": "A number."})]
    folder = tmp_path / "serving"
    versions = folder / "parquet-versions"
    versions.mkdir(parents=True)
    (versions / ".killed.tmp").mkdir()  # a publication that was killed
    made = []
    with duckdb.connect(str(warehouse), read_only=True) as con:
        for n in range(3):
            publication = serving.Publication(f"build{n}", None, datetime(2026, 11, 30, 6, 0, n), {"a": 1})
            made.append(parquet_set.publish_parquet(con, folder, marts, publication).name)
    assert sorted(p.name for p in versions.iterdir()) == made  # within the grace period all stay
    assert os.readlink(folder / "parquet") == f"parquet-versions/{made[2]}"
    assert _sql(f"select build_id from '{folder}/parquet/_published.parquet'").fetchall() == [("build2",)]
    assert parquet_set.remove_superseded(versions, made[2], grace_s=0) == made[:2]
    assert [p.name for p in versions.iterdir()] == [made[2]]


def test_a_whole_table_is_written_in_runs_of_days_of_at_most_chunk_rows(tmp_path, monkeypatch):
    """Ten days of 1 to 10 rows, a run at most 12 rows: the runs are cut where the next day
    would pass 12 (a day of more is a run alone), and the set holds every row once, one folder
    a day, as one partitioned COPY of the whole table writes it."""
    from datetime import date, timedelta
    days = [date(2026, 11, 1) + timedelta(days=n) for n in range(10)]
    rows = {day: n + 1 for n, day in enumerate(days)}
    monkeypatch.setattr(parquet_set, "CHUNK_ROWS", 12)
    assert parquet_set._chunks(days, rows | {days[9]: 30}) == [days[0:4], days[4:6], days[6:7], days[7:8], days[8:9],
                                                                days[9:10]]  # 1+2+3+4, 5+6, 7, 8, 9, 30
    warehouse = tmp_path / "w.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        con.execute("create table fct_sessions as select date '2026-11-01' + cast(d as integer) as session_date, "
                    "timestamp '2026-11-30 06:00:00' as max_loaded_at, d * 100 + n as x "
                    "from range(10) as t(d), range(10) as u(n) where n <= d")
    marts = [serving.Mart("fct_sessions", "Sessions.", {})]
    written = {}
    with duckdb.connect(str(warehouse), read_only=True) as con:
        fingerprints = tables.day_fingerprints(con, marts)
        for chunk_rows in (12, 1_000):
            monkeypatch.setattr(parquet_set, "CHUNK_ROWS", chunk_rows)
            publication = serving.Publication(f"b{chunk_rows}", None, datetime(2026, 11, 30, 6), {"fct_sessions": 55},
                                              days=fingerprints)
            folder = parquet_set.publish_parquet(con, tmp_path / f"serving{chunk_rows}", marts, publication)
            written[chunk_rows] = _sql(f"select session_date, x from '{folder}/fct_sessions/*/*.parquet' "
                                       "order by x").fetchall()
            assert sorted(p.name for p in (folder / "fct_sessions").iterdir()) == [f"session_date={d}" for d in days]
    assert len(written[12]) == 55 and written[12] == written[1_000]
    assert written[12] == [(date(2026, 11, 1) + timedelta(days=d), d * 100 + n) for d in range(10) for n in range(d + 1)]


def test_a_publication_that_fails_leaves_the_old_copy_and_no_temporary(tmp_path):
    warehouse, folder = tmp_path / "w.duckdb", tmp_path / "serving"
    with duckdb.connect(str(warehouse)) as con:
        con.execute("create table a as select 1 as x")
    good = serving.Publication("good", None, datetime(2026, 11, 30, 6, 0), {"a": 1})
    broken = [serving.Mart("a", "Table a.", {}), serving.Mart("missing", "Not in the warehouse.", {})]
    with duckdb.connect(str(warehouse), read_only=True) as con:
        duckdb_file.publish_duckdb(con, folder / "analytics.duckdb", broken[:1], good)
        parquet_set.publish_parquet(con, folder, broken[:1], good)
        for publish in (lambda: duckdb_file.publish_duckdb(con, folder / "analytics.duckdb", broken, good),
                        lambda: parquet_set.publish_parquet(con, folder, broken, good)):
            with pytest.raises(duckdb.CatalogException):
                publish()
    assert _rows(folder / "analytics.duckdb", "select build_id, table_name from _published") == [("good", "a")]
    assert sorted(p.name for p in folder.iterdir()) == ["analytics.duckdb", "duckdb-files", "parquet", "parquet-versions"]
    assert [p.name for p in (folder / "parquet-versions").iterdir()] == [os.readlink(folder / "parquet").split("/")[1]]


def _forced_failure(real_validate):
    def validate(df, suite, name):
        if name == "fct_daily_activity":
            return SuiteResult(success=False, evaluated=len(suite), failed=["forced failure"])
        return real_validate(df, suite, name)

    return validate


READER = r"""
import json, os, sys
import duckdb

database, link, stop = sys.argv[1:4]
builds, parquet_builds, errors, reads = [], [], [], 0
while reads < 1_000_000:
    last = os.path.exists(stop)
    reads += 1
    try:
        con = duckdb.connect(database, read_only=True)
        try:
            published = con.execute("select build_id, table_name, row_count from _published").fetchall()
            counts = {t: con.execute(f'select count(*) from "{t}"').fetchone()[0] for _, t, _ in published}
        finally:
            con.close()
        if {t: n for _, t, n in published} != counts or len({b for b, _, _ in published}) != 1:
            errors.append(f"torn duckdb read: {published} {counts}")
        if published[0][0] not in builds:
            builds.append(published[0][0])
        folder = os.path.realpath(link)  # a consistent set: one version folder
        published = duckdb.sql(f"select build_id, table_name, row_count from '{folder}/_published.parquet'").fetchall()
        counts = {t: duckdb.sql(f"select count(*) from '{folder}/{t}.parquet'").fetchall()[0][0]
                  if os.path.exists(f"{folder}/{t}.parquet") else
                  duckdb.sql(f"select count(*) from '{folder}/{t}/**/*.parquet'").fetchall()[0][0] for _, t, _ in published}
        if {t: n for _, t, n in published} != counts:
            errors.append(f"torn parquet read: {published} {counts}")
        if published[0][0] not in parquet_builds:
            parquet_builds.append(published[0][0])
    except Exception as exc:
        errors.append(f"{type(exc).__name__}: {exc}")
    if last:
        break
print(json.dumps({"reads": reads, "builds": builds, "parquet_builds": parquet_builds, "errors": errors[:5]}))
"""


def test_a_failed_check_publishes_nothing_and_readers_never_see_half_a_build(day1_home, tmp_path, monkeypatch, capsys):
    home = day1_home
    settings = load_settings()
    copy, link = serving.serving_database(settings), serving.parquet_dir(settings)
    reader = None
    try:
        assert run_build(settings) is True
        first = capsys.readouterr().out.split("build ok: run ", 1)[1].split(",", 1)[0]
        assert _rows(copy, "select distinct build_id from _published") == [(first,)]
        before = dict(_rows(copy, "select table_name, row_count from _published"))

        stop = tmp_path / "stop"
        reader = subprocess.Popen([sys.executable, "-c", READER, str(copy), str(link), str(stop)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        shutil.copy(FIXTURES / "day2.jsonl", home / "landing" / "day2.jsonl")
        with monkeypatch.context() as patch:  # a failed blocking check: nothing is published
            patch.setattr(quality, "validate", _forced_failure(quality.validate))
            assert run_build(settings) is False
        assert _rows(copy, "select distinct build_id from _published") == [(first,)]
        assert dict(_rows(copy, "select table_name, row_count from _published")) == before
        assert os.readlink(link).endswith(first[:8])
        capsys.readouterr()
        assert run_build(settings) is True
        second = capsys.readouterr().out.split("build ok: run ", 1)[1].split(",", 1)[0]
        stop.touch()
        out, err = reader.communicate(timeout=300)
        seen = json.loads(out)
        assert seen["errors"] == [] and seen["builds"][-1] == seen["parquet_builds"][-1] == second, (seen, err)
        assert set(seen["builds"]) <= {first, second} and set(seen["parquet_builds"]) <= {first, second}
        after = dict(_rows(copy, "select table_name, row_count from _published"))
        assert after["fct_messages"] == before["fct_messages"] + 2  # day2 adds two messages
        assert not [p for p in (home / "serving").iterdir() if p.name.startswith(".")]  # no temporary left
    finally:
        if reader is not None and reader.poll() is None:
            reader.kill()
            reader.wait()
