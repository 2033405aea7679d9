"""One memvault store seen through both of its handles: ``Memory`` and ``AsyncMemory``.

Why both: LlamaIndex calls memory synchronously (``get``/``put``) *and* asynchronously
(agents only ever ``await aget``/``aput``). memvault serves each with its own driver, so
the sync methods run on ``memvault.Memory`` and the async ones on ``memvault.AsyncMemory``
-- never a thread wrapper around the other. Whichever handle the caller did not give is
opened on first use as a twin over the same engine (``Memory.as_async()`` /
``AsyncMemory.as_sync()``: one store, one loaded model, one LLM client), so both always
see the same memories.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from llama_index.core.async_utils import asyncio_run

from memvault import AsyncMemory, Memory, MemoryConfig
from memvault.embedding.base import Embedder

MemvaultHandle = Memory | AsyncMemory


class MemvaultHandles:
    """A ``Memory`` / ``AsyncMemory`` pair over one store, each opened on first use.

    Handles passed in stay the caller's (``close`` leaves them open); handles opened
    here are closed by ``close``/``aclose``.
    """

    def __init__(
        self,
        memory: MemvaultHandle | None = None,
        *,
        config: dict[str, Any] | MemoryConfig | None = None,
        path: str | os.PathLike[str] | None = None,
        embedder: Embedder | None = None,
    ) -> None:
        if memory is not None and (config is not None or path is not None or embedder is not None):
            raise ValueError("pass either memory= or config=/path=/embedder=, not both")
        if memory is not None and not isinstance(memory, Memory | AsyncMemory):
            raise TypeError(
                f"memory must be a memvault.Memory or memvault.AsyncMemory, got {memory!r}"
            )
        self._lock = threading.Lock()
        self._sync: Memory | None = memory if isinstance(memory, Memory) else None
        self._async: AsyncMemory | None = memory if isinstance(memory, AsyncMemory) else None
        self._owned: list[MemvaultHandle] = []
        self._config = config
        self._path = path
        self._embedder = embedder

    @property
    def path(self) -> str:
        """The store file, resolved as memvault resolves it, without opening anything."""
        base = self._sync or self._async
        if base is not None:
            return base.path
        return str(MemoryConfig.parse(self._config).store_path(self._path))

    @property
    def sync(self) -> Memory:
        """The synchronous handle (for ``get``/``put``)."""
        if self._sync is None:
            with self._lock:
                if self._sync is None:
                    self._sync = (
                        self._async.as_sync()
                        if self._async is not None
                        else Memory(self._config, path=self._path, embedder=self._embedder)
                    )
                    self._owned.append(self._sync)
        return self._sync

    @property
    def asynchronous(self) -> AsyncMemory:
        """The asynchronous handle (for ``aget``/``aput``)."""
        if self._async is None:
            with self._lock:
                if self._async is None:
                    self._async = (
                        self._sync.as_async()
                        if self._sync is not None
                        else AsyncMemory(self._config, path=self._path, embedder=self._embedder)
                    )
                    self._owned.append(self._async)
        return self._async

    def close(self) -> None:
        """Close the handles opened here (callable from sync code, loop running or not)."""
        asyncio_run(self.aclose())

    async def aclose(self) -> None:
        """Close the handles opened here."""
        with self._lock:
            owned, self._owned = self._owned, []
        for handle in owned:
            if isinstance(handle, AsyncMemory):
                await handle.close()
                self._async = None
            else:
                handle.close()
                self._sync = None
