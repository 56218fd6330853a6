"""The daily and minute marts built incrementally over a long history equal a full rebuild.

fct_daily_activity rebuilds from the earliest day new messages touch and reads only the 29
days before it (a user counts in the MAU of the 29 days after a visit); the other daily marts
and the minute marts read from their first affected day or minute on. Over 70 days of
generated traffic, where those windows cut the history, a refresh with a new day four days
after the last, and one with the days between and a late message 30 days back, must give
exactly what a full rebuild gives.
"""

from __future__ import annotations

import json
import os
from datetime import date

import duckdb
import pytest

from agent_analytics.settings import load_settings
from agent_analytics.synthetic_events import generate
from ingestion.load import ingest_paths
from orchestration.build import run_build
from tests.test_compaction import assert_same_marts, warehouse_tables

END = date(2026, 11, 20)  # the last generated day; 70 days from 2026-09-12
FIRST_BUILD: dict[str, dict[str, int]] = {}  # what the module's first build stored out of order


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    base = tmp_path_factory.mktemp("incremental_daily")
    generated = generate(base / "generated", 4_000, 70, seed=5, end=END)
    saved = dict(os.environ)
    os.environ.update(AGENT_ANALYTICS_HOME=str(base / "home"), AGENT_ANALYTICS_TZ="UTC")
    try:
        settings = load_settings()
        settings.ensure_dirs()
        ingest_paths(generated.files[:-4], settings.warehouse_path, settings.raw_dir)
        assert run_build(settings)
        FIRST_BUILD["out_of_order"] = stored_out_of_order(settings.warehouse_path)
        yield settings, generated.files, base
    finally:
        os.environ.clear()
        os.environ.update(saved)


def refreshed_then_rebuilt(settings) -> tuple[dict, dict]:
    assert run_build(settings)
    incremental = warehouse_tables(settings.warehouse_path, "main")
    assert run_build(settings, full_refresh=True)
    return incremental, warehouse_tables(settings.warehouse_path, "main")


def test_a_day_after_a_gap_then_the_gap_and_a_late_message_a_month_back(home):
    settings, files, base = home
    # 11-20 after 11-16: the days between, without traffic, are rows of fct_daily_activity too,
    # also 11-17, before the lookback of the new day (lookback_days 2: from 11-18)
    ingest_paths([files[-1]], settings.warehouse_path, settings.raw_dir)
    incremental, full = refreshed_then_rebuilt(settings)
    assert_same_marts(incremental, full)
    days = [r[0] for r in incremental["fct_daily_activity"]]
    assert days[-5:] == [date(2026, 11, 16), date(2026, 11, 17), date(2026, 11, 18), date(2026, 11, 19), END]

    # A user with no visit in the 30 days up to the late message's day, so that the late
    # message raises the MAU of that day and of days after it, and the window of the rebuild
    # (29 days before the late day) cuts the user's history.
    late_day = date(2026, 10, 20)
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        [(user,)] = con.execute(
            "select min(user_id) from fct_messages where user_id not in (select user_id from fct_messages "
            "where message_date between ? - 29 and ?)", [late_day, late_day]).fetchall()
        mau_before = dict(con.execute(
            "select activity_date, mau from fct_daily_activity where activity_date between date '2026-10-20' "
            "and date '2026-11-15'").fetchall())
    late = base / "late.jsonl"
    late.write_text(json.dumps({
        "event_id": "m-late-month", "type": "message", "occurred_at": "2026-10-20T12:00:00Z", "user_id": user,
        "agent_id": "support-bot", "status": "ok", "response_time_ms": 900}) + "\n")
    ingest_paths([*files[-4:-1], late], settings.warehouse_path, settings.raw_dir)
    incremental, full = refreshed_then_rebuilt(settings)
    assert_same_marts(incremental, full)

    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        mau_after = dict(con.execute(
            "select activity_date, mau from fct_daily_activity where activity_date between date '2026-10-20' "
            "and date '2026-11-15'").fetchall())
        visits = {d for (d,) in con.execute(
            "select distinct message_date from fct_messages where user_id = ? and message_id <> 'm-late-month'",
            [user]).fetchall()}
    # The late visit adds the user to every MAU from its day to 29 days later, unless another
    # visit counts the user there already.
    for day, mau in mau_after.items():
        counted_anyway = any(0 <= (day - d).days < 30 for d in visits)
        in_window = (day - late_day).days < 30
        assert mau == mau_before[day] + (1 if in_window and not counted_anyway else 0), day
    assert mau_after[late_day] == mau_before[late_day] + 1


# The marts a period query filters on time, and the column each is stored in order of after a
# full build (macros/stored_order.sql).
STORED_IN_ORDER = {"fct_messages": "occurred_at", "fct_sessions": "session_started_at",
                   "fct_user_daily": "activity_date"}


def stored_out_of_order(path) -> dict[str, int]:
    """Per mart, the rows stored right after a row of a later time."""
    with duckdb.connect(str(path), read_only=True) as con:
        return {table: con.execute(
            f"select count(*) from (select {column} < lag({column}) over (order by rowid) as back "
            f"from {table}) where back").fetchone()[0] for table, column in STORED_IN_ORDER.items()}


def not_null_columns(settings) -> tuple[dict, dict]:
    """Per mart, the columns its contract declares not_null (dbt's manifest) and those the
    stored table refuses nulls in."""
    nodes = json.loads((settings.home / "dbt_target" / "manifest.json").read_text())["nodes"]
    declared = {table: sorted(name for name, column in nodes[f"model.agent_analytics.{table}"]["columns"].items()
                              if any(c["type"] == "not_null" for c in column["constraints"]))
                for table in STORED_IN_ORDER}
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        stored = {table: sorted(name for (name,) in con.execute(
            "select column_name from information_schema.columns where table_name = ? and is_nullable = 'NO'",
            [table]).fetchall()) for table in STORED_IN_ORDER}
    return declared, stored


def test_a_full_build_stores_the_period_marts_in_time_order_and_a_refresh_appends(home):
    settings, _, base = home
    assert FIRST_BUILD["out_of_order"] == dict.fromkeys(STORED_IN_ORDER, 0)  # the first build, into an empty home
    assert run_build(settings, full_refresh=True)  # a full refresh, over the tables it replaces
    assert stored_out_of_order(settings.warehouse_path) == dict.fromkeys(STORED_IN_ORDER, 0)
    declared, stored = not_null_columns(settings)
    assert stored == declared and all(declared.values())  # the sorted copy keeps the contract's constraints

    # A refresh appends: a late message lands after the newer rows instead of a rewrite of
    # the whole table.
    late = base / "late-stored.jsonl"
    late.write_text(json.dumps({
        "event_id": "m-late-stored", "type": "message", "occurred_at": "2026-10-02T12:00:00Z",
        "user_id": "u-late-stored", "agent_id": "support-bot", "status": "ok", "response_time_ms": 700}) + "\n")
    ingest_paths([late], settings.warehouse_path, settings.raw_dir)
    assert run_build(settings)
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        assert con.execute("select message_id from fct_messages order by rowid desc limit 1").fetchall() == [
            ("m-late-stored",)]
    assert all(count > 0 for count in stored_out_of_order(settings.warehouse_path).values())

    assert run_build(settings, full_refresh=True)
    assert stored_out_of_order(settings.warehouse_path) == dict.fromkeys(STORED_IN_ORDER, 0)
