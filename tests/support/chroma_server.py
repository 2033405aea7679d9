"""A real ``chroma run`` server for tests: 127.0.0.1 only, a free port, a tmp data dir.

Why a real server: the Chroma backend's interesting failures (server down,
restart, several processes on one server) only exist over HTTP, and the house
rule is no storage mocks. ``ChromaServer`` can be stopped and started again on
the same port and data directory, which is how the outbox catch-up is tested.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

# The CLI entry point of the installed chromadb (the ``chroma`` script), run with
# this interpreter so it is the same chromadb the tests import.
_CLI = "import sys; from chromadb.cli.cli import app; sys.argv[0] = 'chroma'; app()"


def free_port() -> int:
    """A port that was free a moment ago on 127.0.0.1 (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ChromaServer:
    """One ``chroma run`` process; ``start()`` / ``stop()`` may be repeated."""

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def heartbeat(self, timeout: float = 1.0) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/api/v2/heartbeat", timeout=timeout) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    def start(self, timeout: float = 60.0) -> ChromaServer:
        """Start the server and return once its heartbeat answers."""
        assert self.proc is None, "already running"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "ANONYMIZED_TELEMETRY": "False", "NO_COLOR": "1"}
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    _CLI,
                    "run",
                    "--path",
                    str(self.data_dir),
                    "--host",
                    self.host,
                    "--port",
                    str(self.port),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,  # its own process group: stop() reaps any children
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                code = self.proc.returncode
                self.proc = None
                raise RuntimeError(f"chroma run exited with {code}:\n{self.log_tail()}")
            if self.heartbeat(timeout=0.5):
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"chroma run did not answer within {timeout}s:\n{self.log_tail()}")

    def stop(self) -> None:
        """Terminate (then kill) the server's process group; idempotent."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 10.0)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
            try:
                proc.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
        # The port must really be free before a restart on it (or the next test).
        deadline = time.monotonic() + 10.0
        while self.heartbeat(timeout=0.2) and time.monotonic() < deadline:
            time.sleep(0.05)

    def log_tail(self, n: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""


@contextlib.contextmanager
def chroma_server(data_dir: Path, port: int | None = None) -> Iterator[ChromaServer]:
    """A started server, stopped when the block exits (even on failure)."""
    server = ChromaServer(data_dir, port)
    try:
        yield server.start()
    finally:
        server.stop()
