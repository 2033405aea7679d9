"""Fixtures for the LlamaIndex integration: the real core on a real store per test.

One bundled embedder is shared by the whole session (loading it once keeps the suite
fast); every store is a fresh file under ``tmp_path``. Nothing of memvault is mocked: the
only fake is the remote LLM (``tests.support.fake_openai``, over real HTTP).
"""

from __future__ import annotations

import os

# mem0ai is imported (llama-index-memory-mem0); its telemetry must not try the network.
os.environ["MEM0_TELEMETRY"] = "False"

import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from memvault import AsyncMemory, Memory
from memvault.embedding import LocalEmbedder
from tests.support.fake_openai import FakeOpenAI


@pytest.fixture(scope="session")
def embedder() -> LocalEmbedder:
    return LocalEmbedder()


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # No test may touch the real user data dir, nor reach a real OpenAI.
    monkeypatch.setenv("MEMVAULT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-key")


@pytest.fixture(autouse=True)
def _no_leaked_threads() -> Iterator[None]:
    """Every memvault pool a test opens (AsyncMemory workers) is shut down after it."""
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
def mv(store_path: Path, embedder: LocalEmbedder) -> Iterator[Memory]:
    """A synchronous memvault store."""
    with Memory(path=store_path, embedder=embedder) as m:
        yield m


@pytest.fixture
async def amv(store_path: Path, embedder: LocalEmbedder) -> AsyncIterator[AsyncMemory]:
    """An asynchronous memvault store."""
    m = AsyncMemory(path=store_path, embedder=embedder)
    try:
        yield m
    finally:
        await m.close()


@pytest.fixture
def srv() -> Iterator[FakeOpenAI]:
    """The fake OpenAI server (real HTTP, scripted answers)."""
    with FakeOpenAI() as s:
        yield s


@pytest.fixture
def llm_config(srv: FakeOpenAI, store_path: Path) -> dict[str, Any]:
    """A memvault config whose LLM (extraction on add) is the fake server."""
    return {
        "path": str(store_path),
        "llm": {
            "provider": "openai",
            "config": {
                "model": "gpt-4o-mini",
                "openai_base_url": srv.base_url,
                "api_key": "sk-test",
                "max_retries": 0,
                "timeout": 5,
            },
        },
    }
