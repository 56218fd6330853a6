"""A real PostgreSQL server for the tests: Debian's binaries (`.ci/run` installs the package),
a cluster made by initdb in a temporary folder, listening on a free port of 127.0.0.1 (its
unix socket in that folder too), with password authentication, stopped and removed at the end.

initdb and postgres refuse to run as root: as root, they run as the `postgres` user the
Debian package creates (else `nobody`), which owns the temporary folder.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

USER = "analytics_test"
PASSWORD = "pg-Secret-7Qx9-do-not-log"  # the tests look for it in every error and log line


def postgres_bin() -> Path | None:
    """The folder of initdb/pg_ctl: on PATH, else the newest /usr/lib/postgresql/<version>/bin."""
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).resolve().parent
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    return Path(found[-1]).parent if found else None


@dataclass(frozen=True)
class PostgresServer:
    port: int
    folder: Path

    def url(self, password: str = PASSWORD, database: str = "postgres") -> str:
        return f"postgresql://{USER}:{password}@127.0.0.1:{self.port}/{database}"

    def log(self) -> str:
        return (self.folder / "server.log").read_text(errors="replace")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _run_as() -> dict:
    """subprocess arguments that run the server's programs as a non-root user when we are root."""
    if os.geteuid() != 0:
        return {}
    try:
        user = pwd.getpwnam("postgres")
    except KeyError:
        user = pwd.getpwnam("nobody")
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


@contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """A started server; stopped (fast shutdown) and its folder removed on exit."""
    binaries = postgres_bin()
    if binaries is None:
        raise FileNotFoundError("no initdb: install Debian's postgresql package (.ci/run does)")
    folder = Path(tempfile.mkdtemp(prefix="agent-analytics-pg-"))
    as_user = _run_as()
    if as_user:
        os.chown(folder, as_user["user"], as_user["group"])
    password_file = folder / "password"
    password_file.write_text(PASSWORD + "\n")
    if as_user:
        os.chown(password_file, as_user["user"], as_user["group"])
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8", "HOME": str(folder)}
    run = {"env": env, "cwd": folder, "capture_output": True, "text": True, "timeout": 120, **as_user}
    data = folder / "data"
    server = PostgresServer(_free_port(), folder)
    try:
        subprocess.run([str(binaries / "initdb"), "-D", str(data), "-U", USER, "--auth=scram-sha-256",
                        f"--pwfile={password_file}", "-E", "UTF8", "--no-sync"], check=True, **run)
        options = f"-p {server.port} -c listen_addresses=127.0.0.1 -k {folder} -c fsync=off"
        subprocess.run([str(binaries / "pg_ctl"), "start", "-w", "-t", "60", "-D", str(data), "-l",
                        str(folder / "server.log"), "-o", options], check=True, **run)
        yield server
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run([str(binaries / "pg_ctl"), "stop", "-w", "-m", "fast", "-D", str(data)], **run)
        shutil.rmtree(folder, ignore_errors=True)
