"""The operations, written once: add, get, get_all, update, delete, history — and, mixed
in from their own modules, search (``memvault.search``) and keyed records
(``memvault.keyed``).

Each public operation is a generator (see ``memvault.effects``) so ``Memory`` and
``AsyncMemory`` share this single implementation. Storage work is grouped into
as few ``Blocking`` effects as possible (one for reads, one transaction for
writes) so the async driver hops threads rarely.
"""

from __future__ import annotations

import logging
import uuid
import weakref
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from memvault.config import MemoryConfig
from memvault.effects import Blocking, Embed, Op, Wait
from memvault.embedding import make_embedder
from memvault.embedding.base import Embedder
from memvault.errors import ConfigError, LLMError, NotFoundError, ValidationError
from memvault.filters import compile_filter, with_namespace
from memvault.indexer import BackgroundIndexer
from memvault.inputs import (
    Message,
    as_vectors,
    check_changed_by,
    check_space,
    clean_categories,
    clean_importance,
    clean_metadata,
    parse_messages,
    parse_time,
)
from memvault.keyed import KeyedOps
from memvault.llm.client import LLMClient
from memvault.llm.config import parse_llm_settings
from memvault.models import DEFAULT_SPACE, MemoryRecord, content_hash, utcnow
from memvault.scope import Scope, check_id, check_key, resolve_scope, scoped_key
from memvault.search import LRU, SearchOps
from memvault.store import open_store
from memvault.store.contract import Store, Visibility
from memvault.store.vector_index import BruteForceIndex, VectorIndex
from memvault.text import clean_text
from memvault.views import ViewCache

log = logging.getLogger("memvault")

#: get_all orderings (newest first): storage time, last change, or observation time.
ORDERINGS = ("created_at", "updated_at", "valid_from")
__all__ = ["DEFAULT_SPACE", "ORDERINGS", "Engine", "Message", "parse_messages"]


def _close_parts(
    indexer: BackgroundIndexer, llm: LLMClient | None, index: VectorIndex, store: Store
) -> None:
    indexer.close()
    if llm is not None:
        llm.close()
    index.close()
    store.close()


class Engine(SearchOps, KeyedOps):
    """Owns the store, the dense index and the embedder; implements every operation."""

    def __init__(
        self, config: MemoryConfig, *, path: Any = None, embedder: Embedder | None = None
    ) -> None:
        self.config = config
        self.store: Store = open_store(config, path)
        self.embedder = embedder or make_embedder(
            config.embedder.provider, **config.embedder_options()
        )
        self._check_embedder()
        self.index: VectorIndex = self._make_index()
        self.llm: LLMClient | None = None
        if config.llm is not None:
            self.llm = LLMClient(parse_llm_settings(config.llm.provider, config.llm.config))
        self.views = ViewCache(self.store)
        self.indexer = BackgroundIndexer(self.store, self.embedder, self.index)
        if self.config.embedding_mode == "background" and self.store.pending_count():
            self.indexer.notify()  # finish what an earlier process queued
        self._query_cache = LRU(1024)
        self._dims: int | None = None  # the embedder's width, once read (embed_or_defer)
        self._warned_no_llm = False
        # Closed at interpreter exit (or when dropped) even if the caller never calls
        # close(): the indexer thread must leave the model before the runtime tears down,
        # or the process aborts. The callback holds the parts, not the engine.
        self._finalizer = weakref.finalize(
            self, _close_parts, self.indexer, self.llm, self.index, self.store
        )

    def _check_embedder(self) -> None:
        """Refuse to mix models: vectors of two models in one space are meaningless together."""
        name = getattr(self.embedder, "name", None)
        if not name:
            return
        self.store.space_models[DEFAULT_SPACE] = name
        recorded = self.store.spaces().get(DEFAULT_SPACE)
        if recorded is not None and recorded[1] is not None and recorded[1] != name:
            self.store.close()
            raise ConfigError(
                f"this store's vectors were made by embedder {recorded[1]!r}, but "
                f"{name!r} is configured; configure the same embedder, or export the store "
                "without vectors (memvault export --no-vectors) and import it into a new one"
            )

    def _make_index(self) -> VectorIndex:
        vs = self.config.vector_store
        if vs.provider == "chroma":
            from memvault.store.chroma_index import ChromaIndex  # optional extra

            return ChromaIndex(self.store, **vs.config)
        return BruteForceIndex(self.store)

    def close(self) -> None:
        """Stop the indexer and release the store (queued work stays durable); idempotent."""
        self._finalizer()

    # -- add --------------------------------------------------------------------------------------
    def add(
        self,
        messages: Any,
        *,
        user_id: Any = None,
        agent_id: Any = None,
        run_id: Any = None,
        metadata: Any = None,
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
    ) -> Op[dict[str, Any]]:
        scope, _ = resolve_scope(user_id, agent_id, run_id)
        msgs = [m for m in parse_messages(messages) if m.role != "system"]
        if not msgs:
            raise ValidationError("messages hold only system messages; nothing to remember")
        meta = clean_metadata(metadata)
        expires = parse_time(expiration_date, end_of_day=True)
        observed = parse_time(timestamp)
        cats = clean_categories(categories)
        imp = clean_importance(importance)
        space = check_space(vector_space)
        changed_by = check_changed_by(changed_by)
        if memory_type not in (None, "procedural_memory"):
            raise ValidationError(f"unknown memory_type {memory_type!r}; use 'procedural_memory'")
        if memory_type and scope.agent_id is None:
            raise ValidationError("memory_type='procedural_memory' needs an agent_id")
        if memory_type and self.llm is None:
            raise ValidationError("procedural memory needs an LLM: configure llm in the config")
        # The journal holds keys bound to their scope: another scope's key never matches.
        key = None if idempotency_key is None else scoped_key(scope, check_key(idempotency_key))
        if key is not None:
            done = yield Blocking(self.store.journal_get, (key,))
            if done is not None and done["state"] == "done":
                return {"results": done["result"] or [], "replayed": True}
        if infer and self.llm is not None and embeddings is None:
            from memvault.write.add import infer_add

            return (
                yield from infer_add(
                    self,
                    scope=scope,
                    messages=msgs,
                    meta=meta,
                    observed=observed,
                    expires=expires,
                    categories=cats,
                    importance=imp,
                    changed_by=changed_by,
                    prompt=prompt,
                    memory_type=memory_type,
                    key=key,
                )
            )
        if infer and self.llm is None and not self._warned_no_llm:
            self._warned_no_llm = True
            log.info("no LLM configured: add(infer=True) stores each message as a raw memory")
        if embeddings is not None and len(embeddings) != len(msgs):
            raise ValidationError(
                f"got {len(embeddings)} embeddings for {len(msgs)} non-system messages"
            )
        given = [as_vectors(e, f"embeddings[{i}]") for i, e in enumerate(embeddings or [])]
        now = utcnow()
        records = []
        for m in msgs:
            records.append(
                MemoryRecord(
                    id=str(uuid.uuid4()),
                    memory=m.content,
                    scope=scope,
                    hash=content_hash(m.content),
                    metadata=dict(meta),
                    created_at=now,
                    updated_at=now,
                    role=m.role,
                    actor_id=m.name,
                    categories=list(cats),
                    importance=imp,
                    valid_from=m.timestamp or observed or now,
                    expiration_date=expires,
                )
            )
        if embeddings is None:
            if space != DEFAULT_SPACE:
                raise ValidationError("vector_space needs embeddings= (bring your own vectors)")
            todo = self._dedup(records, scope)
            vecs, defer_dims = yield from self.embed_or_defer([r.memory for r in todo])
            vectors: list[dict[str, np.ndarray] | None] = (
                [None] * len(todo) if vecs is None else [{DEFAULT_SPACE: v} for v in vecs]
            )
        else:
            todo, defer_dims = records, None
            vectors = [{space: v} for v in given]
        result = yield Blocking(
            self._write_adds,
            (records, todo, vectors, scope, changed_by, key),
            {"defer_dims": defer_dims},
        )
        return {"results": result}

    def _dedup(self, records: list[MemoryRecord], scope: Scope) -> list[MemoryRecord]:
        """Records that are new (not an exact duplicate in this scope or this batch)."""
        seen: set[str] = set()
        todo = []
        for r in records:
            if r.hash in seen or self.store.find_active(scope, r.hash) is not None:
                continue
            seen.add(r.hash)
            todo.append(r)
        return todo

    def _write_adds(
        self,
        records: list[MemoryRecord],
        todo: list[MemoryRecord],
        vectors: list[dict[str, np.ndarray] | None],
        scope: Scope,
        changed_by: str | None,
        key: str | None = None,
        defer_dims: int | None = None,
    ) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        new_ids = {id(r) for r in todo}
        by_hash: dict[str, MemoryRecord] = {}
        with self.store.write() as tx:
            if key is not None:
                done = self.store.journal_get(key)
                if done is not None and done["state"] == "done":  # a concurrent replay won
                    return list(done["result"] or [])
            vec_of = dict(zip((id(r) for r in todo), vectors, strict=True))
            for r in records:
                # Checked inside the transaction: another process may have just added it.
                if id(r) in new_ids and self.store.find_active(scope, r.hash) is None:
                    seq = tx.insert(r, vec_of[id(r)])
                    if vec_of[id(r)] is None:
                        assert defer_dims is not None
                        tx.defer_vectors(seq, defer_dims)
                    tx.history("ADD", memory_id=r.id, old=None, new=r, changed_by=changed_by)
                    by_hash[r.hash] = r
                    out.append(self._event(r, "ADD"))
                    continue
                existing = by_hash.get(r.hash) or self.store.find_active(scope, r.hash) or r
                out.append({"id": existing.id, "memory": existing.memory, "event": "NONE"})
            if key is not None:
                tx.journal(key, "done", result=out, kind="add")
        self.index.sync(tx.touched, tx.removed)
        if any(v is None for v in vectors):
            self.indexer.notify()
        return out

    @staticmethod
    def _event(r: MemoryRecord, event: str) -> dict[str, Any]:
        out: dict[str, Any] = {"id": r.id, "memory": r.memory, "event": event}
        if r.actor_id:
            out["actor_id"] = r.actor_id
        if r.role:
            out["role"] = r.role
        return out

    def embed_or_defer(self, texts: list[str]) -> Op[tuple[np.ndarray | None, int | None]]:
        """New memories' vectors now (``sync``), or the width to queue them with (default).

        Returns ``(vectors, None)`` or ``(None, dims)``; ``(None, None)`` for no texts. The
        width is read once per engine (it may load the model or probe a remote one, so
        off the event loop), then cached: a queued add costs no extra hop.
        """
        if not texts:
            return None, None
        if self.config.embedding_mode != "background":
            return (yield Embed(self.embedder, texts)), None
        if self._dims is None:
            self._dims = yield Blocking(lambda: self.embedder.dims)
        return None, self._dims

    def index_queued(self, scope: Scope) -> Op[None]:
        """Read-your-writes: give the scope's queued memories their vectors now.

        Memories queued by background indexing in ``scope`` are embedded in one batch
        (those the worker or another search is already embedding are waited for, never
        embedded twice), so a search sees every add that returned.
        """
        queued = yield Blocking(self.store.pending_in_scope, (scope,))
        if not queued:
            return
        mine, fut, others = self.indexer.claim(queued)
        try:
            if mine:  # another search may have indexed some since we read the queue
                todo = yield Blocking(self.store.still_queued, (mine,))
                if todo:
                    vecs = yield Embed(self.embedder, [r.memory for r in todo])
                    yield Blocking(self.indexer.attach, (todo, vecs))
        finally:
            self.indexer.release(mine, fut)
        if others:
            yield Wait(others)

    # -- reads by id / listing ---------------------------------------------------------------
    def _public(self, r: MemoryRecord, include_vectors: bool) -> dict[str, Any]:
        """A record's public dict, with its stored vectors (per space) when asked."""
        out = r.to_dict()
        if include_vectors:
            out["vectors"] = {s: m.tolist() for s, m in self.store.all_vectors(r.seq).items()}
        return out

    def _owned(self, memory_id: Any, scope: Scope) -> MemoryRecord:
        mid = check_id(memory_id, "memory_id")
        r = self.store.get(mid)
        if r is None or (scope and not scope.contains(r.scope)):
            raise NotFoundError(f"no memory with id {mid!r}" + (" in this scope" if scope else ""))
        return r

    def get(
        self,
        memory_id: Any,
        *,
        user_id: Any = None,
        agent_id: Any = None,
        run_id: Any = None,
        include_vectors: bool = False,
    ) -> Op[dict[str, Any] | None]:
        scope, _ = resolve_scope(user_id, agent_id, run_id, required=False)
        mid = check_id(memory_id, "memory_id")

        def read() -> dict[str, Any] | None:
            r = self.store.get(mid)
            if r is None or (scope and not scope.contains(r.scope)):
                return None
            return self._public(r, include_vectors)

        return (yield Blocking(read))

    def get_all(
        self,
        *,
        user_id: Any = None,
        agent_id: Any = None,
        run_id: Any = None,
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
    ) -> Op[dict[str, Any]]:
        scope, rest = resolve_scope(user_id, agent_id, run_id, filters)
        pred = with_namespace(compile_filter(rest), namespace_prefix)
        k = self._top_k(limit if limit is not None else top_k)
        if not isinstance(offset, int) or offset < 0:
            raise ValidationError(f"offset must be a non-negative integer, got {offset!r}")
        if order_by not in ORDERINGS:
            raise ValidationError(f"order_by must be one of {', '.join(ORDERINGS)}")
        vis = Visibility(include_superseded, parse_time(as_of), show_expired)

        def read() -> dict[str, Any]:
            now = utcnow()
            records = self.views.view(scope).records
            if order_by == "updated_at":
                records = sorted(records, key=lambda r: (r.updated_at, r.seq))
            elif order_by == "valid_from":
                records = sorted(records, key=lambda r: (r.valid_from or r.created_at, r.seq))
            out: list[MemoryRecord] = []
            skipped = 0
            for r in reversed(records):  # newest first
                if vis.visible(r, now) and (pred is None or pred(r.filter_view())):
                    if skipped < offset:
                        skipped += 1
                        continue
                    out.append(r)
                    if len(out) >= k:
                        break
            if touch and out:
                self._touch([r.id for r in out])
            return {"results": [self._public(r, include_vectors) for r in out]}

        return (yield Blocking(read))

    def count(
        self,
        *,
        user_id: Any = None,
        agent_id: Any = None,
        run_id: Any = None,
        filters: dict[str, Any] | None = None,
        namespace_prefix: Sequence[str] | None = None,
        include_superseded: bool = False,
        show_expired: bool = False,
    ) -> Op[int]:
        """How many memories ``get_all`` would list (without a limit)."""
        scope, rest = resolve_scope(user_id, agent_id, run_id, filters)
        pred = with_namespace(compile_filter(rest), namespace_prefix)
        vis = Visibility(include_superseded, None, show_expired)

        def read() -> int:
            now = utcnow()
            return sum(
                1
                for r in self.views.view(scope).records
                if vis.visible(r, now) and (pred is None or pred(r.filter_view()))
            )

        return (yield Blocking(read))

    def history(self, memory_id: Any) -> Op[list[dict[str, Any]]]:
        mid = check_id(memory_id, "memory_id")
        return (yield Blocking(self.store.history, (mid,)))

    # -- update / delete ----------------------------------------------------------------------
    def update(
        self,
        memory_id: Any,
        text: Any = None,
        metadata: Any = None,
        *,
        data: Any = None,
        user_id: Any = None,
        agent_id: Any = None,
        run_id: Any = None,
        expiration_date: Any = None,
        changed_by: str | None = None,
    ) -> Op[dict[str, Any]]:
        scope, _ = resolve_scope(user_id, agent_id, run_id, required=False)
        text = text if text is not None else data  # mem0's older keyword
        if text is None and metadata is None and expiration_date is None:
            raise ValidationError("update needs text, metadata or expiration_date")
        new_text = clean_text(text, what="text") if text is not None else None
        meta = clean_metadata(metadata) if metadata is not None else None
        expires = parse_time(expiration_date, end_of_day=True)
        changed_by = check_changed_by(changed_by)
        current = yield Blocking(self._owned, (memory_id, scope))
        vec = None
        if new_text is not None and new_text != current.memory:
            vec = (yield Embed(self.embedder, [new_text]))[0]

        def write() -> dict[str, Any]:
            with self.store.write() as tx:
                r = self._owned(memory_id, scope)  # re-read inside the transaction
                old = replace(r, metadata=dict(r.metadata))
                changed = new_text is not None and new_text != r.memory
                if changed:
                    r.memory, r.hash = new_text, content_hash(new_text)  # type: ignore[assignment]
                if meta is not None:
                    r.metadata = {**r.metadata, **meta}
                if expires is not None:
                    r.expiration_date = expires
                r.updated_at = utcnow()
                tx.update(
                    r,
                    text_changed=changed,
                    vectors={DEFAULT_SPACE: vec} if changed and vec is not None else None,
                )
                tx.history("UPDATE", memory_id=r.id, old=old, new=r, changed_by=changed_by)
            self.index.sync(tx.touched, tx.removed)
            return {"message": "Memory updated successfully!", "id": r.id, "memory": r.memory}

        return (yield Blocking(write))

    def delete(
        self,
        memory_id: Any,
        *,
        user_id: Any = None,
        agent_id: Any = None,
        run_id: Any = None,
        changed_by: str | None = None,
    ) -> Op[dict[str, Any]]:
        scope, _ = resolve_scope(user_id, agent_id, run_id, required=False)
        changed_by = check_changed_by(changed_by)

        def write() -> dict[str, Any]:
            with self.store.write() as tx:
                r = self._owned(memory_id, scope)
                tx.remove(r, changed_by)
            self.index.sync(tx.touched, tx.removed)
            return {"message": "Memory deleted successfully!", "id": r.id}

        return (yield Blocking(write))

    def delete_all(
        self,
        *,
        user_id: Any = None,
        agent_id: Any = None,
        run_id: Any = None,
        filters: dict[str, Any] | None = None,
        namespace_prefix: Sequence[str] | None = None,
        changed_by: str | None = None,
    ) -> Op[dict[str, Any]]:
        scope, rest = resolve_scope(user_id, agent_id, run_id, filters)
        pred = with_namespace(compile_filter(rest), namespace_prefix)
        changed_by = check_changed_by(changed_by)

        def write() -> dict[str, Any]:
            n = 0
            with self.store.write() as tx:
                for r in self.store.scope_records(scope):
                    if pred is None or pred(r.filter_view()):
                        tx.remove(r, changed_by)
                        n += 1
            self.index.sync(tx.touched, tx.removed)
            return {"message": f"Deleted {n} memories", "deleted": n}

        return (yield Blocking(write))

    def flush(self) -> Op[int]:
        """Embed every memory still queued for background indexing; returns how many."""
        return (yield Blocking(self.indexer.drain))

    def pending(self) -> Op[list[dict[str, Any]]]:
        """Adds whose LLM step failed, with their raw input and the error (oldest first)."""
        return (yield Blocking(self.store.journal_rows, ("add", ("failed",))))

    def retry_pending(self) -> Op[dict[str, Any]]:
        """Run every failed add again; each success clears its journal row."""
        rows = yield Blocking(self.store.journal_rows, ("add", ("failed",)))
        done, failed = 0, []
        for row in rows:
            p = row["payload"]
            # A Batch-API row keeps the add's arguments as ingest prepared them ("add");
            # a live add keeps its input and scope. Either runs again as a live add.
            kwargs = (
                dict(p["add"])
                if "add" in p
                else {
                    "messages": p["messages"],
                    **p["scope"],
                    "metadata": p.get("metadata"),
                    "timestamp": p.get("timestamp"),
                    "memory_type": p.get("memory_type"),
                }
            )
            try:
                yield from self.add(**kwargs, idempotency_key=row["key"])
                done += 1
            except LLMError as e:
                failed.append({"key": row["key"], "error": str(e)})
        return {"retried": len(rows), "done": done, "failed": failed}

    def reset(self) -> Op[dict[str, Any]]:
        def write() -> dict[str, Any]:
            self.store.reset()
            self.index.rebuild()
            return {"message": "Memory store reset"}

        return (yield Blocking(write))

    def stats(self) -> Op[dict[str, Any]]:
        def read() -> dict[str, Any]:
            out = self.store.stats()
            out["vector_index"] = self.index.name
            out["embedder"] = getattr(self.embedder, "name", type(self.embedder).__name__)
            return out

        return (yield Blocking(read))
