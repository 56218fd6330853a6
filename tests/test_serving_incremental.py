"""A refresh republishes only what changed (agent_analytics/serving/): on a small warehouse
made by hand, late rows, a revision, a new day and an emptied day reach both the DuckDB file
and the Parquet set, unchanged days are reused (hard links, the spare file updated in place),
and a reader holding a file or a changed model version makes the publication start anew."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from agent_analytics.serving import duckdb_file, parquet_set, tables
from agent_analytics.serving.tables import Mart, Publication

MARTS = [
    Mart("fct_daily", "Messages per day.", {"activity_date": "A day.", "messages": "Its messages."}),
    Mart("fct_messages", "One row per message.", {"message_id": "Id.", "message_date": "Day.", "cost_usd": "Cost.",
                                                  "loaded_at": "Load time."}),
]
L1, L2, L3 = "2026-11-05 10:00:00", "2026-11-06 10:00:00", "2026-11-07 10:00:00"


class Home:
    def __init__(self, root: Path):
        self.warehouse = root / "warehouse.duckdb"
        self.serving = root / "serving"
        self.builds = 0
        with self.connect() as con:
            con.execute("create table fct_messages (message_id varchar, message_date date, cost_usd decimal(18, 10), "
                        "loaded_at timestamp)")
            con.execute("create view fct_daily_source as select message_date as activity_date, count(*) as messages "
                        "from fct_messages group by all")
            con.execute("create table fct_daily as from fct_daily_source")

    def connect(self, read_only: bool = False):
        return duckdb.connect(str(self.warehouse), read_only=read_only)

    def change(self, *statements: str) -> None:
        with self.connect() as con:
            for statement in statements:
                con.execute(statement)
            con.execute("create or replace table fct_daily as from fct_daily_source")

    def publish(self, model_version: str = "v1", marts: list[Mart] = MARTS) -> Publication:
        self.builds += 1
        with self.connect(read_only=True) as con:
            publication = Publication(
                f"build{self.builds:04d}", None, datetime(2026, 11, 30, 6, 0, self.builds),
                {m.name: con.execute(f"select count(*) from {m.name}").fetchone()[0] for m in MARTS},
                model_version, tables.day_fingerprints(con, marts))
            duckdb_file.publish_duckdb(con, self.serving / "analytics.duckdb", marts, publication)
            parquet_set.publish_parquet(con, self.serving, marts, publication)
        return publication

    def day_files(self) -> dict[str, int]:
        """The inode of each day's Parquet file of fct_messages in the current version."""
        folder = self.serving / "parquet" / "fct_messages"
        return {p.parent.name.split("=")[1]: p.stat().st_ino for p in folder.glob("*/*.parquet")}

    def assert_copies_equal_the_warehouse(self) -> None:
        con = duckdb.connect()
        try:
            con.execute(f"attach '{self.warehouse}' as w (read_only)")
            con.execute(f"attach '{self.serving / 'analytics.duckdb'}' as s (read_only)")
            link = self.serving / "parquet"
            sources = {"s": {m.name: f"s.{m.name}" for m in MARTS},
                       "p": {"fct_daily": f"'{link}/fct_daily.parquet'", "fct_messages": f"'{link}/fct_messages/**/*.parquet'"}}
            for copy in sources.values():
                for mart in MARTS:
                    for a, b in ((f"w.{mart.name}", copy[mart.name]), (copy[mart.name], f"w.{mart.name}")):
                        assert con.execute(f"select count(*) from (from {a} except all from {b})").fetchone()[0] == 0, (a, b)
            assert con.execute("select count(*) from s._published where build_id = ?", [f"build{self.builds:04d}"]
                               ).fetchone()[0] == len(MARTS)
        finally:
            con.close()


def _rows(day: str, ids: range, loaded: str, cost: str = "0.5") -> str:
    return (f"insert into fct_messages select 'm' || range, date '{day}', {cost}, timestamp '{loaded}' "
            f"from range({ids.start}, {ids.stop})")


@pytest.fixture
def home(tmp_path) -> Home:
    home = Home(tmp_path)
    home.change(_rows("2026-11-01", range(0, 10), L1), _rows("2026-11-02", range(10, 20), L1),
                _rows("2026-11-03", range(20, 30), L1))
    return home


def test_late_rows_revisions_new_and_emptied_days_reach_both_copies_and_the_rest_is_reused(home):
    home.publish()
    home.assert_copies_equal_the_warehouse()
    spare_a = home.serving / "duckdb-files" / "analytics-a.duckdb"
    first_a = spare_a.stat().st_ino
    assert (home.serving / "analytics.duckdb").stat().st_ino == first_a
    files_1 = home.day_files()
    assert sorted(files_1) == ["2026-11-01", "2026-11-02", "2026-11-03"]

    # a late message on the 1st, a revision on the 2nd (same count, newer load), a new day
    home.change(_rows("2026-11-01", range(100, 101), L2),
                "delete from fct_messages where message_id = 'm15'", _rows("2026-11-02", range(15, 16), L2, cost="9.25"),
                _rows("2026-11-04", range(40, 45), L2))
    home.publish()
    home.assert_copies_equal_the_warehouse()
    files_2 = home.day_files()
    assert files_2["2026-11-03"] == files_1["2026-11-03"]  # linked, not written
    assert all(files_2[day] != files_1[day] for day in ("2026-11-01", "2026-11-02"))
    spare_b = home.serving / "duckdb-files" / "analytics-b.duckdb"
    assert (home.serving / "analytics.duckdb").stat().st_ino == spare_b.stat().st_ino

    # a publication that fails leaves the spare as it was (its transaction rolls back)
    with pytest.raises(duckdb.CatalogException):
        home.publish(marts=[*MARTS, Mart("fct_missing", "Not in the warehouse.", {})])
    home.builds -= 1

    # the 4th emptied, a revision on the 3rd: the spare `a` (two publications old) catches up in place
    home.change("delete from fct_messages where message_date = date '2026-11-04'",
                "delete from fct_messages where message_id = 'm21'", _rows("2026-11-03", range(21, 22), L3, cost="1.75"))
    home.publish()
    home.assert_copies_equal_the_warehouse()
    assert spare_a.stat().st_ino == first_a == (home.serving / "analytics.duckdb").stat().st_ino
    files_3 = home.day_files()
    assert sorted(files_3) == ["2026-11-01", "2026-11-02", "2026-11-03"]
    assert files_3["2026-11-01"] == files_2["2026-11-01"] and files_3["2026-11-02"] == files_2["2026-11-02"]
    assert files_3["2026-11-03"] != files_2["2026-11-03"]
    with duckdb.connect(str(home.serving / "analytics.duckdb"), read_only=True) as con:
        assert con.execute("select cost_usd from fct_messages where message_id in ('m15', 'm21') order by 1").fetchall() == [
            (pytest.approx(1.75),), (pytest.approx(9.25),)]
        state = con.execute("select day::varchar, row_count, max_loaded_at::varchar from _published_days order by day")
        assert state.fetchall() == [("2026-11-01", 11, L2), ("2026-11-02", 10, L2), ("2026-11-03", 10, L3)]


def test_another_model_version_republishes_everything(home):
    home.publish()
    home.publish()
    files = home.day_files()
    # what a changed model does without changing any count or load time: only the new version
    # shows it, and the equality below holds because both copies were written whole
    home.change("update fct_messages set cost_usd = cost_usd * 2")
    home.publish(model_version="v2")
    home.assert_copies_equal_the_warehouse()
    assert not set(home.day_files().values()) & set(files.values())


HOLDER = r"""
import sys, time
import duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
count = con.execute("select count(*) from fct_messages").fetchone()[0]
print(count, flush=True)
sys.stdin.readline()
print(con.execute("select count(*) from fct_messages").fetchone()[0], flush=True)
"""


def test_a_reader_holding_the_spare_keeps_its_file_and_the_publication_writes_a_new_one(home):
    home.publish()
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(home.serving / "analytics.duckdb")],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "30"  # it holds analytics-a
        home.change(_rows("2026-11-05", range(50, 52), L2))
        home.publish()  # into b
        home.change(_rows("2026-11-06", range(60, 63), L3))
        home.publish()  # a is held: a new a, whole
        home.assert_copies_equal_the_warehouse()
        holder.stdin.write("\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "30"  # its file, unchanged
    finally:
        holder.kill()
        holder.wait()
    assert not [p for p in home.serving.iterdir() if p.name.startswith(".")]


def test_an_empty_fact_table_is_one_empty_file_with_its_columns(tmp_path):
    home = Home(tmp_path)
    home.publish()
    home.assert_copies_equal_the_warehouse()
    folder = home.serving / "parquet" / "fct_messages"
    assert [p.name for p in folder.iterdir()] == ["data_0.parquet"]
    columns = duckdb.connect().execute(f"describe select * from '{folder}/**/*.parquet'").fetchall()
    assert [c[0] for c in columns] == ["message_id", "message_date", "cost_usd", "loaded_at"]
    home.change(_rows("2026-11-01", range(0, 3), L1))
    home.publish()
    home.assert_copies_equal_the_warehouse()
    assert [p.name for p in folder.iterdir()] == ["message_date=2026-11-01"]
