"""Fixtures for the core tests that need a real Chroma server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.chroma_server import ChromaServer, chroma_server


@pytest.fixture(scope="session")
def chroma_srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChromaServer]:
    """A `chroma run` on 127.0.0.1 for the whole session, stopped at the end."""
    with chroma_server(tmp_path_factory.mktemp("chroma-session") / "data") as s:
        yield s
