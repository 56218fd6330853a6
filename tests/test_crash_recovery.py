"""A build killed with SIGKILL never blocks the next one; a killed writer never publishes a
half-written file.

The integration test kills a real `agent-analytics build` while its dbt step runs: before
the fix its Dagster run stayed STARTED holding the only `warehouse` pool slot, and every later
build spun at 100% CPU forever. The other tests pin each part of the fix on its own: the
recovery of abandoned runs, the bounded wait with its one-line message, the warehouse lock
after its holder is killed, and the atomic file writes.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from agent_analytics.files import write_atomically
from agent_analytics.settings import load_settings
from agent_analytics.warehouse import warehouse_lock
from orchestration.build import run_build
from orchestration.build_lock import build_turn
from orchestration.defs.dbt.project import prepare_manifest
from orchestration.instance import ensure_dagster_home
from orchestration.pools import WAREHOUSE_POOL
from orchestration.recovery import (
    DBT_PID_TAG,
    PID_TAG,
    dbt_process_tags,
    process_tags,
    recover_abandoned_runs,
)

FIXTURES = Path(__file__).parent / "fixtures"
CLI = [sys.executable, "-m", "agent_analytics_cli", "build"]


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "AGENT_ANALYTICS_HOME": str(home), "AGENT_ANALYTICS_TZ": "UTC"}
    env.pop("AGENT_ANALYTICS_SESSION_TIMEOUT_MIN", None)
    env.pop("AGENT_ANALYTICS_BUILD_WAIT_S", None)
    env.update(extra)
    return env


def _home_with_landing(root: Path) -> Path:
    home = root / "home"
    (home / "landing").mkdir(parents=True)
    shutil.copy(FIXTURES / "day1.jsonl", home / "landing" / "day1.jsonl")
    return home


def _dbt_started_by_tag(home: Path) -> bool:
    """The build tags its run with the dbt process' pid right after starting `dbt build`."""
    storage = home / "dagster" / "history" / "runs.db"  # Dagster's SQLite run storage
    if not storage.exists():
        return False
    import sqlite3

    try:
        con = sqlite3.connect(f"file:{storage}?mode=ro", uri=True, timeout=1)
        try:
            return bool(con.execute("select count(*) from run_tags where key = ?", (DBT_PID_TAG,)).fetchone()[0])
        finally:
            con.close()
    except sqlite3.Error:
        return False


def _exports(home: Path) -> tuple[str, dict]:
    """The exports without what differs between two builds by design: when each was made (the
    export counts today up to the moment it runs)."""
    document = json.loads((home / "exports" / "analytics.json").read_text())
    for key in ("generated_at", "as_of"):
        document.pop(key)
    for period in (document["period"], document["previous_period"]):
        for key in ("end", "days"):
            period.pop(key)
    document["budgets"].pop("days_left_in_month")  # from the moment it runs to the month's end
    return (home / "exports" / "daily.csv").read_text(), document


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_build_killed_during_dbt_does_not_block_the_next_build(tmp_path):
    clean_home = _home_with_landing(tmp_path / "clean")
    home = _home_with_landing(tmp_path / "killed")
    clean = subprocess.Popen(CLI, env=_env(clean_home), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    doomed = subprocess.Popen(CLI, env=_env(home), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not _dbt_started_by_tag(home):
        assert doomed.poll() is None, "the build ended before dbt started"
        assert time.monotonic() < deadline, "dbt never started"
        time.sleep(0.2)
    doomed.send_signal(signal.SIGKILL)
    doomed.wait()
    clean_output = clean.communicate(timeout=600)[0]
    assert clean.returncode == 0, clean_output[-3000:]

    started = time.monotonic()
    second = subprocess.run(CLI, env=_env(home, AGENT_ANALYTICS_BUILD_WAIT_S="120"),
                            capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, (second.stdout + second.stderr)[-3000:]
    assert time.monotonic() - started < 300
    assert "recovered: run " in second.stdout and "marked failed" in second.stdout

    csv_text, document = _exports(home)
    clean_csv, clean_document = _exports(clean_home)
    if document["period"]["end_date"] != clean_document["period"]["end_date"]:
        pytest.skip("the two builds ran on different days (midnight passed); their 30-day windows differ")
    assert csv_text == clean_csv
    assert document == clean_document
    assert document["performance"]["messages"] == 7  # day1.jsonl holds m1..m7
    assert not list(home.glob("exports/.*.tmp")) and not list(home.glob("reports/**/.*.tmp"))

    with dg.DagsterInstance.from_config(str(home / "dagster")) as instance:
        statuses = sorted(r.status.value for r in instance.get_runs())
        assert statuses == ["FAILURE", "SUCCESS"]
        info = instance.event_log_storage.get_concurrency_info(WAREHOUSE_POOL)
        assert info.claimed_slots == [] and info.pending_steps == []


@pytest.fixture
def instance(tmp_path, monkeypatch):
    monkeypatch.setenv("AGENT_ANALYTICS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("AGENT_ANALYTICS_TZ", "UTC")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home" / "dagster"))  # restored after the test
    settings = load_settings()
    ensure_dagster_home(settings)
    with dg.DagsterInstance.get() as instance:
        instance.event_log_storage.set_concurrency_slots(WAREHOUSE_POOL, 1)
        yield instance


def _started_run(instance: dg.DagsterInstance, tags: dict[str, str], step: str = "warehouse_models") -> str:
    run_id = str(uuid.uuid4())
    instance.add_run(dg.DagsterRun(job_name="build_all", run_id=run_id, status=dg.DagsterRunStatus.STARTED, tags=tags))
    status = instance.event_log_storage.claim_concurrency_slot(WAREHOUSE_POOL, run_id, step)
    assert status.is_claimed
    return run_id


def test_recovery_fails_only_runs_whose_process_is_gone_and_frees_their_slot(instance):
    storage = instance.event_log_storage
    dead = _started_run(instance, {**process_tags(), PID_TAG: str(_dead_pid())})
    # The dead run holds the only slot: a live run's step can only queue behind it.
    live = str(uuid.uuid4())
    instance.add_run(dg.DagsterRun(job_name="build_all", run_id=live, status=dg.DagsterRunStatus.STARTED,
                                   tags=process_tags()))
    assert not storage.claim_concurrency_slot(WAREHOUSE_POOL, live, "raw_events").is_claimed

    recovered = recover_abandoned_runs(instance)

    assert [r.run_id for r in recovered] == [dead]
    assert instance.get_run_by_id(dead).status == dg.DagsterRunStatus.FAILURE
    assert instance.get_run_by_id(live).status == dg.DagsterRunStatus.STARTED
    assert storage.claim_concurrency_slot(WAREHOUSE_POOL, live, "raw_events").is_claimed
    assert recover_abandoned_runs(instance) == []  # nothing left to recover: no second failure event


def test_recovery_sees_a_reused_pid_as_a_different_process(instance):
    # Our own pid, but a start time that is not ours: the pid was reused after the build died.
    tags = {**process_tags(), "agent_analytics/process_started": "1"}
    run_id = _started_run(instance, tags)
    assert [r.run_id for r in recover_abandoned_runs(instance)] == [run_id]


def test_recovery_frees_slots_of_runs_that_ended_or_vanished(instance):
    storage = instance.event_log_storage
    ended = _started_run(instance, {})
    instance.report_run_failed(instance.get_run_by_id(ended))
    assert storage.get_concurrency_info(WAREHOUSE_POOL).claimed_slots  # Dagster kept the slot
    recover_abandoned_runs(instance)
    assert storage.get_concurrency_info(WAREHOUSE_POOL).claimed_slots == []

    storage.claim_concurrency_slot(WAREHOUSE_POOL, "no-such-run", "exports")
    recover_abandoned_runs(instance)
    assert storage.get_concurrency_info(WAREHOUSE_POOL).claimed_slots == []


def test_recovery_stops_the_leftover_dbt_process_of_a_dead_build(instance):
    leftover = subprocess.Popen([sys.executable, "-c", "import time; print('ready', flush=True); time.sleep(120)"],
                                stdout=subprocess.PIPE, text=True)
    try:
        # Signalled while it still starts (reading the interpreter's files, in an I/O stall under
        # load) it could outlast the grace period and take the SIGKILL instead.
        assert leftover.stdout.readline() == "ready\n"
        tags = {**process_tags(), PID_TAG: str(_dead_pid()), **dbt_process_tags(leftover.pid)}
        _started_run(instance, tags)
        before = _signal_state(leftover.pid)
        recovered = recover_abandoned_runs(instance)
        assert [r.dbt_stopped for r in recovered] == [True]
        assert leftover.wait(timeout=15) == -signal.SIGTERM, f"before the recovery: {before}"
    finally:
        leftover.kill()


def test_build_waiting_for_a_running_build_gives_up_with_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("AGENT_ANALYTICS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("AGENT_ANALYTICS_TZ", "UTC")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home" / "dagster"))  # restored after the test
    monkeypatch.setenv("AGENT_ANALYTICS_BUILD_WAIT_S", "1")
    settings = load_settings()
    ensure_dagster_home(settings)
    prepare_manifest()  # run_build parses first: the clock below is for the wait, not for dbt parse
    with build_turn(settings.dagster_home, 1):
        started = time.monotonic()
        assert run_build(settings) is False
        waited = time.monotonic() - started
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("agent-analytics: error: ")
    assert f"build process {os.getpid()}" in err and "AGENT_ANALYTICS_BUILD_WAIT_S" in err
    assert waited < 120  # gave up after its 1 s, not the default 1800 s (the rest is dbt parse on a busy machine)


def test_build_gives_up_on_a_pool_slot_held_by_a_run_it_cannot_check(tmp_path, monkeypatch, capsys):
    """A run started elsewhere (the Dagster UI) carries no process tags: the build waits for it,
    bounded, and names it."""
    monkeypatch.setenv("AGENT_ANALYTICS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("AGENT_ANALYTICS_TZ", "UTC")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home" / "dagster"))  # restored after the test
    monkeypatch.setenv("AGENT_ANALYTICS_BUILD_WAIT_S", "2")
    settings = load_settings()
    ensure_dagster_home(settings)
    with dg.DagsterInstance.get() as instance:
        instance.event_log_storage.set_concurrency_slots(WAREHOUSE_POOL, 1)
        holder = _started_run(instance, {})
    assert run_build(settings) is False
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("agent-analytics: error: ")
    assert holder in err and "warehouse_models" in err


def test_build_wait_setting_must_be_positive():
    from agent_analytics.settings import SettingsError

    with pytest.raises(SettingsError, match="AGENT_ANALYTICS_BUILD_WAIT_S='soon'"):
        load_settings({"AGENT_ANALYTICS_BUILD_WAIT_S": "soon"})
    assert load_settings({}).build_wait_s == 1800
    assert load_settings({"AGENT_ANALYTICS_BUILD_WAIT_S": "2.5"}).build_wait_s == 2.5


def test_warehouse_lock_is_free_once_its_holder_is_killed(tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import time
            from pathlib import Path
            from agent_analytics.warehouse import warehouse_lock
            with warehouse_lock(Path({str(warehouse)!r})):
                print("locked", flush=True)
                time.sleep(120)
        """)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(TimeoutError):
            with warehouse_lock(warehouse, timeout_s=0.5):
                pass
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        with warehouse_lock(warehouse, timeout_s=2):
            pass
    finally:
        holder.kill()


def test_a_writer_killed_mid_write_leaves_the_old_file_and_no_leftover(tmp_path):
    target = tmp_path / "exports" / "analytics.json"
    write_atomically(target, '{"version": "old"}\n')
    # The writer is stopped after its bytes are written but before they are published.
    writer = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import os, time
            from pathlib import Path
            from agent_analytics import files
            def stall(fd):
                print("written", flush=True)
                time.sleep(120)
            files.os.fsync = stall
            files.write_atomically(Path({str(target)!r}), '{{"version": "new", "rows": [' + '1, ' * 100000 + '1]}}')
        """)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert writer.stdout.readline().strip() == "written"
        writer.send_signal(signal.SIGKILL)
        writer.wait()
    finally:
        writer.kill()
    assert target.read_text() == '{"version": "old"}\n'
    leftovers = list(target.parent.glob(".analytics.json.*.tmp"))
    assert len(leftovers) == 1  # the killed writer's temporary, never seen under the real name

    write_atomically(target, '{"version": "next"}\n')
    assert target.read_text() == '{"version": "next"}\n'
    assert sorted(p.name for p in target.parent.iterdir()) == ["analytics.json"]


def test_two_writers_of_one_file_each_publish_a_whole_file(tmp_path):
    """A build and `agent-analytics report` may write the same report at once. With one shared
    temporary name their bytes interleaved and a mix was published."""
    target = tmp_path / "reports" / "weekly" / "2026-W47.csv"
    contents = [("a" * 4_000_000).encode(), ("b" * 3_000_000).encode()]
    for _ in range(5):
        errors: list[OSError] = []

        def write(data: bytes, errors: list[OSError] = errors) -> None:
            try:
                write_atomically(target, data)
            except OSError as exc:  # a writer's temporary removed under it would show here
                errors.append(exc)

        threads = [threading.Thread(target=write, args=(c,)) for c in contents]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert target.read_bytes() in contents
    assert sorted(p.name for p in target.parent.iterdir()) == ["2026-W47.csv"]


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the lock among the process' open files in /proc")
def test_a_build_waiting_for_its_turn_stops_on_sigterm(tmp_path):
    """Before, a waiting build spun inside Dagster, which defers SIGTERM to step boundaries."""
    home = tmp_path / "home"
    lock_dir = home / "dagster"
    lock_dir.mkdir(parents=True)
    with build_turn(lock_dir, 1):
        waiting = subprocess.Popen(CLI, env=_env(home), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            deadline = time.monotonic() + 120
            while not _holds_open(waiting.pid, lock_dir / "build.lock"):
                assert waiting.poll() is None, waiting.stdout.read()
                assert time.monotonic() < deadline, "the build never started waiting"
                time.sleep(0.1)
            before = _signal_state(waiting.pid)
            waiting.send_signal(signal.SIGTERM)
            try:  # bounded well above a stop's time under load: before, it never stopped
                returncode = waiting.wait(timeout=60)
            except subprocess.TimeoutExpired:
                raise AssertionError(f"alive 60 s after SIGTERM: {_signal_state(waiting.pid)}; before it: {before}") from None
            assert returncode == -signal.SIGTERM, waiting.stdout.read()
        finally:
            waiting.kill()


def _signal_state(pid: int) -> str:
    """What a failure needs to tell why a process outlived SIGTERM: its state, kernel wait
    channel and signal masks."""
    try:
        status = Path(f"/proc/{pid}/status").read_text().splitlines()
        wchan = Path(f"/proc/{pid}/wchan").read_text()
    except OSError as exc:
        return f"unreadable ({exc})"
    return " ".join(line.replace("\t", "") for line in status if line.startswith(("State", "Sig", "ShdPnd"))) + f" wchan:{wchan}"


def _holds_open(pid: int, path: Path) -> bool:
    try:
        return any(os.readlink(fd) == str(path) for fd in Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return False


def test_alert_delivery_killed_midway_is_finished_by_the_next_run(tmp_path, monkeypatch, deliver):
    """Each event's result is stored as soon as its channel answered: a run that dies while
    sending the second event leaves only that one pending, so the next run sends it and
    nothing twice. (Killed between the answer and the write, an event would go out again with
    the same webhook-id, Standard Webhooks' key for deduplication.)"""
    from alert_receivers import HttpReceiver
    from test_webhooks import WEBHOOK_SECRET, queue, triggered

    from agent_analytics.alerts import deliver as delivery
    from agent_analytics.alerts import events as ev
    from agent_analytics.alerts.rules import parse_config

    hook = HttpReceiver()
    try:
        env = {"HOOK_URL": hook.url(), "HOOK_SECRET": WEBHOOK_SECRET}
        cfg = parse_config({"channels": {"hook": {"type": "webhook", "url_env": "HOOK_URL", "secret_env": "HOOK_SECRET"}}},
                           Path("t.toml"))
        warehouse = tmp_path / "w.duckdb"
        first, second = triggered(ev.TRIGGERED), triggered(ev.RESOLVED)
        queue(warehouse, first, ["hook"])
        queue(warehouse, second, ["hook"])
        real_send = delivery.send

        def send_then_die(channel, event, *args, **kwargs):
            if event["id"] == second["id"]:
                raise KeyboardInterrupt  # the process dies here, after the first event went out
            return real_send(channel, event, *args, **kwargs)

        monkeypatch.setattr(delivery, "send", send_then_die)
        with pytest.raises(KeyboardInterrupt):
            deliver(warehouse, cfg, env)
        monkeypatch.setattr(delivery, "send", real_send)

        result = deliver(warehouse, cfg, env)

        assert result.delivered == 1 and result.still_pending == 0
        ids = [r.headers["webhook-id"] for r in hook.accepted()]
        assert ids == [first["id"], second["id"]]  # each once
        with duckdb.connect(str(warehouse), read_only=True) as con:
            assert con.execute("select distinct status from alerts.outbox").fetchall() == [("delivered",)]
        assert deliver(warehouse, cfg, env).delivered == 0
    finally:
        hook.close()


def test_an_atomic_write_goes_through_links_and_into_pipes(tmp_path):
    """A link to an export stays a link (its target gets the new content); a FIFO or device is
    written to, never replaced by a file (`export -o /dev/stdout` replaced /dev/stdout as root)."""
    from agent_analytics.files import write_atomically

    real = tmp_path / "share" / "daily.csv"
    real.parent.mkdir()
    real.write_text("old\n")
    link = tmp_path / "daily.csv"
    link.symlink_to(real)
    write_atomically(link, "new\n")
    assert link.is_symlink() and real.read_text() == "new\n"

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(open(fifo, "rb").read()))
    reader.start()
    write_atomically(fifo, "through the pipe\n")
    reader.join(timeout=10)
    assert received == [b"through the pipe\n"]
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_an_atomic_write_to_dev_stdout_reaches_a_pipe_and_a_redirected_file(tmp_path):
    """/dev/stdout resolves to a pipe that has no path, or to the file stdout is redirected
    to: it is written to, never renamed over (which failed for a pipe and wiped the file)."""
    code = "from pathlib import Path; from agent_analytics.files import write_atomically; " \
           "write_atomically(Path('/dev/stdout'), 'exported\\n')"
    piped = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (piped.returncode, piped.stdout, piped.stderr) == (0, "exported\n", "")
    log = tmp_path / "app.log"
    log.write_text("earlier line\n")
    inode = log.stat().st_ino
    with open(log, "a") as out:
        subprocess.run([sys.executable, "-c", code], stdout=out, check=True, timeout=60)
    assert log.read_text() == "earlier line\nexported\n" and log.stat().st_ino == inode


def test_a_build_started_in_the_background_leaves_sigterm_working(day1_home):
    """A shell starts a background job with SIGINT ignored, and Dagster's in-process run gives
    SIGTERM SIGINT's handler: the build, and every process started after it, ignored SIGTERM."""
    code = textwrap.dedent("""
        import signal, subprocess
        from agent_analytics.settings import load_settings
        from orchestration.build import run_build
        assert run_build(load_settings())
        print(signal.getsignal(signal.SIGINT) == signal.SIG_IGN, signal.getsignal(signal.SIGTERM) == signal.SIG_DFL)
        print(subprocess.run(["grep", "SigIgn", "/proc/self/status"], capture_output=True, text=True).stdout.split()[1])
    """)
    background = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=900,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    assert background.returncode == 0, background.stderr[-3000:]
    restored, child_ignored = background.stdout.splitlines()[-2:]
    assert restored == "True True"  # SIGINT still ignored, SIGTERM back to its default
    assert not int(child_ignored, 16) & (1 << (signal.SIGTERM - 1)), f"a later child ignores SIGTERM: {child_ignored}"


def test_the_command_line_stops_on_sigterm_even_when_its_parent_ignored_it():
    """A launcher may hand SIGTERM down ignored; the command line takes the default back, so
    `kill` still stops a build, `up` or `serve` (the process ends by SIGTERM, not after 5 s)."""
    code = ("import os, signal, time\n"
            "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
            "from agent_analytics_cli.main import _stop_on_sigterm\n"
            "_stop_on_sigterm()\n"
            "os.kill(os.getpid(), signal.SIGTERM)\n"
            "time.sleep(5)\n")
    run = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[1], timeout=60)
    assert run.returncode == -signal.SIGTERM
