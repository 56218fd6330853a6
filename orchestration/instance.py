"""The Dagster instance home (DAGSTER_HOME) inside AGENT_ANALYTICS_HOME, and its config."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from agent_analytics.files import write_atomically
from agent_analytics.settings import Settings

# The instance's settings: run queue and pools, run monitoring and retries, tick retention.
TEMPLATE = Path(__file__).resolve().parents[1] / "config" / "dagster.yaml"
# The first line of every dagster.yaml agent-analytics wrote (this version's and earlier ones):
# such a file is replaced by the template; one without it is the user's own and kept.
WRITTEN_BY_US = "# Written by agent-analytics"


def ensure_dagster_home(settings: Settings) -> None:
    """Create DAGSTER_HOME with its dagster.yaml and storage, and point this process (and
    children) at it. Processes starting together initialize it one after another: SQLite
    schema creation is not safe to run twice at once."""
    settings.ensure_dirs()
    os.environ.update(settings.env())
    with open(settings.dagster_home / ".init.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        config = settings.dagster_home / "dagster.yaml"
        template = TEMPLATE.read_text()
        current = config.read_text() if config.exists() else None
        if current is None or (current != template and current.startswith(WRITTEN_BY_US)):
            write_atomically(config, template)
        import dagster as dg

        with dg.DagsterInstance.get() as instance:
            instance.get_runs(limit=1)  # creates the run, event and schedule storage
