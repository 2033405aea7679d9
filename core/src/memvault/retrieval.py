"""Hybrid ranking: fuse dense, keyword, adjacency and actor signals into one score.

Why this recipe (measured in shared/reference/retrieval.md, LoCoMo dev recall@10):
min-max score fusion beats reciprocal-rank fusion by ~6 points because RRF
flattens BM25's confident top hits; a memory's neighbours (the memory added just
before/after it in the same scope and run) carry the question's words surprisingly
often (+4.6); a query that names one speaker favours that speaker's memories (+1.2).
Candidates are the *union* of the dense and keyword top lists, so a keyword-only
match can win (mem0 drops those, their #5742).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, Field

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]


class RetrievalConfig(BaseModel):
    """Fusion weights (defaults = the tuned recipe; see docs/concepts.md#retrieval)."""

    keyword_weight: float = Field(0.5, ge=0)
    dense_weight: float = Field(0.5, ge=0)
    neighbor_weight: float = Field(0.4, ge=0)
    actor_weight: float = Field(0.1, ge=0)
    candidates: int = Field(50, ge=1, description="top-N taken from each retriever")

    @property
    def max_score(self) -> float:
        return self.keyword_weight + self.dense_weight + self.neighbor_weight + self.actor_weight


@dataclass(slots=True)
class Ranked:
    """Ranking output: indices into the scope's record list, best first, with signals."""

    order: Ints
    final: Floats
    dense: Floats
    keyword: Floats
    neighbor: Floats
    actor: Floats


def _minmax(x: Floats, on: npt.NDArray[np.bool_]) -> Floats:
    if not on.any():
        return np.zeros_like(x)
    lo, hi = float(x[on].min()), float(x[on].max())
    if hi - lo <= 1e-12:
        return np.where(on & (x > 0), 1.0, 0.0)
    return np.clip((x - lo) / (hi - lo), 0.0, 1.0)


def rank(
    *,
    visible: npt.NDArray[np.bool_],
    dense: Floats | None,
    keyword: Floats,
    prev_idx: Ints,
    next_idx: Ints,
    actor_hit: npt.NDArray[np.bool_],
    cfg: RetrievalConfig,
) -> Ranked:
    """Rank the visible records of a scope.

    ``dense`` (cosine, NaN = no vector) and ``keyword`` (BM25, 0 = no match) are
    aligned with the scope's records; ``prev_idx``/``next_idx`` give each record's
    neighbour in the same thread (-1 = none).
    """
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
    for arr in (prev_idx, next_idx):
        nb = arr[cand]
        nb = nb[nb >= 0]
        cand[nb[visible[nb]]] = True

    kw_n = _minmax(keyword, cand) * cfg.keyword_weight
    dn_n = _minmax(d, cand) * cfg.dense_weight if dense is not None else np.zeros(n)
    if dense is None:  # no embeddings: keyword carries the full weight
        kw_n = kw_n * (cfg.keyword_weight + cfg.dense_weight) / max(cfg.keyword_weight, 1e-9)
    base = np.where(cand, kw_n + dn_n, 0.0)

    def at(arr: Ints) -> Floats:
        return np.where(arr >= 0, base[np.maximum(arr, 0)], 0.0)

    neighbor = np.maximum(at(prev_idx), at(next_idx)) * cfg.neighbor_weight
    actor = np.where(actor_hit, cfg.actor_weight, 0.0)
    final = base + neighbor + actor
    cidx = np.flatnonzero(cand & visible)
    # Ties (common for exact duplicates or empty signals) go to the most recent memory.
    order = cidx[np.lexsort((-cidx, -final[cidx]))]
    return Ranked(
        order=order, final=final, dense=dn_n, keyword=kw_n, neighbor=neighbor, actor=actor
    )
