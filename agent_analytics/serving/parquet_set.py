"""`serving/parquet/`: every mart as Parquet, published as a set.

A publication writes a new folder in `serving/parquet-versions/` and replaces the symbolic link
`serving/parquet` with one rename, so the files change as a set; a superseded folder is
removed PARQUET_GRACE_S after it was superseded, so a reader that resolved the link just before
keeps its files meanwhile.

The small marts are one file each, `<model>.parquet`. The row-level facts (tables.BY_DAY) are
a folder each, with a folder per day in Hive layout:
`<model>/<day column>=YYYY-MM-DD/data_0.parquet` (the day column is also inside the files; an
empty table is one empty file, `<model>/data_0.parquet`). A day whose fingerprint is the one
the previous folder recorded is hard links to the previous folder's files: a refresh writes the
few days it changed, not the whole history.
"""

from __future__ import annotations

import itertools
import os
import shutil
import time
from datetime import date
from pathlib import Path

import duckdb

from agent_analytics.files import sync_folder
from agent_analytics.serving.tables import (
    BY_DAY,
    PUBLISHED,
    PUBLISHED_DAYS,
    DayFingerprint,
    Mart,
    Publication,
    changed_days,
    days_of,
    published_days_rows,
    published_rows,
    read_published_days,
    text,
)

LINK = "parquet"
VERSIONS = "parquet-versions"
PARQUET_GRACE_S = 15 * 60
DAY_FILE = "data_0.parquet"  # a day written alone, and the one file of an empty table
FEW_DAYS = 3
# Rows of one partitioned COPY: DuckDB's partitioned writer holds what it is given before it
# writes, so the whole of fct_messages at 100M messages spilled 18 GB beside 10 GB of memory;
# a month of it at a time (8.5M rows) held 5.5 GB and spilled nothing. A chunk of this many
# rows holds about 2.6 GB (about 650 bytes a row).
CHUNK_ROWS = 4_000_000


def location(table: str) -> str:
    """Where a table is in the set, relative to `serving/parquet/`."""
    return f"{table}/" if table in BY_DAY else f"{table}.parquet"


def publish_parquet(con: duckdb.DuckDBPyConnection, folder: Path, tables: list[Mart], publication: Publication) -> Path:
    """A new version folder under `folder`/parquet-versions/, then the link `folder`/parquet
    swapped to it in one rename; returns the new folder."""
    versions = folder / VERSIONS
    versions.mkdir(parents=True, exist_ok=True)
    for leftover in versions.glob(".*.tmp"):
        shutil.rmtree(leftover)
    previous = _previous(folder / LINK, publication.model_version)
    version = publication.published_at.strftime("%Y%m%dT%H%M%S%fZ") + "-" + publication.build_id[:8]
    staging = versions / f".{version}.tmp"
    staging.mkdir()
    try:
        for mart in tables:
            query = f'select * from main."{mart.name}"'
            if mart.name in BY_DAY:
                _publish_by_day(con, query, staging, mart.name, publication.days, previous)
            else:
                _copy(con, query, staging / f"{mart.name}.parquet")
        _copy(con, published_rows(publication), staging / f"{PUBLISHED}.parquet")
        _copy(con, published_days_rows(publication), staging / f"{PUBLISHED_DAYS}.parquet")
        sync_folder(staging)
        os.rename(staging, versions / version)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    sync_folder(versions)
    link, link_tmp = folder / LINK, folder / f".{LINK}.tmp"
    link_tmp.unlink(missing_ok=True)
    os.symlink(Path(VERSIONS) / version, link_tmp)  # relative: the home can move
    os.replace(link_tmp, link)
    sync_folder(folder)
    remove_superseded(versions, version)
    return versions / version


def remove_superseded(versions: Path, current: str, grace_s: float = PARQUET_GRACE_S) -> list[str]:
    """Remove the version folders superseded over `grace_s` ago (a version is superseded when
    the next one is written); returns their names."""
    names = sorted(p.name for p in versions.iterdir() if p.is_dir() and not p.name.startswith("."))
    removed = []
    now = time.time()
    for older, newer in itertools.pairwise(names):
        if older != current and now - (versions / newer).stat().st_mtime > grace_s:
            shutil.rmtree(versions / older)
            removed.append(older)
    return removed


def _previous(link: Path, model_version: str | None) -> tuple[Path, frozenset[DayFingerprint]] | None:
    """The current version folder and its day fingerprints, when its files can be reused."""
    state = link / f"{PUBLISHED_DAYS}.parquet"
    if model_version is None or not state.exists():
        return None
    folder = link.resolve()
    with duckdb.connect() as con:
        versions = con.execute(f"select distinct model_version from read_parquet({text(str(folder / f'{PUBLISHED}.parquet'))})")
        if {row[0] for row in versions.fetchall()} != {model_version}:
            return None
        return folder, read_published_days(con, f"read_parquet({text(str(folder / f'{PUBLISHED_DAYS}.parquet'))})")


def _publish_by_day(con: duckdb.DuckDBPyConnection, query: str, staging: Path, table: str,
                    days: frozenset[DayFingerprint], previous) -> None:
    """`table`'s folder in `staging`: unchanged days linked from the previous folder, the
    others written by partitioned COPYs of at most CHUNK_ROWS rows each."""
    out = staging / table
    column = BY_DAY[table][0]
    wanted = days_of(days, table)
    changed = None if previous is None else set(changed_days(previous[1], days, table))
    reused = [day for day in wanted if changed is not None and day not in changed
              and (previous[0] / table / f"{column}={day.isoformat()}").is_dir()]
    out.mkdir()
    for day in reused:
        part = f"{column}={day.isoformat()}"
        (out / part).mkdir()
        for file in (previous[0] / table / part).iterdir():
            os.link(file, out / part / file.name)
    written = sorted(set(wanted) - set(reused))
    if len(written) > FEW_DAYS:  # a partitioned COPY per run of days of at most CHUNK_ROWS rows
        rows = {day: count for name, day, count, *_ in days if name == table}
        for number, chunk in enumerate(_chunks(written, rows)):
            scratch = staging / f".{table}.new{number}"
            listed = ", ".join(f"date {text(day.isoformat())}" for day in chunk)
            # the range lets the scan skip the row groups of other days, which `in` alone does not
            con.execute(f"copy ({query} where {column} between date {text(chunk[0].isoformat())} "
                        f"and date {text(chunk[-1].isoformat())} and {column} in ({listed})) to {text(str(scratch))} "
                        f"(format parquet, partition_by ({column}), write_partition_columns true)")
            for part in sorted(scratch.iterdir()):
                for file in part.iterdir():
                    _sync_file(file)
                sync_folder(part)
                part.rename(out / part.name)
            scratch.rmdir()
    else:  # a refresh's few days, where the partitioned writer costs more than one file each
        for day in written:
            part = out / f"{column}={day.isoformat()}"
            part.mkdir()
            _copy(con, f"{query} where {column} = date {text(day.isoformat())}", part / DAY_FILE)
            sync_folder(part)
    if not wanted:  # an empty table: one empty file, so that a reader of the folder finds its columns
        _copy(con, f"{query} limit 0", out / DAY_FILE)
    sync_folder(out)


def _chunks(days: list[date], rows: dict[date, int]) -> list[list[date]]:
    """`days` (sorted) cut into runs of at most CHUNK_ROWS rows (a day with more is a run alone)."""
    chunks: list[list[date]] = []
    total = 0
    for day in days:
        if not chunks or total + rows.get(day, 0) > CHUNK_ROWS:
            chunks.append([])
            total = 0
        chunks[-1].append(day)
        total += rows.get(day, 0)
    return chunks


def _copy(con: duckdb.DuckDBPyConnection, query: str, path: Path) -> None:
    con.execute(f"copy ({query}) to {text(str(path))} (format parquet)")
    _sync_file(path)


def _sync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())
