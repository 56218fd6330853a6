"""Shared pytest fixtures."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest

# The suite's processes stop on SIGTERM however the suite was launched: a launcher of
# background jobs may hand down SIGTERM ignored, and the crash tests send it to children.
if signal.getsignal(signal.SIGTERM) is signal.SIG_IGN:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


@dataclass(frozen=True)
class Home:
    """A fresh warehouse location: the DuckDB file and the Parquet raw layer."""

    warehouse: Path
    raw: Path


@pytest.fixture
def home(tmp_path: Path) -> Home:
    return Home(warehouse=tmp_path / "home" / "warehouse.duckdb", raw=tmp_path / "home" / "raw")


@pytest.fixture
def deliver(monkeypatch):
    """`deliver_pending` as a run calls it, with the variables of `env` (channel URLs, keys,
    secrets) set in the environment and the backoff pauses recorded in `deliver.sleeps`
    instead of slept."""
    from agent_analytics.alerts import deliver as delivery
    from agent_analytics.alerts.secrets import redactor_for

    sleeps: list[float] = []
    monkeypatch.setattr(delivery, "time", SimpleNamespace(sleep=sleeps.append, time=time.time))

    def run(warehouse: Path, config, env: dict[str, str]):
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        return delivery.deliver_pending(warehouse, config, redactor_for(config, env))

    run.sleeps = sleeps
    return run


FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def day1_home(tmp_path: Path, monkeypatch) -> Path:
    """A home with the fixture's day1.jsonl waiting in landing/, AGENT_ANALYTICS_HOME set to it
    and the company zone UTC; the whole environment is restored afterwards (a build writes its
    settings into os.environ for dbt)."""
    home = tmp_path / "home"
    (home / "landing").mkdir(parents=True)
    shutil.copy(FIXTURES / "day1.jsonl", home / "landing" / "day1.jsonl")
    saved = dict(os.environ)
    monkeypatch.setenv("AGENT_ANALYTICS_HOME", str(home))
    monkeypatch.setenv("AGENT_ANALYTICS_TZ", "UTC")
    yield home
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="session")
def built_fixture_home(tmp_path_factory) -> Path:
    """A home with the fixture files (tests/fixtures/day*.jsonl) ingested and built with the
    default settings, once per session: copy it (tests/service_server.py `copy_built_home`),
    never change it."""
    home = tmp_path_factory.mktemp("built-fixture") / "home"
    environ = {k: v for k, v in os.environ.items() if not k.startswith("AGENT_ANALYTICS_")}
    environ["AGENT_ANALYTICS_HOME"] = str(home)
    script = str(Path(sys.executable).with_name("agent-analytics"))
    for argv in (["ingest", str(FIXTURES / "day1.jsonl"), str(FIXTURES / "day2.jsonl")], ["build"]):
        subprocess.run([script, *argv], env=environ, check=True, capture_output=True, timeout=600)
    return home
