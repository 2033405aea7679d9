"""The store the upstream LangGraph tests get, wherever they build their own.

Copied next to the upstream test files (fetched from PyPI at test time) by
``tests/test_upstream.py``. ``MEMVAULT_PEER_STORE`` selects what the upstream
tests run against: ``memvault`` (``MemvaultStore``) or ``reference``
(LangGraph's own ``InMemoryStore``), so the outer test can check that every
test passing on the reference passes on memvault too. With ``MEMVAULT_PEER_PG_DSN``
set, memvault's stores live in that PostgreSQL database instead of SQLite files:
one schema per store, named after the file path a test gives (so reopening the
same "file" reopens the same store), or a fresh one when it gives none.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import inspect
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from langgraph.store.memory import InMemoryStore

from memvault_langgraph import MemvaultStore

MODE = os.environ.get("MEMVAULT_PEER_STORE", "memvault")
_BASE = os.environ.get("MEMVAULT_PEER_TMP") or tempfile.mkdtemp(prefix="memvault-peer-")
_PG_DSN = os.environ.get("MEMVAULT_PEER_PG_DSN")
_OPEN: list[Any] = []
_EMBEDDER: Any = None


def scratch() -> str:
    """The run's scratch directory (each test's store files go below it)."""
    return _BASE


def embedder() -> Any:
    # One model load for the whole run: every store shares it.
    global _EMBEDDER
    if _EMBEDDER is None:
        from memvault.embedding import LocalEmbedder

        _EMBEDDER = LocalEmbedder()
    return _EMBEDDER


class _MemvaultPeer(MemvaultStore):
    """``MemvaultStore`` on a fresh file, constructible the way the tests build stores."""

    def __init__(self, *, index: Any = None, ttl: Any = None, path: str | None = None) -> None:
        if _PG_DSN:
            super().__init__(config=_pg_config(path), embedder=embedder(), index=index, ttl=ttl)
        else:
            path = path or os.path.join(tempfile.mkdtemp(dir=_BASE), "store.db")
            super().__init__(path=path, embedder=embedder(), index=index, ttl=ttl)
        _OPEN.append(self)

    def setup(self) -> None:
        """SqliteStore's migration step: nothing to do (memvault migrates on open)."""


def _pg_config(path: str | None) -> dict[str, Any]:
    """A memvault config putting the store in its own schema of the PostgreSQL database."""
    name = hashlib.blake2b(path.encode(), digest_size=8).hexdigest() if path else uuid.uuid4().hex
    return {
        "vector_store": {"provider": "postgres", "config": {"dsn": _PG_DSN, "schema": f"s{name}"}}
    }


class _ReferencePeer(InMemoryStore):
    """LangGraph's InMemoryStore, constructible like ``_MemvaultPeer``."""

    def __init__(self, *, index: Any = None, ttl: Any = None, path: str | None = None) -> None:
        if ttl is not None:
            raise NotImplementedError("InMemoryStore does not support TTL")
        super().__init__(index=index)

    def setup(self) -> None:
        """Nothing to migrate."""

    def close(self) -> None:
        """Nothing to close."""


PeerStore: type[Any] = _MemvaultPeer if MODE == "memvault" else _ReferencePeer


def close_all() -> None:
    """Close every store a test opened (stops sweeper threads, closes SQLite files)."""
    while _OPEN:
        _OPEN.pop().close()


class _AsyncTTLFacade:
    """``AsyncSqliteStore``'s TTL/setup methods are coroutines; forward the rest."""

    def __init__(self, store: Any) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def setup(self) -> None:
        return None

    async def sweep_ttl(self) -> int:
        return int(await self._store.asweep_ttl())

    async def start_ttl_sweeper(self, sweep_interval_minutes: float | None = None) -> Any:
        return self._store.start_ttl_sweeper(sweep_interval_minutes)

    async def stop_ttl_sweeper(self, timeout: float | None = None) -> bool:
        return bool(await asyncio.to_thread(self._store.stop_ttl_sweeper, timeout))


class SqliteShim:
    """Stands in for ``SqliteStore`` in the upstream TTL tests (same path, same ttl)."""

    @staticmethod
    @contextlib.contextmanager
    def from_conn_string(conn: str, *, index: Any = None, ttl: Any = None) -> Iterator[Any]:
        store = PeerStore(path=conn if conn != ":memory:" else None, index=index, ttl=ttl)
        try:
            yield store
        finally:
            store.close()


class AsyncSqliteShim:
    """Stands in for ``AsyncSqliteStore`` in the upstream TTL tests."""

    @staticmethod
    @contextlib.asynccontextmanager
    async def from_conn_string(
        conn: str, *, index: Any = None, ttl: Any = None
    ) -> AsyncIterator[Any]:
        store = PeerStore(path=conn if conn != ":memory:" else None, index=index, ttl=ttl)
        try:
            yield _AsyncTTLFacade(store)
        finally:
            await asyncio.to_thread(store.close)


def retrying(fn: Callable[..., Any], retries: int) -> Callable[..., Any]:
    """Honour upstream's ``@pytest.mark.flaky(retries=N)`` without the plugin.

    The timing-based TTL tests are marked flaky upstream (sleeps of 0.5 s on a
    shared CI box); they get the same number of retries here.
    """
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def awrapper(*args: Any, **kwargs: Any) -> Any:
            for attempt in range(retries + 1):
                try:
                    return await fn(*args, **kwargs)
                except AssertionError:
                    if attempt == retries:
                        raise
            return None

        return awrapper

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        for attempt in range(retries + 1):
            try:
                return fn(*args, **kwargs)
            except AssertionError:
                if attempt == retries:
                    raise
        return None

    return wrapper


def export(namespace: dict[str, Any], name: str, fn: Callable[..., Any]) -> None:
    """Re-export an upstream test function under ``name`` (wrapping flaky ones)."""
    for mark in getattr(fn, "pytestmark", []):
        if mark.name == "flaky":
            fn = retrying(fn, int(mark.kwargs.get("retries", 1)))
    namespace[name] = fn
