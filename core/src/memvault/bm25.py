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


def bm25_scores(hits: KeywordHits, terms: Sequence[str]) -> dict[int, float]:
    """seq -> BM25 of each document in ``hits`` holding a query term (higher is better)."""
    query = list(dict.fromkeys(terms))
    if not hits.docs or not query or hits.n_docs <= 0:
        return {}
    tfs = {seq: Counter(doc) for seq, doc in hits.docs.items()}
    n = hits.n_docs
    avgdl = (hits.total_terms / n) or 1.0
    idf: dict[str, float] = {}
    for t in query:
        df = sum(1 for tf in tfs.values() if t in tf)
        if df:
            idf[t] = math.log(1.0 + (n - df + 0.5) / (df + 0.5))
    out: dict[int, float] = {}
    for seq, tf in tfs.items():
        norm = K1 * (1.0 - B + B * len(hits.docs[seq]) / avgdl)
        score = 0.0
        for t, w in idf.items():
            f = tf.get(t, 0)
            if f:
                score += w * f * (K1 + 1.0) / (f + norm)
        if score > 0.0:
            out[seq] = score
    return out
