"""The PostgreSQL publication of the marts (agent_analytics/serving/postgres.py) against a real
server (tests/postgres_server.py): tables, rows, types, comments and `_published` equal the
serving copy; a reader's transaction sees one publication, never a mix; errors never show the
password."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import threading
import time
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import psycopg
import pytest

from agent_analytics.serving.postgres import SCHEMA_MARKER, PostgresPublishError, publish_if_configured, publish_to_postgres
from agent_analytics.settings import load_settings
from tests.postgres_server import PASSWORD, postgres_bin, running_postgres
from tests.service_server import SCRIPT, copy_built_home

# Written out here (not taken from the module): the PostgreSQL type each DuckDB type of the
# marts must arrive as, in PostgreSQL's own spelling (format_type).
EXPECTED_TYPES = {
    "VARCHAR": "text",
    "BIGINT": "bigint",
    "INTEGER": "integer",
    "DOUBLE": "double precision",
    "BOOLEAN": "boolean",
    "DATE": "date",
    "TIMESTAMP": "timestamp without time zone",
    "HUGEINT": "numeric",
    "DECIMAL(38,10)": "numeric(38,10)",
    "DECIMAL(18,10)": "numeric(18,10)",
    "DECIMAL(28,10)": "numeric(28,10)",
}
# Two marts a reader compares: the second build has fewer rows in both.
READ_MARTS = ("fct_messages", "fct_agent_daily")
MARTS_DIR = Path(__file__).resolve().parents[1] / "dbt_project" / "models" / "marts"
MAIN = "database_name = current_database() and schema_name = 'main'"  # the file's tables, not DuckDB's catalog


@pytest.fixture(scope="module")
def postgres():
    if postgres_bin() is None and not os.environ.get("CI"):
        pytest.skip("no PostgreSQL server binaries (Debian's postgresql package; .ci/run installs it)")
    with running_postgres() as server:
        yield server


def make_source(warehouse: Path, target: Path, build_id: str) -> Path:
    """A file as the serving copy is: the marts of `warehouse` as tables, every table and
    column with a comment (a quote in each), and `_published`."""
    marts = sorted(p.stem for p in MARTS_DIR.glob("*.sql"))
    with duckdb.connect(str(target)) as con:
        con.execute(f"attach '{warehouse}' as warehouse (read_only)")
        con.execute("create table _published (build_id varchar, dbt_invocation_id varchar, published_at timestamp, "
                    "table_name varchar, row_count bigint)")
        for mart in marts:
            con.execute(f'create table "{mart}" as select * from warehouse.main."{mart}"')
            con.execute(f"""comment on table "{mart}" is 'the mart''s {mart}'""")
            for (column,) in con.execute(f"select column_name from duckdb_columns() where {MAIN} and table_name = ?",
                                         [mart]).fetchall():
                con.execute(f"""comment on column "{mart}"."{column}" is '{column}, the column''s text'""")
            con.execute("insert into _published select ?, 'dbt-1', timestamp '2026-11-30 06:00:00', ?, count(*) "
                        f'from "{mart}"', [build_id, mart])
        con.execute("detach warehouse")
    return target


@pytest.fixture(scope="module")
def build_one(built_fixture_home, tmp_path_factory) -> Path:
    """A serving copy of the fixture build, published under the build id build-one."""
    return make_source(built_fixture_home / "warehouse.duckdb", tmp_path_factory.mktemp("pg-build-one") / "analytics.duckdb",
                       "build-one")


@pytest.fixture(scope="module")
def build_two(build_one, tmp_path_factory) -> Path:
    """A copy of build one without the rows of its first day in the two marts a reader
    compares, published as build-two."""
    path = tmp_path_factory.mktemp("pg-build-two") / "analytics.duckdb"
    shutil.copy(build_one, path)
    with duckdb.connect(str(path)) as con:
        con.execute("delete from fct_messages where message_date = (select min(message_date) from fct_messages)")
        con.execute("delete from fct_agent_daily where activity_date = (select min(activity_date) from fct_agent_daily)")
        con.execute("update _published set build_id = 'build-two', published_at = published_at + interval 1 hour")
        for mart in READ_MARTS:
            con.execute(f"update _published set row_count = (select count(*) from {mart}) where table_name = ?", [mart])
    return path


def duckdb_rows(path: Path, query: str, params=()) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(query, list(params)).fetchall()


def pg_rows(url: str, query: str, params=None) -> list[tuple]:
    with psycopg.connect(url) as con:
        return con.execute(query, params).fetchall()


def marts_of(path: Path) -> list[str]:
    return [r[0] for r in duckdb_rows(path, f"select table_name from duckdb_tables() where {MAIN} "
                                            "and table_name <> '_published' order by 1")]


def snapshot_of(path: Path) -> tuple:
    """What a reader of the two marts and `_published` must see for the build of `path`."""
    counts = tuple(duckdb_rows(path, f"select count(*) from {mart}")[0][0] for mart in READ_MARTS)
    return (duckdb_rows(path, "select distinct build_id from _published")[0][0], *counts)


def read_snapshot(con: psycopg.Connection, reverse: bool = False) -> tuple:
    """build id and the counts of READ_MARTS, read in one transaction of `con` (repeatable read)."""
    with con.transaction():
        marts = READ_MARTS[::-1] if reverse else READ_MARTS
        counts = {mart: con.execute(f"select count(*) from analytics.{mart}").fetchone()[0] for mart in marts}
        builds = con.execute("select distinct build_id from analytics._published").fetchall()
    return (*[b for (b,) in builds], *(counts[mart] for mart in READ_MARTS))


def reader(url: str) -> psycopg.Connection:
    con = psycopg.connect(url, autocommit=True)
    con.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    return con


def test_publishes_every_mart_with_rows_types_comments_and_published(postgres, build_one):
    url = postgres.url()
    publication = publish_to_postgres(build_one, url)
    marts = marts_of(build_one)
    assert {t.name for t in publication.tables} == set(marts) and len(marts) >= 14

    in_pg = [r[0] for r in pg_rows(url, "select tablename from pg_tables where schemaname = 'analytics' order by 1")]
    assert in_pg == sorted([*marts, "_published"])
    for mart in marts:
        expected = duckdb_rows(build_one, f'select * from "{mart}"')
        got = pg_rows(url, f'select * from analytics."{mart}"')
        assert in_value_order(got) == in_value_order(expected), mart

    columns = duckdb_rows(build_one, "select table_name, column_name, data_type, comment from duckdb_columns() "
                                     f"where {MAIN} and table_name <> '_published'")
    pg_columns = {(t, c): (ty, comment) for t, c, ty, comment in pg_rows(url, """
        select c.relname, a.attname, format_type(a.atttypid, a.atttypmod), col_description(c.oid, a.attnum)
        from pg_attribute a join pg_class c on c.oid = a.attrelid join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = 'analytics' and a.attnum > 0 and not a.attisdropped""")}
    assert {(t, c) for t, c, _, _ in columns} == {k for k in pg_columns if k[0] != "_published"}
    for table, column, data_type, comment in columns:
        assert pg_columns[(table, column)] == (EXPECTED_TYPES[data_type], comment), (table, column)
    assert all(comment for *_, comment in columns)
    table_comments = dict(duckdb_rows(build_one, f"select table_name, comment from duckdb_tables() where {MAIN}"))
    for table, comment in pg_rows(url, "select relname, obj_description(oid, 'pg_class') from pg_class "
                                       "where relnamespace = 'analytics'::regnamespace and relkind = 'r'"):
        if table != "_published":
            assert comment == table_comments[table] and comment, table

    expected_published = duckdb_rows(build_one, "select build_id, dbt_invocation_id, published_at, table_name, row_count "
                                                "from _published order by table_name")
    assert pg_rows(url, "select build_id, dbt_invocation_id, published_at, table_name, row_count, in_schema, note "
                        "from analytics._published order by table_name") == [(*row, True, None) for row in expected_published]
    assert expected_published[0][0] == "build-one"
    assert pg_rows(url, "select obj_description('analytics'::regnamespace, 'pg_namespace')") == [(SCHEMA_MARKER,)]
    assert pg_rows(url, "select count(*) from pg_namespace where nspname like 'analytics%'") == [(1,)]


def in_value_order(rows: list[tuple]) -> list[tuple]:
    """`rows` sorted by their values, so a HUGEINT read from DuckDB (5) sorts as the numeric
    PostgreSQL returns (Decimal('5')), which it equals."""
    def key(row):
        return tuple((v is None, str(v) if isinstance(v, (int, Decimal)) and not isinstance(v, bool) else repr(v))
                     for v in row)
    return sorted(rows, key=key)


def test_tables_over_the_size_setting_are_left_to_parquet(postgres, build_one, caplog):
    url = postgres.url(database="postgres")
    counts = dict(duckdb_rows(build_one, "select table_name, row_count from _published"))
    limit = sorted(counts.values())[-3]  # the largest tables (ties included) stay out
    over = sorted(t for t, n in counts.items() if n > limit)
    assert over
    with caplog.at_level(logging.WARNING, logger="agent_analytics.serving.postgres"):
        publication = publish_to_postgres(build_one, url, max_rows=limit)
    assert publication.skipped == over
    in_pg = {r[0] for r in pg_rows(url, "select tablename from pg_tables where schemaname = 'analytics'")}
    assert in_pg == ({*counts, "_published"} - set(over))
    rows = pg_rows(url, "select table_name, row_count, in_schema, note from analytics._published order by 1")
    assert [(t, n, s) for t, n, s, _ in rows] == [(t, counts[t], t not in over) for t in sorted(counts)]
    for table, _, in_schema, note in rows:
        assert (note is None) == in_schema
        if not in_schema:
            assert f"serving/parquet/{table}.parquet" in note and str(limit) in note
            assert any(table in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)
    publish_to_postgres(build_one, url)  # the next test starts from every mart published


def test_reader_in_a_transaction_keeps_the_old_publication_while_a_new_one_waits(postgres, build_one, build_two):
    url = postgres.url()
    old, new = snapshot_of(build_one), snapshot_of(build_two)
    assert old[0] == "build-one" and new[0] == "build-two" and old[1] > new[1] and old[2] > new[2]
    publish_to_postgres(build_one, url)

    outcome: dict[str, object] = {}

    def publish_new():
        try:
            outcome["publication"] = publish_to_postgres(build_two, url)
        except Exception as exc:  # reported below
            outcome["error"] = exc

    with reader(url) as con, psycopg.connect(url, autocommit=True) as watcher:
        with con.transaction():
            first = con.execute(f"select count(*) from analytics.{READ_MARTS[0]}").fetchone()[0]
            publisher = threading.Thread(target=publish_new)
            publisher.start()
            # The staging schema's `_published` is the last table a publication writes before the swap.
            deadline = time.monotonic() + 120
            while not watcher.execute("select to_regclass('analytics__staging._published')").fetchone()[0]:
                assert publisher.is_alive() and time.monotonic() < deadline, outcome
                time.sleep(0.05)
            second = con.execute(f"select count(*) from analytics.{READ_MARTS[1]}").fetchone()[0]
            build = con.execute("select distinct build_id from analytics._published").fetchall()
            assert publisher.is_alive()  # the swap waits for this transaction
        publisher.join(timeout=120)
        assert not publisher.is_alive() and "error" not in outcome, outcome
        assert ([b for (b,) in build], first, second) == ([old[0]], old[1], old[2])
        assert read_snapshot(con) == new


def test_readers_looping_during_publications_see_one_build_each_time(postgres, build_one, build_two):
    url = postgres.url()
    old, new = snapshot_of(build_one), snapshot_of(build_two)
    publish_to_postgres(build_one, url)
    errors: list[Exception] = []

    def publish_in_turn():
        try:
            for source in (build_two, build_one, build_two, build_one):
                publish_to_postgres(source, url)
        except Exception as exc:  # reported below
            errors.append(exc)

    publisher = threading.Thread(target=publish_in_turn)
    seen = []
    with reader(url) as con:
        publisher.start()
        while publisher.is_alive():
            seen.append(read_snapshot(con, reverse=len(seen) % 2 == 1))
        publisher.join()
    assert not errors, errors
    assert seen and set(seen) <= {old, new}, set(seen) - {old, new}


def test_wrong_password_down_server_and_bad_url_fail_without_the_password(postgres, build_one, caplog):
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    down_port = closed.getsockname()[1]
    closed.close()
    wrong = "Wrong-Pass-3kZ8-never-shown"
    urls = {
        "wrong password": postgres.url(password=wrong),
        "down server": f"postgresql://analytics_test:{PASSWORD}@127.0.0.1:{down_port}/postgres",
        "bad percent-encoding": f"postgresql://analytics_test:{wrong}%zz@127.0.0.1:{postgres.port}/postgres",
        "password in the query": f"postgresql://analytics_test@127.0.0.1:{postgres.port}/postgres?password={wrong}",
    }
    expected = {"wrong password": "password authentication failed", "down server": "Connection refused",
                "bad percent-encoding": "percent-encoded", "password in the query": "password authentication failed"}
    with caplog.at_level(logging.DEBUG):
        for case, url in urls.items():
            with pytest.raises(PostgresPublishError) as raised:
                publish_to_postgres(build_one, url)
            message = str(raised.value)
            assert expected[case] in message, (case, message)
            assert PASSWORD not in message and wrong not in message, (case, message)
            # the driver's exception (which may quote the URL) is neither cause nor context
            assert raised.value.__cause__ is None and raised.value.__context__ is None
    assert PASSWORD not in caplog.text and wrong not in caplog.text
    assert "analytics_test:***@127.0.0.1" in caplog.text


def test_a_schema_it_did_not_make_is_never_dropped(postgres, build_one):
    url = postgres.url()
    with psycopg.connect(url, autocommit=True) as con:
        con.execute("create schema someone_elses")
        con.execute("create table someone_elses.notes (line text)")
        con.execute("insert into someone_elses.notes values ('keep me')")
    with pytest.raises(PostgresPublishError, match="someone_elses exists and was not made by agent-analytics"):
        publish_to_postgres(build_one, url, schema="someone_elses")
    assert pg_rows(url, "select line from someone_elses.notes") == [("keep me",)]
    assert pg_rows(url, "select count(*) from pg_namespace where nspname = 'someone_elses__staging'") == [(0,)]


def test_a_view_on_a_mart_makes_the_publication_fail_and_keeps_the_old_one(postgres, build_one, build_two):
    url = postgres.url()
    publish_to_postgres(build_one, url, schema="with_view")
    with psycopg.connect(url, autocommit=True) as con:
        con.execute("create view public.messages_view as select * from with_view.fct_messages")
    try:
        with pytest.raises(PostgresPublishError, match="depend"):
            publish_to_postgres(build_two, url, schema="with_view", swap_wait_s=0)
        assert pg_rows(url, "select distinct build_id from with_view._published") == [("build-one",)]
        assert pg_rows(url, "select count(*) from pg_namespace where nspname = 'with_view__staging'") == [(0,)]
    finally:
        with psycopg.connect(url, autocommit=True) as con:
            con.execute("drop view public.messages_view")


def test_build_id_and_time_given_replace_the_sources(postgres, build_one):
    url = postgres.url()
    at = datetime(2026, 1, 2, 3, 4, 5)
    publish_to_postgres(build_one, url, schema="given", build_id="run-123", published_at=at)
    assert pg_rows(url, "select distinct build_id, published_at from given._published") == [("run-123", at)]


def test_a_transaction_whose_snapshot_is_older_than_the_publication_sees_all_its_rows(postgres, build_one, build_two):
    url = postgres.url()
    publish_to_postgres(build_one, url)
    with reader(url) as con:
        with con.transaction():
            con.execute("select 1")  # the snapshot is taken here, before build two is loaded
            publish_to_postgres(build_two, url)
            counts = tuple(con.execute(f"select count(*) from analytics.{mart}").fetchone()[0] for mart in READ_MARTS)
            builds = [b for (b,) in con.execute("select distinct build_id from analytics._published").fetchall()]
    assert (*builds, *counts) == snapshot_of(build_two)


def test_a_read_only_bi_role_keeps_reading_after_each_publication(postgres, build_one, build_two):
    """The setup the README gives: a publishing role that may create schemas, a BI role
    granted the publisher's future schemas and tables by default privileges."""
    admin = postgres.url()
    with psycopg.connect(admin, autocommit=True) as con:
        con.execute("create database bi")
    with psycopg.connect(postgres.url(database="bi"), autocommit=True) as con:
        for statement in (
            "create role publisher login password 'publisher-pw'",
            "grant create on database bi to publisher",
            "create role bi_reader login password 'reader-pw'",
            "alter default privileges for role publisher grant usage on schemas to bi_reader",
            "alter default privileges for role publisher grant select on tables to bi_reader",
        ):
            con.execute(statement)
    publisher_url = f"postgresql://publisher:publisher-pw@127.0.0.1:{postgres.port}/bi"
    reader_url = f"postgresql://bi_reader:reader-pw@127.0.0.1:{postgres.port}/bi"
    for source in (build_one, build_two):
        publish_to_postgres(source, publisher_url)
        with psycopg.connect(reader_url) as con:
            assert read_snapshot(con) == snapshot_of(source)
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                con.execute("drop table analytics.fct_messages")


def test_settings_postgres_target_off_by_default_and_the_url_never_shown():
    from agent_analytics.settings import SettingsError

    base = {"AGENT_ANALYTICS_HOME": "/tmp/agent-analytics-settings-test"}
    off = load_settings(base)
    assert (off.bi_postgres_url, off.bi_postgres_schema, off.bi_postgres_max_rows) == (None, "analytics", 5_000_000)
    url = f"postgresql://publisher:{PASSWORD}@db.example:5432/bi"
    on = load_settings({**base, "AGENT_ANALYTICS_BI_POSTGRES_URL": f" {url} ", "AGENT_ANALYTICS_BI_POSTGRES_SCHEMA": "bi_marts",
                        "AGENT_ANALYTICS_BI_POSTGRES_MAX_ROWS": "1000"})
    assert (on.bi_postgres_url, on.bi_postgres_schema, on.bi_postgres_max_rows) == (url, "bi_marts", 1000)
    assert PASSWORD not in repr(on) and PASSWORD not in str(on)
    bad_url = f"mysql://publisher:{PASSWORD}@db.example/bi"
    with pytest.raises(SettingsError, match="AGENT_ANALYTICS_BI_POSTGRES_URL must be a postgresql://") as raised:
        load_settings({**base, "AGENT_ANALYTICS_BI_POSTGRES_URL": bad_url})
    assert PASSWORD not in str(raised.value)
    for schema in ("public", "information_schema", "pg_marts", "Analytics", "bi-marts", "a" * 51, "drop;me"):
        with pytest.raises(SettingsError, match="AGENT_ANALYTICS_BI_POSTGRES_SCHEMA"):
            load_settings({**base, "AGENT_ANALYTICS_BI_POSTGRES_SCHEMA": schema})
    for rows in ("0", "-5", "many"):
        with pytest.raises(SettingsError, match="AGENT_ANALYTICS_BI_POSTGRES_MAX_ROWS"):
            load_settings({**base, "AGENT_ANALYTICS_BI_POSTGRES_MAX_ROWS": rows})


def test_publish_if_configured_is_off_publishes_or_reports_a_failure_without_raising(postgres, build_one, tmp_path):
    base = {"AGENT_ANALYTICS_HOME": str(tmp_path / "home")}
    assert publish_if_configured(load_settings(base), build_one).status == "off"

    settings = load_settings({**base, "AGENT_ANALYTICS_BI_POSTGRES_URL": postgres.url(),
                              "AGENT_ANALYTICS_BI_POSTGRES_SCHEMA": "configured", "AGENT_ANALYTICS_BI_POSTGRES_MAX_ROWS": "5"})
    outcome = publish_if_configured(settings, build_one)
    counts = dict(duckdb_rows(build_one, "select table_name, row_count from _published"))
    over = sorted(t for t, n in counts.items() if n > 5)
    assert outcome.status == "published" and outcome.publication.skipped == over and over
    assert outcome.detail == (f"{len(counts) - len(over)} tables into configured at "
                              f"postgresql://analytics_test:***@127.0.0.1:{postgres.port}/postgres; "
                              f"over 5 rows, left to Parquet: {', '.join(over)}")
    assert pg_rows(postgres.url(), "select count(*) from configured._published where not in_schema") == [(len(over),)]

    wrong = load_settings({**base, "AGENT_ANALYTICS_BI_POSTGRES_URL": postgres.url(password="not-" + PASSWORD)})
    failed = publish_if_configured(wrong, build_one)
    assert failed.status == "failed" and "password authentication failed" in failed.detail
    assert PASSWORD not in failed.detail and failed.publication is None


def test_values_csv_could_confuse_arrive_unchanged(postgres, tmp_path):
    """Nulls against empty texts, quotes, separators, line breaks, backslashes, non-ASCII text,
    infinities, NaN, subnormal and long doubles, 128-bit integers, decimals, microseconds."""
    source = tmp_path / "edge.duckdb"
    with duckdb.connect(str(source)) as con:
        con.execute("""create table edge as select * from (values
            (1, '', null, 'a"b,c' || chr(10) || 'd\\e', 'ünï ☃', 'inf'::double, 1e-310::double, 0.1::double,
             1000000000000000000000000000001::hugeint, 12345.0000000001::decimal(38,10), timestamp '2026-11-30 06:07:08.123456',
             date '1970-01-01', null::boolean, 7::ubigint),
            (2, null, '', ',', '""', '-inf'::double, 'nan'::double, 123456789.12345679::double,
             -1267650600228229401496703205376::hugeint, -0.5::decimal(38,10), null::timestamp, null::date, true,
             18446744073709551615::ubigint)
            ) as t(id, empty, nothing, tricky, unicode, infinite, tiny, long, big, money, occurred, day, flag, counter)""")
    publish_to_postgres(source, postgres.url(), schema="edge_values", build_id="edge", published_at=datetime(2026, 11, 30))
    expected = duckdb_rows(source, "select * from edge order by id")
    got = pg_rows(postgres.url(), "select * from edge_values.edge order by id")
    assert [tuple(map(repr_float, r)) for r in got] == [tuple(map(repr_float, r)) for r in expected]
    types = pg_rows(postgres.url(), "select format_type(atttypid, atttypmod) from pg_attribute "
                                    "where attrelid = 'edge_values.edge'::regclass and attnum > 0 order by attnum")
    assert [t for (t,) in types] == ["integer", "text", "text", "text", "text", "double precision", "double precision",
                                     "double precision", "numeric", "numeric(38,10)", "timestamp without time zone", "date",
                                     "boolean", "numeric(20,0)"]


def repr_float(value):
    """A value comparable across the two databases: floats by repr (nan equals nan), integers
    and decimals as numbers."""
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    return value


def test_a_build_publishes_into_postgres_and_a_failure_there_only_warns(postgres, built_fixture_home, tmp_path):
    """Through `agent-analytics build`: with the URL set the serving copy reaches PostgreSQL
    under the run's id; with a wrong password the build still succeeds and publishes the
    serving file, and the WARN check names the cause without the password."""
    home = copy_built_home(built_fixture_home, tmp_path / "home")
    environ = {k: v for k, v in os.environ.items() if not k.startswith("AGENT_ANALYTICS_")}
    environ.update({"AGENT_ANALYTICS_HOME": str(home), "AGENT_ANALYTICS_BI_POSTGRES_SCHEMA": "built"})

    wrong = {**environ, "AGENT_ANALYTICS_BI_POSTGRES_URL": postgres.url(password="not-" + PASSWORD)}
    failed = subprocess.run([str(SCRIPT), "build"], env=wrong, capture_output=True, text=True, timeout=600)
    assert failed.returncode == 0, failed.stderr
    assert "warning check: postgres_published (postgres: " in failed.stdout and "password authentication failed" in failed.stdout
    assert PASSWORD not in failed.stdout + failed.stderr
    first_run = duckdb_rows(home / "serving" / "analytics.duckdb", "select distinct build_id from _published")
    assert pg_rows(postgres.url(), "select count(*) from pg_namespace where nspname like 'built%'") == [(0,)]

    done = subprocess.run([str(SCRIPT), "build"], env={**environ, "AGENT_ANALYTICS_BI_POSTGRES_URL": postgres.url()},
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0 and "postgres_published" not in done.stdout, done.stdout + done.stderr
    serving = home / "serving" / "analytics.duckdb"
    expected = duckdb_rows(serving, "select build_id, table_name, row_count from _published order by table_name")
    assert expected[0][0] != first_run[0][0]  # a new build, a new id
    assert pg_rows(postgres.url(), "select build_id, table_name, row_count from built._published order by table_name") == expected
    assert PASSWORD not in done.stdout + done.stderr
    for path in (home / "dagster").rglob("*"):  # the run storage: events, check metadata, logs
        assert not path.is_file() or PASSWORD.encode() not in path.read_bytes(), path
