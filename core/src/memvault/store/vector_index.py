"""Dense indexes: where nearest-neighbour search over a scope's vectors happens.

Why a separate seam: the vectors' source of truth is always the store (so
any index can be rebuilt without re-embedding); what varies is *where the dense
search runs* — brute force in-process (default, exact, sub-millisecond for a
user's few thousand memories) or a Chroma collection (embedded or a shared
server) when the data outgrows one process.
"""

from __future__ import annotations

import threading
from typing import Protocol

import numpy as np
import numpy.typing as npt

from memvault.scope import Scope
from memvault.store.contract import Store

Seqs = npt.NDArray[np.int64]
Scores = npt.NDArray[np.float32]


class VectorIndex(Protocol):
    """A dense index over the store's vectors."""

    name: str

    def search(
        self, space: str, query: np.ndarray, scope: Scope, generation: int, limit: int | None
    ) -> tuple[Seqs, Scores]:
        """Best cosine per memory (``seq``) in ``scope``, at least the ``limit`` best.

        Exact indexes may return every memory of the scope (the fusion then has
        exact dense scores for keyword-only candidates and neighbours too).
        """
        ...

    def sync(self, touched: list[int], removed: list[int]) -> None:
        """Mirror a committed transaction (no-op for indexes that read the store)."""
        ...

    def rebuild(self) -> int:
        """Recreate the index from the store; returns the number of memories indexed."""
        ...

    def close(self) -> None: ...


def max_pool(seqs: Seqs, scores: Scores) -> tuple[Seqs, Scores]:
    """Reduce several vectors per memory (``seqs`` sorted) to the best score per memory."""
    if len(seqs) == 0:
        return seqs, scores
    starts = np.flatnonzero(np.r_[True, seqs[1:] != seqs[:-1]])
    return seqs[starts], np.maximum.reduceat(scores, starts)


class BruteForceIndex:
    """Exact search with numpy over vectors cached per (space, scope).

    The cache is keyed by the store generation, which every write transaction
    bumps (in any process), so a search never sees stale vectors.
    """

    name = "sqlite"

    def __init__(self, store: Store, max_cached_scopes: int = 256) -> None:
        self.store = store
        self.max_cached_scopes = max_cached_scopes
        self._cache: dict[tuple[str, Scope], tuple[int, Seqs, npt.NDArray[np.float32]]] = {}
        self._lock = threading.Lock()

    def _load(
        self, space: str, scope: Scope, generation: int
    ) -> tuple[Seqs, npt.NDArray[np.float32]]:
        key = (space, scope)
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None and hit[0] == generation:
            return hit[1], hit[2]
        loaded = self._refresh(hit, space, scope) if hit is not None else None
        seqs, mat = loaded if loaded is not None else self.store.vectors(space, scope)
        with self._lock:
            if len(self._cache) >= self.max_cached_scopes:
                self._cache.pop(next(iter(self._cache)))
            self._cache[key] = (generation, seqs, mat)
        return seqs, mat

    def _refresh(
        self, hit: tuple[int, Seqs, npt.NDArray[np.float32]], space: str, scope: Scope
    ) -> tuple[Seqs, npt.NDArray[np.float32]] | None:
        """Append new memories' vectors; None when only a full reload is correct."""
        gen, seqs, mat = hit
        changes = self.store.changes_since(gen)
        if changes is None:
            return None
        new: list[int] = []
        for seq, op, sc in changes:
            if not scope.contains(sc) or op == "update":  # record-only edits keep vectors
                continue
            if op != "insert" or (len(seqs) and seq <= int(seqs[-1])):
                return None
            new.append(seq)
        if not new:
            return seqs, mat
        add_seqs, add_mat = self.store.vectors_by_seq(space, sorted(set(new)))
        if len(add_seqs) == 0:
            return seqs, mat
        if len(seqs) == 0:
            return add_seqs, add_mat
        return np.concatenate([seqs, add_seqs]), np.vstack([mat, add_mat])

    def search(
        self, space: str, query: np.ndarray, scope: Scope, generation: int, limit: int | None
    ) -> tuple[Seqs, Scores]:
        seqs, mat = self._load(space, scope, generation)
        if len(seqs) == 0:
            return seqs, np.zeros(0, dtype=np.float32)
        # Exact over the whole scope: ``limit`` is only a hint for ANN indexes.
        return max_pool(seqs, mat @ query.astype(np.float32))

    def sync(self, touched: list[int], removed: list[int]) -> None:
        return None

    def rebuild(self) -> int:
        with self._lock:
            self._cache.clear()
        return 0

    def close(self) -> None:
        with self._lock:
            self._cache.clear()
