"""The Dagster instance home (DAGSTER_HOME) inside AGENT_ANALYTICS_HOME, and its config."""

from __future__ import annotations

import fcntl
import os

from agent_analytics.settings import Settings
from orchestration.pools import WAREHOUSE_POOL

DAGSTER_YAML = f"""# Written by agent-analytics. Pools: every warehouse step is in pool '{WAREHOUSE_POOL}'.
concurrency:
  pools:
    default_limit: 1
telemetry:
  enabled: false
"""


def ensure_dagster_home(settings: Settings) -> None:
    """Create DAGSTER_HOME with its dagster.yaml and storage, and point this process (and
    children) at it. Processes starting together initialize it one after another: SQLite
    schema creation is not safe to run twice at once."""
    settings.ensure_dirs()
    os.environ.update(settings.env())
    with open(settings.dagster_home / ".init.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        config = settings.dagster_home / "dagster.yaml"
        if not config.exists() or config.read_text() != DAGSTER_YAML:
            config.write_text(DAGSTER_YAML)
        import dagster as dg

        with dg.DagsterInstance.get() as instance:
            instance.get_runs(limit=1)  # creates the run, event and schedule storage
