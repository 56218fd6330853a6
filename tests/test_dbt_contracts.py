"""dbt's own mechanisms guard the warehouse: enforced model contracts (DuckDB refuses a null in a
not_null column while the model is built) and data tests that a refresh scopes to the rows it
added through the standard `where` config, while `dbt test` and a full build check every row.

dbt runs here as a plain CLI call on the repository's project, as anyone operating the
warehouse would run it; the target folder is the test's own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from agent_analytics.settings import load_settings
from agent_analytics_cli.main import main
from orchestration.defs.dbt.definitions import REFRESH_EXCLUDE
from tests.test_end_to_end import DAY1, DAY2
from tests.test_poison_build import _rewrite

REPO = Path(__file__).resolve().parents[1]
DBT_PROJECT_DIR = REPO / "dbt_project"
SCOPE_ENV = "AGENT_ANALYTICS_DBT_TESTS_LOADED_AFTER"
CALLS_HAVE_MESSAGES = "relationships_sharing_fct_llm_calls_message_id__message_id__message_date__ref_fct_messages_"


@pytest.fixture
def warehouse_env(tmp_path, monkeypatch):
    """A fresh home, the settings' environment as the build passes it to dbt, and no scope."""
    home = tmp_path / "home"
    monkeypatch.setenv("AGENT_ANALYTICS_HOME", str(home))
    monkeypatch.setenv("AGENT_ANALYTICS_TZ", "UTC")
    monkeypatch.delenv(SCOPE_ENV, raising=False)
    settings = load_settings()
    env = {**os.environ, **settings.env(), "DBT_SEND_ANONYMOUS_USAGE_STATS": "False"}
    return settings, env, tmp_path / "dbt_target"


def dbt(env: dict, target: Path, *args: str) -> tuple[int, dict, str]:
    """Run dbt; its exit code, the status and failure count of each node, and its output."""
    (target / "run_results.json").unlink(missing_ok=True)
    result = subprocess.run(
        [str(Path(sys.executable).with_name("dbt")), *args, "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(REPO),
         "--target-path", str(target), "--log-path", str(target / "logs")],
        cwd=DBT_PROJECT_DIR, env=env, capture_output=True, text=True,
    )
    results = json.loads((target / "run_results.json").read_text())["results"]
    nodes = {r["unique_id"].split(".")[2]: (r["status"], r.get("failures"), r.get("message") or "") for r in results}
    return result.returncode, nodes, result.stdout + result.stderr


def newest_loaded_at(settings) -> str:
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        return str(con.execute("select max(loaded_at) from fct_messages").fetchone()[0])
    finally:
        con.close()


def test_null_in_a_contract_column_fails_the_model(warehouse_env):
    settings, env, target = warehouse_env
    assert main(["ingest", str(DAY1)]) == 0
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    [batch_id] = con.execute("select batch_id from ingest.ledger").fetchone()
    con.close()
    # a message without a user, as a load before today's validation could have stored it (one
    # without LLM calls: fct_llm_calls, which fct_messages reads, holds the users of calls too)
    _rewrite(settings.raw_dir / "batches" / batch_id, "messages",
             "case when line_number = 4 then null else user_id end as user_id")
    # models only: the staging views' not_null tests would stop the build before fct_messages
    code, nodes, output = dbt(env, target, "run", "--select", "+fct_messages")
    assert code == 1
    status, _, message = nodes["fct_messages"]
    assert status == "error"
    assert "NOT NULL constraint failed: fct_messages.user_id" in message
    assert nodes["stg_raw__messages"][0] == "success"


def test_refresh_tests_only_rows_loaded_since_the_previous_build(warehouse_env, monkeypatch):
    settings, env, target = warehouse_env
    assert main(["ingest", str(DAY1)]) == 0
    code, nodes, output = dbt(env, target, "build")
    assert code == 0, output
    assert nodes["unique_fct_messages_message_id"][:2] == ("pass", 0)
    # a duplicate key among the rows the previous build loaded
    con = duckdb.connect(str(settings.warehouse_path))
    try:
        con.execute("insert into fct_messages select * from fct_messages order by message_id limit 1")
        [(old_rows,)] = con.execute("select count(*) from fct_messages").fetchall()
    finally:
        con.close()
    watermark = newest_loaded_at(settings)
    assert main(["ingest", str(DAY2)]) == 0

    # the refresh: its tests read only the rows loaded after the previous build's watermark,
    # so the old duplicate is not read again, and the new rows are tested
    code, nodes, output = dbt({**env, SCOPE_ENV: watermark}, target, "build", "--exclude", REFRESH_EXCLUDE)
    assert code == 0, output
    assert nodes["unique_fct_messages_message_id"][:2] == ("pass", 0)
    assert nodes[CALLS_HAVE_MESSAGES][:2] == ("pass", 0)
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        [(new_rows,)] = con.execute(
            "select count(*) from fct_messages where loaded_at > cast(? as timestamp)", [watermark]).fetchall()
    finally:
        con.close()
    assert new_rows > 0 and old_rows > 0

    # `dbt test` (no scope) reads every row and finds the one duplicate
    code, nodes, output = dbt(env, target, "test", "--select", "fct_messages")
    assert code == 1
    assert nodes["unique_fct_messages_message_id"][:2] == ("fail", 1)
    # and so does a build without the scope
    code, nodes, output = dbt(env, target, "build", "--select", "fct_messages", "--exclude", "test_type:unit")
    assert nodes["unique_fct_messages_message_id"][:2] == ("fail", 1)

    # a call of a message that is not there, among the rows the refresh tests: the scoped
    # relationships test, which reads the messages from the new calls' earliest day on, finds it
    con = duckdb.connect(str(settings.warehouse_path))
    try:
        con.execute("insert into fct_llm_calls select * replace ('orphan#0' as llm_call_id, 'orphan' as message_id) "
                    "from fct_llm_calls where loaded_at > cast(? as timestamp) limit 1", [watermark])
    finally:
        con.close()
    code, nodes, output = dbt({**env, SCOPE_ENV: watermark}, target, "test", "--select", "fct_llm_calls")
    assert code == 1
    assert nodes[CALLS_HAVE_MESSAGES][:2] == ("fail", 1)


def _messages_file(path: Path, messages: list[tuple[str, str, str]]) -> Path:
    """A JSONL file of messages (event id, UTC time, user) to the agent `support`."""
    path.write_text("".join(
        json.dumps({"event_id": event_id, "type": "message", "occurred_at": at, "user_id": user,
                    "agent_id": "support", "status": "ok", "response_time_ms": 1000}) + "\n"
        for event_id, at, user in messages))
    return path


def test_a_refresh_tests_the_user_days_it_rebuilt_and_a_full_test_every_day(warehouse_env, tmp_path):
    """fct_user_daily's key and agent tests read, in a refresh, the days it rebuilt: from the day
    before the earliest loaded message, or from the lookback days (var lookback_days, 2) before
    the newest day, whichever is earlier, rows of old loads included; unscoped, every day."""
    settings, env, target = warehouse_env
    first = _messages_file(tmp_path / "first.jsonl", [
        ("a1", "2026-11-01T10:00:00Z", "u1"),  # an old day, outside what either refresh rebuilds
        ("a2", "2026-11-04T10:00:00Z", "u2"),  # the day before the second refresh's late message
        ("a3", "2026-11-08T10:00:00Z", "u3"),  # a lookback day of the first refresh only (11-10 - 2)
        ("a4", "2026-11-10T10:00:00Z", "u4"),
    ])
    assert main(["ingest", str(first)]) == 0
    code, nodes, output = dbt(env, target, "build")
    assert code == 0, output
    unique, agents = "unique_fct_user_daily_user_day_key", "relationships_fct_user_daily_agent_id__agent_id__ref_dim_agents_"

    def refresh_then_plant(name: str, messages: list, users: tuple[str, ...]) -> dict:
        """The rows planted earlier removed, a refresh loading `messages`, then a second row,
        under the same key and with an unknown agent, of each day of `users` (all loaded
        before). Returns the refresh's scoped test environment."""
        with duckdb.connect(str(settings.warehouse_path)) as con:
            con.execute("delete from fct_user_daily where agent_id = 'ghost'")
        scoped = {**env, SCOPE_ENV: newest_loaded_at(settings)}
        assert main(["ingest", str(_messages_file(tmp_path / f"{name}.jsonl", messages))]) == 0
        code, nodes, output = dbt(scoped, target, "build", "--exclude", REFRESH_EXCLUDE)
        assert code == 0, output
        assert nodes[unique][:2] == nodes[agents][:2] == ("pass", 0)
        with duckdb.connect(str(settings.warehouse_path)) as con:
            con.execute("insert into fct_user_daily select * replace ('ghost' as agent_id) from fct_user_daily "
                        "where list_contains(?, user_id)", [list(users)])
        return scoped

    # new rows on the newest day only: the scope is its lookback days, from 11-08 (11-10 - 2),
    # earlier than the day before the new rows (11-09)
    scoped = refresh_then_plant("newest", [("b1", "2026-11-10T11:00:00Z", "u5")], ("u1", "u3"))
    code, nodes, output = dbt(scoped, target, "test", "--select", "fct_user_daily")
    assert code == 1
    assert nodes[unique][:2] == nodes[agents][:2] == ("fail", 1)  # u3's 11-08, not u1's 11-01

    # a late message on 11-05: the scope starts the day before it, 11-04
    scoped = refresh_then_plant("late", [("c1", "2026-11-05T10:00:00Z", "u6")], ("u1", "u2"))
    code, nodes, output = dbt(scoped, target, "test", "--select", "fct_user_daily")
    assert code == 1
    assert nodes[unique][:2] == nodes[agents][:2] == ("fail", 1)  # u2's 11-04, not u1's 11-01

    # `dbt test` (no scope) reads every day
    code, nodes, output = dbt(env, target, "test", "--select", "fct_user_daily")
    assert nodes[unique][:2] == nodes[agents][:2] == ("fail", 2)
