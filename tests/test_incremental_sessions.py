"""A late message that bridges two sessions: the incremental build merges them, exactly as a
full rebuild does.

First load: u1 -> support at 08:00, 10:00 (v1) and twice at 10:40 (v2; gaps over 30 minutes:
three sessions), u2 -> sales at 09:00 (no version), u4 -> faq at 12:30 (v2). Second load: a
late u1 -> support message at 10:20 (v2; gaps now 20 and 20 minutes: one session of four
messages from 10:00, whose version is its first message's, v1), u3 -> faq at 12:00, and a late
u4 -> faq message at 12:10 (v1), which becomes the first message of u4's session: the session
starts at 12:10 and is v1's. u1's 08:00 session is before every rebuilt session and u2 has no
new message: both are untouched. The two 10:40 messages tie on time: the session ends with the
response of the later event id (a2b, 3 s), in both builds.
"""

import json
import os

import duckdb
import pytest

from agent_analytics.settings import load_settings
from agent_analytics_cli.main import main
from orchestration.build import run_build


def message(eid: str, at: str, user: str, agent: str, response_time_ms: int = 1000, version: str | None = None) -> str:
    return json.dumps({"event_id": eid, "type": "message", "occurred_at": at, "user_id": user, "agent_id": agent,
                       "status": "ok", "response_time_ms": response_time_ms,
                       **({"agent_version": version} if version else {})}) + "\n"


def sessions(settings) -> list[tuple]:
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        return con.execute(
            "select user_id, agent_id, session_started_at::varchar, message_count, duration_ms, agent_version "
            "from fct_sessions order by all"
        ).fetchall()
    finally:
        con.close()


def test_late_message_merges_sessions_incrementally(tmp_path):
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    first.write_text(message("a0", "2026-11-02T08:00:00Z", "u1", "support", version="v1")
                     + message("a1", "2026-11-02T10:00:00Z", "u1", "support", version="v1")
                     + message("a2b", "2026-11-02T10:40:00Z", "u1", "support", 3000, version="v2")
                     + message("a2", "2026-11-02T10:40:00Z", "u1", "support", version="v2")
                     + message("b1", "2026-11-02T09:00:00Z", "u2", "sales")
                     + message("d1", "2026-11-02T12:30:00Z", "u4", "faq", version="v2"))
    second.write_text(message("a3", "2026-11-02T10:20:00Z", "u1", "support", version="v2")
                      + message("c1", "2026-11-02T12:00:00Z", "u3", "faq")
                      + message("d0", "2026-11-02T12:10:00Z", "u4", "faq", version="v1"))
    patch = pytest.MonkeyPatch()
    saved_env = dict(os.environ)
    try:
        patch.setenv("AGENT_ANALYTICS_HOME", str(tmp_path / "home"))
        patch.setenv("AGENT_ANALYTICS_TZ", "UTC")
        settings = load_settings()
        assert main(["ingest", str(first)]) == 0
        assert run_build(settings)
        assert sessions(settings) == [
            ("u1", "support", "2026-11-02 08:00:00", 1, 1000, "v1"),
            ("u1", "support", "2026-11-02 10:00:00", 1, 1000, "v1"),
            ("u1", "support", "2026-11-02 10:40:00", 2, 3000, "v2"),
            ("u2", "sales", "2026-11-02 09:00:00", 1, 1000, None),
            ("u4", "faq", "2026-11-02 12:30:00", 1, 1000, "v2"),
        ]
        assert main(["ingest", str(second)]) == 0
        assert run_build(settings)
        merged = [
            ("u1", "support", "2026-11-02 08:00:00", 1, 1000, "v1"),
            ("u1", "support", "2026-11-02 10:00:00", 4, 2_403_000, "v1"),  # 10:00 -> 10:40 + 3 s; a1's version
            ("u2", "sales", "2026-11-02 09:00:00", 1, 1000, None),
            ("u3", "faq", "2026-11-02 12:00:00", 1, 1000, None),
            ("u4", "faq", "2026-11-02 12:10:00", 2, 1_201_000, "v1"),  # 12:10 -> 12:30 + 1 s; the late d0's version
        ]
        assert sessions(settings) == merged
        con = duckdb.connect(str(settings.warehouse_path), read_only=True)
        try:
            assert con.execute("select sessions from fct_daily_activity").fetchall() == [(5,)]
        finally:
            con.close()
        assert run_build(settings, full_refresh=True)
        assert sessions(settings) == merged
    finally:
        os.environ.clear()
        os.environ.update(saved_env)
        patch.undo()
