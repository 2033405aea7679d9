"""Shared fixtures: one real embedder per test session, a fresh store per test.

The embedder is the real bundled model (no fakes of our own parts); loading it
once keeps the suite fast.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from memvault import AsyncMemory, Memory
from memvault.embedding import LocalEmbedder


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
    # No test may touch the real user data dir.
    monkeypatch.setenv("MEMVAULT_HOME", str(tmp_path / "home"))
