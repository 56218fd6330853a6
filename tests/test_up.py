"""`agent-analytics up` as an operator runs it: a real process tree on 127.0.0.1.

On a copy of the built fixture home, `up` starts the Dagster daemon, the webserver and the HTTP
service; a file dropped into landing/ and events POSTed to the service reach the export
through the landing sensor (every 30 s) and a refresh run, with nothing else running; a
webserver killed with SIGKILL is restarted; SIGTERM stops every process of the tree within
30 s and leaves no run in progress; a second `up` starts on the same home at once (no stale
lock) and stops as cleanly.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from datetime import timedelta
from pathlib import Path

import dagster as dg
import httpx
import pytest
from dagster._core.events import DagsterEvent, DagsterEventType, EngineEventData

from agent_analytics.settings import load_settings
from orchestration.instance import TEMPLATE, ensure_dagster_home
from orchestration.recovery import process_start_time
from orchestration.retention import delete_old_runs
from orchestration.run_workers import fail_runs_of_dead_workers
from orchestration.supervisor import session_members
from tests.service_server import SCRIPT, copy_built_home, free_port, make_tokens

PERIOD = {"start": "2026-11-01", "end": "2026-11-06", "format": "json"}
FILE_MESSAGES = 3
POSTED_MESSAGES = 2
REFRESH_WAIT_S = 240  # daemon start (~15 s), the sensor's first tick, one or two refresh runs
START_WAIT_S = 120
STOP_LIMIT_S = 30


def _message(event_id: str, second: int) -> str:
    return json.dumps({"event_id": event_id, "type": "message", "occurred_at": f"2026-11-04T09:00:{second:02d}Z",
                       "user_id": "u-up", "agent_id": "support", "status": "ok", "response_time_ms": 1000}) + "\n"


class Up:
    """An `agent-analytics up` process, its JSON log (stderr) in a file."""

    def __init__(self, home: Path, log_path: Path, port: int, ui_port: int):
        self.home, self.log_path, self.port, self.ui_port = home, log_path, port, ui_port
        environ = {k: v for k, v in os.environ.items() if not k.startswith("AGENT_ANALYTICS_") and k != "DAGSTER_HOME"}
        environ["AGENT_ANALYTICS_HOME"] = str(home)
        with open(log_path, "ab") as log:
            self.process = subprocess.Popen([str(SCRIPT), "up", "--port", str(port), "--ui-port", str(ui_port)],
                                            env=environ, stdout=log, stderr=log)

    def records(self) -> list[dict]:
        lines = self.log_path.read_text(errors="replace").splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    def events(self, event: str, child: str | None = None) -> list[dict]:
        return [r for r in self.records() if r["event"] == event and (child is None or r.get("child") == child)]

    def child_pids(self) -> dict[str, int]:
        """The current pid of each child (its last start or restart)."""
        pids = {}
        for record in self.records():
            if record["event"] in ("start", "restart"):
                pids[record["child"]] = record["pid"]
        return pids

    def wait_for(self, what: str, condition, timeout: float):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"up exited with {self.process.returncode}:\n{self.log_path.read_text()}"
            value = condition()
            if value:
                return value
            time.sleep(0.5)
        raise AssertionError(f"{what} not within {timeout} s:\n{self.log_path.read_text()[-20000:]}")

    def processes(self) -> dict[int, str]:
        """Every live process of the tree: `up`, its descendants and the sessions of its children
        (whose members may have been handed to init); pid -> start time."""
        pids = {self.process.pid, *_descendants(self.process.pid)}
        pids.update(pid for leader in self.child_pids().values() for pid in session_members(leader))
        return {pid: started for pid in pids if (started := process_start_time(pid)) is not None}

    def stop(self) -> float:
        """SIGTERM, then how long `up` took to exit (it must exit 0)."""
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            returncode = self.process.wait(timeout=STOP_LIMIT_S + 30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise AssertionError(f"up did not stop:\n{self.log_path.read_text()[-20000:]}") from None
        assert returncode == 0, self.log_path.read_text()[-20000:]
        return time.monotonic() - started


def _parents() -> dict[int, int]:
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat[stat.rindex(")") + 2:].split()[1])
    return parents


def _descendants(root: int) -> set[int]:
    parents = _parents()
    found, frontier = set(), {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=5).status_code == 200
    except httpx.TransportError:
        return False


def _messages(up: Up, token: str) -> int | None:
    try:
        response = httpx.post(f"http://127.0.0.1:{up.port}/v1/analytics/export", json=PERIOD,
                              headers={"Authorization": f"Bearer {token}"}, timeout=60)
    except httpx.TransportError:
        return None
    return response.json()["totals"]["messages"] if response.status_code == 200 else None


def _unfinished_runs(home: Path) -> list[tuple[str, str]]:
    with dg.DagsterInstance.from_config(str(home / "dagster")) as instance:
        statuses = [dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]
        return [(r.run_id, r.status.value) for r in instance.get_runs(filters=dg.RunsFilter(statuses=statuses))]


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")[:300]
    except OSError:
        return "(gone)"


def _assert_all_gone(processes: dict[int, str]) -> None:
    left = {pid: _command(pid) for pid, started in processes.items() if process_start_time(pid) == started}
    assert not left, f"processes left running: {left}"


@pytest.fixture
def started():
    """Every `up` the test starts; one still running when the test ends (it failed midway) is stopped."""
    ups: list[Up] = []
    yield ups
    for up in ups:
        if up.process.poll() is None:
            up.process.send_signal(signal.SIGTERM)
            try:
                up.process.wait(timeout=STOP_LIMIT_S + 30)
            except subprocess.TimeoutExpired:
                up.process.kill()
                up.process.wait()


def test_up_refreshes_restarts_and_stops_cleanly(built_fixture_home, tmp_path, started):
    home = copy_built_home(built_fixture_home, tmp_path / "home")
    tokens = make_tokens(home, sender="ingest", reader="read")
    port, ui_port = free_port(), free_port()
    up = Up(home, tmp_path / "up.log", port, ui_port)
    started.append(up)
    service, ui = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{ui_port}"
    up.wait_for("the service", lambda: _answers(f"{service}/healthz"), START_WAIT_S)
    baseline = up.wait_for("the baseline export", lambda: _messages(up, tokens["reader"]), START_WAIT_S)

    # New data both ways: a file renamed into landing/, events POSTed to the service.
    staged = home / "new.jsonl.part"
    staged.write_text("".join(_message(f"up-file-{i}", i) for i in range(FILE_MESSAGES)))
    staged.rename(home / "landing" / "up-file.jsonl")
    body = "".join(_message(f"up-post-{i}", 30 + i) for i in range(POSTED_MESSAGES))
    posted = httpx.post(f"{service}/v1/events", content=body, timeout=30,
                        headers={"Authorization": f"Bearer {tokens['sender']}"})
    assert posted.status_code == 202, posted.text

    # The webserver, killed, comes back (its leftover code server is stopped first).
    up.wait_for("the Dagster UI", lambda: _answers(f"{ui}/server_info"), START_WAIT_S)
    # `up` owns its children and nothing else (a process of its own, say multiprocessing's
    # resource tracker, would be in no child's session and outlive the stop by a moment).
    children = {pid for pid, parent in _parents().items() if parent == up.process.pid}
    assert children == set(up.child_pids().values()), {pid: _command(pid) for pid in children}
    first_webserver = up.child_pids()["webserver"]
    first_session = {pid: process_start_time(pid) for pid in session_members(first_webserver)}
    assert len(first_session) >= 2  # the webserver and its code server
    os.kill(first_webserver, signal.SIGKILL)
    exit_record = up.wait_for("the webserver's exit", lambda: up.events("exit", "webserver"), 30)[0]
    assert exit_record["pid"] == first_webserver and exit_record["returncode"] == -signal.SIGKILL
    restarted = up.wait_for("the webserver's restart", lambda: up.events("restart", "webserver"), 60)[0]
    assert restarted["pid"] != first_webserver
    _assert_all_gone(first_session)  # its code server was stopped before the restart
    up.wait_for("the restarted Dagster UI", lambda: _answers(f"{ui}/server_info"), START_WAIT_S)

    expected = baseline + FILE_MESSAGES + POSTED_MESSAGES
    up.wait_for(f"{expected} messages in the export", lambda: _messages(up, tokens["reader"]) == expected, REFRESH_WAIT_S)
    assert not list((home / "landing").glob("*.jsonl")), "every landing file is loaded"

    processes = up.processes()
    assert len(processes) >= 4  # up, the daemon, the webserver, the service (and their code servers)
    assert up.stop() < STOP_LIMIT_S
    _assert_all_gone(processes)
    assert not _unfinished_runs(home)
    assert [r["child"] for r in up.events("stopped")] == ["daemon", "webserver", "service"]

    # A second `up` on the same home starts at once and stops as cleanly.
    again = Up(home, tmp_path / "up-again.log", port, ui_port)
    started.append(again)
    again.wait_for("the second service", lambda: _answers(f"{service}/healthz"), START_WAIT_S)
    again.wait_for("the second Dagster UI", lambda: _answers(f"{ui}/server_info"), START_WAIT_S)
    assert _messages(again, tokens["reader"]) == expected
    processes = again.processes()
    assert again.stop() < STOP_LIMIT_S
    _assert_all_gone(processes)
    assert not _unfinished_runs(home)


# -- the pieces `up` relies on, on a real Dagster instance in a temporary folder


@dg.op
def _hello() -> None:
    pass


@dg.job
def _tiny() -> None:
    _hello()


def _instance(tmp_path: Path) -> dg.DagsterInstance:
    folder = tmp_path / "dagster"
    folder.mkdir()
    (folder / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    return dg.DagsterInstance.from_config(str(folder))


def _started_run(instance: dg.DagsterInstance, worker_pid: int) -> str:
    """A run STARTED by a worker that recorded `worker_pid`, as the daemon's runs are."""
    run = instance.create_run_for_job(_tiny)
    instance.report_engine_event(f"Started process for run (pid: {worker_pid}).", run, EngineEventData.in_process(worker_pid))
    instance.handle_run_event(run.run_id, DagsterEvent(event_type_value=DagsterEventType.PIPELINE_START.value,
                                                       job_name=run.job_name))
    assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.STARTED
    return run.run_id


def test_runs_of_dead_workers_are_failed_and_live_ones_left(tmp_path):
    gone = subprocess.Popen(["true"])
    gone.wait()
    with _instance(tmp_path) as instance:
        dead_run = _started_run(instance, gone.pid)
        live_run = _started_run(instance, os.getpid())
        starting = instance.create_run_for_job(_tiny)
        instance.handle_run_event(starting.run_id, DagsterEvent(event_type_value=DagsterEventType.PIPELINE_STARTING.value,
                                                                job_name=starting.job_name))
        not_launched = instance.create_run_for_job(_tiny)
        failed = fail_runs_of_dead_workers(instance)
        assert [(f.run_id, f.pid) for f in failed] == [(dead_run, gone.pid)]
        assert instance.get_run_by_id(dead_run).status == dg.DagsterRunStatus.FAILURE
        assert instance.get_run_by_id(live_run).status == dg.DagsterRunStatus.STARTED
        assert instance.get_run_by_id(starting.run_id).status == dg.DagsterRunStatus.STARTING  # a daemon may be launching it
        assert fail_runs_of_dead_workers(instance) == []  # once
        # With no daemon running, a run left STARTING will never start: failed too; one not launched yet waits.
        assert [(f.run_id, f.pid) for f in fail_runs_of_dead_workers(instance, no_daemon=True)] == [(starting.run_id, None)]
        assert instance.get_run_by_id(starting.run_id).status == dg.DagsterRunStatus.FAILURE
        assert instance.get_run_by_id(not_launched.run_id).status == dg.DagsterRunStatus.NOT_STARTED
        assert instance.get_run_by_id(live_run).status == dg.DagsterRunStatus.STARTED


def test_cleanup_deletes_finished_runs_older_than_the_retention(tmp_path):
    with _instance(tmp_path) as instance:
        old = _tiny.execute_in_process(instance=instance).run_id
        time.sleep(0.05)
        new = _tiny.execute_in_process(instance=instance).run_id
        unfinished = instance.create_run_for_job(_tiny).run_id
        updated = {r.dagster_run.run_id: r.update_timestamp for r in instance.get_run_records()}
        cutoff = updated[old] + (updated[new] - updated[old]) / 2
        days = 30
        runs_folder, logs_folder = Path(instance.root_directory) / "history" / "runs", Path(instance.root_directory) / "storage"
        assert (runs_folder / f"{old}.db").exists() and (logs_folder / old).exists()
        with sqlite3.connect(runs_folder / "index.db") as index:
            assert index.execute("select count(*) from event_logs where run_id = ?", [old]).fetchone()[0] > 0

        assert delete_old_runs(instance, days, now=cutoff + timedelta(days=days)) == [old]
        assert {r.run_id for r in instance.get_runs()} == {new, unfinished}
        with sqlite3.connect(runs_folder / "index.db") as index:
            assert index.execute("select count(*) from event_logs where run_id = ?", [old]).fetchone() == (0,)
        assert not (runs_folder / f"{old}.db").exists() and not (logs_folder / old).exists()
        assert (runs_folder / f"{new}.db").exists() and (logs_folder / new).exists()
        # An unfinished run is never deleted, however old.
        assert delete_old_runs(instance, days, now=updated[new] + timedelta(days=days + 1)) == [new]
        assert [r.run_id for r in instance.get_runs()] == [unfinished]


def test_the_dagster_yaml_template_is_installed_and_read_by_dagster(tmp_path, monkeypatch):
    from dagster._core.definitions.run_request import InstigatorType
    from dagster._core.scheduler.instigation import TickStatus

    settings = load_settings({"AGENT_ANALYTICS_HOME": str(tmp_path / "home")})
    for name, value in settings.env().items():
        monkeypatch.setenv(name, value)  # ensure_dagster_home sets them; restored after the test
    config = settings.dagster_home / "dagster.yaml"
    ensure_dagster_home(settings)
    assert config.read_text() == TEMPLATE.read_text()
    with dg.DagsterInstance.from_config(str(settings.dagster_home)) as instance:
        assert instance.run_monitoring_enabled and instance.run_monitoring_start_timeout_seconds == 180
        assert instance.run_retries_enabled and instance.run_retries_max_retries == 1
        assert not instance.run_retries_retry_on_asset_or_op_failure
        concurrency = instance.get_concurrency_config()
        assert concurrency.run_queue_config.max_concurrent_runs == 1
        assert concurrency.pool_config.default_pool_limit == 1
        assert instance.get_tick_retention_settings(InstigatorType.SENSOR)[TickStatus.SKIPPED] == 1
        assert instance.get_tick_retention_settings(InstigatorType.SCHEDULE)[TickStatus.SUCCESS] == 30

    # A copy an earlier version wrote is replaced; a file of the user's own is kept.
    config.write_text("# Written by agent-analytics. Pools: ...\nconcurrency:\n  pools:\n    default_limit: 1\n")
    ensure_dagster_home(settings)
    assert config.read_text() == TEMPLATE.read_text()
    own = TEMPLATE.read_text().split("\n", 1)[1].replace("max_retries: 1", "max_retries: 3")
    config.write_text(own)
    ensure_dagster_home(settings)
    assert config.read_text() == own


def test_a_second_up_on_a_home_in_use_names_the_holder(tmp_path, monkeypatch):
    import fcntl

    from orchestration import up as up_module

    monkeypatch.setattr(up_module, "LOCK_WAIT_S", 0.5)
    settings = load_settings({"AGENT_ANALYTICS_HOME": str(tmp_path / "home")})
    settings.ensure_dirs()
    with open(settings.dagster_home / up_module.LOCK_NAME, "a+") as held:
        held.write("agent-analytics up, process 4242 on somehost (since 2026-11-30T06:00:00+00:00)\n")
        held.flush()
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(up_module.UpError, match=r"^agent-analytics up, process 4242 on somehost .* still runs on this home"):
            up_module.run_up(settings, up_module.UpOptions())


def test_up_refuses_bad_arguments_in_one_line(tmp_path, capsys, monkeypatch):
    from agent_analytics_cli.main import main

    monkeypatch.setenv("AGENT_ANALYTICS_HOME", str(tmp_path / "home"))
    key = tmp_path / "key.pem"
    key.write_text("not used")
    for argv, message in ((["up", "--port", "9000", "--ui-port", "9000"], "--port and --ui-port are both 9000"),
                          (["up", "--ssl-keyfile", str(key)], "--ssl-keyfile needs --ssl-certfile"),
                          (["up", "--ui-port", "70000"], "'70000' is not a port number")):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("agent-analytics: error: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "home").exists()  # nothing was started or created
