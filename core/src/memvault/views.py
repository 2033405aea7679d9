"""Per-scope read caches that follow the store's change log.

Why: a search needs the scope's records in insertion order (for adjacency) and
each record's speaker; loading them per query would cost a full scan. A view is
built once and then refreshed incrementally from the store's change log — appends
and in-place edits are applied, anything else rebuilds — so reads after a write,
in this process or another, are current without reloading the scope.

A view also carries the scope's search indexes (keyword postings, entity graph),
built on first use and kept with the view: a view is immutable, so an index built
for it stays valid for as long as the view is the scope's current one.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt

from memvault import entities
from memvault.bm25 import KeywordIndex
from memvault.models import ACTIVE, MemoryRecord
from memvault.scope import Scope
from memvault.store.contract import Store, Visibility
from memvault.text import analyze


@dataclass(slots=True)
class ScopeView:
    """A scope's records in insertion order plus derived arrays, cached per generation.

    ``keywords`` / ``entity_graph`` build the scope's search indexes on first use. Two
    threads may race to build one; both build the same thing and either may be kept.
    """

    generation: int
    records: list[MemoryRecord]
    index_of: dict[int, int]
    prev_idx: np.ndarray
    next_idx: np.ndarray
    actors: frozenset[str]
    #: each record's thread (its exact user/agent/run triple) as a small int
    thread: np.ndarray
    seqs: npt.NDArray[np.int64]  # per record, ascending (records are in seq order)
    scope: Scope = field(default_factory=Scope)
    _keywords: KeywordIndex | None = None
    _entities: entities.ScopeIndex | None = None
    _active: np.ndarray | None = None  # per record: state == active
    _expiring: tuple[np.ndarray, np.ndarray] | None = None  # (indices, expiration dates)
    _actor_rows: dict[str, np.ndarray] | None = None  # actor id -> record indices

    def visible(self, vis: Visibility, now: str) -> npt.NDArray[np.bool_]:
        """Per record: ``vis.visible(record, now)``, from arrays kept with the view.

        Why: a Python call per record was the largest cost left in a warm search of a
        500-memory scope. Only ``as_of`` reads (rare) still test record by record.
        """
        if vis.as_of is not None:
            return np.fromiter(
                (vis.visible(r, now) for r in self.records), dtype=bool, count=len(self.records)
            )
        if self._active is None:
            self._active = np.fromiter(
                (r.state == ACTIVE for r in self.records), dtype=bool, count=len(self.records)
            )
        mask = np.ones(len(self.records), dtype=bool) if vis.include_superseded else self._active
        mask = mask.copy()
        if not vis.show_expired:
            if self._expiring is None:
                rows = [i for i, r in enumerate(self.records) if r.expiration_date is not None]
                self._expiring = (
                    np.asarray(rows, dtype=np.int64),
                    np.asarray([self.records[i].expiration_date for i in rows], dtype=str),
                )
            rows, when = self._expiring
            if len(rows):
                mask[rows[when <= now]] = False  # ISO strings of one width: text order = time
        return mask

    def actor_rows(self, actor: str) -> npt.NDArray[np.int64]:
        """Indices of the records whose ``actor_id`` is ``actor``."""
        if self._actor_rows is None:
            rows: dict[str, list[int]] = {}
            for i, r in enumerate(self.records):
                if r.actor_id:
                    rows.setdefault(r.actor_id, []).append(i)
            self._actor_rows = {a: np.asarray(ix, dtype=np.int64) for a, ix in rows.items()}
        return self._actor_rows.get(actor, np.zeros(0, dtype=np.int64))

    def rows_of(
        self, seqs: npt.NDArray[np.int64]
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
        """(record index, found) per seq: where each seq sits in the view, if it does."""
        if not len(self.seqs):
            return np.zeros(len(seqs), dtype=np.int64), np.zeros(len(seqs), dtype=bool)
        rows = np.minimum(np.searchsorted(self.seqs, seqs), len(self.seqs) - 1)
        return rows, self.seqs[rows] == seqs

    def keywords(self, store: Store) -> KeywordIndex:
        """The BM25 postings of the records, from the terms the store keeps for them."""
        index = self._keywords
        if index is None:
            terms = store.scope_terms(self.scope)
            # A record the store has no terms for (written since the view was read) is an
            # empty document until the next view; terms of seqs outside the view are ignored.
            index = KeywordIndex.build([terms.get(r.seq, []) for r in self.records])
            self._keywords = index
        return index

    def entity_graph(self) -> entities.ScopeIndex:
        """The entity graph and observation days of the records (see :mod:`memvault.entities`)."""
        index = self._entities
        if index is None:
            index = self._entities = entities.build(self.records)
        return index


class ViewCache:
    """Scope views keyed by scope, each tagged with the store generation it reflects.

    Holds the ``max_scopes`` most recently used scopes: a service with many users keeps
    its active ones warm while a stream of one-off scopes only evicts the coldest.
    """

    def __init__(self, store: Store, max_scopes: int = 256) -> None:
        self.store = store
        self.max_scopes = max_scopes
        self._views: OrderedDict[Scope, ScopeView] = OrderedDict()
        self._views_lock = threading.Lock()

    def view(self, scope: Scope, generation: int | None = None) -> ScopeView:
        """The scope's records, refreshed incrementally from the store's change log."""
        gen = self.store.generation() if generation is None else generation
        with self._views_lock:
            hit = self._views.get(scope)
            if hit is not None:
                self._views.move_to_end(scope)
        if hit is not None and hit.generation == gen:
            return hit
        v = self._refresh(hit, scope, gen) if hit is not None else None
        if v is None:
            v = self._build_view(scope, self.store.scope_records(scope), gen)
        with self._views_lock:
            current = self._views.get(scope)
            if current is None or current.generation <= v.generation:
                self._views[scope] = v
                self._views.move_to_end(scope)
            while len(self._views) > self.max_scopes:
                self._views.popitem(last=False)
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
            np.fromiter((r.seq for r in records), dtype=np.int64, count=n),
            scope,
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
            return replace(old, generation=gen)  # same records: the derived arrays stay valid
        if "delete" in mine.values():
            return None
        last_seq = old.records[-1].seq if old.records else 0
        inserts = sorted(s for s, op in mine.items() if s not in old.index_of)
        if inserts and inserts[0] <= last_seq:
            return None  # out-of-order insert (a concurrent writer): rebuild
        records = list(old.records)
        fresh = {r.seq: r for r in self.store.records_by_seq(sorted(mine))}
        edited = False
        for seq in mine:
            i = old.index_of.get(seq)
            if i is not None and seq in fresh:
                edited = edited or fresh[seq].memory != records[i].memory
                records[i] = fresh[seq]
        added = [fresh[s] for s in inserts if s in fresh]
        records.extend(added)
        view = self._build_view(scope, records, gen)
        if old._keywords is not None and not edited:
            # Appends only (metadata edits keep the text): extend the postings with the new
            # records' terms, analysed here as the store analysed them on insert.
            view._keywords = old._keywords.extend([analyze(r.memory) for r in added])
        if old._entities is not None and not mine.keys() & old.index_of.keys():
            # Appends only (an edit may change the text, the speaker or the dates it reads).
            view._entities = entities.extend(old._entities, records)
        return view
