"""The marts published into a PostgreSQL schema (AGENT_ANALYTICS_BI_POSTGRES_URL), so Tableau's
and Power BI's built-in PostgreSQL connectors read them with no extra driver.

A publication loads every table of the source (the serving DuckDB file) into a fresh staging
schema and commits it, then swaps it in with one short transaction: the old schema's tables
and the schema itself are dropped and the staging schema is renamed in their place. A reader
never sees a mix of two publications:

- a transaction that has read a table of the old schema holds a lock on it until it ends, and
  the swap cannot drop that table meanwhile: such a reader keeps reading old tables only;
- the swap waits for locks at most half of the server's deadlock_timeout and then lets go of
  all of them and tries again (for up to `swap_wait_s`), so a reader that needs a table the
  swap holds waits a moment instead of being chosen as a deadlock victim;
- a reader that first reads a mart after the swap sees only new tables, and all of their
  rows: they are written by COPY ... FREEZE (allowed because the table is created in the same
  transaction), so they are visible even to a transaction whose snapshot is older than the
  publication (one that began with another query).

Tables over `max_rows` rows (the row-level facts of a large warehouse) are not published
here: `_published` lists them with a note pointing at their Parquet files.

The URL holds a password: it never appears in a log line or an error; errors are masked with
`redaction.Redactor` (psycopg quotes the URL's parts in some of its errors).
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

import duckdb
import psycopg
import pyarrow
import pyarrow.csv
from psycopg import sql

from agent_analytics.redaction import MASK, Redactor
from agent_analytics.serving.parquet_set import location
from agent_analytics.serving.tables import PUBLISHED
from agent_analytics.serving.tables import PUBLISHED_COLUMNS as SERVING_PUBLISHED
from agent_analytics.settings import (
    BI_POSTGRES_MAX_ROWS_DEFAULT,
    BI_POSTGRES_SCHEMA_DEFAULT,
    BI_POSTGRES_URL_VAR,
    Settings,
)

DEFAULT_SCHEMA = BI_POSTGRES_SCHEMA_DEFAULT
DEFAULT_MAX_ROWS = BI_POSTGRES_MAX_ROWS_DEFAULT
BATCH_ROWS = 100_000  # rows per Arrow batch, each sent to COPY as one CSV chunk
CONNECT_TIMEOUT_S = 10
SWAP_WAIT_S = 60.0
# Every schema a publication made carries this comment: a publication drops only such a
# schema, never one a person made under the same name.
SCHEMA_MARKER = "agent-analytics: the marts for BI tools, replaced whole by every publication"

log = logging.getLogger(__name__)

_SIMPLE_TYPES = {
    "VARCHAR": "text",
    "BOOLEAN": "boolean",
    "TINYINT": "smallint",
    "SMALLINT": "smallint",
    "INTEGER": "integer",
    "BIGINT": "bigint",
    "UTINYINT": "smallint",
    "USMALLINT": "integer",
    "UINTEGER": "bigint",
    "UBIGINT": "numeric(20,0)",
    "HUGEINT": "numeric",
    "FLOAT": "real",
    "DOUBLE": "double precision",
    "DATE": "date",
    "TIMESTAMP": "timestamp",
    "TIMESTAMP WITH TIME ZONE": "timestamptz",
}
_DECIMAL = re.compile(r"DECIMAL\((\d+),(\d+)\)")



class PostgresPublishError(RuntimeError):
    """A publication failed; the message names the cause, never the URL's password."""


@dataclass(frozen=True)
class TableRows:
    name: str
    rows: int
    in_schema: bool


@dataclass(frozen=True)
class PostgresPublication:
    """What one publication put into `schema`."""

    schema: str
    build_id: str
    published_at: datetime
    tables: tuple[TableRows, ...]

    @property
    def skipped(self) -> list[str]:
        return [t.name for t in self.tables if not t.in_schema]


@dataclass(frozen=True)
class _Column:
    name: str
    duckdb_type: str
    comment: str | None


@dataclass(frozen=True)
class _Table:
    name: str
    comment: str | None
    columns: tuple[_Column, ...]


@dataclass(frozen=True)
class PostgresOutcome:
    """How the publication of one build went: off, published or failed, in one line that
    never holds the password."""

    status: str
    detail: str
    publication: PostgresPublication | None = None


def publish_if_configured(settings: Settings, source: str | Path) -> PostgresOutcome:
    """Publish `source` (the serving DuckDB file) as the settings say, when
    AGENT_ANALYTICS_BI_POSTGRES_URL is set. A failure is returned, not raised: the build's
    other outputs stand whatever the PostgreSQL server does."""
    url = settings.bi_postgres_url
    if not url:
        return PostgresOutcome("off", f"{BI_POSTGRES_URL_VAR} is not set")
    try:
        publication = publish_to_postgres(source, url, settings.bi_postgres_schema, max_rows=settings.bi_postgres_max_rows)
    except PostgresPublishError as exc:
        log.warning("PostgreSQL: %s", exc)
        return PostgresOutcome("failed", str(exc))
    detail = f"{len(publication.tables) - len(publication.skipped)} tables into {publication.schema} at {describe_url(url)}"
    if publication.skipped:
        detail += f"; over {settings.bi_postgres_max_rows} rows, left to Parquet: {', '.join(publication.skipped)}"
    return PostgresOutcome("published", detail, publication)


def postgres_type(duckdb_type: str) -> str:
    """The PostgreSQL type that holds every value of a DuckDB column type."""
    simple = _SIMPLE_TYPES.get(duckdb_type)
    if simple:
        return simple
    decimal = _DECIMAL.fullmatch(duckdb_type.replace(" ", ""))
    if decimal:
        return f"numeric({decimal[1]},{decimal[2]})"
    raise PostgresPublishError(f"no PostgreSQL type for the DuckDB type {duckdb_type}")


# The columns of the serving file's `_published` but the model version, and where the table is.
PUBLISHED_COLUMNS = {
    **{name: (postgres_type(data_type.upper()), description) for name, (data_type, description) in SERVING_PUBLISHED.items()
       if name != "model_version"},
    "in_schema": ("boolean", "Whether the table is in this schema (false: over the size setting, read its Parquet file)."),
    "note": ("text", "Why a table is not in this schema, and where to read it instead."),
}


def describe_url(url: str) -> str:
    """The URL as logs may show it: user, host, port and database; the password masked, the
    query (which may hold `password=`) left out."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if parts.password is not None:
            netloc = netloc.replace(f":{parts.password}@", f":{MASK}@", 1)
        return parts._replace(netloc=netloc, query="", fragment="").geturl()
    except ValueError:
        return "(an unreadable URL)"


def redactor(url: str) -> Redactor:
    """Masks the URL, its password and their quoted forms in any text."""
    secrets = [url]
    try:
        secrets.append(psycopg.conninfo.conninfo_to_dict(url).get("password"))
    except psycopg.Error:
        pass  # an unparseable URL: its parts are masked by Redactor's URL handling
    return Redactor(secrets)


def publish_to_postgres(
    source: duckdb.DuckDBPyConnection | str | Path,
    url: str,
    schema: str = DEFAULT_SCHEMA,
    *,
    build_id: str | None = None,
    published_at: datetime | None = None,
    dbt_invocation_id: str | None = None,
    max_rows: int = DEFAULT_MAX_ROWS,
    tables: Sequence[str] | None = None,
    swap_wait_s: float = SWAP_WAIT_S,
) -> PostgresPublication:
    """Publish the tables of `source` (a DuckDB connection, or the path of the serving DuckDB
    file) into `schema` of the PostgreSQL database at `url`, replacing what it held.

    `tables`: which tables of the source's main schema (default: all but `_published` and `_published_days`). The
    build id and time default to the source's `_published` table. Raises PostgresPublishError
    with the password masked; the schema then keeps the previous publication."""
    mask = redactor(url)
    try:
        if isinstance(source, (str, Path)):
            with duckdb.connect(str(source), read_only=True) as con:
                return _publish(con, url, schema, build_id, published_at, dbt_invocation_id, max_rows, tables, swap_wait_s)
        return _publish(source.cursor(), url, schema, build_id, published_at, dbt_invocation_id, max_rows, tables,
                        swap_wait_s)
    except PostgresPublishError as exc:
        message = mask(exc)
    except (psycopg.Error, duckdb.Error, pyarrow.ArrowException, OSError) as exc:
        message = f"publishing to PostgreSQL ({describe_url(url)}) failed: {mask(exc)}".strip()
    # Raised outside the except clauses: the original exception, which may quote the URL, is
    # neither its cause nor its context, so no traceback or error report shows it.
    raise PostgresPublishError(message)


def _publish(con, url, schema, build_id, published_at, dbt_invocation_id, max_rows, names, swap_wait_s) -> PostgresPublication:
    source_tables = _source_tables(con, names)
    build_id, published_at, dbt_invocation_id = _build_of(con, build_id, published_at, dbt_invocation_id)
    counts = {t.name: con.execute(f'select count(*) from main."{t.name}"').fetchall()[0][0] for t in source_tables}
    rows = tuple(TableRows(t.name, counts[t.name], counts[t.name] <= max_rows) for t in source_tables)
    for skipped in (r for r in rows if not r.in_schema):
        log.warning("PostgreSQL: %s has %d rows, over the %d of AGENT_ANALYTICS_BI_POSTGRES_MAX_ROWS: not published "
                    "there, read serving/parquet/%s", skipped.name, skipped.rows, max_rows, location(skipped.name))
    publication = PostgresPublication(schema, build_id, published_at, rows)
    staging = f"{schema}__staging"
    log.info("PostgreSQL: publishing build %s into %s at %s", build_id, schema, describe_url(url))
    with psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT_S, autocommit=True) as pg:
        # Publications into one schema take turns (two homes may share a database).
        pg.execute("select pg_advisory_lock(hashtext(%s))", [f"agent_analytics.publish.{schema}"])
        with pg.transaction():
            _drop_own_schema(pg, staging)
            pg.execute(sql.SQL("create schema {}").format(sql.Identifier(staging)))
            pg.execute(sql.SQL("comment on schema {} is {}").format(sql.Identifier(staging), sql.Literal(SCHEMA_MARKER)))
            for table in source_tables:
                if counts[table.name] <= max_rows:
                    _load_table(con, pg, staging, table)
            _create_published(pg, staging, publication, dbt_invocation_id, max_rows)
        try:
            _swap(pg, staging, schema, swap_wait_s)
        except BaseException:
            with contextlib.suppress(psycopg.Error, PostgresPublishError), pg.transaction():
                _drop_own_schema(pg, staging)  # best effort: the next publication drops it too
            raise
    log.info("PostgreSQL: build %s published into %s (%d tables, %d over the size setting)", build_id, schema,
             len(rows), len(publication.skipped))
    return publication


def _source_tables(con, names: Sequence[str] | None) -> list[_Table]:
    found = con.execute(
        "select table_name, comment from duckdb_tables() where database_name = current_database() and schema_name = 'main' "
        "order by table_name").fetchall()
    comments = dict(found)
    wanted = [n for n in comments if not n.startswith("_")] if names is None else list(names)  # not _published, _published_days
    missing = [n for n in wanted if n not in comments]
    if missing:
        raise PostgresPublishError(f"the source has no table {', '.join(missing)}")
    columns = con.execute(
        "select table_name, column_name, data_type, comment from duckdb_columns() "
        "where database_name = current_database() and schema_name = 'main' order by table_name, column_index").fetchall()
    return [_Table(name, comments[name], tuple(_Column(c, t, d) for table, c, t, d in columns if table == name))
            for name in wanted]


def _build_of(con, build_id, published_at, dbt_invocation_id):
    """The build id, time and dbt invocation: as given, else from the source's `_published`."""
    if build_id is not None and published_at is not None:
        return build_id, published_at, dbt_invocation_id
    has_published = con.execute("select count(*) from duckdb_tables() where database_name = current_database() "
                                "and schema_name = 'main' and table_name = ?", [PUBLISHED]).fetchall()[0][0]
    if not has_published:
        raise PostgresPublishError("no build id and time given, and the source has no _published table to take them from")
    found = con.execute(f"select build_id, published_at, dbt_invocation_id from main.{PUBLISHED} limit 1").fetchall()
    if not found:
        raise PostgresPublishError("the source's _published table is empty")
    row = found[0]
    return build_id or row[0], published_at or row[1], dbt_invocation_id or row[2]


def _drop_own_schema(pg: psycopg.Connection, schema: str) -> None:
    """Drop `schema` when a publication made it (its comment says so) with its tables; a
    schema of that name someone else made is an error, never dropped."""
    found = pg.execute("select obj_description(oid, 'pg_namespace') from pg_namespace where nspname = %s", [schema]).fetchone()
    if found is None:
        return
    if found[0] != SCHEMA_MARKER:
        raise PostgresPublishError(
            f"the schema {schema} exists and was not made by agent-analytics: it is left alone; choose another "
            "AGENT_ANALYTICS_BI_POSTGRES_SCHEMA or drop it")
    tables = pg.execute("select tablename from pg_tables where schemaname = %s", [schema]).fetchall()
    if tables:
        names = sql.SQL(", ").join(sql.Identifier(schema, t) for (t,) in tables)
        # no CASCADE: a view someone built on a mart makes this fail instead of being dropped silently
        pg.execute(sql.SQL("drop table {}").format(names))
    pg.execute(sql.SQL("drop schema {}").format(sql.Identifier(schema)))


def _load_table(con, pg: psycopg.Connection, schema: str, table: _Table) -> None:
    target = sql.Identifier(schema, table.name)
    _create_table(pg, target, table.comment, [(c.name, postgres_type(c.duckdb_type), c.comment) for c in table.columns])
    # CSV: a null is an unquoted empty field, an empty text a quoted one (Arrow quotes every text)
    options = pyarrow.csv.WriteOptions(include_header=False, quoting_style="needed")
    query = sql.SQL("copy {} from stdin (format csv, freeze)").format(target)
    with pg.cursor().copy(query) as copy, con.sql(f'select * from main."{table.name}"').to_arrow_reader(
            batch_size=BATCH_ROWS) as reader:
        for batch in reader:
            chunk = io.BytesIO()
            pyarrow.csv.write_csv(batch, chunk, options)
            copy.write(chunk.getvalue())


def _create_table(pg: psycopg.Connection, target: sql.Identifier, comment: str | None,
                  columns: Sequence[tuple[str, str, str | None]]) -> None:
    """`target` with `columns` (name, PostgreSQL type, comment) and the comments."""
    definition = sql.SQL(", ").join(sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(data_type))
                                    for name, data_type, _ in columns)
    pg.execute(sql.SQL("create table {} ({})").format(target, definition))
    if comment:
        pg.execute(sql.SQL("comment on table {} is {}").format(target, sql.Literal(comment)))
    for name, _, column_comment in columns:
        if column_comment:
            pg.execute(sql.SQL("comment on column {}.{} is {}").format(target, sql.Identifier(name), sql.Literal(column_comment)))


def _create_published(pg: psycopg.Connection, schema: str, publication: PostgresPublication,
                      dbt_invocation_id: str | None, max_rows: int) -> None:
    target = sql.Identifier(schema, PUBLISHED)
    _create_table(pg, target, "One row per mart of the build: its rows, and whether this schema holds it.",
                  [(name, data_type, description) for name, (data_type, description) in PUBLISHED_COLUMNS.items()])
    published_at = publication.published_at
    if published_at.tzinfo is not None:  # stored as UTC without a zone, as the marts store times
        published_at = published_at.astimezone(timezone.utc).replace(tzinfo=None)
    rows = [
        (publication.build_id, dbt_invocation_id, published_at, t.name, t.rows, t.in_schema,
         None if t.in_schema else f"{t.rows} rows, over AGENT_ANALYTICS_BI_POSTGRES_MAX_ROWS ({max_rows}): "
                                  f"read serving/parquet/{location(t.name)}")
        for t in publication.tables
    ]
    with pg.cursor().copy(sql.SQL("copy {} from stdin (freeze)").format(target)) as copy:
        for row in rows:
            copy.write_row(row)


def _swap(pg: psycopg.Connection, staging: str, schema: str, wait_s: float) -> None:
    """Drop `schema` and rename `staging` to it in one transaction, retrying while readers
    hold the old tables (see the module's docstring)."""
    deadlock_s = pg.execute("select extract(epoch from current_setting('deadlock_timeout')::interval)").fetchone()[0]
    lock_timeout_ms = max(int(float(deadlock_s) * 1000) // 2, 10)
    deadline = time.monotonic() + wait_s
    while True:
        try:
            with pg.transaction():
                pg.execute(sql.SQL("set local lock_timeout = {}").format(sql.Literal(f"{lock_timeout_ms}ms")))
                _drop_own_schema(pg, schema)
                pg.execute(sql.SQL("alter schema {} rename to {}").format(sql.Identifier(staging), sql.Identifier(schema)))
            return
        except psycopg.errors.LockNotAvailable:
            if time.monotonic() > deadline:
                raise PostgresPublishError(
                    f"readers held the tables of {schema} for over {wait_s:g} s: the previous publication stays") from None
            time.sleep(lock_timeout_ms / 1000)
