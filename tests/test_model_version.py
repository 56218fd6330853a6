"""The model version, and the build that rebuilds the warehouse when it changes.

The fixture's day 1 (tests/fixtures/README.md) holds these messages, by (user, agent):
u1 -> support at 10:00, 10:10, 10:40 and 11:11 on 2026-11-02 (gaps of 10, 30 and 31 minutes),
u2 -> sales at 23:50 on 2026-11-02 and 00:10 on 2026-11-03 (gap 20), u3 -> support at 12:00
on 2026-11-03. With the 30-minute timeout (a gap of exactly the timeout stays in the session)
that is four sessions; with 5 minutes every gap ends a session: seven sessions of one message.
"""

from __future__ import annotations

import json
import shutil

import dagster as dg
import duckdb

from agent_analytics.build_memory import MEMORY_VAR, THREADS_VAR
from agent_analytics.model_version import DBT_PROJECT_DIR, SOURCE_FOLDERS, model_version
from agent_analytics.settings import load_settings
from orchestration.build import run_build
from orchestration.defs.dbt.definitions import (
    FULL_REBUILD_TAG,
    MODEL_VERSION_FILE,
    MODELS_CHANGED,
    recorded_model_version,
)

TIMEOUT_VAR = "AGENT_ANALYTICS_SESSION_TIMEOUT_MIN"

SESSIONS_30_MIN = [
    ("u1", "support", "2026-11-02 10:00:00", 3),
    ("u1", "support", "2026-11-02 11:11:00", 1),
    ("u2", "sales", "2026-11-02 23:50:00", 2),
    ("u3", "support", "2026-11-03 12:00:00", 1),
]
SESSIONS_5_MIN = [
    ("u1", "support", "2026-11-02 10:00:00", 1),
    ("u1", "support", "2026-11-02 10:10:00", 1),
    ("u1", "support", "2026-11-02 10:40:00", 1),
    ("u1", "support", "2026-11-02 11:11:00", 1),
    ("u2", "sales", "2026-11-02 23:50:00", 1),
    ("u2", "sales", "2026-11-03 00:10:00", 1),
    ("u3", "support", "2026-11-03 12:00:00", 1),
]


def test_the_version_follows_the_model_files_and_the_settings_they_read(tmp_path):
    project = tmp_path / "dbt_project"
    project.mkdir()
    shutil.copy(DBT_PROJECT_DIR / "dbt_project.yml", project / "dbt_project.yml")
    for folder in SOURCE_FOLDERS:
        if (DBT_PROJECT_DIR / folder).is_dir():
            shutil.copytree(DBT_PROJECT_DIR / folder, project / folder)
    env = {"AGENT_ANALYTICS_HOME": str(tmp_path / "home"), "AGENT_ANALYTICS_TZ": "UTC"}
    settings = load_settings(env)
    base = model_version(settings, project)
    assert len(base) == 64 and base == model_version(load_settings(env), project)  # stable

    # what dbt writes is no source: the version stays
    (project / "target").mkdir()
    (project / "target" / "manifest.json").write_text("{}")
    assert model_version(settings, project) == base
    # nor do settings the SQL does not read
    assert model_version(load_settings({**env, MEMORY_VAR: "2GB", THREADS_VAR: "1"}), project) == base

    model = project / "models" / "marts" / "fct_sessions.sql"
    original = model.read_bytes()
    model.write_bytes(original + b"\n-- changed\n")
    assert model_version(settings, project) != base
    model.write_bytes(original)
    assert model_version(settings, project) == base

    changed = {
        "AGENT_ANALYTICS_TZ": "Europe/Berlin",
        TIMEOUT_VAR: "5",
        "AGENT_ANALYTICS_EVENT_TIME_MIN": "2020-01-01",
        "AGENT_ANALYTICS_EVENT_TIME_MAX_AHEAD_H": "48",
        "AGENT_ANALYTICS_BILL_MISMATCH_PCT": "2.5",
    }
    versions = {name: model_version(load_settings({**env, name: value}), project) for name, value in changed.items()}
    assert base not in versions.values() and len(set(versions.values())) == len(changed)


def _sessions(settings) -> list[tuple]:
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        return con.execute(
            "select user_id, agent_id, session_started_at::varchar, message_count from fct_sessions order by all"
        ).fetchall()
    finally:
        con.close()


def _full_refresh(settings) -> bool:
    """Whether dbt's last invocation was a `--full-refresh`, as dbt recorded it."""
    results = json.loads((settings.home / "dbt_target" / "run_results.json").read_text())
    return bool(results["args"].get("full_refresh", False))


def _recorded(settings) -> str | None:
    path = settings.home / "dbt_target" / MODEL_VERSION_FILE
    return json.loads(path.read_text())["model_version"] if path.exists() else None


def _last_run(settings) -> tuple[dict, list[str]]:
    """The tags and the log messages of the newest run in the home's Dagster instance."""
    with dg.DagsterInstance.get() as instance:
        run = instance.get_runs(limit=1)[0]
        return dict(run.tags), [entry.user_message for entry in instance.all_logs(run.run_id)]


def test_a_changed_setting_rebuilds_the_warehouse_once_and_a_failed_rebuild_records_nothing(day1_home, monkeypatch, capsys):
    monkeypatch.delenv(TIMEOUT_VAR, raising=False)
    first = load_settings()
    assert run_build(first) is True
    assert _recorded(first) == model_version(first)
    assert _sessions(first) == SESSIONS_30_MIN
    assert not _full_refresh(first)

    # The timeout changes, and the rebuild it causes fails (DuckDB's memory far too small for
    # dbt; 4MB, as the steps before dbt have the same limit and need more than 2MB):
    # the old record is gone and nothing new is recorded.
    monkeypatch.setenv(TIMEOUT_VAR, "5")
    with monkeypatch.context() as patch:
        patch.setenv(MEMORY_VAR, "4MB")
        patch.setenv(THREADS_VAR, "1")
        assert run_build(load_settings()) is False
    assert _full_refresh(first)
    assert _last_run(first)[0].get(FULL_REBUILD_TAG) == "models_changed"
    assert _recorded(first) is None

    # The next build rebuilds again (marts exist, no record), now with room: every session
    # is cut at the new timeout, as from scratch.
    second = load_settings()
    assert second.session_timeout_minutes == 5 and model_version(second) != model_version(first)
    capsys.readouterr()
    assert run_build(second) is True
    assert MODELS_CHANGED in capsys.readouterr().out  # `agent-analytics build` says why it took long
    assert _full_refresh(second)
    tags, messages = _last_run(second)
    assert tags.get(FULL_REBUILD_TAG) == "models_changed" and MODELS_CHANGED in messages
    assert _recorded(second) == model_version(second)
    assert _sessions(second) == SESSIONS_5_MIN

    # Nothing changed since: incremental again.
    assert run_build(second) is True
    assert MODELS_CHANGED not in capsys.readouterr().out
    assert not _full_refresh(second)
    tags, messages = _last_run(second)
    assert FULL_REBUILD_TAG not in tags and MODELS_CHANGED not in messages
    assert _recorded(second) == model_version(second)
    assert _sessions(second) == SESSIONS_5_MIN



def test_a_missing_or_unreadable_record_is_no_version(tmp_path):
    assert recorded_model_version(tmp_path) is None
    for text in ("not json", "[]", "{}"):
        (tmp_path / MODEL_VERSION_FILE).write_text(text)
        assert recorded_model_version(tmp_path) is None
    (tmp_path / MODEL_VERSION_FILE).write_text(json.dumps({"model_version": "abc", "run_id": "r"}))
    assert recorded_model_version(tmp_path) == "abc"
