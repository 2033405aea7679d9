"""The operations, written once: add, search, get, get_all, update, delete, history.

Each public operation is a generator (see ``memvault.effects``) so ``Memory`` and
``AsyncMemory`` share this single implementation. Storage work is grouped into
as few ``Blocking`` effects as possible (one for reads, one transaction for
writes) so the async driver hops threads rarely.
"""

from __future__ import annotations

import logging
import math
import threading
import uuid
import weakref
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
from pydantic import ValidationError as PydanticValidationError

from memvault.config import MemoryConfig
from memvault.effects import Blocking, Embed, Op, Wait
from memvault.embedding import make_embedder
from memvault.embedding.base import Embedder
from memvault.errors import ConfigError, LLMError, NotFoundError, ValidationError
from memvault.expansion import expand, fuse
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
from memvault.llm.client import Completion, LLMClient
from memvault.llm.config import parse_llm_settings
from memvault.models import DEFAULT_SPACE, MemoryRecord, content_hash, utcnow
from memvault.retrieval import Ranked, RetrievalConfig, query_signals, rank
from memvault.scope import Scope, check_id, check_key, resolve_scope, scoped_key
from memvault.store import open_store
from memvault.store.contract import Store, Visibility
from memvault.store.vector_index import BruteForceIndex, VectorIndex
from memvault.text import analyze, clean_text, names_in
from memvault.views import ViewCache

log = logging.getLogger("memvault")

#: get_all orderings (newest first): storage time, last change, or observation time.
ORDERINGS = ("created_at", "updated_at", "valid_from")
__all__ = ["DEFAULT_SPACE", "ORDERINGS", "Engine", "Message", "parse_messages"]


class LRU:
    """A small thread-safe LRU of query embeddings.

    Why: agents re-ask the same query within a turn (a pre-model hook runs before every
    model step of a tool loop), and the query embedding is ~75% of a search's cost.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._data: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> np.ndarray | None:
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: str, value: np.ndarray) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)


def _close_parts(
    indexer: BackgroundIndexer, llm: LLMClient | None, index: VectorIndex, store: Store
) -> None:
    indexer.close()
    if llm is not None:
        llm.close()
    index.close()
    store.close()


class Engine(KeyedOps):
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

    # -- search -----------------------------------------------------------------------------------
    def search(
        self,
        query: str | None = None,
        *,
        user_id: Any = None,
        agent_id: Any = None,
        run_id: Any = None,
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
        retrieval: dict[str, Any] | RetrievalConfig | None = None,
        dedupe: bool = True,
        rerank: bool = False,
        offset: int = 0,
        ranking: str = "hybrid",
        include_unranked: bool = False,
    ) -> Op[dict[str, Any]]:
        scope, rest = resolve_scope(user_id, agent_id, run_id, filters)
        pred = with_namespace(compile_filter(rest), namespace_prefix)
        k = self._top_k(limit if limit is not None else top_k)
        cfg = self._retrieval(retrieval)
        if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
            raise ValidationError(f"offset must be a non-negative integer, got {offset!r}")
        if ranking not in ("hybrid", "vector"):
            raise ValidationError("ranking must be 'hybrid' or 'vector'")
        if query is not None:
            query = clean_text(query, what="query")
        elif vector is None:
            raise ValidationError("search needs a query (text) or a vector")
        if threshold is not None and (
            not isinstance(threshold, int | float)
            or isinstance(threshold, bool)
            or not math.isfinite(threshold)
        ):
            # NaN compares false with every score, so it would silently return everything
            raise ValidationError(f"threshold must be a finite number, got {threshold!r}")
        vis = Visibility(include_superseded, parse_time(as_of), show_expired)
        space = check_space(vector_space)
        if cfg.expansions:
            self._check_expansions(query, vector, space, ranking, include_unranked)
        if space == DEFAULT_SPACE:
            yield from self.index_queued(scope)
        if vector is not None:
            qvec = as_vectors(vector, "vector")[0]
        elif space == DEFAULT_SPACE:
            qvec = self._query_cache.get(query or "")
            if qvec is None:
                qvec = (yield Embed(self.embedder, [query or ""], kind="query"))[0]
                self._query_cache.put(query or "", qvec)
        else:
            qvec = None  # keyword-only in a BYO space without a query vector
        if ranking == "vector" and qvec is None:
            raise ValidationError(
                "ranking='vector' needs vector= (or a query in the default space)"
            )
        if cfg.expansions:
            assert self.llm is not None and query is not None
            texts, completion = yield from expand(self.llm, query, cfg.expansions)
            yield Blocking(self._record_usage, ("search", completion))
            vecs = list((yield Embed(self.embedder, texts, kind="query"))) if texts else []
            return (
                yield Blocking(
                    self._search_expanded,
                    ([(query, qvec), *zip(texts, vecs, strict=True)], scope, pred, vis, k),
                    {
                        "threshold": threshold,
                        "touch": touch,
                        "cfg": cfg,
                        "dedupe": dedupe,
                        "offset": offset,
                    },
                )
            )
        return (
            yield Blocking(
                self._search,
                (query, qvec, space, scope, pred, vis, k, threshold, explain, touch, cfg, dedupe),
                {"offset": offset, "ranking": ranking, "include_unranked": include_unranked},
            )
        )

    def _check_expansions(
        self,
        query: str | None,
        vector: Any,
        space: str,
        ranking: str,
        include_unranked: bool,
    ) -> None:
        """Query expansion needs a model and a text query ranked by the hybrid fusion."""
        if self.llm is None:
            raise ValidationError("retrieval expansions need an LLM: configure llm in the config")
        if query is None or vector is not None or space != DEFAULT_SPACE:
            raise ValidationError(
                "retrieval expansions need a text query in the default space (no vector=)"
            )
        if ranking != "hybrid" or include_unranked:
            raise ValidationError(
                "retrieval expansions fuse hybrid rankings: not with ranking='vector' "
                "or include_unranked"
            )

    def _record_usage(self, op: str, completion: Completion) -> None:
        with self.store.write() as tx:
            tx.usage(op, completion.model, completion.usage.as_dict())

    def _search_expanded(
        self,
        queries: list[tuple[str, np.ndarray]],
        scope: Scope,
        pred: Any,
        vis: Visibility,
        k: int,
        *,
        threshold: float | None,
        touch: bool,
        cfg: RetrievalConfig,
        dedupe: bool,
        offset: int,
    ) -> dict[str, Any]:
        """The query and each expansion searched alike, their rankings fused (RRF)."""
        depth = max(k + offset, cfg.candidates)
        rankings = [
            self._search(
                q, v, DEFAULT_SPACE, scope, pred, vis, depth, threshold, False, False, cfg, dedupe
            )["results"]
            for q, v in queries
        ]
        # The question weighs as much as all the statements together: they are guesses.
        weights = [max(1, len(queries) - 1)] + [1] * (len(queries) - 1)
        out = fuse(rankings, weights, key="hash" if dedupe else "id")[offset : offset + k]
        if touch and out:
            self._touch([r["id"] for r in out])
        return {"results": out, "expansions": [q for q, _ in queries[1:]]}

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

    def _retrieval(self, override: dict[str, Any] | RetrievalConfig | None) -> RetrievalConfig:
        """The store's fusion weights, or a per-call override (e.g. pure vector ranking)."""
        if override is None:
            return self.config.retrieval
        if isinstance(override, RetrievalConfig):
            return override
        if not isinstance(override, dict):
            raise ValidationError("retrieval must be a dict of fusion weights")
        try:
            return RetrievalConfig.model_validate(
                {**self.config.retrieval.model_dump(), **override}
            )
        except PydanticValidationError as e:
            raise ValidationError(f"invalid retrieval override: {e.errors()[0]['msg']}") from e

    @staticmethod
    def _top_k(k: Any) -> int:
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise ValidationError(f"top_k/limit must be a positive integer, got {k!r}")
        return min(k, 10_000)

    def _search(
        self,
        query: str | None,
        qvec: np.ndarray | None,
        space: str,
        scope: Scope,
        pred: Any,
        vis: Visibility,
        k: int,
        threshold: float | None,
        explain: bool,
        touch: bool = False,
        cfg: RetrievalConfig | None = None,
        dedupe: bool = True,
        offset: int = 0,
        ranking: str = "hybrid",
        include_unranked: bool = False,
    ) -> dict[str, Any]:
        gen = self.store.generation()
        view = self.views.view(scope, gen)
        n = len(view.records)
        if n == 0:
            return {"results": []}
        now = utcnow()
        visible = view.visible(vis, now)
        if pred is not None:  # the filter only for the records visible at all
            for i in np.flatnonzero(visible).tolist():
                visible[i] = bool(pred(view.records[i].filter_view()))
        dense: np.ndarray | None = None
        if qvec is not None:
            dims = self.store.space_dims(space) or (
                self.embedder.dims if space == DEFAULT_SPACE else None
            )
            if dims is not None and dims != len(qvec):
                from memvault.errors import DimensionMismatchError

                raise DimensionMismatchError(space, dims, len(qvec))
            seqs, scores = self.index.search(
                space, qvec, scope, gen, max(4 * self.config.retrieval.candidates, 2 * k)
            )
            dense = np.full(n, np.nan)
            rows, found = view.rows_of(np.asarray(seqs, dtype=np.int64))
            dense[rows[found]] = np.asarray(scores)[found]  # seqs outside the view: dropped
        cfg = cfg or self.config.retrieval
        keyword = np.zeros(n)
        ranked: Ranked | None = None
        if ranking == "vector":
            # Pure similarity, exhaustive: every matching record with a vector in the space,
            # scored by its raw cosine (max-pooled); ties keep insertion order.
            assert dense is not None
            idx = np.flatnonzero(visible & ~np.isnan(dense))
            order = idx[np.argsort(-dense[idx], kind="stable")]
        else:
            terms = analyze(query) if query else []
            weights = None
            if terms:
                # The view's postings: built once per view, not one store query per search.
                postings = view.keywords(self.store)
                weights = postings.idf(terms)  # for the scores and their ceiling: once
                keyword = postings.scores(weights)
            named = names_in(query, view.actors) if query else []
            actor_hit = np.zeros(n, dtype=bool)
            if len(set(named)) == 1:  # one speaker named: favour their memories
                actor_hit[view.actor_rows(named[0])] = True
            ranked = rank(
                visible=visible,
                dense=dense,
                keyword=keyword,
                prev_idx=view.prev_idx,
                next_idx=view.next_idx,
                actor_hit=actor_hit,
                cfg=cfg,
                extra=query_signals(query, terms, view.records, cfg, weights, view.entity_graph),
                thread=view.thread,
            )
            order = ranked.order
        out: list[dict[str, Any]] = []
        seen_hashes: set[str] = set()
        skipped = 0
        for i in order.tolist():
            r = view.records[i]
            if dedupe and r.hash in seen_hashes:  # identical text in several threads: once
                continue
            if ranked is None:
                score = round(float(dense[i]), 6)  # type: ignore[index]
            else:
                score = round(min(1.0, max(0.0, float(ranked.final[i]) / cfg.max_score)), 6)
            if threshold is not None and score < threshold:
                break
            seen_hashes.add(r.hash)
            if skipped < offset:
                skipped += 1
                continue
            item = r.to_dict(score, with_score=True)
            if explain and ranked is not None:
                item["score_details"] = {
                    "dense": float(ranked.dense[i]),
                    "keyword": float(ranked.keyword[i]),
                    "neighbor": float(ranked.neighbor[i]),
                    "actor": float(ranked.actor[i]),
                    "entity": float(ranked.entity[i] + ranked.hop[i]),
                    "temporal": float(ranked.temporal[i]),
                    "diversity": float(ranked.diversity[i]),
                    "semantic_similarity": None
                    if dense is None or math.isnan(dense[i])
                    else float(dense[i]),
                    "bm25_raw": float(keyword[i]),
                    "raw_score": float(ranked.final[i]),
                    "max_possible_score": cfg.max_score,
                    "final_score": score,
                    "threshold": threshold,
                }
            out.append(item)
            if len(out) >= k:
                break
        if include_unranked and len(out) < k:
            # The matching records the ranking did not score, after the ranked ones, in
            # insertion order, with score None (the page LangGraph's stores return).
            ranked_set = set(order.tolist())
            for i in np.flatnonzero(visible).tolist():
                if i in ranked_set:
                    continue
                if skipped < offset:
                    skipped += 1
                    continue
                out.append(view.records[i].to_dict(None, with_score=True))
                if len(out) >= k:
                    break
        if touch and out:
            self._touch([r["id"] for r in out])
        return {"results": out}

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
