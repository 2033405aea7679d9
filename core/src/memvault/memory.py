"""``Memory`` and ``AsyncMemory``: the public, mem0-shaped API.

Both classes are the same class body over the same ``Engine``; they differ only
in the driver that performs each operation's I/O (``memvault.effects``). A mem0
user ports by changing the import: ``from memvault import Memory``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from memvault.config import MemoryConfig
from memvault.effects import Op, run_async, run_sync
from memvault.embedding.base import Embedder
from memvault.engine import Engine
from memvault.ingest import Ingestor, IngestReport


class _MemoryAPI:
    """The operations, declared once. ``_run`` is the sync or async driver."""

    _engine: Engine

    def __init__(
        self,
        config: dict[str, Any] | MemoryConfig | None = None,
        *,
        path: str | os.PathLike[str] | None = None,
        embedder: Embedder | None = None,
    ) -> None:
        """Open (or create) a store.

        ``Memory()`` uses the embedded defaults under ``$MEMVAULT_HOME``;
        ``Memory(path=...)`` a store file of its own; ``embedder=`` any object
        satisfying ``memvault.embedding.Embedder``.
        """
        self.config = MemoryConfig.parse(config)
        self._engine = Engine(self.config, path=path, embedder=embedder)
        self._owns_engine = True

    def _share(self, twin: _MemoryAPI) -> None:
        """Make ``twin`` a handle over this handle's engine (same store, model, LLM)."""
        twin.config = self.config
        twin._engine = self._engine
        twin._owns_engine = False

    @property
    def embedder(self) -> Embedder:
        """The embedder this store uses (share it to avoid loading a model twice)."""
        return self._engine.embedder

    @classmethod
    def from_config(cls, config_dict: dict[str, Any]) -> Any:
        """Build from a mem0-shaped (or memvault) config dict."""
        return cls(config_dict)

    def _run(self, op: Op[Any]) -> Any:
        raise NotImplementedError

    @property
    def path(self) -> str:
        return self._engine.store.location

    def add(
        self,
        messages: Any,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        metadata: dict[str, Any] | None = None,
        infer: bool = True,
        expiration_date: Any = None,
        timestamp: Any = None,
        embeddings: Sequence[Any] | None = None,
        vector_space: str | None = None,
        categories: Sequence[str] | None = None,
        importance: float | None = None,
        changed_by: str | None = None,
        prompt: str | None = None,
        memory_type: str | None = None,
        idempotency_key: str | None = None,
    ) -> Any:
        """Remember ``messages`` (str, message dict or list) in a scope.

        With an LLM configured and ``infer=True``, one LLM call extracts facts and
        reconciles them with the scope's similar memories (ADD / UPDATE / DELETE /
        NONE; UPDATE and DELETE supersede, never destroy). Otherwise each message
        is stored as it is. Returns ``{"results": [{"id", "memory", "event"}]}``
        (plus ``"usage"`` with token counts when an LLM was called).
        ``timestamp`` (or a per-message ``timestamp``) is when the messages were
        said: relative dates resolve against it. ``embeddings`` (one vector, or a
        list of vectors, per message) brings your own vectors into ``vector_space``.
        ``idempotency_key`` makes a replay return the first result, applying nothing.
        """
        return self._run(
            self._engine.add(
                messages,
                user_id=user_id,
                agent_id=agent_id,
                run_id=run_id,
                metadata=metadata,
                infer=infer,
                expiration_date=expiration_date,
                timestamp=timestamp,
                embeddings=embeddings,
                vector_space=vector_space,
                categories=categories,
                importance=importance,
                changed_by=changed_by,
                prompt=prompt,
                memory_type=memory_type,
                idempotency_key=idempotency_key,
            )
        )

    def search(
        self,
        query: str | None = None,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        filters: dict[str, Any] | None = None,
        top_k: int = 20,
        limit: int | None = None,
        threshold: float | None = None,
        explain: bool = False,
        include_superseded: bool = False,
        as_of: Any = None,
        show_expired: bool = False,
        vector: Any = None,
        vector_space: str | None = None,
        namespace_prefix: Sequence[str] | None = None,
        touch: bool = False,
        retrieval: dict[str, Any] | None = None,
        dedupe: bool = True,
        rerank: bool = False,
        offset: int = 0,
        ranking: str = "hybrid",
        include_unranked: bool = False,
    ) -> Any:
        """Hybrid search within a scope; ``{"results": [... with "score"]}`` best first.

        ``vector`` (+ ``vector_space``) searches by your own query vector;
        ``touch=True`` records the access (refreshing TTLs); ``rerank`` is accepted
        for mem0 compatibility and ignored (fusion already uses every signal).
        ``offset`` skips that many results (pagination). ``ranking="vector"`` ranks
        every matching memory that has a vector in ``vector_space`` by its raw cosine
        similarity (the score), with no keyword / neighbour / actor signal and no
        candidate cut. ``include_unranked`` appends the matching memories the ranking
        did not score, with ``score=None``, in insertion order.
        """
        return self._run(
            self._engine.search(
                query,
                user_id=user_id,
                agent_id=agent_id,
                run_id=run_id,
                filters=filters,
                top_k=top_k,
                limit=limit,
                threshold=threshold,
                explain=explain,
                include_superseded=include_superseded,
                as_of=as_of,
                show_expired=show_expired,
                vector=vector,
                vector_space=vector_space,
                namespace_prefix=namespace_prefix,
                touch=touch,
                retrieval=retrieval,
                dedupe=dedupe,
                rerank=rerank,
                offset=offset,
                ranking=ranking,
                include_unranked=include_unranked,
            )
        )

    def get(
        self,
        memory_id: str,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        include_vectors: bool = False,
    ) -> Any:
        """One memory as a dict, or ``None``. With scope ids, only if it is in that scope.

        ``include_vectors=True`` adds ``"vectors": {space: [[...], ...]}``.
        """
        return self._run(
            self._engine.get(
                memory_id,
                user_id=user_id,
                agent_id=agent_id,
                run_id=run_id,
                include_vectors=include_vectors,
            )
        )

    def get_all(
        self,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        filters: dict[str, Any] | None = None,
        top_k: int = 100,
        limit: int | None = None,
        offset: int = 0,
        include_superseded: bool = False,
        as_of: Any = None,
        show_expired: bool = False,
        namespace_prefix: Sequence[str] | None = None,
        order_by: str = "created_at",
        touch: bool = False,
        include_vectors: bool = False,
    ) -> Any:
        """The scope's memories, newest first: ``{"results": [...]}``.

        ``order_by``: ``created_at`` (stored), ``updated_at`` (changed) or
        ``valid_from`` (observed / ``timestamp``). ``include_vectors`` adds each
        memory's stored vectors.
        """
        return self._run(
            self._engine.get_all(
                user_id=user_id,
                agent_id=agent_id,
                run_id=run_id,
                filters=filters,
                top_k=top_k,
                limit=limit,
                offset=offset,
                include_superseded=include_superseded,
                as_of=as_of,
                show_expired=show_expired,
                namespace_prefix=namespace_prefix,
                order_by=order_by,
                touch=touch,
                include_vectors=include_vectors,
            )
        )

    def update(
        self,
        memory_id: str,
        text: str | None = None,
        metadata: dict[str, Any] | None = None,
        *,
        data: str | None = None,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        expiration_date: Any = None,
        changed_by: str | None = None,
    ) -> Any:
        """Change a memory's text and/or merge metadata; the old version goes to history."""
        return self._run(
            self._engine.update(
                memory_id,
                text,
                metadata,
                data=data,
                user_id=user_id,
                agent_id=agent_id,
                run_id=run_id,
                expiration_date=expiration_date,
                changed_by=changed_by,
            )
        )

    def delete(
        self,
        memory_id: str,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        changed_by: str | None = None,
    ) -> Any:
        """Delete one memory (its history stays, with a DELETE event)."""
        return self._run(
            self._engine.delete(
                memory_id, user_id=user_id, agent_id=agent_id, run_id=run_id, changed_by=changed_by
            )
        )

    def delete_all(
        self,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        filters: dict[str, Any] | None = None,
        namespace_prefix: Sequence[str] | None = None,
        changed_by: str | None = None,
    ) -> Any:
        """Delete every memory in a scope (a scope is required; nothing else is touched)."""
        return self._run(
            self._engine.delete_all(
                user_id=user_id,
                agent_id=agent_id,
                run_id=run_id,
                filters=filters,
                namespace_prefix=namespace_prefix,
                changed_by=changed_by,
            )
        )

    def count(
        self,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        filters: dict[str, Any] | None = None,
        namespace_prefix: Sequence[str] | None = None,
        include_superseded: bool = False,
        show_expired: bool = False,
    ) -> Any:
        """How many memories ``get_all`` would list (no limit)."""
        return self._run(
            self._engine.count(
                user_id=user_id,
                agent_id=agent_id,
                run_id=run_id,
                filters=filters,
                namespace_prefix=namespace_prefix,
                include_superseded=include_superseded,
                show_expired=show_expired,
            )
        )

    def history(self, memory_id: str) -> Any:
        """Every ADD / UPDATE / DELETE of a memory, oldest first (survives deletion)."""
        return self._run(self._engine.history(memory_id))

    # Keyed records: how adapters address memories (LangGraph namespace/key, CrewAI scopes).
    def put(
        self,
        namespace: Sequence[str],
        key: str,
        value: Any = None,
        *,
        text: str | None = None,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        index: Sequence[str] | bool | None = None,
        embeddings: Sequence[Any] | None = None,
        vector_space: str | None = None,
        metadata: dict[str, Any] | None = None,
        categories: Sequence[str] | None = None,
        importance: float | None = None,
        ttl_seconds: float | None = None,
        timestamp: Any = None,
        changed_by: str | None = None,
    ) -> Any:
        """Create or replace the memory under ``(namespace, key)`` in a scope."""
        return self._run(
            self._engine.put(
                namespace,
                key,
                value,
                text=text,
                user_id=user_id,
                agent_id=agent_id,
                run_id=run_id,
                index=index,
                embeddings=embeddings,
                vector_space=vector_space,
                metadata=metadata,
                categories=categories,
                importance=importance,
                ttl_seconds=ttl_seconds,
                timestamp=timestamp,
                changed_by=changed_by,
            )
        )

    def get_key(
        self,
        namespace: Sequence[str],
        key: str,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        touch: bool = False,
        show_expired: bool = False,
        include_vectors: bool = False,
    ) -> Any:
        """The memory under ``(namespace, key)`` in this scope, or ``None``."""
        return self._run(
            self._engine.get_key(
                namespace,
                key,
                user_id=user_id,
                agent_id=agent_id,
                run_id=run_id,
                touch=touch,
                show_expired=show_expired,
                include_vectors=include_vectors,
            )
        )

    def delete_key(
        self,
        namespace: Sequence[str],
        key: str,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        changed_by: str | None = None,
    ) -> Any:
        """Delete the memory under ``(namespace, key)``; returns whether one existed."""
        return self._run(
            self._engine.delete_key(
                namespace,
                key,
                user_id=user_id,
                agent_id=agent_id,
                run_id=run_id,
                changed_by=changed_by,
            )
        )

    def namespaces(
        self,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        prefix: Sequence[str] | None = None,
        suffix: Sequence[str] | None = None,
        max_depth: int | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> Any:
        """Distinct namespaces in a scope (``"*"`` matches any one label)."""
        return self._run(
            self._engine.namespaces(
                user_id=user_id,
                agent_id=agent_id,
                run_id=run_id,
                prefix=prefix,
                suffix=suffix,
                max_depth=max_depth,
                limit=limit,
                offset=offset,
            )
        )

    def touch(self, memory_ids: Sequence[str]) -> Any:
        """Mark memories as accessed now (refreshes their TTL)."""
        return self._run(self._engine.touch(memory_ids))

    def purge_expired(
        self, *, user_id: str | None = None, agent_id: str | None = None, run_id: str | None = None
    ) -> Any:
        """Delete memories whose expiration passed; returns how many."""
        return self._run(
            self._engine.purge_expired(user_id=user_id, agent_id=agent_id, run_id=run_id)
        )

    def flush(self) -> Any:
        """Embed every memory still queued by ``embedding_mode="background"`` (returns how many)."""
        return self._run(self._engine.flush())

    def pending(self) -> Any:
        """Adds whose LLM step failed, kept with their raw input (nothing is lost)."""
        return self._run(self._engine.pending())

    def retry_pending(self) -> Any:
        """Replay the failed adds; returns counts and the errors that remain."""
        return self._run(self._engine.retry_pending())

    def reset(self) -> Any:
        """Erase the whole store (every scope and the history). Irreversible."""
        return self._run(self._engine.reset())

    def stats(self) -> Any:
        """Counts, sizes and configuration of the store."""
        return self._run(self._engine.stats())

    def _ingestor(
        self,
        *,
        concurrency: int,
        mode: str,
        progress: bool,
        prices: dict[str, tuple[float, float, float]] | None,
        poll_interval: float,
        row_retries: int,
    ) -> Ingestor:
        return Ingestor(
            self._engine,
            concurrency=concurrency,
            mode=mode,
            progress=progress,
            prices=prices,
            poll_interval=poll_interval,
            row_retries=row_retries,
        )


class Memory(_MemoryAPI):
    """Synchronous memory. Thread-safe; usable as a context manager."""

    def ingest(
        self,
        rows: Iterable[dict[str, Any]],
        *,
        concurrency: int = 8,
        mode: str = "live",
        dry_run: bool = False,
        progress: bool = False,
        prices: dict[str, tuple[float, float, float]] | None = None,
        poll_interval: float = 30.0,
        row_retries: int = 5,
    ) -> IngestReport:
        """Bulk-ingest transcripts: resumable, exactly-once, bounded concurrency.

        ``rows`` are dicts ``{user_id, agent_id?, run_id?, messages | text,
        timestamp?, metadata?}`` (see ``memvault.ingest_sources`` for file readers).
        ``mode="batch"`` uses the OpenAI Batch API; ``dry_run`` only estimates.
        """
        ing = self._ingestor(
            concurrency=concurrency,
            mode=mode,
            progress=progress,
            prices=prices,
            poll_interval=poll_interval,
            row_retries=row_retries,
        )
        return ing.estimate(rows) if dry_run else ing.run(rows)

    def _run(self, op: Op[Any]) -> Any:
        return run_sync(op)

    def as_async(self, max_workers: int = 4) -> AsyncMemory:
        """An ``AsyncMemory`` over the same engine (store, caches, model, LLM client).

        Closing the twin releases only its thread pool; this handle owns the engine.
        """
        twin = AsyncMemory.__new__(AsyncMemory)
        self._share(twin)
        twin._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="memvault")
        return twin

    def close(self) -> None:
        if self._owns_engine:
            self._engine.close()

    def __enter__(self) -> Memory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncMemory(_MemoryAPI):
    """Asynchronous memory: every method is a coroutine; the event loop never blocks.

    Remote embedders and LLMs are awaited natively; SQLite and the local CPU
    embedder run on a small bounded pool (``max_workers``), so thousands of
    concurrent calls queue instead of spawning threads.
    """

    def __init__(
        self,
        config: dict[str, Any] | MemoryConfig | None = None,
        *,
        path: str | os.PathLike[str] | None = None,
        embedder: Embedder | None = None,
        max_workers: int = 4,
    ) -> None:
        super().__init__(config, path=path, embedder=embedder)
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="memvault")

    def _run(self, op: Op[Any]) -> Any:
        return run_async(op, self._pool)

    def as_sync(self) -> Memory:
        """A ``Memory`` over the same engine; closing it leaves this handle working."""
        twin = Memory.__new__(Memory)
        self._share(twin)
        return twin

    async def ingest(
        self,
        rows: Iterable[dict[str, Any]],
        *,
        concurrency: int = 8,
        mode: str = "live",
        dry_run: bool = False,
        progress: bool = False,
        prices: dict[str, tuple[float, float, float]] | None = None,
        poll_interval: float = 30.0,
        row_retries: int = 5,
    ) -> IngestReport:
        """The async form of ``Memory.ingest``."""
        ing = self._ingestor(
            concurrency=concurrency,
            mode=mode,
            progress=progress,
            prices=prices,
            poll_interval=poll_interval,
            row_retries=row_retries,
        )
        return ing.estimate(rows) if dry_run else await ing.arun(rows)

    async def close(self) -> None:
        self._pool.shutdown(wait=True)
        if self._owns_engine:
            self._engine.close()

    async def __aenter__(self) -> AsyncMemory:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
