"""Storage backends every backend-parametrised test runs against (all real engines)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from memvault import Memory
from memvault.embedding import LocalEmbedder

BACKENDS = ["sqlite", "chroma-embedded", "chroma-server", "postgres"]
#: The stores themselves (Chroma only mirrors vectors of the SQLite store).
STORES = ["sqlite", "postgres"]


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
    elif backend == "postgres":
        # A database of its own (module-scoped callers cannot use the per-test pg_dsn).
        dsn = request.getfixturevalue("pg_server").new_database()
        config["vector_store"] = {"provider": "postgres", "config": {"dsn": dsn}}
    elif backend != "sqlite":
        raise ValueError(backend)
    return Memory(config, embedder=embedder)


@pytest.fixture(name="memory", params=STORES)
def memory_per_store(
    request: pytest.FixtureRequest, store_path: Path, embedder: LocalEmbedder
) -> Iterator[Memory]:
    """The root ``memory`` fixture, once per store backend (import it into a test module)."""
    with make_memory(request.param, store_path, embedder, request) as m:
        yield m
