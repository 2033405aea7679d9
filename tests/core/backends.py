"""Storage backends every backend-parametrised test runs against (all real engines)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from memvault import Memory
from memvault.embedding import LocalEmbedder

BACKENDS = ["sqlite", "chroma-embedded", "chroma-server"]


def make_memory(
    backend: str, path: Path, embedder: LocalEmbedder, request: pytest.FixtureRequest
) -> Memory:
    config: dict[str, Any] = {"path": str(path)}
    if backend == "chroma-embedded":
        config["vector_store"] = {
            "provider": "chroma",
            "config": {"path": str(path.parent / "chroma"), "collection_name": path.stem},
        }
    elif backend == "chroma-server":
        srv = request.getfixturevalue("chroma_srv")  # one real `chroma run` per session
        config["vector_store"] = {
            "provider": "chroma",
            "config": {"host": srv.host, "port": srv.port, "collection_name": path.parent.name},
        }
    elif backend != "sqlite":
        raise ValueError(backend)
    return Memory(config, embedder=embedder)
