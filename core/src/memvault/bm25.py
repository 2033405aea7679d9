"""BM25 over one scope's own statistics, computed here for every backend.

Why here and not in the database: SQLite's FTS5 and PostgreSQL's full-text search rank
differently (and FTS5's IDF counts every tenant in the file), so the same memories
would rank differently per backend, and a busy tenant's vocabulary would change a quiet
one's scores. The store only keeps each memory's analysed terms; the score is computed
here, from the scope's own statistics. A search reads the scope's terms once per view of
the scope into a :class:`KeywordIndex` (postings in arrays) and scores from it.

Okapi BM25 with Lucene's non-negative IDF ``ln(1 + (N - df + 0.5) / (df + 0.5))``:
in a small scope most query words occur in many of its memories, and the classic IDF
would turn them negative (FTS5 clamps those to ~0).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain

import numpy as np
import numpy.typing as npt

K1 = 1.2
B = 0.75


def ceiling(weights: dict[str, float]) -> float | None:
    """The most BM25 a memory could score for these IDF weights: sum of idf x (k1 + 1).

    So ``bm25 / ceiling`` is in [0, 1) and means the same in a scope of 10 or 10,000;
    None when no query term occurs in the scope.
    """
    total = sum(weights.values())
    return total * (K1 + 1.0) if total > 0 else None


@dataclass(frozen=True, slots=True, eq=False)
class KeywordIndex:
    """One scope's analysed documents as postings, aligned with a view's record list.

    Why: asking the store per query (FTS5 ``MATCH``, then the scope's count and length)
    and splitting and counting every matching document in Python was ~4 ms of a ~5 ms
    search on a 500-memory LoCoMo scope, since speaker names, dates and common words put
    most of a scope's documents in the hits. Built once per view of the scope (from the
    store's stored terms, see :meth:`memvault.store.contract.Store.scope_terms`), a query
    is then a few array slices.

    Postings are CSR-like: the record indices (and term frequencies) of term id ``k`` are
    ``docs[start[k]:start[k + 1]]``, ascending. ``tokens`` (every document's term ids,
    concatenated in record order) is kept so :meth:`extend` can append without
    re-reading the store.
    """

    vocab: dict[str, int]
    tokens: npt.NDArray[np.int64]
    lengths: npt.NDArray[np.int64]  # per record: its number of terms
    start: npt.NDArray[np.int64]
    docs: npt.NDArray[np.int64]
    tf: npt.NDArray[np.float64]
    norm: npt.NDArray[np.float64]  # per record: BM25's length normalisation k1 * (1 - b + ...)

    @property
    def n_docs(self) -> int:
        return len(self.lengths)

    @classmethod
    def build(cls, docs: Sequence[Sequence[str]]) -> KeywordIndex:
        """The index of ``docs`` (one term list per record, in the view's order)."""
        return cls._assemble({}, [], docs, np.zeros(0, dtype=np.int64))

    def extend(self, docs: Sequence[Sequence[str]]) -> KeywordIndex:
        """A new index with ``docs`` appended (records added to the scope); self is unchanged."""
        if not docs:
            return self
        return self._assemble(dict(self.vocab), [self.tokens], docs, self.lengths)

    @classmethod
    def _assemble(
        cls,
        vocab: dict[str, int],
        head: list[npt.NDArray[np.int64]],
        docs: Sequence[Sequence[str]],
        head_lengths: npt.NDArray[np.int64],
    ) -> KeywordIndex:
        flat = list(chain.from_iterable(docs))
        for t in dict.fromkeys(flat):  # new terms get the next ids, in order of appearance
            if t not in vocab:
                vocab[t] = len(vocab)
        new = np.fromiter(map(vocab.__getitem__, flat), dtype=np.int64, count=len(flat))
        tokens = np.concatenate([*head, new])
        lengths = np.concatenate(
            [head_lengths, np.fromiter(map(len, docs), dtype=np.int64, count=len(docs))]
        )
        n = len(lengths)
        # One (term, record) key per occurrence; sorted unique keys give the postings in
        # term order, records ascending, with their counts as term frequencies.
        keys, counts = np.unique(
            tokens * max(n, 1) + np.repeat(np.arange(n, dtype=np.int64), lengths),
            return_counts=True,
        )
        term, doc = np.divmod(keys, max(n, 1))
        start = np.searchsorted(term, np.arange(len(vocab) + 1, dtype=np.int64))
        total = int(lengths.sum())
        avgdl = (total / n if n else 0.0) or 1.0
        norm = K1 * (1.0 - B + B * lengths / avgdl)
        return cls(vocab, tokens, lengths, start, doc, counts.astype(np.float64), norm)

    def idf(self, terms: Sequence[str]) -> dict[str, float]:
        """Each query term's IDF over the scope (terms no memory of the scope holds: left out)."""
        n = self.n_docs
        out: dict[str, float] = {}
        for t in dict.fromkeys(terms):
            k = self.vocab.get(t)
            if k is None:
                continue
            d = int(self.start[k + 1] - self.start[k])
            if d:
                out[t] = math.log(1.0 + (n - d + 0.5) / (d + 0.5))
        return out

    def scores(self, weights: dict[str, float]) -> npt.NDArray[np.float64]:
        """Per record: BM25 for the query terms' ``weights`` (their :meth:`idf`); 0 = no term."""
        out = np.zeros(self.n_docs)
        for t, w in weights.items():
            k = self.vocab[t]
            lo, hi = self.start[k], self.start[k + 1]
            docs, f = self.docs[lo:hi], self.tf[lo:hi]
            out[docs] += w * f * (K1 + 1.0) / (f + self.norm[docs])
        return out
