"""The dbt project as dagster-dbt's `DbtProject`: where it lives and how its manifest is made.

The asset definitions read `dbt_project/target/manifest.json` (`target-spark/` on Spark). Under `dagster dev`,
`prepare_if_dev` parses the project when the definitions load; everywhere else the manifest
is prepared explicitly before the definitions are loaded: `agent-analytics build`, `demo` and
`dev` call `prepare_manifest`, a deployment runs `dagster-dbt project prepare-and-package
--file orchestration/defs/dbt/project.py`. Importing this module runs no dbt.
"""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path

import filelock
from dagster_dbt import DbtProject

REPO_ROOT = Path(__file__).resolve().parents[3]
DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"
PROFILES_DIR = REPO_ROOT

# The manifest differs by engine (models enabled or materialized per target, profiles.yml's
# target is AGENT_ANALYTICS_ENGINE), so each engine prepares its own: a Spark build never loads
# the DuckDB manifest, nor the other way round, also when both run from this checkout at once.
# Read from the environment that started the process, as dbt itself reads it.
_ENGINE = os.environ.get("AGENT_ANALYTICS_ENGINE") or "duckdb"
DBT_PROJECT = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=PROFILES_DIR,
                         target_path=Path("target" if _ENGINE == "duckdb" else f"target-{_ENGINE}"))
DBT_PROJECT.prepare_if_dev()


def dbt_executable() -> str:
    """The dbt of the running environment, even when PATH lacks the venv's bin folder."""
    candidate = Path(sys.executable).with_name("dbt")
    return str(candidate) if candidate.exists() else "dbt"


def dbt_on_path(environ: dict[str, str]) -> dict[str, str]:
    """`environ` with the running environment's bin folder first on PATH: dagster-dbt's
    preparer runs `dbt` by name, and `.venv/bin/agent-analytics` may run without the venv
    activated."""
    folder = str(Path(sys.executable).parent)
    path = environ.get("PATH", "")
    if folder in path.split(os.pathsep):
        return dict(environ)
    return {**environ, "PATH": folder + (os.pathsep + path if path else "")}


# How long a build waits for another process's parse of the same checkout. dagster-dbt's
# guard gives up after 60 s, which a parse on a loaded 2-core machine can take.
PARSE_WAIT_S = 900.0


def prepare_manifest() -> Path:
    """Parse the project into its manifest with dagster-dbt's preparer (processes preparing
    at the same time wait for one parse; dbt's partial parsing keeps a repeated parse short)."""
    os.environ.update(dbt_on_path(dict(os.environ)))
    deadline = time.monotonic() + PARSE_WAIT_S
    while True:
        try:
            DBT_PROJECT.preparer.prepare(DBT_PROJECT)
            return DBT_PROJECT.manifest_path
        except filelock.Timeout:  # another process still parses: once it is done, ours is a no-op
            if time.monotonic() >= deadline:
                raise RuntimeError(
                    f"another process has been parsing the dbt project for over {PARSE_WAIT_S:.0f} s "
                    f"(lock {DBT_PROJECT.manifest_path.with_suffix('.concurrent-update-lock')})"
                ) from None


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_ERRORS_MARKER = "Errors parsed from dbt logs:"
_PROGRESS = re.compile(r"^\d+ of \d+ ")  # "1 of 3 ERROR creating sql table model ...": no reason
_PREFIX = re.compile(r"^(\[ERROR\]:\s*)?(Encountered an error:\s*)?")


def dbt_error_line(exc: Exception) -> str:
    """One line for a failed dbt invocation. dagster-dbt's message starts with the command and
    a pointer to the compute logs, then lists the errors dbt logged: those say what failed and
    why (a model's SQL error, a failed test, a missing profile target), once each here."""
    text = _ANSI.sub("", str(exc))
    head, marker, errors = text.partition(_ERRORS_MARKER)
    if not marker:
        return " ".join(head.split()) or type(exc).__name__
    blocks = [" ".join(block.split()) for block in errors.split("\n\n")]
    blocks = [_PREFIX.sub("", block) for block in blocks if block]
    reasons = [b for b in blocks if b and not _PROGRESS.match(b)] or [b for b in blocks if b]
    # "[ERROR]: in model m (models/m.sql)" comes before the error that names the same model
    return " | ".join(r for r in reasons if not any(r != other and r in other for other in reasons))
