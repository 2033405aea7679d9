"""Fixtures shared by every test in the repository (core and integrations).

Why at the root: the core's tests and each adapter's tests need the same things —
one real embedder per session (loading the bundled model once keeps the suite
fast), a fresh store per test, no touching the user's data dir, no network beyond
loopback, and no memvault thread outliving its test.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from memvault import AsyncMemory, Memory
from memvault.embedding import LocalEmbedder

# The session's PostgreSQL server (pg_server) and a fresh database per test (pg_dsn).
pytest_plugins = ["tests.support.postgres"]


# Property-based tests draw the same examples on every run (a CI failure reproduces
# locally); each test's own @settings still sets its example count.
settings.register_profile("memvault", derandomize=True, deadline=None)
settings.load_profile("memvault")


def pytest_configure(config: pytest.Config) -> None:
    """Frameworks' telemetry would only time out on a closed network: switch it off
    before any test module (and so any framework) is imported."""
    for name, value in {
        "MEM0_TELEMETRY": "False",
        "ANONYMIZED_TELEMETRY": "False",
        "CREWAI_DISABLE_TELEMETRY": "true",
        "CREWAI_DISABLE_TRACKING": "true",
        "CREWAI_TRACING_ENABLED": "false",
        "OTEL_SDK_DISABLED": "true",
        "LANGCHAIN_TRACING_V2": "false",
    }.items():
        os.environ.setdefault(name, value)


@pytest.fixture(scope="session")
def embedder() -> LocalEmbedder:
    return LocalEmbedder()


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "memvault.db"


@pytest.fixture
def memory(store_path: Path, embedder: LocalEmbedder) -> Iterator[Memory]:
    with Memory(path=store_path, embedder=embedder) as m:
        yield m


@pytest.fixture
async def amemory(store_path: Path, embedder: LocalEmbedder) -> AsyncIterator[AsyncMemory]:
    m = AsyncMemory(path=store_path, embedder=embedder)
    try:
        yield m
    finally:
        await m.close()


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # No test may touch the real user data dirs, nor reach a real OpenAI.
    monkeypatch.setenv("MEMVAULT_HOME", str(tmp_path / "memvault-home"))
    monkeypatch.setenv("CREWAI_STORAGE_DIR", str(tmp_path / "crewai-storage"))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-key")


def _loopback(address: Any) -> bool:
    if isinstance(address, tuple) and address:
        host = str(address[0])
        if host == "localhost":
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False
    return True  # AF_UNIX and friends


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """Fail on any connection from this process that leaves the machine (loopback is fine).

    Subprocesses (pip fetching an sdist for a peer-test harness) are not affected.
    """
    attempts: list[Any] = []
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def guard(address: Any) -> None:
        if not _loopback(address):
            attempts.append(address)
            raise ConnectionRefusedError(f"test tried to reach {address!r} (offline suite)")

    def connect(self: socket.socket, address: Any) -> Any:
        guard(address)
        return real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> Any:
        guard(address)
        return real_connect_ex(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    yield attempts
    assert not attempts, f"network access attempted: {attempts}"


@pytest.fixture(autouse=True)
def _no_leaked_threads() -> Iterator[None]:
    """Every memvault thread a test starts (pools, sweepers, writers) is gone after it."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 5
    while True:
        leaked = [
            t.name
            for t in set(threading.enumerate()) - before
            if t.name.startswith("memvault") and t.is_alive()
        ]
        if not leaked or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    assert not leaked, f"threads left running: {leaked}"
