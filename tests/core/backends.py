"""Storage backends every backend-parametrised test runs against."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from memvault import Memory
from memvault.embedding import LocalEmbedder

BACKENDS = ["sqlite"]


def make_memory(backend: str, path: Path, embedder: LocalEmbedder,
                request: pytest.FixtureRequest) -> Memory:
    config: dict[str, Any] = {"path": str(path)}
    if backend != "sqlite":
        raise ValueError(backend)
    return Memory(config, embedder=embedder)
