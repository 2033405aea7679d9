"""One ``memvault serve`` for the service's tests (a fresh tenant per test keeps them apart)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.service.harness import Server, serve


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with serve(tmp_path_factory.mktemp("server") / "memvault.db") as s:
        yield s
