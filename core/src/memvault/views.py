"""Per-scope read caches that follow the store's change log.

Why: a search needs the scope's records in insertion order (for adjacency) and
each record's speaker; loading them per query would cost a full scan. A view is
built once and then refreshed incrementally from the store's change log — appends
and in-place edits are applied, anything else rebuilds — so reads after a write,
in this process or another, are current without reloading the scope.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace

import numpy as np

from memvault.models import MemoryRecord
from memvault.scope import Scope
from memvault.store.contract import Store


@dataclass(slots=True)
class ScopeView:
    """A scope's records in insertion order plus derived arrays, cached per generation."""

    generation: int
    records: list[MemoryRecord]
    index_of: dict[int, int]
    prev_idx: np.ndarray
    next_idx: np.ndarray
    actors: frozenset[str]
    #: each record's thread (its exact user/agent/run triple) as a small int
    thread: np.ndarray


class ViewCache:
    """Scope views keyed by scope, each tagged with the store generation it reflects."""

    def __init__(self, store: Store, max_scopes: int = 256) -> None:
        self.store = store
        self.max_scopes = max_scopes
        self._views: dict[Scope, ScopeView] = {}
        self._views_lock = threading.Lock()

    def view(self, scope: Scope, generation: int | None = None) -> ScopeView:
        """The scope's records, refreshed incrementally from the store's change log."""
        gen = self.store.generation() if generation is None else generation
        with self._views_lock:
            hit = self._views.get(scope)
        if hit is not None and hit.generation == gen:
            return hit
        v = self._refresh(hit, scope, gen) if hit is not None else None
        if v is None:
            v = self._build_view(scope, self.store.scope_records(scope), gen)
        with self._views_lock:
            if len(self._views) > self.max_scopes:
                self._views.clear()
            current = self._views.get(scope)
            if current is None or current.generation <= v.generation:
                self._views[scope] = v
        return v

    @staticmethod
    def _build_view(scope: Scope, records: list[MemoryRecord], gen: int) -> ScopeView:
        n = len(records)
        prev_idx = np.full(n, -1, dtype=np.int64)
        next_idx = np.full(n, -1, dtype=np.int64)
        thread = np.zeros(n, dtype=np.int64)
        last: dict[Scope, int] = {}
        label: dict[Scope, int] = {}
        for i, r in enumerate(records):  # a thread = the exact (user, agent, run) triple
            j = last.get(r.scope)
            if j is not None:
                prev_idx[i], next_idx[j] = j, i
            last[r.scope] = i
            thread[i] = label.setdefault(r.scope, len(label))
        return ScopeView(
            gen,
            records,
            {r.seq: i for i, r in enumerate(records)},
            prev_idx,
            next_idx,
            frozenset(r.actor_id for r in records if r.actor_id),
            thread,
        )

    def _refresh(self, old: ScopeView, scope: Scope, gen: int) -> ScopeView | None:
        """Apply the changes since ``old`` was built; None when a full reload is simpler."""
        changes = self.store.changes_since(old.generation)
        if changes is None:
            return None
        mine: dict[int, str] = {}
        for seq, op, sc in changes:
            if scope.contains(sc):
                mine[seq] = (
                    "delete"
                    if op == "delete" or mine.get(seq) == "delete"
                    else ("insert" if mine.get(seq) == "insert" else op)
                )
        if not mine:
            return replace(old, generation=gen)
        if "delete" in mine.values():
            return None
        last_seq = old.records[-1].seq if old.records else 0
        inserts = sorted(s for s, op in mine.items() if s not in old.index_of)
        if inserts and inserts[0] <= last_seq:
            return None  # out-of-order insert (a concurrent writer): rebuild
        records = list(old.records)
        fresh = {r.seq: r for r in self.store.records_by_seq(sorted(mine))}
        for seq in mine:
            i = old.index_of.get(seq)
            if i is not None and seq in fresh:
                records[i] = fresh[seq]
        records.extend(fresh[s] for s in inserts if s in fresh)
        return self._build_view(scope, records, gen)
