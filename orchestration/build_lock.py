"""One build at a time per DAGSTER_HOME, with a bounded wait.

Every warehouse step is in the pool `warehouse` (limit 1), so two builds could not run side
by side anyway; taking turns before the run starts lets the waiting build sleep (Dagster's
in-process executor polls a blocked pool claim without sleeping), answer SIGTERM, and give up
after a time with a message naming the holder. The lock is an flock: the kernel releases it
when its holder dies, however it dies, so it can never be left stale. The file's text only
names the holder for that message.
"""

from __future__ import annotations

import fcntl
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from agent_analytics.settings import BUILD_WAIT_VAR
from agent_analytics.warehouse import wait_for_flock

LOCK_NAME = "build.lock"
POLL_S = 0.5


class BuildWaitTimeout(Exception):
    """Another build held the turn for longer than the wait allowed; one line for the user."""


@contextmanager
def build_turn(dagster_home: Path, wait_s: float) -> Iterator[None]:
    """Hold the build turn of `dagster_home`, waiting at most `wait_s` seconds for it."""
    lock_path = dagster_home / LOCK_NAME
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+") as handle:
        if not wait_for_flock(handle, wait_s, POLL_S):
            handle.seek(0)
            holder = handle.read().strip() or "another build"
            raise BuildWaitTimeout(
                f"{holder} still holds {lock_path} after {wait_s:g} s of waiting ({BUILD_WAIT_VAR}); "
                f"try again later or raise {BUILD_WAIT_VAR}"
            )
        try:
            handle.truncate(0)
            started = datetime.now(timezone.utc).isoformat(timespec="seconds")
            handle.write(f"build process {os.getpid()} on {socket.gethostname()} (since {started})\n")
            handle.flush()
            yield
        finally:
            handle.truncate(0)
            fcntl.flock(handle, fcntl.LOCK_UN)
