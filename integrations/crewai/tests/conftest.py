"""Fixtures for the CrewAI integration: one real embedder per session, a store per test.

Everything runs offline against the real memvault core on a real store in
``tmp_path``: no fakes of memvault's parts. CrewAI's telemetry and tracing are
switched off before crewai is first imported (they would only time out on a
closed network), and any socket connection to a non-loopback address fails the
test, so "offline" is checked, not assumed.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from memvault import Memory
from memvault_crewai import MemvaultStorage


@pytest.fixture
def storage(memory: Memory) -> Iterator[MemvaultStorage]:
    s = MemvaultStorage(memory=memory)
    try:
        yield s
    finally:
        s.close()
