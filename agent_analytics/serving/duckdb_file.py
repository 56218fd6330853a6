"""`serving/analytics.duckdb`: every mart as a plain table, replaced atomically, and rewritten
only where the warehouse changed.

Two files take turns, `serving/duckdb-files/analytics-a.duckdb` and `analytics-b.duckdb`, and
`serving/analytics.duckdb` is a hard link to the current one. A publication updates the other
one (the spare: two publications old) inside one transaction: it rewrites the small marts
whole, and in the row-level facts only the days whose fingerprint changed since the spare's
publication (`_published_days`). It then checkpoints it, flushes it to disk and links it in
place of `analytics.duckdb` with one rename: a reader that has the old file open keeps reading
it, the next one opens the new file.

A reader may still hold the spare open (DuckDB refuses a writer then): the spare is unlinked
(the reader keeps its file) and replaced by a byte copy of the current file, which is then
brought up to date the same way. A spare of another model version, or a missing one, is
written anew, whole. A publication killed half-way leaves the spare's transaction
uncommitted, which DuckDB rolls back when the file is next opened.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import duckdb

from agent_analytics.files import sync_folder
from agent_analytics.serving.tables import (
    BY_DAY,
    PUBLISHED,
    PUBLISHED_COLUMNS,
    PUBLISHED_DAYS,
    PUBLISHED_DAYS_COLUMNS,
    Mart,
    Publication,
    changed_days,
    published_days_rows,
    published_rows,
    read_published_days,
    text,
)

FILES_FOLDER = "duckdb-files"
PUBLISHED_DESCRIPTION = "One row per table of this copy: the build it comes from, when it was published, its rows."
PUBLISHED_DAYS_DESCRIPTION = ("Rows and newest load time per day of the tables published by day "
                              "(what the next publication compares).")
ALIAS = "serving_copy"


def publish_duckdb(con: duckdb.DuckDBPyConnection, target: Path, tables: list[Mart], publication: Publication) -> Path:
    """Bring the spare file up to `con`'s marts and link it as `target`; returns the spare."""
    folder = target.parent / FILES_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    for leftover in target.parent.glob(f".{target.name}.*"):  # a link of a killed publication
        leftover.unlink()
    spare = _spare(target, folder)
    before = _attach(con, spare, target, publication.model_version)
    try:
        con.execute("begin transaction")
        try:
            kept = _kept_tables(con)
            for mart in tables:
                days = None if before is None or mart.name not in BY_DAY else changed_days(before, publication.days, mart.name)
                _fill(con, mart.name, f'select * from main."{mart.name}"', mart.description, mart.columns,
                      mart.name in kept, BY_DAY.get(mart.name, ("",))[0], days)
            _fill(con, PUBLISHED, published_rows(publication), PUBLISHED_DESCRIPTION, _descriptions(PUBLISHED_COLUMNS),
                  PUBLISHED in kept)
            _fill(con, PUBLISHED_DAYS, published_days_rows(publication), PUBLISHED_DAYS_DESCRIPTION,
                  _descriptions(PUBLISHED_DAYS_COLUMNS), PUBLISHED_DAYS in kept)
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
        con.execute(f"checkpoint {ALIAS}")
    finally:
        con.execute(f"detach {ALIAS}")
    with open(spare, "rb") as handle:
        os.fsync(handle.fileno())
    link = target.with_name(f".{target.name}.link")
    os.link(spare, link)
    os.replace(link, target)
    sync_folder(target.parent)
    return spare


def _spare(target: Path, folder: Path) -> Path:
    """The file of the two that `target` is not a link to."""
    current = target.stat().st_ino if target.exists() else None
    a, b = folder / "analytics-a.duckdb", folder / "analytics-b.duckdb"
    return b if a.exists() and a.stat().st_ino == current else a


def _attach(con: duckdb.DuckDBPyConnection, spare: Path, current: Path, model_version: str | None):
    """Attach `spare` for writing; returns its day fingerprints, or None when it is to be
    written whole (new, of another model version, or without its state)."""
    try:
        con.execute(f"attach {text(str(spare))} as {ALIAS} (read_only false)")
    except duckdb.IOException:
        # A reader has it open: it keeps that file, and the spare starts as a copy of the
        # current one (no writer has it open: it was checkpointed and detached), one publication old.
        _remove(spare)
        if current.exists():
            shutil.copyfile(current, spare)
        con.execute(f"attach {text(str(spare))} as {ALIAS} (read_only false)")
    before = _state(con, model_version)
    if before is None and _tables(con):
        con.execute(f"detach {ALIAS}")
        _remove(spare)
        con.execute(f"attach {text(str(spare))} as {ALIAS} (read_only false)")
    return before


def _state(con: duckdb.DuckDBPyConnection, model_version: str | None):
    tables = _tables(con)
    if PUBLISHED not in tables or PUBLISHED_DAYS not in tables or model_version is None:
        return None
    versions = {row[0] for row in con.execute(f"select distinct model_version from {ALIAS}.main.{PUBLISHED}").fetchall()}
    if versions != {model_version}:
        return None
    return read_published_days(con, f"{ALIAS}.main.{PUBLISHED_DAYS}")


def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    found = con.execute("select table_name from duckdb_tables() where database_name = ?", [ALIAS]).fetchall()
    return {row[0] for row in found}


def _kept_tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    """The spare's tables whose columns (names, types, order) are those of the warehouse's table
    or query of the same name: they are refilled, and keep their comments."""
    def columns(database: str) -> dict[str, list[tuple[str, str]]]:
        found: dict[str, list[tuple[str, str]]] = {}
        for table, column, data_type in con.execute(
                "select table_name, column_name, data_type from duckdb_columns() where database_name = ? "
                "order by table_name, column_index", [database]).fetchall():
            found.setdefault(table, []).append((column, data_type))
        return found

    spare, warehouse = columns(ALIAS), columns(con.execute("select current_database()").fetchone()[0])
    kept = {table for table, found in spare.items() if warehouse.get(table) == found}
    for table, declared in ((PUBLISHED, PUBLISHED_COLUMNS), (PUBLISHED_DAYS, PUBLISHED_DAYS_COLUMNS)):
        if [column for column, _ in spare.get(table, [])] == list(declared):
            kept.add(table)
    return kept


def _descriptions(columns: dict[str, tuple[str, str]]) -> dict[str, str]:
    """Column -> description of a (type, description) table of columns."""
    return {column: description for column, (_, description) in columns.items()}


def _fill(con: duckdb.DuckDBPyConnection, table: str, query: str, description: str, columns: dict[str, str],
          kept: bool, day_column: str = "", days: list | None = None) -> None:
    """Make the spare's `table` hold `query`'s rows: only the rows of `days` (by `day_column`)
    when given, else all; a table not kept is created anew with its comments."""
    name = f'{ALIAS}.main."{table}"'
    if not kept:
        con.execute(f"create or replace table {name} as {query}")
        con.execute(f"comment on table {name} is {text(description)}")
        for column, column_description in columns.items():
            con.execute(f'comment on column {name}."{column}" is {text(column_description)}')
    elif days is None:
        con.execute(f"delete from {name}")
        con.execute(f"insert into {name} {query}")
    elif days:
        listed = ", ".join(f"date {text(day.isoformat())}" for day in days)
        con.execute(f"delete from {name} where {day_column} in ({listed})")
        con.execute(f"insert into {name} {query} where {day_column} in ({listed})")


def _remove(path: Path) -> None:
    for leftover in (path, path.with_name(path.name + ".wal")):
        leftover.unlink(missing_ok=True)
