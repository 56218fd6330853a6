"""The DuckDB warehouse file: one writer at a time.

DuckDB lets one process hold a database file. Everything that opens the warehouse goes
through `open_warehouse`, which first takes an exclusive lock on a sidecar lock file and
waits for it, so two runs started together queue instead of failing with
"Could not set lock on file". The connection is closed and the lock released on exit.

Every DuckDB connection of the product to the warehouse or its copies has the build's limits
(`duckdb_config`): DuckDB's own default is 80% of the machine's memory and a spill folder beside
the database file, which at 100M messages let one publication hold 20 GB.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from agent_analytics.build_memory import DEFAULT_MEMORY
from agent_analytics.build_memory import memory_limit as memory_setting


class WarehouseOpenError(OSError):
    """The warehouse cannot be opened (not a DuckDB file, a folder, no permission for its
    lock); the message is one line naming the file."""


def wait_for_flock(handle, timeout_s: float, poll_s: float = 0.2) -> bool:
    """Take an exclusive flock on the open file `handle`, sleeping between tries (so the waiting
    process still answers signals); False when `timeout_s` passed first. The kernel releases an
    flock when its holder dies, however it dies, so it is never left stale."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(min(poll_s, max(deadline - time.monotonic(), 0.01)))


@contextmanager
def warehouse_lock(warehouse_path: Path, timeout_s: float = 3600.0) -> Iterator[None]:
    """Exclusive, blocking, process-wide lock for the warehouse file."""
    lock_path = warehouse_path.with_name(warehouse_path.name + ".lock")
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(lock_path, "a+")
    except OSError as exc:
        raise WarehouseOpenError(f"cannot open the warehouse lock {lock_path}: {exc.strerror or exc}") from exc
    with handle:
        if not wait_for_flock(handle, timeout_s):
            raise TimeoutError(f"another process has held {lock_path} for over {timeout_s:.0f} s")
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def duckdb_config(home: Path, memory_limit: str = DEFAULT_MEMORY) -> dict[str, str]:
    """The limits of a DuckDB connection of the home `home`, as the dbt profile sets them for the
    build: at most `memory_limit` (a size or a share of the machine, the validated setting
    AGENT_ANALYTICS_DUCKDB_MEMORY), what does not fit spilled to `<home>/duckdb_tmp`."""
    return {"memory_limit": memory_limit, "temp_directory": str(home / "duckdb_tmp")}


@contextmanager
def open_warehouse(
    warehouse_path: Path, *, read_only: bool = False, lock_timeout_s: float = 3600.0,
    memory_limit: str | None = None,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection to the warehouse (`<home>/warehouse.duckdb`) with the home's limits
    (`duckdb_config`; `memory_limit` by default the process's AGENT_ANALYTICS_DUCKDB_MEMORY, as
    ingest, compaction, bills and alert delivery know only the path), holding the warehouse
    lock while it is open; TimeoutError when another process held the lock for
    `lock_timeout_s` (the HTTP service waits briefly)."""
    with warehouse_lock(warehouse_path, lock_timeout_s):
        try:
            con = duckdb.connect(str(warehouse_path), read_only=read_only,
                                 config=duckdb_config(warehouse_path.parent, memory_limit or memory_setting(os.environ)))
        except duckdb.IOException as exc:
            reason = str(exc).splitlines()[0].removeprefix("IO Error: ")
            raise WarehouseOpenError(f"cannot open the warehouse {warehouse_path}: {reason}") from exc
        try:
            con.execute("set TimeZone = 'UTC'")
            yield con
        finally:
            con.close()


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """The statements of the block committed together, or rolled back on any exception."""
    con.execute("begin transaction")
    try:
        yield
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
