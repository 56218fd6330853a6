"""Start child processes, restart those that exit, stop them all on SIGTERM or SIGINT.

Each child runs in a session of its own (so a terminal's Ctrl-C reaches only the supervisor,
which then stops everything in order) with the default SIGINT and SIGTERM dispositions (a
process started in the background of a non-interactive shell inherits SIGINT ignored, and an
ignored signal stays ignored across exec) and, on Linux, a parent-death signal, so that a
supervisor killed with SIGKILL does not leave its children running. Stopping a child means
its whole session: the Dagster daemon's code server, the run worker and the dbt it started,
the webserver's code server; SIGTERM first, SIGKILL to whatever is left after the grace.

A child that exits is restarted after a pause that doubles from RESTART_MIN_S up to
RESTART_MAX_S, back to the minimum once a child has stayed up for STABLE_S. Everything is
logged as one JSON object per line on stderr: the supervisor's events (`start`, `exit`,
`restart`, `stop`, `kill`, `stopped`, ...) and every line the children print (`output`).
"""

from __future__ import annotations

import ctypes
import json
import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO

RESTART_MIN_S = 1.0
RESTART_MAX_S = 60.0
STABLE_S = 60.0
STOP_GRACE_S = 20.0  # SIGTERM to SIGKILL; with the SIGKILL wait below, all is gone within 30 s
KILL_WAIT_S = 5.0
POLL_S = 0.2
MAX_LINE = 8192  # longer lines of a child are cut (and say so)
PR_SET_PDEATHSIG = 1


class JsonLog:
    """One JSON object per line: time (UTC, ISO 8601), event, then the event's fields."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stderr

    def __call__(self, event: str, **fields) -> None:
        record = {"time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"), "event": event, **fields}
        try:
            self.stream.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
            self.stream.flush()
        except (OSError, ValueError):
            pass  # a closed or full stderr must not stop the supervision


@dataclass(frozen=True)
class ChildSpec:
    name: str
    argv: list[str]


@dataclass
class Child:
    spec: ChildSpec
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    starts: int = 0
    backoff_s: float = 0.0
    restart_at: float | None = None
    leftover_session: int | None = None  # session of an exited child whose processes are being stopped
    leftover_deadline: float = 0.0


@dataclass
class _Pipe:
    child: str
    stream: IO[bytes]
    buffer: bytes = b""


def session_members(session: int) -> list[int]:
    """Live (not zombie) processes of a session; where /proc does not exist, the session
    leader's process group stands for it."""
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(session, 0)
            return [session]
        except (ProcessLookupError, PermissionError):
            return []
    members = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) "
        if fields[0] not in ("Z", "X") and int(fields[3]) == session:
            members.append(int(entry.name))
    return members


def signal_session(session: int, sig: int) -> int:
    """Send `sig` to every live process of the session; how many there were."""
    members = session_members(session)
    if not Path("/proc").is_dir():
        try:
            os.killpg(session, sig)
        except (ProcessLookupError, PermissionError):
            return 0
        return len(members)
    for pid in members:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
    return len(members)


def _child_setup(prctl: Callable | None) -> Callable[[], None]:
    def setup() -> None:
        # Runs in the child between fork and exec (its session is already new).
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_DFL)
        if prctl is not None:
            prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    return setup


def _prctl() -> Callable | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


@dataclass
class Supervisor:
    """Supervise `specs` with environment `env` and working folder `cwd`. `every_minute` runs
    in the supervisor once a minute (its exceptions are logged, never fatal); `keep_fds` are
    inherited by the children (a lock that must stay held while any of them lives)."""

    specs: list[ChildSpec]
    env: dict[str, str]
    cwd: Path
    log: JsonLog = field(default_factory=JsonLog)
    every_minute: Callable[[], None] | None = None
    keep_fds: tuple[int, ...] = ()
    stop_grace_s: float = STOP_GRACE_S

    def __post_init__(self) -> None:
        self.children = [Child(spec) for spec in self.specs]
        self.selector = selectors.DefaultSelector()
        self.stop_signal: int | None = None
        self._setup = _child_setup(_prctl())

    # -- signals

    def _on_signal(self, signum: int, _frame) -> None:
        if self.stop_signal is None:
            self.stop_signal = signum

    def install_signal_handlers(self) -> None:
        # Before any child starts: a Python handler is reset to the default in a child at exec.
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)

    # -- children

    def _start(self, child: Child) -> None:
        try:
            process = subprocess.Popen(
                child.spec.argv, env=self.env, cwd=self.cwd, stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
                preexec_fn=self._setup, pass_fds=self.keep_fds,
            )
        except OSError as exc:
            self.log("start_failed", child=child.spec.name, error=str(exc))
            self._schedule_restart(child, time.monotonic())
            return
        os.set_blocking(process.stdout.fileno(), False)
        self.selector.register(process.stdout, selectors.EVENT_READ, _Pipe(child.spec.name, process.stdout))
        child.process, child.started_at, child.restart_at = process, time.monotonic(), None
        child.starts += 1
        self.log("start" if child.starts == 1 else "restart", child=child.spec.name, pid=process.pid,
                 argv=child.spec.argv, **({"restarts": child.starts - 1} if child.starts > 1 else {}))

    def _schedule_restart(self, child: Child, now: float) -> None:
        ran_s = now - child.started_at if child.started_at else 0.0
        if ran_s >= STABLE_S or child.backoff_s == 0.0:
            child.backoff_s = RESTART_MIN_S
        else:
            child.backoff_s = min(child.backoff_s * 2, RESTART_MAX_S)
        child.restart_at = now + child.backoff_s
        self.log("restart_scheduled", child=child.spec.name, in_s=child.backoff_s)

    def _check(self, child: Child, now: float) -> None:
        process = child.process
        if process is not None and process.poll() is not None:
            ran_s = round(now - child.started_at, 3)
            self.log("exit", child=child.spec.name, pid=process.pid, returncode=process.returncode, ran_s=ran_s)
            child.process = None
            # What it started (a code server, a run worker, dbt) goes with it before the restart.
            if signal_session(process.pid, signal.SIGTERM):
                child.leftover_session, child.leftover_deadline = process.pid, now + self.stop_grace_s
            self._schedule_restart(child, now)
        if child.leftover_session is not None:
            if not session_members(child.leftover_session):
                child.leftover_session = None
            elif now >= child.leftover_deadline:
                killed = signal_session(child.leftover_session, signal.SIGKILL)
                self.log("kill", child=child.spec.name, session=child.leftover_session, processes=killed)
                child.leftover_session = None
        if child.process is None and child.leftover_session is None and child.restart_at is not None \
                and now >= child.restart_at:
            self._start(child)

    # -- output

    def _pump(self, timeout: float) -> None:
        for key, _events in self.selector.select(timeout):
            pipe: _Pipe = key.data
            try:
                data = os.read(pipe.stream.fileno(), 65536)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:  # every process holding the pipe is gone
                if pipe.buffer:
                    self._emit(pipe.child, pipe.buffer)
                self.selector.unregister(pipe.stream)
                pipe.stream.close()
                continue
            lines = (pipe.buffer + data).split(b"\n")
            pipe.buffer = lines.pop()
            if len(pipe.buffer) > MAX_LINE:
                lines.append(pipe.buffer)
                pipe.buffer = b""
            for line in lines:
                self._emit(pipe.child, line)

    def _emit(self, child: str, line: bytes) -> None:
        text = line.rstrip(b"\r").decode("utf-8", errors="replace")
        if not text:
            return
        if len(text) > MAX_LINE:
            text = text[:MAX_LINE] + f" ... ({len(text) - MAX_LINE} more characters cut)"
        elif text.startswith("{"):  # a child's own JSON log record is kept as an object
            try:
                record = json.loads(text)
            except ValueError:
                record = None
            if isinstance(record, dict):
                self.log("output", child=child, record=record)
                return
        self.log("output", child=child, line=text)

    def _drain(self) -> None:
        """Read what the children wrote before they ended (pipes of processes still running
        are left once they have nothing to read)."""
        for _ in range(10_000):  # bounded: a process still running could write forever
            if not (self.selector.get_map() and self.selector.select(0)):
                return
            self._pump(0)

    # -- main loop

    def run(self) -> int:
        """Supervise until SIGTERM or SIGINT, then stop every child. Returns the exit code."""
        self.install_signal_handlers()
        self.log("up", pid=os.getpid(), children=[s.name for s in self.specs])
        for child in self.children:
            self._start(child)
        next_minute = time.monotonic() + 60.0
        while self.stop_signal is None:
            self._pump(POLL_S)
            now = time.monotonic()
            for child in self.children:
                if self.stop_signal is None:
                    self._check(child, now)
            if self.every_minute is not None and now >= next_minute:
                next_minute = now + 60.0
                self._run_every_minute()
        self._stop_all()
        return 0

    def _run_every_minute(self) -> None:
        try:
            self.every_minute()
        except Exception as exc:  # a failed check is retried next minute; supervision goes on
            self.log("periodic_error", error=f"{type(exc).__name__}: {exc}")

    def _stop_all(self) -> None:
        started = time.monotonic()
        self.log("stop", signal=signal.Signals(self.stop_signal).name)
        sessions = {}
        for child in self.children:
            for session in (child.process.pid if child.process else None, child.leftover_session):
                if session is not None:
                    sessions[session] = child
                    signal_session(session, signal.SIGTERM)
        deadline = started + self.stop_grace_s
        while time.monotonic() < deadline and any(session_members(s) for s in sessions):
            self._pump(POLL_S)
            self._reap()
        for session, child in sessions.items():
            killed = signal_session(session, signal.SIGKILL)
            if killed:
                self.log("kill", child=child.spec.name, session=session, processes=killed)
        kill_deadline = time.monotonic() + KILL_WAIT_S
        while time.monotonic() < kill_deadline and any(session_members(s) for s in sessions):
            self._pump(POLL_S)
            self._reap()
        self._reap()
        self._drain()
        for child in self.children:
            if child.process is not None:
                self.log("stopped", child=child.spec.name, pid=child.process.pid, returncode=child.process.returncode)
        left = sorted(pid for s in sessions for pid in session_members(s))
        self.log("down", seconds=round(time.monotonic() - started, 3), **({"left_running": left} if left else {}))

    def _reap(self) -> None:
        for child in self.children:
            if child.process is not None:
                child.process.poll()
