"""Fixtures for the LlamaIndex integration: the real core on a real store per test.

One bundled embedder is shared by the whole session (loading it once keeps the suite
fast); every store is a fresh file under ``tmp_path``. Nothing of memvault is mocked: the
only fake is the remote LLM (``tests.support.fake_openai``, over real HTTP).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from memvault import AsyncMemory, Memory
from tests.support.fake_openai import FakeOpenAI


@pytest.fixture
def mv(memory: Memory) -> Memory:
    """A synchronous memvault store (the root conftest's ``memory``)."""
    return memory


@pytest.fixture
def amv(amemory: AsyncMemory) -> AsyncMemory:
    """An asynchronous memvault store (the root conftest's ``amemory``)."""
    return amemory


@pytest.fixture
def srv() -> Iterator[FakeOpenAI]:
    """The fake OpenAI server (real HTTP, scripted answers)."""
    with FakeOpenAI() as s:
        yield s


@pytest.fixture
def llm_config(srv: FakeOpenAI, store_path: Path) -> dict[str, Any]:
    """A memvault config whose LLM (extraction on add) is the fake server."""
    return srv.memvault_config(store_path)
