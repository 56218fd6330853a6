"""Two builds launched together on one warehouse both succeed; the second waits its turn.

Each build is a separate `agent-analytics build` process (its own Dagster run on the shared
DAGSTER_HOME). Without the warehouse pool and lock the second would fail on DuckDB's
"Could not set lock on file".
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb

FIXTURES = Path(__file__).parent / "fixtures"


def test_two_builds_launched_together_both_succeed(tmp_path):
    home = tmp_path / "home"
    landing = home / "landing"
    landing.mkdir(parents=True)
    shutil.copy(FIXTURES / "day1.jsonl", landing / "day1.jsonl")
    env = {**os.environ, "AGENT_ANALYTICS_HOME": str(home), "AGENT_ANALYTICS_TZ": "UTC"}
    env.pop("AGENT_ANALYTICS_SESSION_TIMEOUT_MIN", None)
    cli = [sys.executable, "-m", "agent_analytics_cli", "build"]
    procs = [subprocess.Popen(cli, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    for proc, output in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, output[-3000:]
        assert "Could not set lock" not in output
    # The landing file was loaded exactly once and archived; the marts hold its 7 messages.
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        assert con.execute("select file_name, loaded from ingest.ledger").fetchall() == [("day1.jsonl", 21)]
        assert con.execute("select count(*) from fct_messages").fetchone() == (7,)
    finally:
        con.close()
    assert not (landing / "day1.jsonl").exists()
    assert (landing / "loaded" / "day1.jsonl").exists()
