"""`agent-analytics up`: what a deployment runs, supervised, with no development server.

Children (orchestration/supervisor.py starts, restarts and stops them):
- `daemon`: `dagster-daemon run` (schedules, the landing sensor, the run queue, run retries
  and monitoring), which launches every run in a worker process of its own;
- `webserver`: `dagster-webserver` (the Dagster UI; `--read-only` with `--read-only-ui`);
- `service`: `agent-analytics serve`, the HTTP service (unless `--no-service`); it starts
  without tokens too, answering /healthz and /readyz and 401 to the rest until one exists.
All three get the same environment (AGENT_ANALYTICS_HOME, DAGSTER_HOME and the settings) and
load the workspace `-m orchestration.definitions` from the repository folder.

Before they start: one `up` per home (an flock on `dagster/up.lock`, also held by the
children, so a second `up` cannot start beside the children of a first one that was killed),
the instance's dagster.yaml, the dbt manifest, and the recovery of runs whose process is gone
(command-line builds: recovery.py; daemon runs: run_workers.py), repeated every minute and
once more after the children have stopped.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from agent_analytics.settings import Settings
from agent_analytics.warehouse import wait_for_flock
from orchestration.supervisor import ChildSpec, JsonLog, Supervisor

REPO_ROOT = Path(__file__).resolve().parents[1]
WORKSPACE = ["-m", "orchestration.definitions", "-d", str(REPO_ROOT)]
LOCK_NAME = "up.lock"
# A killed `up` leaves its children a moment to stop (their parent-death signal is SIGTERM).
LOCK_WAIT_S = 30.0


class UpError(Exception):
    """`up` cannot start; one line for the user."""


@dataclass(frozen=True)
class UpOptions:
    service: bool = True
    host: str = "127.0.0.1"
    port: int = 8000
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    ui_host: str = "127.0.0.1"
    ui_port: int = 3000
    read_only_ui: bool = False


def child_specs(options: UpOptions) -> list[ChildSpec]:
    """The commands `up` supervises, from the running environment's bin folder."""
    bin_dir = Path(sys.executable).parent
    specs = [
        ChildSpec("daemon", [str(bin_dir / "dagster-daemon"), "run", "--log-format", "json", *WORKSPACE]),
        ChildSpec("webserver", [str(bin_dir / "dagster-webserver"), "-h", options.ui_host, "-p", str(options.ui_port),
                                "--log-format", "json", *(["--read-only"] if options.read_only_ui else []), *WORKSPACE]),
    ]
    if options.service:
        tls = []
        if options.ssl_certfile:
            tls += ["--ssl-certfile", str(options.ssl_certfile)]
        if options.ssl_keyfile:
            tls += ["--ssl-keyfile", str(options.ssl_keyfile)]
        specs.append(ChildSpec("service", [str(bin_dir / "agent-analytics"), "serve", "--host", options.host,
                                           "--port", str(options.port), *tls]))
    return specs


def recover(log: JsonLog, *, no_daemon: bool = False) -> None:
    """Fail the runs whose process is gone and free the pool slots they held, one log record
    each; `no_daemon` while the daemon is not running (see run_workers.py)."""
    import dagster as dg

    from orchestration.recovery import recover_abandoned_runs
    from orchestration.run_workers import fail_runs_of_dead_workers

    with dg.DagsterInstance.get() as instance:
        for recovered in recover_abandoned_runs(instance):
            log("recovered", run_id=recovered.run_id, message=recovered.describe())
        for failed in fail_runs_of_dead_workers(instance, no_daemon=no_daemon):
            log("recovered", run_id=failed.run_id, message=failed.describe())


_PREPARE = """
import sys
from dagster_dbt import DagsterDbtCliRuntimeError
from orchestration.defs.dbt.project import dbt_error_line, prepare_manifest
try:
    prepare_manifest()
except DagsterDbtCliRuntimeError as exc:
    sys.exit(dbt_error_line(exc))
"""


def prepare_manifest_apart(env: dict[str, str]) -> None:
    """Parse the dbt project in a process of its own, for the children's code servers.

    dagster-dbt registers a dbt adapter in the process that calls dbt, and the adapter's
    multiprocessing lock starts a resource-tracker process that lives as long as its parent.
    Parsed in `up` itself, that process would belong to no child's session and outlive a stop
    by a moment; `up` must own nothing but its children."""
    result = subprocess.run([sys.executable, "-c", _PREPARE], env=env, cwd=REPO_ROOT,
                            stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines() or [f"exit code {result.returncode}"]
        raise UpError(f"the dbt project does not parse: {lines[-1]}")


def run_up(settings: Settings, options: UpOptions, log: JsonLog | None = None) -> int:
    """Prepare the home and supervise the children until SIGTERM or SIGINT; the exit code."""
    from orchestration.defs.dbt.project import dbt_on_path
    from orchestration.instance import ensure_dagster_home

    log = log or JsonLog()
    settings.ensure_dirs()
    lock_path = settings.dagster_home / LOCK_NAME
    with open(lock_path, "a+") as lock:
        if not wait_for_flock(lock, LOCK_WAIT_S):
            lock.seek(0)
            holder = lock.read().strip() or "another agent-analytics up"
            raise UpError(f"{holder} still runs on this home ({lock_path}); stop it first")
        lock.truncate(0)
        started = datetime.now(timezone.utc).isoformat(timespec="seconds")
        lock.write(f"agent-analytics up, process {os.getpid()} on {socket.gethostname()} (since {started})\n")
        lock.flush()
        ensure_dagster_home(settings)
        env = dbt_on_path({**os.environ, **settings.env(), "PYTHONUNBUFFERED": "1"})
        prepare_manifest_apart(env)  # the code servers of the daemon and the webserver load the definitions
        recover(log, no_daemon=True)
        supervisor = Supervisor(child_specs(options), env, REPO_ROOT, log,
                                every_minute=lambda: recover(log), keep_fds=(lock.fileno(),))
        code = supervisor.run()
        # A run whose worker needed SIGKILL, or that the daemon launched just before it stopped, is
        # failed now rather than at the next start.
        recover(log, no_daemon=True)
        return code
