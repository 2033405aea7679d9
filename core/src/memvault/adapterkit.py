"""The adapter kit: what every framework adapter needs from memvault, written once.

Why: frameworks call memory from threads *and* from coroutines (LangGraph ``batch``
/ ``abatch``, CrewAI ``save`` / ``asave``, LlamaIndex ``get`` / ``aget``, tools'
``_run`` / ``_arun``). Each adapter used to carry its own pair of memvault handles,
its own generator driver and its own sync/async bridge. Here they are once, with
no framework import, so an adapter file is a translation table:

- :class:`MemoryHandles`: one store seen as ``Memory`` *and* ``AsyncMemory``. The
  handle the caller did not give is made on first use as a twin over the same
  engine (``Memory.as_async()`` / ``AsyncMemory.as_sync()``: one store, one loaded
  model, one LLM client). A handle passed in stays the caller's; what is opened
  here is closed here.
- *Plans*: an adapter operation is written once as a generator that yields the
  memvault calls it needs (:class:`Call`, or any :class:`Request`) and receives
  their results, like the core's own operations (``memvault.effects``).
  ``handles.run(plan)`` performs it on ``Memory``; ``await handles.arun(plan)`` on
  ``AsyncMemory`` (native async, the event loop never blocks). An error is thrown
  back into the plan at the ``yield`` that asked for the call, so a plan can catch
  it (a tool turning ``ValidationError`` into a message for the model).
- :class:`HandlesMixin`: ``memory`` / ``amemory`` / ``close`` / ``aclose`` and the
  context managers of an adapter object that holds ``handles``.
- :func:`twins`: a sync method and an async method made from one plan method.
- :func:`run_coroutine`: the sync/async bridge (run a coroutine to completion from
  sync code, whether or not this thread already runs an event loop).
"""

from __future__ import annotations

import asyncio
import functools
import os
import threading
from collections.abc import Awaitable, Callable, Coroutine, Generator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from memvault.config import MemoryConfig
from memvault.embedding.base import Embedder
from memvault.memory import AsyncMemory, Memory

__all__ = [
    "Call",
    "HandlesMixin",
    "MemoryHandles",
    "MemoryLike",
    "Plan",
    "Request",
    "adrive",
    "drive",
    "run_coroutine",
    "twins",
]

T = TypeVar("T")
MemoryLike = Memory | AsyncMemory


# -- the sync/async bridge -------------------------------------------------------------------------
def run_coroutine(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion from sync code, whether or not a loop runs in this thread.

    Without a running loop it is ``asyncio.run``; inside one (a sync ``close()``
    called from a coroutine, a notebook) the coroutine runs on a fresh loop in a
    short-lived thread, and its result or exception comes back here.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    result: list[T] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(coro))
        except BaseException as e:  # re-raised in the caller's thread
            error.append(e)

    worker = threading.Thread(target=target, name="memvault-bridge")
    worker.start()
    worker.join()
    if error:
        raise error[0]
    return result[0]


# -- plans and their drivers -----------------------------------------------------------------------
class Request(Protocol):
    """Something a plan asks its driver to do, with a sync and an async form."""

    def run(self, memory: Memory) -> Any: ...

    def arun(self, memory: AsyncMemory) -> Awaitable[Any]: ...


@dataclass(slots=True)
class Call:
    """A memvault call: ``getattr(memory, method)(*args, **kwargs)`` (awaited when async)."""

    method: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)

    def run(self, memory: Memory) -> Any:
        return getattr(memory, self.method)(*self.args, **self.kwargs)

    async def arun(self, memory: AsyncMemory) -> Any:
        return await getattr(memory, self.method)(*self.args, **self.kwargs)


Plan = Generator[Request, Any, T]


def drive(plan: Plan[T], perform: Callable[[Request], Any]) -> T:
    """Run ``plan`` to completion, performing each request with ``perform``."""
    try:
        request = next(plan)
        while True:
            try:
                value = perform(request)
            except Exception as e:  # the plan may handle it (or let it propagate)
                request = plan.throw(e)
                continue
            request = plan.send(value)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


async def adrive(plan: Plan[T], perform: Callable[[Request], Awaitable[Any]]) -> T:
    """Run ``plan`` to completion, awaiting each request with ``perform``."""
    try:
        request = next(plan)
        while True:
            try:
                value = await perform(request)
            except Exception as e:
                request = plan.throw(e)
                continue
            request = plan.send(value)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


# -- the handles -----------------------------------------------------------------------------------
class MemoryHandles:
    """The ``Memory`` / ``AsyncMemory`` pair of one store, each opened on first use.

    Args:
        memory: a ``Memory`` or ``AsyncMemory`` to use (stays open on :meth:`close`).
        path, config, embedder: how to open a store when no ``memory`` is given.
        eager: open the sync handle now, so a bad path or config fails at
            construction (default). ``eager=False`` opens nothing until first use,
            and then opens the flavour asked for first (an async-only user never
            gets a sync handle).
    """

    def __init__(
        self,
        memory: MemoryLike | None = None,
        *,
        path: str | os.PathLike[str] | None = None,
        config: dict[str, Any] | MemoryConfig | None = None,
        embedder: Embedder | None = None,
        eager: bool = True,
    ) -> None:
        if memory is not None and (path is not None or config is not None or embedder is not None):
            raise ValueError("pass either memory= or path=/config=/embedder=, not both")
        if memory is not None and not isinstance(memory, Memory | AsyncMemory):
            raise TypeError(
                f"memory must be a memvault.Memory or memvault.AsyncMemory, got {type(memory).__name__}"
            )
        self._lock = threading.Lock()
        self._closed = False
        self._given = memory
        self._sync: Memory | None = memory if isinstance(memory, Memory) else None
        self._async: AsyncMemory | None = memory if isinstance(memory, AsyncMemory) else None
        self._opener = (config, path, embedder)
        self._owned: list[MemoryLike] = []
        if memory is None and eager:
            _ = self.sync  # opens it (a local store, or a server given by its URL)

    @property
    def given(self) -> MemoryLike | None:
        """The handle the caller passed in (never closed here), if any."""
        return self._given

    def _opened(self) -> MemoryLike | None:
        return self._sync if self._sync is not None else self._async

    @property
    def path(self) -> str:
        """The store file, resolved as memvault resolves it, without opening anything."""
        base = self._opened()
        if base is not None:
            return base.path
        config, path, _ = self._opener
        if _server_url(path, config) is not None:
            return str(path)
        return str(MemoryConfig.parse(config).store_path(path))

    @property
    def embedder(self) -> Embedder:
        """memvault's embedder for this store (shared by both handles)."""
        return self._opened_or_sync().embedder

    def _opened_or_sync(self) -> MemoryLike:
        return self._opened() or self.sync

    @property
    def sync(self) -> Memory:
        """The ``memvault.Memory`` (the twin of the given ``AsyncMemory``, if any)."""
        if self._sync is None:
            with self._lock:
                if self._sync is None:
                    self._check_open()
                    if self._async is not None:
                        self._sync = self._async.as_sync()
                    else:
                        config, path, embedder = self._opener
                        if (url := _server_url(path, config)) is not None:
                            from memvault.remote import RemoteMemory

                            self._sync = RemoteMemory(url)
                        else:
                            self._sync = Memory(config, path=path, embedder=embedder)
                    self._owned.append(self._sync)
        return self._sync

    @property
    def asynchronous(self) -> AsyncMemory:
        """The ``memvault.AsyncMemory`` (the twin of the sync handle, if any)."""
        if self._async is None:
            with self._lock:
                if self._async is None:
                    self._check_open()
                    if self._sync is not None:
                        self._async = self._sync.as_async()
                    else:
                        config, path, embedder = self._opener
                        if (url := _server_url(path, config)) is not None:
                            from memvault.remote import AsyncRemoteMemory

                            self._async = AsyncRemoteMemory(url)
                        else:
                            self._async = AsyncMemory(config, path=path, embedder=embedder)
                    self._owned.append(self._async)
        return self._async

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("this memvault handle is closed")

    # -- plans --------------------------------------------------------------------------------
    def run(self, plan: Plan[T]) -> T:
        """Run ``plan`` on the sync handle."""
        memory = self.sync
        return drive(plan, lambda request: request.run(memory))

    async def arun(self, plan: Plan[T]) -> T:
        """Run ``plan`` on the async handle (never blocking the event loop)."""
        memory = self.asynchronous
        return await adrive(plan, lambda request: request.arun(memory))

    # -- lifecycle ----------------------------------------------------------------------------
    def _take_owned(self) -> list[MemoryLike]:
        with self._lock:
            if self._closed:
                return []
            self._closed = True
            owned, self._owned = self._owned, []
        # The async handle first: its pool finishes in-flight calls before the engine closes.
        return sorted(owned, key=lambda h: not isinstance(h, AsyncMemory))

    def close(self) -> None:
        """Close the handles opened here (idempotent; callable with or without a loop)."""
        owned = self._take_owned()
        if any(isinstance(h, AsyncMemory) for h in owned):
            run_coroutine(_close_all(owned))
        else:
            for handle in owned:
                handle.close()

    async def aclose(self) -> None:
        """``close`` for async code (the loop is never blocked on the engine shutdown)."""
        owned = self._take_owned()
        for handle in owned:
            if isinstance(handle, AsyncMemory):
                await handle.close()
            else:
                await asyncio.to_thread(handle.close)


def _server_url(path: Any, config: Any) -> str | None:
    """A memvault server's URL given as the store path (what an adapter over a
    ``RemoteMemory`` serializes as its ``store_path``): reopened as a ``RemoteMemory``,
    its API key from ``$MEMVAULT_API_KEY`` (a serialized adapter never holds the key)."""
    if config is None and isinstance(path, str) and path.startswith(("http://", "https://")):
        return path
    return None


async def _close_all(handles: list[MemoryLike]) -> None:
    for handle in handles:
        if isinstance(handle, AsyncMemory):
            await handle.close()
        else:
            handle.close()


class HandlesMixin:
    """What every adapter object over :class:`MemoryHandles` exposes, from ``self.handles``.

    The class provides ``handles`` (an attribute or a property); this mixin adds the
    two handles and the lifecycle, so an adapter does not spell them out again.
    """

    if TYPE_CHECKING:
        handles: MemoryHandles

    @property
    def memory(self) -> Memory:
        """The synchronous ``memvault.Memory`` behind this object (mem0-style reads)."""
        return self.handles.sync

    @property
    def amemory(self) -> AsyncMemory:
        """The ``memvault.AsyncMemory`` over the same store (one engine; made on first use)."""
        return self.handles.asynchronous

    def close(self) -> None:
        """Close what this object opened (a ``memory=`` passed in stays open). Idempotent."""
        self.handles.close()

    async def aclose(self) -> None:
        """``close`` for async code."""
        await self.handles.aclose()

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Any:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


# -- one plan method, two public methods -----------------------------------------------------------
def twins(
    plan_method: Callable[..., Plan[T]],
) -> tuple[Callable[..., T], Callable[..., Awaitable[T]]]:
    """A sync and an async method from one plan method of a class with ``.handles``.

    ``save, asave = twins(_save_plan)`` in a class body: ``save(...)`` runs the
    plan on ``Memory``, ``await asave(...)`` on ``AsyncMemory``; both take the
    plan method's arguments and carry its docstring.
    """

    @functools.wraps(plan_method)
    def sync(self: Any, *args: Any, **kwargs: Any) -> T:
        return self.handles.run(plan_method(self, *args, **kwargs))  # type: ignore[no-any-return]

    @functools.wraps(plan_method)
    async def asynchronous(self: Any, *args: Any, **kwargs: Any) -> T:
        return await self.handles.arun(plan_method(self, *args, **kwargs))  # type: ignore[no-any-return]

    return sync, asynchronous
