"""One publication of the serving copy: the DuckDB file, then the Parquet set."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import duckdb

from agent_analytics.model_version import model_version
from agent_analytics.serving.duckdb_file import publish_duckdb
from agent_analytics.serving.parquet_set import LINK, publish_parquet
from agent_analytics.serving.tables import Mart, Publication, day_fingerprints, dbt_invocation_id, marts
from agent_analytics.settings import Settings

SERVING_DATABASE = "analytics.duckdb"


def serving_dir(settings: Settings) -> Path:
    return settings.home / "serving"


def serving_database(settings: Settings) -> Path:
    return serving_dir(settings) / SERVING_DATABASE


def parquet_dir(settings: Settings) -> Path:
    """The link BI tools open: its target is the folder of the current publication."""
    return serving_dir(settings) / LINK


def publish_all(con: duckdb.DuckDBPyConnection, settings: Settings, build_id: str | None = None,
                timings: dict[str, float] | None = None) -> Publication:
    """Publish the marts of the warehouse connection `con` (held under the warehouse lock) as
    the serving DuckDB file and the Parquet set; returns what was published. `timings`, when
    given, receives the seconds of each part (the benchmark reads them)."""
    timings = {} if timings is None else timings
    tables = marts()
    publication = _timed(timings, "fingerprints_s", new_publication, con, settings, tables, build_id)
    # The two targets are written at once, each on a cursor of its own: each spends much of its
    # time in work DuckDB does on one thread (the file's checkpoint, the Parquet writer).
    with ThreadPoolExecutor(max_workers=2) as pool, con.cursor() as one, con.cursor() as other:
        duckdb_file = pool.submit(_timed, timings, "duckdb_s", publish_duckdb, one, serving_database(settings), tables,
                                  publication)
        parquet_set = pool.submit(_timed, timings, "parquet_s", publish_parquet, other, serving_dir(settings), tables,
                                  publication)
        duckdb_file.result()
        parquet_set.result()
    # The PostgreSQL publication (postgres.py) follows in the serving asset, after the
    # warehouse is let go: a slow server never holds up the next build.
    return publication


def _timed(timings: dict[str, float], key: str, work, *args):
    start = time.perf_counter()
    try:
        return work(*args)
    finally:
        timings[key] = time.perf_counter() - start


def new_publication(con: duckdb.DuckDBPyConnection, settings: Settings, tables: list[Mart],
                    build_id: str | None = None) -> Publication:
    """What `con`'s marts are now: row counts, day fingerprints, build and model version."""
    return Publication(
        build_id=build_id or uuid.uuid4().hex,
        dbt_invocation_id=dbt_invocation_id(settings),
        published_at=datetime.now(timezone.utc).replace(tzinfo=None),
        row_counts={m.name: con.execute(f'select count(*) from main."{m.name}"').fetchone()[0] for m in tables},
        model_version=model_version(settings),
        days=day_fingerprints(con, tables),
    )
