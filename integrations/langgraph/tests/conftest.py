"""Fixtures for the LangGraph integration: one real embedder per session, a store per test.

The embedder is memvault's bundled model (no fakes of our own parts); loading it
once keeps the suite fast. Every store is closed after its test, which also
stops any TTL sweeper or background-writer thread it started.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from memvault import Memory
from memvault_langgraph import MemvaultStore


@pytest.fixture
def store(memory: Memory) -> Iterator[MemvaultStore]:
    s = MemvaultStore(memory=memory)
    try:
        yield s
    finally:
        s.close()
