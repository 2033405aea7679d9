"""Effects and drivers: how one implementation serves both ``Memory`` and ``AsyncMemory``.

Why: mem0 keeps a sync and an async copy of every operation (3,868 lines of
twins) and its async one is a thread wrapper. Here each operation is written
once, as a generator that *yields* the I/O it needs (an embedding, an LLM call, a
block of storage work) and receives the result. The sync driver performs each
effect inline; the async driver awaits native async clients where they exist
(remote embedders, LLMs) and runs CPU/SQLite work on a small bounded thread pool,
so the event loop never blocks and concurrency never explodes into threads.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import weakref
from collections.abc import Awaitable, Callable, Generator
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

import numpy as np

from memvault.embedding.base import Embedder

T = TypeVar("T")


class Effect:
    """A unit of I/O an operation asks its driver to perform."""

    def run(self) -> Any:
        raise NotImplementedError

    async def arun(self, executor: Executor) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(executor, self.run)


@dataclass(slots=True)
class Blocking(Effect):
    """Storage or CPU work: inline when sync, on the bounded pool when async."""

    fn: Callable[..., Any]
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)

    def run(self) -> Any:
        return self.fn(*self.args, **self.kwargs)

    async def arun(self, executor: Executor) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(executor, partial(self.fn, *self.args, **self.kwargs))


@dataclass(slots=True)
class Embed(Effect):
    """Embed texts; uses the embedder's native ``aembed`` when it has one."""

    embedder: Embedder
    texts: list[str]
    kind: str = "passage"

    def run(self) -> np.ndarray:
        return self.embedder.embed(self.texts, kind=self.kind)

    async def arun(self, executor: Executor) -> np.ndarray:
        aembed: Callable[..., Awaitable[np.ndarray]] | None = getattr(self.embedder, "aembed", None)
        if aembed is not None:
            return await aembed(self.texts, kind=self.kind)
        return await _batcher(self.embedder, executor).embed(self.texts, self.kind)


class _EmbedBatcher:
    """Coalesces concurrent embedding requests for a CPU embedder into few model calls.

    Why: under concurrency (ingest, many async searches) each request would run
    the model on its own pool thread — tiny batches, and more ONNX runs than cores.
    Instead, as many calls run at once as the embedder has workers (one per core for
    the local model), each over everything queued when it starts.
    """

    def __init__(self, embedder: Embedder, executor: Executor, max_texts: int = 128) -> None:
        self.embedder = embedder
        self.executor = executor
        self.max_texts = max_texts
        # Model calls in flight at once: an embedder that runs on several cores (a
        # LocalEmbedder's ``workers``) gets as many, so small calls fill every core too.
        self.slots = max(1, int(getattr(embedder, "workers", 1)))
        self.queue: asyncio.Queue[tuple[list[str], str, asyncio.Future[np.ndarray]]] = (
            asyncio.Queue()
        )
        self.workers: set[asyncio.Task[None]] = set()

    async def embed(self, texts: list[str], kind: str) -> np.ndarray:
        fut: asyncio.Future[np.ndarray] = asyncio.get_running_loop().create_future()
        await self.queue.put((texts, kind, fut))
        self.workers = {w for w in self.workers if not w.done()}
        if len(self.workers) < self.slots:
            self.workers.add(asyncio.create_task(self._work()))
        return await fut

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while not self.queue.empty():
            jobs = [self.queue.get_nowait()]
            kind = jobs[0][1]
            size = len(jobs[0][0])
            while not self.queue.empty() and size < self.max_texts:
                nxt = self.queue._queue[0]  # type: ignore[attr-defined]  # peek
                if nxt[1] != kind:
                    break
                jobs.append(self.queue.get_nowait())
                size += len(nxt[0])
            texts = [t for job in jobs for t in job[0]]
            try:
                vecs = await loop.run_in_executor(
                    self.executor, partial(self.embedder.embed, texts, kind=kind)
                )
            except Exception as e:  # every waiter gets the error
                for *_, fut in jobs:
                    if not fut.done():
                        fut.set_exception(e)
                continue
            start = 0
            for job_texts, _, fut in jobs:
                if not fut.done():
                    fut.set_result(vecs[start : start + len(job_texts)])
                start += len(job_texts)


_BATCHERS: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[tuple[int, int], _EmbedBatcher]
] = weakref.WeakKeyDictionary()


def _batcher(embedder: Embedder, executor: Executor) -> _EmbedBatcher:
    # One batcher per (embedder, pool): each AsyncMemory keeps its own pool, which
    # may be shut down while another handle still shares the embedder.
    per_loop = _BATCHERS.setdefault(asyncio.get_running_loop(), {})
    key = (id(embedder), id(executor))
    b = per_loop.get(key)
    if b is None or b.embedder is not embedder or b.executor is not executor:
        b = per_loop[key] = _EmbedBatcher(embedder, executor)
    return b


@dataclass(slots=True)
class Wait(Effect):
    """Wait for work another thread is finishing (thread futures), without a pool thread.

    Best effort: after ``timeout`` (or if that work failed) the operation goes on
    without it — e.g. a search then ranks a still-queued memory by keyword only.
    """

    futures: list[Future[Any]]
    timeout: float = 60.0

    def run(self) -> None:
        concurrent.futures.wait(self.futures, timeout=self.timeout)

    async def arun(self, executor: Executor) -> None:
        await asyncio.wait([asyncio.wrap_future(f) for f in self.futures], timeout=self.timeout)


@dataclass(slots=True)
class Call(Effect):
    """A remote call with a sync and a native async form (LLM requests)."""

    sync: Callable[[], Any]
    asynchronous: Callable[[], Awaitable[Any]]

    def run(self) -> Any:
        return self.sync()

    async def arun(self, executor: Executor) -> Any:
        return await self.asynchronous()


Op = Generator[Effect, Any, T]


def run_sync(op: Op[T]) -> T:
    """Drive an operation to completion in the calling thread."""
    try:
        effect = next(op)
        while True:
            try:
                value = effect.run()
            except BaseException as e:  # let the operation clean up / translate
                effect = op.throw(e)
                continue
            effect = op.send(value)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]


async def run_async(op: Op[T], executor: Executor) -> T:
    """Drive an operation on the running event loop without blocking it."""
    try:
        effect = next(op)
        while True:
            try:
                value = await effect.arun(executor)
            except BaseException as e:
                effect = op.throw(e)
                continue
            effect = op.send(value)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
