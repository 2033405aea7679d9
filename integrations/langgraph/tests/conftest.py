"""Fixtures for the LangGraph integration: one real embedder per session, a store per test.

The embedder is memvault's bundled model (no fakes of our own parts); loading it
once keeps the suite fast. Every store is closed after its test, which also
stops any TTL sweeper or background-writer thread it started.
"""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from memvault import AsyncMemory, Memory
from memvault.embedding import LocalEmbedder
from memvault_langgraph import MemvaultStore


@pytest.fixture(scope="session")
def embedder() -> LocalEmbedder:
    return LocalEmbedder()


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # No test may touch the real user data dir.
    monkeypatch.setenv("MEMVAULT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LANGCHAIN_TRACING_V2", "false")


@pytest.fixture(autouse=True)
def _no_leaked_threads() -> Iterator[None]:
    """Every memvault thread a test starts (sweeper, writer, async pool) is gone after it."""
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


@pytest.fixture
def store(memory: Memory) -> Iterator[MemvaultStore]:
    s = MemvaultStore(memory=memory)
    try:
        yield s
    finally:
        s.close()
