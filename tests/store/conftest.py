"""Fixtures of the storage conformance suite: one fresh store per test, per backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from memvault.store.contract import Store

BACKENDS = ["sqlite", "postgres"]


def open_store(backend: str, where: str) -> Any:
    """A store of ``backend`` at ``where`` (a file path, or a DSN)."""
    if backend == "sqlite":
        from memvault.store.sqlite import SQLiteStore

        return SQLiteStore(where)
    from memvault.store.postgres import PostgresStore

    return PostgresStore(where)


@pytest.fixture(params=BACKENDS)
def location(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    """(backend, where): a new empty store's location."""
    if request.param == "sqlite":
        return "sqlite", str(tmp_path / "store.db")
    return "postgres", request.getfixturevalue("pg_dsn")


@pytest.fixture
def store(location: tuple[str, str]) -> Iterator[Store]:
    s = open_store(*location)
    try:
        yield s
    finally:
        s.close()
