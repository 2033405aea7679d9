"""Wrap a user's embedding function as an :class:`Embedder`.

Why: frameworks hand us plain functions, not objects (LangGraph's
``IndexConfig.embed`` is ``list[str] -> list[list[float]]``, sync or async).
Their output is untrusted, so it is checked for shape and width and normalised
before it reaches a vector space.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from memvault.errors import ConfigError, EmbeddingError

from ._common import check_input, to_vectors
from .base import Vectors

EmbedFn = Callable[[list[str]], Any]  # returns list[list[float]] or an (n, d) array
AsyncEmbedFn = Callable[[list[str]], Awaitable[Any]]


class CallableEmbedder:
    """An embedder backed by ``fn`` (sync or async) and optionally ``afn`` (async).

    ``fn`` may itself be async: then :meth:`embed` runs it with ``asyncio.run``
    when no event loop is running and refuses (use :meth:`aembed`) inside one.
    :meth:`aembed` prefers ``afn`` (or an async ``fn``) and otherwise runs the
    sync ``fn`` in a worker thread. ``kind`` is not passed on: such functions
    take texts only.

    Args:
        fn: ``texts -> vectors``, one vector per text.
        dims: the width every vector must have (a different one raises
            :class:`~memvault.errors.DimensionMismatchError`).
        name: identifier stored with the vector space; name your model here so
            two different functions never share one space.
        afn: async variant of ``fn``, used by :meth:`aembed`.
    """

    def __init__(
        self,
        fn: EmbedFn | AsyncEmbedFn,
        dims: int,
        name: str = "callable",
        afn: AsyncEmbedFn | None = None,
    ) -> None:
        if not callable(fn):
            raise ConfigError(f"fn must be callable, got {type(fn).__name__}")
        if afn is not None and not inspect.iscoroutinefunction(afn):
            raise ConfigError("afn must be an async function (async def)")
        if dims < 1:
            raise ConfigError(f"dims must be >= 1, got {dims}")
        self.name = name
        self.dims = dims
        if inspect.iscoroutinefunction(fn):
            self._fn: EmbedFn | None = None
            self._afn: AsyncEmbedFn | None = afn or fn
        else:
            self._fn, self._afn = fn, afn

    def __repr__(self) -> str:
        return f"CallableEmbedder(name={self.name!r}, dims={self.dims})"

    def embed(self, texts: Sequence[str], *, kind: str = "passage") -> Vectors:
        """Call the function and return checked, L2-normalised float32 rows."""
        texts = check_input(texts, kind)
        if not texts:
            return self._check([], 0)
        if self._fn is not None:
            return self._check(self._call(self._fn, texts), len(texts))
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # no loop here: safe to start one
            assert self._afn is not None
            return self._check(asyncio.run(self._acall(self._afn, texts)), len(texts))
        raise EmbeddingError(
            f"embedder {self.name!r} wraps an async function; inside an event loop use "
            f"`await memvault.embedding.aembed(embedder, texts)` instead of embed()"
        )

    async def aembed(self, texts: Sequence[str], *, kind: str = "passage") -> Vectors:
        """Await ``afn`` if there is one, else run the sync ``fn`` in a worker thread."""
        texts = check_input(texts, kind)
        if not texts:
            return self._check([], 0)
        if self._afn is not None:
            raw = await self._acall(self._afn, texts)
        else:
            assert self._fn is not None
            raw = await asyncio.to_thread(self._call, self._fn, texts)
        return self._check(raw, len(texts))

    def _call(self, fn: EmbedFn, texts: list[str]) -> Any:
        try:
            return fn(texts)
        except Exception as exc:
            raise EmbeddingError(f"embedding function of {self.name!r} failed: {exc}") from exc

    async def _acall(self, afn: AsyncEmbedFn, texts: list[str]) -> Any:
        try:
            return await afn(texts)
        except Exception as exc:
            raise EmbeddingError(f"embedding function of {self.name!r} failed: {exc}") from exc

    def _check(self, raw: Any, n: int) -> Vectors:
        return to_vectors(raw, n=n, dims=self.dims, space=self.name)
