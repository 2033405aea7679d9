"""Hybrid ranking: fuse dense, keyword, adjacency, actor and entity signals into one score.

Why this recipe: score fusion beats reciprocal-rank fusion by ~6 points of LoCoMo
recall@10 because RRF flattens BM25's confident top hits (shared/reference/retrieval.md).
A memory's neighbours (the memories added just before/after it in the same scope and
run, up to two steps away) carry the question's words surprisingly often; a query that
names one speaker favours that speaker's memories; a memory naming the query's entities
gets a small lift (:mod:`memvault.entities`); a query naming a date favours memories
observed then. Opt-in, ``thread_penalty`` spreads the top results over threads (greedy MMR
by run; docs/retrieval.md). Candidates are the *union* of the dense and
keyword top lists, so a keyword-only match can win (mem0 drops those, their #5742).

The keyword score is BM25 over the scope's own statistics divided by what the query
could attain at most (``keyword_norm="ceiling"``): min-max over the candidates would
stretch a meaningless length difference between two one-word matches to the full
weight. Every default was accepted on held-out conversations, not on the dev score
(``benchmarks/bench_locomo_cv.py``; docs/benchmarks.md).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, Field

from memvault import bm25, entities
from memvault.models import MemoryRecord
from memvault.text import query_days

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]


class RetrievalConfig(BaseModel):
    """Fusion weights (defaults = the tuned recipe; see docs/concepts.md#retrieval)."""

    keyword_weight: float = Field(0.7, ge=0)
    dense_weight: float = Field(0.5, ge=0)
    neighbor_weight: float = Field(0.6, ge=0)
    actor_weight: float = Field(0.1, ge=0)
    candidates: int = Field(50, ge=1, description="top-N taken from each retriever")
    keyword_norm: Literal["minmax", "ceiling"] = Field(
        "ceiling",
        description="minmax: over the candidates; ceiling: BM25 / (the query's attainable "
        "maximum / keyword_scale), capped at 1, so a weak match stays weak",
    )
    keyword_scale: float = Field(3.0, gt=0)
    dense_norm: Literal["minmax", "raw"] = Field(
        "minmax", description="raw: the cosine itself (clipped at 0)"
    )
    neighbor_span: int = Field(2, ge=1, le=5, description="neighbours up to this many away")
    neighbor_decay: float = Field(0.75, ge=0, le=1, description="bonus factor per extra step")
    entity_weight: float = Field(0.05, ge=0, description="share of the query's entities named")
    entity_hop_weight: float = Field(
        0.0, ge=0, description="entities shared with the top results the query did not name"
    )
    entity_hop_seeds: int = Field(5, ge=1, le=50)
    temporal_weight: float = Field(0.1, ge=0, description="observed on the query's date")
    temporal_tolerance_days: float = Field(3.0, ge=0)
    thread_penalty: float = Field(
        0.0,
        ge=0,
        description="diversity: subtracted from a memory's score for each better-scored "
        "candidate of the same thread (exact user/agent/run) beyond the first thread_free",
    )
    thread_free: int = Field(1, ge=1, le=50, description="results per thread before the penalty")
    expansions: int = Field(
        0,
        ge=0,
        le=8,
        description="opt-in, needs an LLM: the model writes this many statements an answer "
        "would hold, each is searched too and the rankings fused (memvault.expansion); one LLM "
        "call per search",
    )

    @property
    def max_score(self) -> float:
        return (
            self.keyword_weight
            + self.dense_weight
            + self.neighbor_weight
            + self.actor_weight
            + self.entity_weight
            + self.entity_hop_weight
            + self.temporal_weight
        )


@dataclass(slots=True)
class QuerySignals:
    """Per-query inputs beyond dense/keyword: computed by :func:`query_signals`."""

    keyword_ceiling: float | None = None
    entity_index: entities.ScopeIndex | None = None
    query_entities: Ints | None = None
    temporal_days: Floats | None = None


def query_signals(
    query: str | None,
    terms: Sequence[str],
    records: Sequence[MemoryRecord],
    cfg: RetrievalConfig,
    idf: dict[str, float] | None = None,
    entity_graph: Callable[[], entities.ScopeIndex] | None = None,
) -> QuerySignals:
    """What the configured signals need from the query and the scope (only those in use).

    ``idf``: the query terms' IDF over the scope (:meth:`memvault.bm25.KeywordIndex.idf`,
    the weights the keyword scores used), so the keyword ceiling bounds those very scores;
    None when the query has no terms. ``entity_graph``: the scope's cached entity graph
    (the view's), built on demand when a signal needs it; without it the graph is built
    from ``records`` for this call.
    """
    out = QuerySignals()
    if cfg.keyword_norm == "ceiling":
        out.keyword_ceiling = bm25.ceiling(idf or {})
    if not query or not (cfg.entity_weight or cfg.entity_hop_weight or cfg.temporal_weight):
        return out
    index = entity_graph() if entity_graph is not None else entities.build(records)
    if cfg.entity_weight or cfg.entity_hop_weight:
        out.entity_index = index
        out.query_entities = entities.query_entities(terms, index)
    if cfg.temporal_weight:
        span = query_days(query)
        if span is not None:
            lo, hi = span  # days between each memory's observation and the span (NaN: unknown)
            out.temporal_days = np.maximum(np.maximum(lo - index.day, index.day - hi), 0.0)
    return out


@dataclass(slots=True)
class Ranked:
    """Ranking output: indices into the scope's record list, best first, with signals."""

    order: Ints
    final: Floats
    dense: Floats
    keyword: Floats
    neighbor: Floats
    actor: Floats
    entity: Floats
    temporal: Floats
    hop: Floats
    diversity: Floats


def _minmax(x: Floats, on: npt.NDArray[np.bool_]) -> Floats:
    if not on.any():
        return np.zeros_like(x)
    lo, hi = float(x[on].min()), float(x[on].max())
    if hi - lo <= 1e-12:
        return np.where(on & (x > 0), 1.0, 0.0)
    return np.clip((x - lo) / (hi - lo), 0.0, 1.0)


def _step(arr: Ints, link: Ints) -> Ints:
    """Follow ``link`` once from every index in ``arr`` (-1 stays -1)."""
    return np.where(arr >= 0, link[np.maximum(arr, 0)], -1)


def rank(
    *,
    visible: npt.NDArray[np.bool_],
    dense: Floats | None,
    keyword: Floats,
    prev_idx: Ints,
    next_idx: Ints,
    actor_hit: npt.NDArray[np.bool_],
    cfg: RetrievalConfig,
    extra: QuerySignals | None = None,
    thread: Ints | None = None,
) -> Ranked:
    """Rank the visible records of a scope.

    ``dense`` (cosine, NaN = no vector) and ``keyword`` (BM25, 0 = no match) are
    aligned with the scope's records; ``prev_idx``/``next_idx`` give each record's
    neighbour in the same thread (-1 = none); ``extra`` holds the optional signals;
    ``thread`` labels each record's thread (needed by ``thread_penalty`` only).
    """
    extra = extra or QuerySignals()
    n = len(visible)
    k = cfg.candidates
    cand = np.zeros(n, dtype=bool)
    has_kw = visible & (keyword > 0)
    if has_kw.any():
        idx = np.flatnonzero(has_kw)
        cand[idx[np.argsort(-keyword[idx], kind="stable")[:k]]] = True
    d = np.zeros(n) if dense is None else np.nan_to_num(dense, nan=-1.0)
    if dense is not None:
        has_d = visible & ~np.isnan(dense)
        idx = np.flatnonzero(has_d)
        cand[idx[np.argsort(-d[idx], kind="stable")[:k]]] = True
    # Neighbours of candidates join the candidate set (their score feeds the bonus).
    seeds = cand.copy()
    for arr in (prev_idx, next_idx):
        nb = np.flatnonzero(seeds)
        for _ in range(cfg.neighbor_span):
            nb = arr[nb]
            nb = nb[nb >= 0]
            cand[nb[visible[nb]]] = True

    if cfg.keyword_norm == "ceiling" and extra.keyword_ceiling:
        kw_unit = np.minimum(keyword * (cfg.keyword_scale / extra.keyword_ceiling), 1.0)
        kw_unit = np.where(cand, kw_unit, 0.0)
    else:
        kw_unit = _minmax(keyword, cand)
    kw_n = kw_unit * cfg.keyword_weight
    if dense is None:  # no embeddings: keyword carries the full weight
        dn_n = np.zeros(n)
        kw_n = kw_n * (cfg.keyword_weight + cfg.dense_weight) / max(cfg.keyword_weight, 1e-9)
    elif cfg.dense_norm == "raw":
        dn_n = np.clip(d, 0.0, 1.0) * cfg.dense_weight
    else:
        dn_n = _minmax(d, cand) * cfg.dense_weight
    ent = np.zeros(n)
    if cfg.entity_weight and extra.entity_index is not None and extra.query_entities is not None:
        ent = entities.direct(extra.query_entities, extra.entity_index, n) * cfg.entity_weight
    tmp = np.zeros(n)
    if cfg.temporal_weight and extra.temporal_days is not None:
        # 1 on the query's date(s), fading linearly to 0 at the tolerance.
        tol = max(cfg.temporal_tolerance_days, 1e-9)
        near = np.clip(1.0 - extra.temporal_days / tol, 0.0, 1.0)
        near = np.where(extra.temporal_days <= 0, 1.0, near)
        tmp = np.nan_to_num(near, nan=0.0) * cfg.temporal_weight
    base = np.where(cand, kw_n + dn_n + ent + tmp, 0.0)

    neighbor = np.zeros(n)
    back, fwd = prev_idx, next_idx
    for step in range(cfg.neighbor_span):
        w = cfg.neighbor_weight * cfg.neighbor_decay**step
        for arr in (back, fwd):
            neighbor = np.maximum(neighbor, np.where(arr >= 0, base[np.maximum(arr, 0)], 0.0) * w)
        back, fwd = _step(back, prev_idx), _step(fwd, next_idx)
    actor = np.where(actor_hit, cfg.actor_weight, 0.0)
    final = base + neighbor + actor
    hop = np.zeros(n)
    if (
        cfg.entity_hop_weight
        and extra.entity_index is not None
        and extra.query_entities is not None
    ):
        live = np.flatnonzero(cand & visible)
        top = live[np.argsort(-final[live], kind="stable")[: cfg.entity_hop_seeds]]
        peak = float(final[top[0]]) if len(top) else 0.0
        if peak > 0:
            hop = entities.hop(top, final[top] / peak, extra.query_entities, extra.entity_index, n)
            hop = np.where(cand, hop, 0.0) * cfg.entity_hop_weight
            final = final + hop
    cidx = np.flatnonzero(cand & visible)
    # Ties (common for exact duplicates or empty signals) go to the most recent memory.
    order = cidx[np.lexsort((-cidx, -final[cidx]))]
    div = np.zeros(n)
    if cfg.thread_penalty and thread is not None and len(order):
        div -= _thread_rank(order, thread, cfg.thread_free, n) * cfg.thread_penalty
    if div.any():
        final = final + div
        order = cidx[np.lexsort((-cidx, -final[cidx]))]
    return Ranked(
        order=order,
        final=final,
        dense=dn_n,
        keyword=kw_n,
        neighbor=neighbor,
        actor=actor,
        entity=ent,
        temporal=tmp,
        hop=hop,
        diversity=div,
    )


def _thread_rank(order: Ints, thread: Ints, free: int, n: int) -> Floats:
    """How many better-ranked results of its own thread each result has, beyond ``free - 1``.

    Subtracting ``w`` x this from the scores and re-sorting is exactly greedy MMR with a
    per-thread count penalty: a thread's next pick is always its best remaining result.
    """
    t = thread[order]
    by_thread = np.argsort(t, kind="stable")  # stable: best first within each thread
    ts = t[by_thread]
    starts = np.flatnonzero(np.r_[True, ts[1:] != ts[:-1]])
    within = np.arange(len(ts)) - np.repeat(starts, np.diff(np.r_[starts, len(ts)]))
    out = np.zeros(n)
    out[order[by_thread]] = np.maximum(within - (free - 1), 0)
    return out
