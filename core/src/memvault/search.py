"""The read path: ``search`` — hybrid ranking over a scope's cached view, and its options.

Why a module of its own: search is the hot path of every agent turn and the operation
with the most options (thresholds, paging, explain, pure-vector ranking, LLM query
expansion); kept apart from the write path it can be read, profiled and changed alone.
``Engine`` mixes it in (``SearchOps``), as it does the keyed records (``KeyedOps``):
the same store, index, views and embedder, one implementation for ``Memory`` and
``AsyncMemory`` (each method is a generator of effects, see ``memvault.effects``).

What it does per query: embed the query (cached, ``LRU``), make the scope's queued
memories searchable (read-your-writes), then in one ``Blocking`` step read the scope's
view, score every visible record (dense, keyword, neighbours, actor, entities, time:
``memvault.retrieval.rank``) and page the best.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import ValidationError as PydanticValidationError

from memvault.effects import Blocking, Embed, Op
from memvault.errors import ValidationError
from memvault.expansion import expand, fuse
from memvault.filters import compile_filter, with_namespace
from memvault.inputs import as_vectors, check_space, parse_time
from memvault.models import DEFAULT_SPACE, utcnow
from memvault.retrieval import Ranked, RetrievalConfig, query_signals, rank
from memvault.scope import Scope, resolve_scope
from memvault.store.contract import Visibility
from memvault.text import analyze, clean_text, names_in

if TYPE_CHECKING:
    from memvault.config import MemoryConfig
    from memvault.embedding.base import Embedder
    from memvault.llm.client import Completion, LLMClient
    from memvault.store.contract import Store
    from memvault.store.vector_index import VectorIndex
    from memvault.views import ViewCache


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


class SearchOps:
    """The search operation of ``Engine`` (a mixin: same store, index, views, embedder)."""

    config: MemoryConfig
    store: Store
    embedder: Embedder
    index: VectorIndex
    views: ViewCache
    llm: LLMClient | None
    _query_cache: LRU

    if TYPE_CHECKING:  # Engine's and KeyedOps' own; declared only for type checkers
        # (real definitions here would shadow KeyedOps._touch in Engine's MRO)
        def index_queued(self, scope: Scope) -> Op[None]: ...
        def _touch(self, ids: Sequence[str]) -> None: ...

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
