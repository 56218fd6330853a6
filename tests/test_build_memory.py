"""The build's memory and thread settings reach DuckDB through dbt's profile and every other
connection of the product, and a build that runs out of memory says so in one line naming the
node and the setting."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent_analytics import build_memory
from agent_analytics.settings import SettingsError, load_settings
from agent_analytics_cli.main import main

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.mark.parametrize("raw, expected", [("12GB", "12GB"), (" 40% ", "40%"), ("0.5GiB", "0.5GiB"), ("512mb", "512mb")])
def test_memory_limit_values(raw: str, expected: str) -> None:
    settings = load_settings({build_memory.MEMORY_VAR: raw})
    assert settings.duckdb_memory == expected
    assert settings.env()[build_memory.MEMORY_VAR] == expected


def test_defaults_come_from_the_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    """40% of the machine's memory; one dbt thread per 4 GiB of that limit, at most one per core and 4."""
    assert load_settings({}).duckdb_memory == "40%"  # DuckDB takes the share of the machine's (or cgroup's) memory
    gib = 1024**3
    for cores, memory_gib, threads in ((2, 24, 2), (2, 8, 1), (1, 64, 1), (8, 24, 2), (8, 64, 4), (64, 512, 4)):
        monkeypatch.setattr(build_memory.os, "sched_getaffinity", lambda _pid, n=cores: set(range(n)))
        monkeypatch.setattr(build_memory, "machine_memory", lambda m=memory_gib: m * gib)
        assert load_settings({}).dbt_threads == threads, (cores, memory_gib)
        assert load_settings({}).env()[build_memory.THREADS_VAR] == str(threads)
    # a size instead of a share: 4GB (decimal, as DuckDB reads it) is less than 4 GiB, so one thread
    assert load_settings({build_memory.MEMORY_VAR: "4GB"}).dbt_threads == 1
    assert load_settings({build_memory.MEMORY_VAR: "12GiB"}).dbt_threads == 3
    assert load_settings({build_memory.THREADS_VAR: "3"}).dbt_threads == 3


@pytest.mark.parametrize("name, raw", [
    (build_memory.MEMORY_VAR, "lots"), (build_memory.MEMORY_VAR, "0GB"), (build_memory.MEMORY_VAR, "101%"),
    (build_memory.MEMORY_VAR, "-1GB"), (build_memory.MEMORY_VAR, "8 GB extra"),
    (build_memory.THREADS_VAR, "0"), (build_memory.THREADS_VAR, "two"), (build_memory.THREADS_VAR, "-1"),
])
def test_bad_values_are_one_line_and_exit_2(name: str, raw: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SettingsError, match=name):
        load_settings({name: raw})
    monkeypatch.setenv("AGENT_ANALYTICS_HOME", str(tmp_path))
    monkeypatch.setenv(name, raw)
    assert main(["build"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"agent-analytics: error: {name}=")


def test_out_of_memory_line_names_nodes_from_run_results(tmp_path: Path) -> None:
    results = {"results": [
        {"unique_id": "model.agent_analytics.fct_platform_minute", "status": "error",
         "message": "Runtime Error in model fct_platform_minute\n"
                    "  Out of Memory Error: failed to allocate data of size 16.0 MiB (3.7 GiB/3.7 GiB used)"},
        {"unique_id": "test.agent_analytics.unique_int_messages_sessionized_message_id.778b9afaba", "status": "error",
         "message": "Out of Memory Error: could not allocate block of size 256.0 KiB"},
        {"unique_id": "model.agent_analytics.fct_agent_minute", "status": "success", "message": "OK"},
        {"unique_id": "model.agent_analytics.fct_sessions", "status": "error", "message": "Binder Error: column x"},
    ]}
    path = tmp_path / "run_results.json"
    path.write_text(json.dumps(results))
    assert build_memory.out_of_memory_line(path, "4GB", 2) == (
        "DuckDB ran out of memory in model fct_platform_minute, test unique_int_messages_sessionized_message_id "
        "(memory_limit 4GB shared by 2 dbt threads): raise AGENT_ANALYTICS_DUCKDB_MEMORY (e.g. 60% or 12GB) "
        "or lower AGENT_ANALYTICS_DBT_THREADS"
    )
    path.write_text(json.dumps({"results": results["results"][2:]}))
    assert build_memory.out_of_memory_line(path, "4GB", 2) is None
    assert build_memory.out_of_memory_line(tmp_path / "missing.json", "4GB", 2) is None


def test_build_out_of_memory_says_so_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture) -> None:
    """A limit far too small for the fixture, set through the setting: DuckDB fails the first
    large queries, and the build ends with one line naming those nodes and the setting. 4MB:
    the steps before dbt, which have the same limit, need more than 2MB (the test below)."""
    home = tmp_path / "home"
    monkeypatch.setenv("AGENT_ANALYTICS_HOME", str(home))
    monkeypatch.setenv("AGENT_ANALYTICS_TZ", "UTC")
    assert main(["ingest", str(FIXTURES / "day1.jsonl")]) == 0
    monkeypatch.setenv(build_memory.MEMORY_VAR, "4MB")
    monkeypatch.setenv(build_memory.THREADS_VAR, "1")
    capsys.readouterr()
    assert main(["build"]) == 1
    last = capsys.readouterr().err.rstrip("\n").splitlines()[-1]

    # what dbt itself recorded: the nodes whose error is DuckDB's out-of-memory error
    results = json.loads((home / "dbt_target" / "run_results.json").read_text())["results"]
    oom = [r["unique_id"].split(".")[2] for r in results if "Out of Memory Error" in (r.get("message") or "")]
    assert oom, "the 4MB limit must reach DuckDB through the profile"
    assert last.startswith("agent-analytics: error: DuckDB ran out of memory in ")
    assert f"model {oom[0]}" in last or f"test {oom[0]}" in last
    assert last.endswith("(memory_limit 4MB shared by 1 dbt thread): raise AGENT_ANALYTICS_DUCKDB_MEMORY "
                         "(e.g. 60% or 12GB) or lower AGENT_ANALYTICS_DBT_THREADS")


def test_out_of_memory_outside_dbt_says_so_in_one_line_and_loses_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    """Ingest and the build's steps before dbt open the warehouse with the same setting: out of
    memory there is one line too (exit 1, no traceback), and a run with more memory loads
    everything the failed one did not."""
    home = tmp_path / "home"
    monkeypatch.setenv("AGENT_ANALYTICS_HOME", str(home))
    monkeypatch.setenv("AGENT_ANALYTICS_TZ", "UTC")
    assert main(["ingest", str(FIXTURES / "day1.jsonl")]) == 0
    monkeypatch.setenv(build_memory.MEMORY_VAR, "2MB")
    capsys.readouterr()
    assert main(["ingest", str(FIXTURES / "day2.jsonl")]) == 1
    assert capsys.readouterr().err == (
        "agent-analytics: error: DuckDB ran out of memory (memory_limit 2MB): "
        "raise AGENT_ANALYTICS_DUCKDB_MEMORY (e.g. 60% or 12GB)\n")
    assert main(["build"]) == 1
    assert capsys.readouterr().err.rstrip("\n").splitlines()[-1] == (
        "agent-analytics: error: DuckDB ran out of memory in step raw_events (memory_limit 2MB): "
        "raise AGENT_ANALYTICS_DUCKDB_MEMORY (e.g. 60% or 12GB)")

    monkeypatch.delenv(build_memory.MEMORY_VAR)
    day2 = sum(1 for line in (FIXTURES / "day2.jsonl").read_text().splitlines() if line.strip())
    assert main(["ingest", str(FIXTURES / "day2.jsonl")]) == 0
    [totals] = [line.split() for line in capsys.readouterr().out.splitlines() if line.startswith("total")]
    assert totals[:4] == ["total", "(new", "files)", str(day2)]  # none of its records was taken before
    assert main(["build"]) == 0


def test_a_full_build_runs_only_the_threads_its_largest_models_fit() -> None:
    """About 430 bytes a message (4 GiB at 10M messages) per thread of a full build, at most the setting's."""
    gb = 1000**3
    per_message = 4 * 1024**3 / 10_000_000
    assert build_memory.full_build_threads(2, "9.4GB", 10_000_000) == 2  # the 10M benchmark: 2 x 4.29 GB fit in 9.4
    assert build_memory.full_build_threads(2, "9.4GB", 100_000_000) == 1  # 42.9 GB a model: one at a time
    assert 64 * gb // (30_000_000 * per_message) == 4
    assert build_memory.full_build_threads(4, "64GB", 30_000_000) == 4  # 12.9 GB a model: four fit in 64 GB
    assert build_memory.full_build_threads(4, "24GB", 30_000_000) == 1  # 12.9 GB a model
    assert build_memory.full_build_threads(3, "1GB", 0) == 3  # nothing to sort: the setting's threads
    assert build_memory.full_build_threads(1, "64GB", 1) == 1


def test_the_build_counts_the_raw_layers_messages_for_its_threads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """row_count reads the Parquet footers of every batch; build_threads lowers the threads of a
    build of every model only (an incremental build keeps the setting's)."""
    from ingestion.raw_layer import row_count
    from orchestration.defs.dbt.definitions import build_threads

    home = tmp_path / "home"
    monkeypatch.setenv("AGENT_ANALYTICS_HOME", str(home))
    monkeypatch.setenv(build_memory.MEMORY_VAR, "1GB")
    monkeypatch.setenv(build_memory.THREADS_VAR, "3")
    files = [FIXTURES / "day1.jsonl", FIXTURES / "day2.jsonl"]
    for path in files:
        assert main(["ingest", str(path)]) == 0
    events = []
    for line in (line for path in files for line in path.read_text().splitlines()):
        try:
            events.append(json.loads(line))
        except ValueError:
            continue  # the fixture's bad line: quarantined
    messages = len({e["event_id"] for e in events if e.get("type") == "message"})  # a repeated id is loaded once
    settings = load_settings()
    assert row_count(settings.raw_dir, "messages") == messages
    assert build_threads(settings, True) == 3 == build_threads(settings, False)
    # as if the largest models held 0.4 GB over these messages: two fit in the 1 GB limit, not three
    monkeypatch.setattr(build_memory, "FULL_BUILD_BYTES_PER_MESSAGE", 0.4 * 1000**3 / messages)
    assert build_threads(settings, True) == 2 and build_threads(settings, False) == 3
    monkeypatch.setattr(build_memory, "FULL_BUILD_BYTES_PER_MESSAGE", 10 * 1000**3)
    assert build_threads(settings, True) == 1


def _limits(con) -> tuple[str, str]:
    return con.execute("select current_setting('memory_limit'), current_setting('temp_directory')").fetchone()


def test_every_connection_of_the_product_has_the_builds_limits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The warehouse opened by Dagster, the readers and the publication, or by path alone (ingest,
    compaction, bills, alert delivery), the serving copy and the Spark marts' views: at most the
    setting's memory, spilled to <home>/duckdb_tmp (not DuckDB's 80% of the machine and a folder
    beside each file)."""
    from agent_analytics.exports import open_marts
    from agent_analytics.serving import serving_database
    from agent_analytics.spark_marts import open_built_marts, open_spark_marts
    from agent_analytics.warehouse import open_warehouse
    from orchestration.resources import AnalyticsSettings, Warehouse

    home = tmp_path / "home"
    monkeypatch.setenv("AGENT_ANALYTICS_HOME", str(home))
    monkeypatch.setenv(build_memory.MEMORY_VAR, "512MiB")
    assert main(["ingest", str(FIXTURES / "day1.jsonl")]) == 0
    settings = load_settings()
    expected = ("512.0 MiB", str(home / "duckdb_tmp"))
    warehouse = Warehouse(settings=AnalyticsSettings(home=str(home)))
    with warehouse.connect(read_only=True) as con:
        assert _limits(con) == expected
    with warehouse.marts() as con:
        assert _limits(con) == expected
    with open_built_marts(settings) as con:
        assert _limits(con) == expected
    with open_warehouse(settings.warehouse_path) as con:  # as ingest, compaction, bills, alert delivery open it
        assert _limits(con) == expected
    with open_marts(settings) as con:  # no serving copy yet: the warehouse
        assert _limits(con) == expected
    with open_spark_marts(settings) as con:
        assert _limits(con) == expected
    serving_database(settings).parent.mkdir(parents=True)
    with open_warehouse(serving_database(settings)):  # an empty serving copy
        pass
    with open_marts(settings) as con:  # the serving copy, opened without the lock
        assert con.execute("select current_database()").fetchone() == ("analytics",)
        assert _limits(con) == expected

    monkeypatch.delenv(build_memory.MEMORY_VAR)
    with open_built_marts(load_settings()) as con:  # the default: 40% of the machine
        amount, unit = _limits(con)[0].split()
        assert unit in ("GiB", "MiB")
        limit = float(amount) * 1024 ** (3 if unit == "GiB" else 2)
        assert abs(limit - 0.4 * build_memory.machine_memory()) < 0.01 * build_memory.machine_memory()


SPILL = ("create or replace temp table spilled as "
         "select range as i, md5(range::varchar) as s from range(3000000)")


def test_the_spill_files_of_a_killed_process_go_at_the_next_spill(tmp_path: Path) -> None:
    """A process killed while it spills (an out-of-memory kill, a stopped build) leaves its files
    in <home>/duckdb_tmp, gigabytes at 100M messages. DuckDB names them after their process and
    instance, and the next connection that spills there deletes those of processes that are
    gone before it writes its own: the product relies on that instead of a cleanup of its own."""
    import os
    import signal
    import subprocess
    import sys

    from agent_analytics.warehouse import open_warehouse

    warehouse = tmp_path / "warehouse.duckdb"
    spill_dir = tmp_path / "duckdb_tmp"
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from agent_analytics.warehouse import open_warehouse\n"
        f"with open_warehouse(Path({str(warehouse)!r}), memory_limit='100MB') as con:\n"
        "    con.execute('set threads = 1')\n"
        f"    con.execute({SPILL!r})\n"
        "    print('spilled', flush=True)\n"
        "    time.sleep(600)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    killed = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert killed.stdout.readline().strip() == "spilled"
        killed.send_signal(signal.SIGKILL)
        killed.wait(timeout=30)
    finally:
        killed.kill()
    left = [f for f in os.listdir(spill_dir) if f.startswith(f"duckdb_temp_{killed.pid}_")]
    assert any(f.endswith(".tmp") for f in left), left  # the killed process's spill, left behind

    with open_warehouse(warehouse, memory_limit="100MB") as con:
        con.execute("set threads = 1")
        con.execute(SPILL)
        assert not [f for f in os.listdir(spill_dir) if f.startswith(f"duckdb_temp_{killed.pid}_")]
        assert [f for f in os.listdir(spill_dir) if f.startswith(f"duckdb_temp_{os.getpid()}_")]
