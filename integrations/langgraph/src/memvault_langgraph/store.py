"""``MemvaultStore``: LangGraph's ``BaseStore`` over a memvault store.

Why a store (and not only tools): LangGraph hands its store to every node, tool
and prebuilt agent (``graph.compile(store=...)``, ``create_agent(store=...)``,
langmem's memory tools). Backing it with memvault makes every item a memvault
memory: scoped, in the history, in exports and the CLI, found by the core's
hybrid search. The adapter only translates; storage, filtering, ranking, TTL and
namespaces are the core's (``Memory.put`` / ``get_key`` / ``search`` / ...).

Each batch is written once, as a plan: a generator that yields the calls it
needs (memvault operations, embeddings; ``memvault.adapterkit``), so ``batch``
runs it on ``Memory`` and ``abatch`` on ``AsyncMemory`` with identical semantics.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
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
from memvault.adapterkit import Call, HandlesMixin, MemoryHandles, Plan
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


# -- what a batch plan asks for besides memvault calls ---------------------------------------------
@dataclass(slots=True)
class _EmbedDocuments:
    """Embed stored texts with the IndexConfig's ``embed``."""

    embeddings: Embeddings
    texts: list[str]

    def run(self, memory: Memory) -> list[list[float]]:
        return self.embeddings.embed_documents(self.texts)

    async def arun(self, memory: AsyncMemory) -> list[list[float]]:
        return await self.embeddings.aembed_documents(self.texts)


@dataclass(slots=True)
class _EmbedQueries:
    """Embed search queries with the IndexConfig's ``embed``."""

    embeddings: Embeddings
    queries: list[str]

    def run(self, memory: Memory) -> list[list[float]]:
        return [self.embeddings.embed_query(q) for q in self.queries]

    async def arun(self, memory: AsyncMemory) -> list[list[float]]:
        return list(await asyncio.gather(*(self.embeddings.aembed_query(q) for q in self.queries)))


class MemvaultStore(HandlesMixin, BaseStore):
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
        if user_label is not None and (not isinstance(user_label, int) or user_label < 0):
            raise ValueError(f"user_label must be a non-negative int or None, got {user_label!r}")
        check_id(agent_id, "agent_id")  # fail here, not on first use
        self.agent_id = agent_id
        self.user_label = user_label
        self._lock = threading.Lock()
        # One store as Memory and AsyncMemory; a memory= passed in stays the caller's.
        self.handles = MemoryHandles(memory, path=path, config=config, embedder=embedder)
        self._embedder: Embedder = self.handles.embedder

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
        if ttl and ttl.get("sweep_interval_minutes"):
            self.start_ttl_sweeper()

    # -- the memvault handles --------------------------------------------------------------------
    def scope_for(self, namespace: Sequence[str]) -> dict[str, str | None]:
        """The memvault scope (``agent_id``, ``user_id``) an item in ``namespace`` lives in."""
        return {"agent_id": self.agent_id, "user_id": user_of(namespace, self.user_label)}

    # -- BaseStore -------------------------------------------------------------------------------
    def batch(self, ops: Iterable[Op]) -> list[Result]:
        """Run ``ops`` on ``Memory``: results in op order, reads before the batch's puts."""
        return self.handles.run(self._plan(list(ops)))

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        """Run ``ops`` on ``AsyncMemory`` (never blocking the loop), same semantics as batch."""
        return await self.handles.arun(self._plan(list(ops)))

    # -- the plan: one implementation for both drivers -------------------------------------------
    def _plan(self, ops: list[Op]) -> Plan[list[Result]]:
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
            qvecs = dict(zip(queries, (yield _EmbedQueries(self.embeddings, queries)), strict=True))

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

    def _get(self, op: GetOp) -> Plan[Item | None]:
        record = yield Call(
            "get_key",
            (tuple(op.namespace), op.key),
            {**self.scope_for(op.namespace), "show_expired": self._show_expired},
        )
        if record is None:
            return None
        if op.refresh_ttl:
            yield from self._refresh([record])
        return to_item(record)

    def _search(
        self, op: SearchOp, filters: dict[str, Any] | None, qvecs: dict[str, list[float]]
    ) -> Plan[list[SearchItem]]:
        if op.limit <= 0:
            return []
        prefix = tuple(op.namespace_prefix)
        scope = {"agent_id": self.agent_id, "user_id": prefix_user(prefix, self.user_label)}
        common: dict[str, Any] = {
            **scope,
            "filters": filters,
            "namespace_prefix": prefix,
            "show_expired": self._show_expired,
        }
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
            found = yield Call(
                "search",
                args,
                {**common, "limit": op.limit, "offset": op.offset, "include_unranked": True},
            )
            records = found["results"]
            items = [to_search_item(r, r.get("score")) for r in records]
        else:
            found = yield Call(
                "get_all",
                (),
                {**common, "limit": op.limit, "offset": op.offset, "order_by": "updated_at"},
            )
            records = found["results"]
            items = [to_search_item(r, None) for r in records]
        if op.refresh_ttl:
            yield from self._refresh(records)
        return items

    def _list(self, op: ListNamespacesOp) -> Plan[list[tuple[str, ...]]]:
        prefix, suffix = _split_conditions(op)
        user = prefix_user(prefix, self.user_label) if prefix is not None else None
        found = yield Call(
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

    @property
    def _show_expired(self) -> bool:
        """As PostgresStore: expired-but-unswept items are read unless ``omit_expired``."""
        return not (self.ttl_config and self.ttl_config.get("omit_expired"))

    def _refresh(self, records: Sequence[dict[str, Any]]) -> Plan[None]:
        # As PostgresStore: the op's refresh_ttl decides (BaseStore's get/search resolve
        # it from ttl_config["refresh_on_read"], default True); only items with a TTL, and
        # under omit_expired only live ones (the read has already left expired ones out).
        ids = [r["id"] for r in records if r.get("ttl_seconds") is not None]
        if ids:
            yield Call("touch", (ids,))

    def _apply_puts(self, puts: list[PutOp]) -> Plan[None]:
        texts: dict[int, list[str]] = {}
        for j, op in enumerate(puts):
            if op.value is not None and op.index is not False:
                paths = self._fields if op.index is None else tokenized_fields(op.index)
                texts[j] = index_texts(op.value, paths)
        vectors: dict[int, list[list[float]]] = {}
        if self.embeddings is not None:
            flat = [t for j in sorted(texts) for t in texts[j]]
            if flat:
                embedded = iter((yield _EmbedDocuments(self.embeddings, flat)))
                vectors = {j: [next(embedded) for _ in texts[j]] for j in sorted(texts)}
        for j, op in enumerate(puts):
            ns = tuple(op.namespace)
            scope = self.scope_for(ns)
            if op.value is None:
                yield Call("delete_key", (ns, op.key), scope)
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
            yield Call("put", (ns, op.key, dict(op.value)), kwargs)

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
        self.stop_ttl_sweeper()
        self.handles.close()

    async def aclose(self) -> None:
        """Async :meth:`close` (awaits the AsyncMemory's shutdown on this loop)."""
        await asyncio.to_thread(self.stop_ttl_sweeper)
        await self.handles.aclose()

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
