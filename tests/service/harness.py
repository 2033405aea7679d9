"""A real memvault server for tests: ``memvault serve`` in a child process on a free port.

Why a child process and not an in-process app: the tests exercise what users run
(uvicorn, the CLI, the lifespan), the kill -9 tests need a process to kill, and the main
venv's remote-client tests start the server from the server venv (mcp 2.x), which they
could not import. Every server started here is stopped when its context exits (SIGTERM,
then SIGKILL after 10 s): no test leaks a process.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[2]


def server_python() -> str | None:
    """The interpreter that has the server extra: this one, or the server venv's."""
    try:
        import fastapi  # noqa: F401
        from mcp.server.mcpserver import MCPServer  # noqa: F401

        return sys.executable
    except ImportError:
        pass
    candidate = os.environ.get("MEMVAULT_SERVER_PYTHON") or str(REPO / ".venv-server/bin/python")
    return candidate if Path(candidate).exists() else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """A running ``memvault serve`` (its store file, its URL, its process)."""

    store: Path
    port: int
    proc: subprocess.Popen[bytes]
    log: Path
    keys: list[str] = field(default_factory=list)
    #: The ``--config`` it was started with (e.g. the PostgreSQL store); None: ``store``.
    config: dict[str, Any] | None = None

    def open_memory(self) -> Any:
        """A local ``Memory`` on the same store (its file, or its database)."""
        from memvault import Memory

        return Memory(self.config, path=None if self.config else self.store)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def key(
        self,
        tenant: str | None = None,
        *,
        users: list[str] | None = None,
        agents: list[str] | None = None,
        read_only: bool = False,
        rate_limit: int | None = None,
    ) -> str:
        """A new API key (of a new tenant unless one is named), made as ``memvault keys`` does."""
        from memvault.service.keys import create_key

        tenant = tenant or "t" + uuid.uuid4().hex[:12]
        with self.open_memory() as m:
            token, _ = create_key(
                m,
                tenant,
                user_ids=users,
                agent_ids=agents,
                read_only=read_only,
                rate_limit=rate_limit,
            )
        return token

    def client(self, token: str | None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=30)


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"memvault serve exited with {proc.returncode}:\n{log.read_text()[-3000:]}"
            )
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise RuntimeError(
        f"memvault serve did not answer within {timeout}s:\n{log.read_text()[-3000:]}"
    )


@contextlib.contextmanager
def serve(
    store: Path,
    *args: str,
    python: str | None = None,
    port: int | None = None,
    config: dict[str, Any] | None = None,
) -> Iterator[Server]:
    """Start ``memvault serve`` on ``store`` (or, with ``config``, the store it names, e.g.
    a PostgreSQL database; ``store``'s folder then holds the log and the config file);
    stop it (and wait for it) on exit."""
    python = python or server_python()
    if python is None:
        raise RuntimeError("no Python with the server extra: run 'make setup' (.venv-server)")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("MEMVAULT_API_KEY", None)
    for attempt in range(3):
        chosen = port or free_port()
        store.parent.mkdir(parents=True, exist_ok=True)
        log = store.parent / f"server-{chosen}.log"
        where = ["--path", str(store)]
        if config is not None:
            config_file = store.parent / f"server-{chosen}.json"
            config_file.write_text(json.dumps(config))
            where = ["--config", str(config_file)]
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [
                    python,
                    "-m",
                    "memvault.cli",
                    *where,
                    "serve",
                    "--port",
                    str(chosen),
                    *args,
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=REPO,
            )
        server = Server(store, chosen, proc, log, config=config)
        try:
            _wait_ready(server.url, proc, log, timeout=60)
        except RuntimeError:
            stop(server)
            if attempt == 2 or port is not None or "address already in use" not in log.read_text():
                raise
            continue
        try:
            yield server
        finally:
            stop(server)
        return


def stop(server: Server) -> None:
    proc = server.proc
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
