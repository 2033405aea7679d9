"""``MemvaultStore``: LangGraph's ``BaseStore`` over a memvault store.

Why a store (and not only tools): LangGraph hands its store to every node, tool
and prebuilt agent (``graph.compile(store=...)``, ``create_agent(store=...)``,
langmem's memory tools). Backing it with memvault makes every item a memvault
memory: scoped, in the history, in exports and the CLI, found by the core's
hybrid search. The adapter only translates; storage, filtering, ranking, TTL and
namespaces are the core's (``Memory.put`` / ``get_key`` / ``search`` / ...).

Each batch is written once, as a generator that yields the calls it needs
(memvault operations, embeddings) — the core's own pattern — so ``batch`` drives
it on ``Memory`` and ``abatch`` on ``AsyncMemory`` with identical semantics.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import threading
from collections.abc import Generator, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.embeddings import Embeddings
from langgraph.store.base import (
    BaseStore,
    GetOp,
    IndexConfig,
    Item,
    ListNamespacesOp,
    Op,
    PutOp,
    Result,
    SearchItem,
    SearchOp,
    TTLConfig,
    ensure_embeddings,
    validate_op_namespace,
)

from memvault import AsyncMemory, Memory, MemoryConfig
from memvault.embedding import Embedder
from memvault.scope import check_id
from memvault_langgraph._mapping import (
    index_texts,
    prefix_user,
    to_item,
    to_search_item,
    tokenized_fields,
    translate_filter,
    user_of,
    value_text,
)

__all__ = ["DEFAULT_AGENT_ID", "MemvaultStore"]

log = logging.getLogger("memvault_langgraph")

#: The memvault ``agent_id`` every item written through a store lives under by default.
DEFAULT_AGENT_ID = "langgraph"


# -- requests a batch plan yields to its driver ------------------------------------------------
@dataclass(slots=True)
class _Call:
    """A memvault operation: ``getattr(memory, method)(*args, **kwargs)``."""

    method: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class _EmbedDocuments:
    """Embed stored texts with the IndexConfig's ``embed``."""

    texts: list[str]


@dataclass(slots=True)
class _EmbedQueries:
    """Embed search queries with the IndexConfig's ``embed``."""

    queries: list[str]


_Request = _Call | _EmbedDocuments | _EmbedQueries
_Plan = Generator[_Request, Any, list[Result]]


class MemvaultStore(BaseStore):
    """A LangGraph store whose items are memvault memories.

    Construct it as ``MemvaultStore()`` (the embedded default store under
    ``$MEMVAULT_HOME``), ``MemvaultStore(path=...)`` (a store file of its own) or
    ``MemvaultStore(memory=<memvault.Memory or AsyncMemory>)`` (share one you
    already have). ``batch`` runs on a ``Memory`` and ``abatch`` on an
    ``AsyncMemory``; the missing one is made lazily as a twin over the same engine
    (``Memory.as_async()`` / ``AsyncMemory.as_sync()``: one store, one model).

    Scope mapping (memvault requires a scope on every operation): every item
    lives under ``agent_id`` (default ``"langgraph"``) and, when the namespace has
    a label at index ``user_label`` (default 1, as in ``("memories", "<user>")``)
    that is a valid memvault id, under that ``user_id`` too. ``user_label=None``
    turns the user mapping off.

    Args:
        memory: an existing ``memvault.Memory`` / ``AsyncMemory`` to use (not
            closed by :meth:`close`).
        path: store file to open when no ``memory`` is given.
        config: memvault config (dict or ``MemoryConfig``) for the store opened here.
        embedder: memvault embedder for the store opened here.
        index: LangGraph ``IndexConfig``. Without ``embed`` (or with no index at
            all) items are embedded by memvault's own embedder and ``query=``
            uses memvault's hybrid retrieval. With ``embed`` (LangChain
            ``Embeddings``, a sync/async function, or ``"provider:model"``) the
            store computes vectors with it into the vector space ``vector_space``.
        ttl: LangGraph ``TTLConfig`` (minutes). With ``sweep_interval_minutes``
            a daemon thread purges expired items until :meth:`close`.
        agent_id: memvault agent scope of every item of this store.
        user_label: index of the namespace label mapped to ``user_id`` (or None).
        vector_space: name of the vector space for ``embed`` vectors (default
            ``"langgraph:<dims>"``).
    """

    supports_ttl: bool = True

    def __init__(
        self,
        *,
        memory: Memory | AsyncMemory | None = None,
        path: str | os.PathLike[str] | None = None,
        config: dict[str, Any] | MemoryConfig | None = None,
        embedder: Embedder | None = None,
        index: IndexConfig | None = None,
        ttl: TTLConfig | None = None,
        agent_id: str = DEFAULT_AGENT_ID,
        user_label: int | None = 1,
        vector_space: str | None = None,
    ) -> None:
        if memory is not None and (path is not None or config is not None or embedder is not None):
            raise ValueError("pass either memory= or path=/config=/embedder=, not both")
        if user_label is not None and (not isinstance(user_label, int) or user_label < 0):
            raise ValueError(f"user_label must be a non-negative int or None, got {user_label!r}")
        check_id(agent_id, "agent_id")  # fail here, not on first use
        self.agent_id = agent_id
        self.user_label = user_label
        self._lock = threading.Lock()
        # Handles this store opened (and so closes); a memory= passed in stays the caller's.
        self._owns_sync = self._owns_async = True
        self._memory: Memory | None = None
        self._amemory: AsyncMemory | None = None
        if memory is None:
            self._memory = Memory(config, path=path, embedder=embedder)
        elif isinstance(memory, AsyncMemory):
            self._amemory, self._owns_async = memory, False
        elif isinstance(memory, Memory):
            self._memory, self._owns_sync = memory, False
        else:
            raise TypeError(f"memory must be a memvault Memory or AsyncMemory, got {memory!r}")
        base = self._memory or self._amemory
        assert base is not None
        self._embedder: Embedder = base.embedder

        self.index_config: IndexConfig | None = None
        self.embeddings: Embeddings | None = None
        self.vector_space: str | None = None
        self._fields: list[tuple[str, Any]] = tokenized_fields(None)
        if index is not None:
            self.index_config = index.copy()
            self._fields = tokenized_fields(index.get("fields"))
            if index.get("embed") is not None:
                self.embeddings = ensure_embeddings(index["embed"])
                dims = index.get("dims")
                if not isinstance(dims, int) or dims < 1:
                    raise ValueError("IndexConfig with 'embed' needs 'dims' (a positive int)")
                self.vector_space = vector_space or f"langgraph:{dims}"
            elif index.get("dims") not in (None, self._embedder.dims):
                raise ValueError(
                    f"IndexConfig dims={index.get('dims')} but memvault's embedder "
                    f"({getattr(self._embedder, 'name', '?')}) makes {self._embedder.dims}-"
                    "dimensional vectors; drop 'dims' or pass 'embed'"
                )
        self.ttl_config: TTLConfig | None = ttl
        self._sweeper: threading.Thread | None = None
        self._sweeper_stop = threading.Event()
        self._closed = False
        if ttl and ttl.get("sweep_interval_minutes"):
            self.start_ttl_sweeper()

    # -- the memvault handles --------------------------------------------------------------------
    @property
    def memory(self) -> Memory:
        """The synchronous ``memvault.Memory`` behind this store (a twin, made lazily)."""
        if self._memory is None:
            with self._lock:
                if self._memory is None:
                    assert self._amemory is not None
                    self._memory = self._amemory.as_sync()
        return self._memory

    @property
    def amemory(self) -> AsyncMemory:
        """The ``memvault.AsyncMemory`` over the same engine (a twin, made lazily)."""
        if self._amemory is None:
            with self._lock:
                if self._amemory is None:
                    assert self._memory is not None
                    self._amemory = self._memory.as_async()
        return self._amemory

    def scope_for(self, namespace: Sequence[str]) -> dict[str, str | None]:
        """The memvault scope (``agent_id``, ``user_id``) an item in ``namespace`` lives in."""
        return {"agent_id": self.agent_id, "user_id": user_of(namespace, self.user_label)}

    # -- BaseStore -------------------------------------------------------------------------------
    def batch(self, ops: Iterable[Op]) -> list[Result]:
        """Run ``ops`` on ``Memory``: results in op order, reads before the batch's puts."""
        plan = self._plan(list(ops))
        try:
            request = next(plan)
            while True:
                request = plan.send(self._perform(request))
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        """Run ``ops`` on ``AsyncMemory`` (never blocking the loop), same semantics as batch."""
        plan = self._plan(list(ops))
        try:
            request = next(plan)
            while True:
                request = plan.send(await self._aperform(request))
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

    def _perform(self, request: _Request) -> Any:
        if isinstance(request, _Call):
            return getattr(self.memory, request.method)(*request.args, **request.kwargs)
        assert self.embeddings is not None
        if isinstance(request, _EmbedDocuments):
            return self.embeddings.embed_documents(request.texts)
        return [self.embeddings.embed_query(q) for q in request.queries]

    async def _aperform(self, request: _Request) -> Any:
        if isinstance(request, _Call):
            return await getattr(self.amemory, request.method)(*request.args, **request.kwargs)
        assert self.embeddings is not None
        if isinstance(request, _EmbedDocuments):
            return await self.embeddings.aembed_documents(request.texts)
        return list(
            await asyncio.gather(*(self.embeddings.aembed_query(q) for q in request.queries))
        )

    # -- the plan: one implementation for both drivers -------------------------------------------
    def _plan(self, ops: list[Op]) -> _Plan:
        # Validate everything before anything runs: a bad op fails the whole batch untouched.
        filters: dict[int, dict[str, Any] | None] = {}
        for i, op in enumerate(ops):
            validate_op_namespace(op)
            if isinstance(op, SearchOp):
                filters[i] = translate_filter(op.filter)
            elif isinstance(op, ListNamespacesOp):
                _split_conditions(op)
            elif not isinstance(op, GetOp | PutOp):
                raise ValueError(f"Unknown operation type: {type(op)}")

        results: list[Result] = [None] * len(ops)
        queries = sorted(
            {
                op.query
                for op in ops
                if isinstance(op, SearchOp) and _has_text(op.query) and op.limit > 0
            }
        )
        qvecs: dict[str, list[float]] = {}
        if queries and self.embeddings is not None:
            qvecs = dict(zip(queries, (yield _EmbedQueries(queries)), strict=True))

        for i, op in enumerate(ops):  # reads see the state from before this batch's puts
            if isinstance(op, GetOp):
                results[i] = yield from self._get(op)
            elif isinstance(op, SearchOp):
                results[i] = yield from self._search(op, filters[i], qvecs)
            elif isinstance(op, ListNamespacesOp):
                results[i] = yield from self._list(op)

        puts: dict[tuple[tuple[str, ...], str], PutOp] = {}
        for op in ops:  # the last put to one (namespace, key) wins
            if isinstance(op, PutOp):
                puts[(tuple(op.namespace), op.key)] = op
        yield from self._apply_puts(list(puts.values()))
        return results

    def _get(self, op: GetOp) -> Generator[_Request, Any, Item | None]:
        record = yield _Call("get_key", (tuple(op.namespace), op.key), self.scope_for(op.namespace))
        if record is None:
            return None
        if op.refresh_ttl:
            yield from self._refresh([record])
        return to_item(record)

    def _search(
        self, op: SearchOp, filters: dict[str, Any] | None, qvecs: dict[str, list[float]]
    ) -> Generator[_Request, Any, list[SearchItem]]:
        if op.limit <= 0:
            return []
        prefix = tuple(op.namespace_prefix)
        scope = {"agent_id": self.agent_id, "user_id": prefix_user(prefix, self.user_label)}
        common: dict[str, Any] = {**scope, "filters": filters, "namespace_prefix": prefix}
        if _has_text(op.query):
            # Keyed items are distinct even when their texts are equal: list each one.
            common["dedupe"] = False
            if self.embeddings is not None:  # LangGraph semantics: raw cosine over `embed` vectors
                args: tuple[Any, ...] = (None,)
                common.update(
                    vector=qvecs[op.query], vector_space=self.vector_space, ranking="vector"
                )
            else:  # memvault's hybrid retrieval over its own embedder
                args = (op.query,)
            found = yield _Call(
                "search",
                args,
                {**common, "limit": op.limit, "offset": op.offset, "include_unranked": True},
            )
            records = found["results"]
            items = [to_search_item(r, r.get("score")) for r in records]
        else:
            found = yield _Call(
                "get_all",
                (),
                {**common, "limit": op.limit, "offset": op.offset, "order_by": "updated_at"},
            )
            records = found["results"]
            items = [to_search_item(r, None) for r in records]
        if op.refresh_ttl:
            yield from self._refresh(records)
        return items

    def _list(self, op: ListNamespacesOp) -> Generator[_Request, Any, list[tuple[str, ...]]]:
        prefix, suffix = _split_conditions(op)
        user = prefix_user(prefix, self.user_label) if prefix is not None else None
        found = yield _Call(
            "namespaces",
            (),
            {
                "agent_id": self.agent_id,
                "user_id": user,
                "prefix": prefix,
                "suffix": suffix,
                "max_depth": op.max_depth,
                "limit": op.limit,
                "offset": op.offset,
            },
        )
        return [tuple(ns) for ns in found]

    def _refresh(self, records: Sequence[dict[str, Any]]) -> Generator[_Request, Any, None]:
        # As SqliteStore: a read refreshes TTLs only when the store opted in (refresh_on_read),
        # and only items that have a TTL (touching is a write; writes invalidate read caches).
        if not (self.ttl_config and self.ttl_config.get("refresh_on_read", False)):
            return
        ids = [r["id"] for r in records if r.get("ttl_seconds") is not None]
        if ids:
            yield _Call("touch", (ids,))

    def _apply_puts(self, puts: list[PutOp]) -> Generator[_Request, Any, None]:
        texts: dict[int, list[str]] = {}
        for j, op in enumerate(puts):
            if op.value is not None and op.index is not False:
                paths = self._fields if op.index is None else tokenized_fields(op.index)
                texts[j] = index_texts(op.value, paths)
        vectors: dict[int, list[list[float]]] = {}
        if self.embeddings is not None:
            flat = [t for j in sorted(texts) for t in texts[j]]
            if flat:
                embedded = iter((yield _EmbedDocuments(flat)))
                vectors = {j: [next(embedded) for _ in texts[j]] for j in sorted(texts)}
        for j, op in enumerate(puts):
            ns = tuple(op.namespace)
            scope = self.scope_for(ns)
            if op.value is None:
                yield _Call("delete_key", (ns, op.key), scope)
                continue
            kwargs: dict[str, Any] = {
                **scope,
                "text": value_text(op.value),
                "ttl_seconds": op.ttl * 60 if op.ttl is not None else None,
            }
            if vectors.get(j):
                kwargs.update(embeddings=vectors[j], vector_space=self.vector_space)
            elif self.embeddings is None and texts.get(j):
                kwargs["index"] = texts[j]
            else:
                kwargs["index"] = False
            yield _Call("put", (ns, op.key, dict(op.value)), kwargs)

    # -- TTL ---------------------------------------------------------------------------------
    def sweep_ttl(self) -> int:
        """Delete this store's expired items now; returns how many were deleted."""
        return int(self.memory.purge_expired(agent_id=self.agent_id))

    async def asweep_ttl(self) -> int:
        """Async :meth:`sweep_ttl`."""
        return int(await self.amemory.purge_expired(agent_id=self.agent_id))

    def start_ttl_sweeper(
        self, sweep_interval_minutes: float | None = None
    ) -> concurrent.futures.Future[None]:
        """Sweep expired items every ``sweep_interval_minutes`` in a daemon thread.

        Returns a future that completes when the sweeper stops (cancel it to stop).
        Without a ``ttl`` config there is nothing to sweep and the future is done.
        """
        future: concurrent.futures.Future[None] = concurrent.futures.Future()
        if not self.ttl_config:
            future.set_result(None)
            return future
        with self._lock:
            if self._sweeper is not None and self._sweeper.is_alive():
                future.add_done_callback(
                    lambda f: self._sweeper_stop.set() if f.cancelled() else None
                )
                return future
            interval = float(
                sweep_interval_minutes or self.ttl_config.get("sweep_interval_minutes") or 5
            )
            self._sweeper_stop.clear()

            def loop() -> None:
                try:
                    while not self._sweeper_stop.wait(interval * 60):
                        try:
                            n = self.sweep_ttl()
                            if n:
                                log.info("swept %d expired items", n)
                        except Exception:
                            log.exception("TTL sweep failed; retrying next interval")
                    future.set_result(None)
                except Exception as exc:  # pragma: no cover - defensive
                    future.set_exception(exc)

            self._sweeper = threading.Thread(target=loop, daemon=True, name="memvault-ttl-sweeper")
            self._sweeper.start()
        future.add_done_callback(lambda f: self._sweeper_stop.set() if f.cancelled() else None)
        return future

    def stop_ttl_sweeper(self, timeout: float | None = None) -> bool:
        """Stop the sweeper thread; False if it did not stop within ``timeout`` seconds."""
        thread = self._sweeper
        if thread is None or not thread.is_alive():
            return True
        self._sweeper_stop.set()
        thread.join(timeout)
        if thread.is_alive():
            log.warning("timed out waiting for the TTL sweeper to stop")
            return False
        self._sweeper = None
        return True

    # -- lifecycle -------------------------------------------------------------------------------
    def close(self) -> None:
        """Stop the sweeper and close the memvault handles this store opened."""
        if self._closed:
            return
        self._closed = True
        self.stop_ttl_sweeper()
        amemory, self._amemory = self._amemory, None
        if amemory is not None and self._owns_async:
            _run_coroutine(amemory.close())
        if self._memory is not None and self._owns_sync:
            self._memory.close()

    async def aclose(self) -> None:
        """Async :meth:`close` (awaits the AsyncMemory's shutdown on this loop)."""
        if self._closed:
            return
        amemory, self._amemory = self._amemory, None
        if amemory is not None and self._owns_async:
            await amemory.close()
        await asyncio.to_thread(self.close)

    def __enter__(self) -> MemvaultStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> MemvaultStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __del__(self) -> None:
        if getattr(self, "_sweeper", None) is not None:
            self._sweeper_stop.set()


def _has_text(query: str | None) -> bool:
    """An empty or blank ``query`` means "no query" (a filtered listing), as in InMemoryStore."""
    return bool(query and query.strip())


def _split_conditions(
    op: ListNamespacesOp,
) -> tuple[tuple[str, ...] | None, tuple[str, ...] | None]:
    prefix = suffix = None
    for cond in op.match_conditions or ():
        if cond.match_type == "prefix" and prefix is None:
            prefix = tuple(cond.path)
        elif cond.match_type == "suffix" and suffix is None:
            suffix = tuple(cond.path)
        elif cond.match_type in ("prefix", "suffix"):
            raise ValueError(f"at most one {cond.match_type} condition per list_namespaces")
        else:
            raise ValueError(f"Unsupported match type: {cond.match_type}")
    return prefix, suffix


def _run_coroutine(coro: Any) -> None:
    """Run ``coro`` to completion from sync code, whether or not a loop is running here."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(coro)
        return
    worker = threading.Thread(target=asyncio.run, args=(coro,), name="memvault-close")
    worker.start()
    worker.join()
