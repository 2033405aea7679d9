"""Fixtures for the CrewAI integration: one real embedder per session, a store per test.

Everything runs offline against the real memvault core on a real store in
``tmp_path``: no fakes of memvault's parts. CrewAI's telemetry and tracing are
switched off before crewai is first imported (they would only time out on a
closed network), and any socket connection to a non-loopback address fails the
test, so "offline" is checked, not assumed.
"""

from __future__ import annotations

import os

os.environ["CREWAI_DISABLE_TELEMETRY"] = "true"
os.environ["CREWAI_DISABLE_TRACKING"] = "true"
os.environ["CREWAI_TRACING_ENABLED"] = "false"
os.environ["OTEL_SDK_DISABLED"] = "true"

import ipaddress
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from memvault import Memory
from memvault.embedding import LocalEmbedder
from memvault_crewai import MemvaultStorage


@pytest.fixture(scope="session")
def embedder() -> LocalEmbedder:
    return LocalEmbedder()


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # No test may touch the real user data dirs (memvault's or CrewAI's).
    monkeypatch.setenv("MEMVAULT_HOME", str(tmp_path / "memvault-home"))
    monkeypatch.setenv("CREWAI_STORAGE_DIR", str(tmp_path / "crewai-storage"))


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
    """Fail on any connection attempt that leaves the machine (loopback is fine)."""
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


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "memvault.db"


@pytest.fixture
def memory(store_path: Path, embedder: LocalEmbedder) -> Iterator[Memory]:
    with Memory(path=store_path, embedder=embedder) as m:
        yield m


@pytest.fixture
def storage(memory: Memory) -> Iterator[MemvaultStorage]:
    s = MemvaultStorage(memory=memory)
    try:
        yield s
    finally:
        s.close()
