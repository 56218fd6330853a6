"""The version of what turns the raw layer into marts: the dbt project's files and the settings
that reach its SQL. Two builds of the same raw layer under the same version give the same marts.

A build records the version it ran under; when the code or one of those settings changes, the
rows already in the incremental models were made by the old version, so the next build rebuilds
them all (orchestration/defs/dbt/) and the serving copy is republished whole (serving.py).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from agent_analytics.settings import Settings

DBT_PROJECT_DIR = Path(__file__).resolve().parents[1] / "dbt_project"
# What dbt reads to build the models: everything else in the folder (target/, logs/) is output.
SOURCE_FOLDERS = ("models", "macros", "seeds", "tests", "snapshots")
SOURCE_SUFFIXES = (".sql", ".yml", ".yaml", ".csv")


def model_version(settings: Settings, project: Path = DBT_PROJECT_DIR) -> str:
    """A hex digest of the project's source files (paths and bytes) and of the settings the
    models read (company time zone, session timeout, accepted event-time range, bill mismatch threshold)."""
    digest = hashlib.sha256()
    files = [project / "dbt_project.yml"]
    for folder in SOURCE_FOLDERS:
        files += sorted(p for p in (project / folder).rglob("*") if p.suffix in SOURCE_SUFFIXES and p.is_file())
    for path in files:
        digest.update(path.relative_to(project).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    used = (settings.company_tz, settings.session_timeout_minutes, settings.event_time_min.isoformat(),
            f"{settings.event_time_max_ahead_hours:g}", f"{settings.bill_mismatch_pct:g}")
    digest.update(repr(used).encode())
    return digest.hexdigest()
