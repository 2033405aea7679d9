"""BM25 over one scope's own statistics: one pure function every backend's hits go through.

Why here and not in the database: SQLite's FTS5 and PostgreSQL's full-text search rank
differently (and FTS5's IDF counts every tenant in the file), so the same memories
would rank differently per backend, and a busy tenant's vocabulary would change a quiet
one's scores. The store only finds the scope's documents holding a query term and counts
the scope (:class:`memvault.store.contract.KeywordHits`); the score is computed here.

Okapi BM25 with Lucene's non-negative IDF ``ln(1 + (N - df + 0.5) / (df + 0.5))``:
in a small scope most query words occur in many of its memories, and the classic IDF
would turn them negative (FTS5 clamps those to ~0).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

from memvault.store.contract import KeywordHits

K1 = 1.2
B = 0.75


def idf(hits: KeywordHits | None, terms: Sequence[str]) -> dict[str, float]:
    """Each query term's IDF over the scope (terms no memory of the scope holds: left out)."""
    if hits is None or not hits.docs or hits.n_docs <= 0:
        return {}
    n = hits.n_docs
    df: dict[str, int] = dict.fromkeys(dict.fromkeys(terms), 0)
    wanted = df.keys()
    for doc in hits.docs.values():
        for t in wanted & set(doc):
            df[t] += 1
    return {t: math.log(1.0 + (n - d + 0.5) / (d + 0.5)) for t, d in df.items() if d}


def ceiling(weights: dict[str, float]) -> float | None:
    """The most BM25 a memory could score for these IDF weights: sum of idf x (k1 + 1)."""
    total = sum(weights.values())
    return total * (K1 + 1.0) if total > 0 else None


def bm25_scores(
    hits: KeywordHits, terms: Sequence[str], weights: dict[str, float] | None = None
) -> dict[int, float]:
    """seq -> BM25 of each document in ``hits`` holding a query term (higher is better).

    ``weights``: the terms' :func:`idf`, when the caller already has it (it also needs
    it for the score's ceiling): computed once per search.
    """
    if not hits.docs or not terms or hits.n_docs <= 0:
        return {}
    weights = idf(hits, terms) if weights is None else weights
    avgdl = (hits.total_terms / hits.n_docs) or 1.0
    out: dict[int, float] = {}
    for seq, doc in hits.docs.items():
        tf = Counter(doc)
        norm = K1 * (1.0 - B + B * len(doc) / avgdl)
        score = 0.0
        for t, w in weights.items():
            f = tf.get(t, 0)
            if f:
                score += w * f * (K1 + 1.0) / (f + norm)
        if score > 0.0:
            out[seq] = score
    return out
