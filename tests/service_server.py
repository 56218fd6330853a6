"""A real `agent-analytics serve` in a subprocess on a free port of 127.0.0.1, for the service
tests: its home, its tokens, its stderr (the server's log) kept in a file."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from agent_analytics.tokens import create_token, tokens_path

SCRIPT = Path(sys.executable).with_name("agent-analytics")


@dataclass
class Server:
    home: Path
    port: int
    process: subprocess.Popen
    log_path: Path
    scheme: str = "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def make_tokens(home: Path, **scopes: str) -> dict[str, str]:
    """Tokens named as the keywords, with their scope: {name: token}."""
    return {name: create_token(tokens_path(home), name, scope) for name, scope in scopes.items()}


def start_server(home: Path, log_path: Path, env: dict[str, str] | None = None, port: int | None = None,
                 certificate: tuple[Path, Path] | None = None) -> Server:
    """The server of `home`, answering /healthz; with `certificate` (certificate file, key file), over HTTPS."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("AGENT_ANALYTICS_")}
    environ["AGENT_ANALYTICS_HOME"] = str(home)
    environ.update(env or {})
    port = port or free_port()
    tls = ["--ssl-certfile", str(certificate[0]), "--ssl-keyfile", str(certificate[1])] if certificate else []
    with open(log_path, "ab") as log:
        process = subprocess.Popen([str(SCRIPT), "serve", "--port", str(port), *tls], env=environ,
                                   stdout=log, stderr=subprocess.STDOUT)
    server = Server(home, port, process, log_path, "https" if certificate else "http")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}:\n{server.log()}")
        try:
            verify = str(certificate[0]) if certificate else True
            if httpx.get(f"{server.url}/healthz", timeout=2, verify=verify).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.1)
    server.stop(signal.SIGKILL)
    raise RuntimeError(f"the server did not answer within 60 s:\n{server.log()}")


def copy_built_home(built: Path, target: Path) -> Path:
    """A private copy of the session's built fixture home (conftest `built_fixture_home`)."""
    shutil.copytree(built, target, symlinks=True)
    return target
