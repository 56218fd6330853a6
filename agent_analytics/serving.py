"""The serving copy BI tools read, published after every successful build (issue 15):

- `serving/analytics.duckdb`: every mart and dimension (the models of dbt_project/models/marts/)
  as a plain table, with the dbt YAML descriptions as comments, and `_published`;
- `serving/parquet/<model>.parquet` and `serving/parquet/_published.parquet`: the same tables
  as Parquet files.

Readers never see half a publication and never block the pipeline. The DuckDB file is written
under a temporary name in serving/, flushed to disk and renamed into place: a reader that has
the old file open keeps reading it (the rename leaves its inode alone), the next one opens the
new file. The Parquet files of a publication are written into a new folder of
serving/parquet-versions/, and `serving/parquet`, a symbolic link to the current folder, is
replaced with one rename, so the files change as a set; a superseded folder is removed
PARQUET_GRACE_S after it was superseded, so a reader that resolved the link just before keeps
its files meanwhile.

The copy is made by DuckDB from the warehouse connection the caller holds (under the warehouse
lock), so it reads one consistent state and never competes with a build for the lock.
Publications therefore take turns: a temporary found when one starts is a leftover of a
publication that was killed, and is removed.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import yaml

from agent_analytics.files import sync_folder
from agent_analytics.settings import Settings

MARTS_DIR = Path(__file__).resolve().parents[1] / "dbt_project" / "models" / "marts"
SERVING_DATABASE = "analytics.duckdb"
PARQUET_LINK = "parquet"
PARQUET_VERSIONS = "parquet-versions"
PUBLISHED = "_published"
PARQUET_GRACE_S = 15 * 60
PUBLISHED_COLUMNS = {
    "build_id": ("varchar", "The build that produced these tables: the Dagster run id, or a random id outside Dagster."),
    "dbt_invocation_id": ("varchar", "The dbt invocation of that build (dbt_target/run_results.json), when known."),
    "published_at": ("timestamp", "When this copy was published (UTC): the \"data as of\" time."),
    "table_name": ("varchar", "A table of this copy."),
    "row_count": ("bigint", "Its rows at publication: a reader sees the same count."),
}


@dataclass(frozen=True)
class Mart:
    """A mart or dimension with its dbt YAML descriptions."""

    name: str
    description: str
    columns: dict[str, str]  # column name -> description


@dataclass(frozen=True)
class Publication:
    """What one publication holds: a build id, a time and the row count of each table."""

    build_id: str
    dbt_invocation_id: str | None
    published_at: datetime  # UTC, naive as the marts store times
    row_counts: dict[str, int]


def serving_dir(settings: Settings) -> Path:
    return settings.home / "serving"


def serving_database(settings: Settings) -> Path:
    return serving_dir(settings) / SERVING_DATABASE


def parquet_dir(settings: Settings) -> Path:
    """The link BI tools open: its target is the folder of the current publication."""
    return serving_dir(settings) / PARQUET_LINK


def marts(models_dir: Path = MARTS_DIR) -> list[Mart]:
    """The models of `models_dir` (one per .sql file) with their descriptions from its YAML."""
    documented = {}
    for yml in sorted(models_dir.glob("*.yml")):
        for model in (yaml.safe_load(yml.read_text()) or {}).get("models", []):
            documented[model["name"]] = model
    found = []
    for sql in sorted(models_dir.glob("*.sql")):
        model = documented.get(sql.stem, {})
        columns = {c["name"]: " ".join(c.get("description", "").split()) for c in model.get("columns", [])}
        found.append(Mart(sql.stem, " ".join(model.get("description", "").split()), columns))
    return found


def dbt_invocation_id(settings: Settings) -> str | None:
    """The invocation id of the last dbt run of this home (the dbt asset's target folder)."""
    try:
        results = json.loads((settings.home / "dbt_target" / "run_results.json").read_text())
    except (OSError, ValueError):
        return None
    return results.get("metadata", {}).get("invocation_id")


def publish_all(con: duckdb.DuckDBPyConnection, settings: Settings, build_id: str | None = None) -> Publication:
    """Publish the marts of the warehouse connection `con` (held under the warehouse lock) as
    the serving DuckDB file and the Parquet set; returns what was published."""
    tables = marts()
    publication = Publication(
        build_id=build_id or uuid.uuid4().hex,
        dbt_invocation_id=dbt_invocation_id(settings),
        published_at=datetime.now(timezone.utc).replace(tzinfo=None),
        row_counts={m.name: con.execute(f'select count(*) from main."{m.name}"').fetchone()[0] for m in tables},
    )
    publish_duckdb(con, serving_database(settings), tables, publication)
    publish_parquet(con, serving_dir(settings), tables, publication)
    # The PostgreSQL publication (serving_postgres.py) follows in the serving asset, after the
    # warehouse is let go: a slow server never holds up the next build.
    return publication


def publish_duckdb(con: duckdb.DuckDBPyConnection, target: Path, tables: list[Mart], publication: Publication) -> None:
    """`target` rewritten from `con`'s marts: tables with comments and `_published`, never in place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    for leftover in target.parent.glob(f".{target.name}.*"):
        leftover.unlink()
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    alias = "serving_copy"
    try:
        con.execute(f"attach {_text(str(tmp))} as {alias} (read_only false)")
        try:
            for mart in tables:
                name = f'{alias}.main."{mart.name}"'
                con.execute(f'create table {name} as select * from main."{mart.name}"')
                con.execute(f"comment on table {name} is {_text(mart.description)}")
                for column, description in mart.columns.items():
                    con.execute(f'comment on column {name}."{column}" is {_text(description)}')
            _create_published(con, f"{alias}.main", publication)
            con.execute(f"checkpoint {alias}")
        finally:
            con.execute(f"detach {alias}")
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        for leftover in target.parent.glob(f".{target.name}.*"):  # the file and its write-ahead log
            leftover.unlink(missing_ok=True)
        raise
    sync_folder(target.parent)


def publish_parquet(con: duckdb.DuckDBPyConnection, folder: Path, tables: list[Mart], publication: Publication) -> Path:
    """A new folder of Parquet files (one per mart and `_published.parquet`) under
    `folder`/parquet-versions/, then the link `folder`/parquet swapped to it in one rename;
    returns the new folder."""
    versions = folder / PARQUET_VERSIONS
    versions.mkdir(parents=True, exist_ok=True)
    for leftover in versions.glob(".*.tmp"):
        shutil.rmtree(leftover)
    version = publication.published_at.strftime("%Y%m%dT%H%M%S%fZ") + "-" + publication.build_id[:8]
    staging = versions / f".{version}.tmp"
    staging.mkdir()
    try:
        for mart in tables:
            _copy_parquet(con, f'select * from main."{mart.name}"', staging / f"{mart.name}.parquet")
        _copy_parquet(con, _published_rows(publication), staging / f"{PUBLISHED}.parquet")
        sync_folder(staging)
        os.rename(staging, versions / version)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    sync_folder(versions)
    link, link_tmp = folder / PARQUET_LINK, folder / f".{PARQUET_LINK}.tmp"
    link_tmp.unlink(missing_ok=True)
    os.symlink(Path(PARQUET_VERSIONS) / version, link_tmp)  # relative: the home can move
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


def _copy_parquet(con: duckdb.DuckDBPyConnection, query: str, path: Path) -> None:
    con.execute(f"copy ({query}) to {_text(str(path))} (format parquet)")
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _create_published(con: duckdb.DuckDBPyConnection, schema: str, publication: Publication) -> None:
    con.execute(f"create table {schema}.{PUBLISHED} as {_published_rows(publication)}")
    con.execute(f"comment on table {schema}.{PUBLISHED} is "
                f"{_text('One row per table of this copy: the build it comes from, when it was published, its rows.')}")
    for column, (_, description) in PUBLISHED_COLUMNS.items():
        con.execute(f"comment on column {schema}.{PUBLISHED}.{column} is {_text(description)}")


def _published_rows(publication: Publication) -> str:
    """A select of the `_published` rows (the values are ours, quoted as SQL literals)."""
    types = {column: data_type for column, (data_type, _) in PUBLISHED_COLUMNS.items()}
    rows = [
        f"({_text(publication.build_id)}, {_text(publication.dbt_invocation_id)}, "
        f"{_text(publication.published_at.isoformat(sep=' '))}, {_text(table)}, {count})"
        for table, count in publication.row_counts.items()
    ]
    casts = ", ".join(f"cast({column} as {data_type}) as {column}" for column, data_type in types.items())
    return f"select {casts} from (values {', '.join(rows)}) as t({', '.join(types)})"


def _text(value: str | None) -> str:
    """A SQL string literal (or null)."""
    return "null" if value is None else "'" + value.replace("'", "''") + "'"
