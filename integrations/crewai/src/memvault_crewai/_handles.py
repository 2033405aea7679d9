"""One memvault store, opened as ``Memory`` and (on demand) as ``AsyncMemory``.

Why twins: CrewAI calls a storage backend both from worker threads (``save``,
``search``) and from coroutines (``asave``, ``asearch``), and tools from both
``_run`` and ``_arun``. memvault's ``AsyncMemory`` awaits natively (SQLite work
on its own small pool) instead of parking a thread per call, so each handle
holds the sync ``Memory`` and, the first time async code needs it, its
``Memory.as_async()`` twin (or ``AsyncMemory.as_sync()`` the other way round).
A twin is a second handle over the *same* engine: one store connection, one
cache, one loaded model.

Ownership: a handle closes only what it opened. A ``Memory`` the caller passed
in stays open (it may be shared by several storages or tools); its twin, made
here, is closed here, which releases only the twin's thread pool.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Coroutine
from typing import Any

from memvault import AsyncMemory, Memory, MemoryConfig
from memvault.embedding.base import Embedder

MemoryLike = Memory | AsyncMemory


def run_to_completion(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run ``coro`` from sync code, whether or not this thread already runs an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    result: list[Any] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(coro))
        except BaseException as e:  # re-raised in the caller's thread
            error.append(e)

    t = threading.Thread(target=target, name="memvault-crewai-close")
    t.start()
    t.join()
    if error:
        raise error[0]
    return result[0] if result else None


class MemoryHandles:
    """The sync and async handles of one memvault store, opened lazily, closed once."""

    def __init__(
        self,
        memory: MemoryLike | None = None,
        *,
        path: str | os.PathLike[str] | None = None,
        config: dict[str, Any] | MemoryConfig | None = None,
        embedder: Embedder | None = None,
    ) -> None:
        if memory is not None and (path is not None or config is not None or embedder is not None):
            raise ValueError("pass either memory= or path=/config=/embedder=, not both")
        if memory is not None and not isinstance(memory, Memory | AsyncMemory):
            raise TypeError(
                f"memory must be a memvault Memory or AsyncMemory, got {type(memory).__name__}"
            )
        self._lock = threading.Lock()
        self._closed = False
        self._sync: Memory | None = memory if isinstance(memory, Memory) else None
        self._async: AsyncMemory | None = memory if isinstance(memory, AsyncMemory) else None
        self._given = memory
        if memory is None:
            # Open the sync handle now: a bad path or config fails at construction.
            self._sync = Memory(config, path=path, embedder=embedder)

    def _origin(self) -> MemoryLike:
        origin = self._sync if self._sync is not None else self._async
        assert origin is not None
        return origin

    @property
    def embedder(self) -> Embedder:
        """memvault's embedder for this store (shared by both handles; no twin is opened)."""
        return self._origin().embedder

    @property
    def sync(self) -> Memory:
        """The ``memvault.Memory`` (the twin of the AsyncMemory, when one was given)."""
        if self._sync is None:
            with self._lock:
                if self._sync is None:
                    self._check_open()
                    assert self._async is not None
                    self._sync = self._async.as_sync()
        return self._sync

    @property
    def async_(self) -> AsyncMemory:
        """The ``memvault.AsyncMemory`` twin of the sync handle (made on first use)."""
        if self._async is None:
            with self._lock:
                if self._async is None:
                    self._check_open()
                    assert self._sync is not None
                    self._async = self._sync.as_async()
        return self._async

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("this memvault handle is closed")

    def close(self) -> None:
        """Close the handles opened here (a memory passed in by the caller stays open)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            sync, amem = self._sync, self._async
        # The async handle first: its pool finishes in-flight calls before the engine closes.
        if amem is not None and amem is not self._given:
            run_to_completion(amem.close())
        if sync is not None and sync is not self._given:
            sync.close()

    async def aclose(self) -> None:
        """``close`` for async callers (never blocks the running loop on the pool shutdown)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            sync, amem = self._sync, self._async
        if amem is not None and amem is not self._given:
            await amem.close()
        if sync is not None and sync is not self._given:
            await asyncio.to_thread(sync.close)
