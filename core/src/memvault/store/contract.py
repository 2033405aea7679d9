"""The storage contract: what the engine may ask of a store, and nothing else.

Why a contract: the engine, the indexer, import/export and the adapters used to call
one SQLite class (and some of its SQL) directly, so there could be no other store.
Everything they need is here as typed operations; a backend (``store/sqlite.py``,
``store/postgres.py``) implements them and passes one conformance suite
(``tests/store``). The engine picks a backend by config in one place
(:func:`memvault.store.open_store`).

Shape: reads are methods of :class:`Store`; every write happens inside
``with store.write() as tx`` — one atomic transaction that also bumps the store's
*generation* and logs which rows changed (the per-scope caches follow that log).
Reads made by the same thread inside ``write()`` see the transaction's own writes and
run under its write lock, so read-check-write sequences (dedup, keyed puts) are safe
across threads, processes and hosts.

Records carry a store-assigned ``seq`` (insertion order, used for adjacency); ids are
UUID strings. Times are fixed-width ISO-8601 UTC strings on every backend.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from memvault.models import ACTIVE, MemoryRecord
from memvault.scope import Scope

#: (seq, op, scope) rows of the change log; op: insert, update, revector, delete.
Change = tuple[int, str, Scope]


@dataclass(slots=True)
class Visibility:
    """Which versions of memories a read sees (see docs/concepts.md#time)."""

    include_superseded: bool = False
    as_of: str | None = None
    show_expired: bool = False

    def visible(self, r: MemoryRecord, now: str) -> bool:
        if not self.show_expired and r.expiration_date is not None and r.expiration_date <= now:
            return False
        if self.as_of is not None:
            start = r.valid_from or r.created_at
            return start <= self.as_of and (r.valid_to is None or r.valid_to > self.as_of)
        return self.include_superseded or r.state == ACTIVE


class Tx(Protocol):
    """The writes valid inside one ``Store.write()`` transaction."""

    #: seqs whose vectors changed / memories removed (for an external index's sync).
    touched: list[int]
    removed: list[int]

    def insert(self, r: MemoryRecord, vectors: dict[str, np.ndarray] | None = None) -> int:
        """Store a new memory (+ its keyword entry, + vectors); sets and returns ``r.seq``."""
        ...

    def insert_many(
        self,
        records: Sequence[MemoryRecord],
        vectors: Sequence[dict[str, np.ndarray] | None],
    ) -> list[int]:
        """:meth:`insert` for each record (with its vectors, or None), in order; the seqs.

        The bulk path (a store copy): a server backend writes the batch in a few round
        trips instead of one per row.
        """
        ...

    def update(
        self, r: MemoryRecord, *, text_changed: bool, vectors: dict[str, np.ndarray] | None = None
    ) -> None:
        """Rewrite a memory's mutable columns (keyword entry too if the text changed)."""
        ...

    def delete(self, r: MemoryRecord) -> None:
        """Remove a memory, its vectors, keyword entry and queue entry (no history row)."""
        ...

    def remove(self, r: MemoryRecord, changed_by: str | None) -> None:
        """Delete a memory and record the DELETE (its history survives it)."""
        ...

    def clear_vectors(self, r: MemoryRecord) -> None:
        """Drop every vector of a memory (it is then found by keyword only)."""
        ...

    def touch(self, seqs: Sequence[int], now: str) -> None:
        """Record an access: last_accessed_at = now, and a TTL restarts from now."""
        ...

    def defer_vectors(self, seq: int, dims: int) -> None:
        """Queue a memory for background embedding (checks the default space's width)."""
        ...

    def attach_vectors(self, r: MemoryRecord, vectors: dict[str, np.ndarray]) -> bool:
        """Give a queued memory its vectors if it is still queued with the same text.

        False (nothing written) when it was deleted, indexed elsewhere or edited meanwhile:
        a vector of the old text must never land on the new one.
        """
        ...

    def history(
        self,
        event: str,
        *,
        memory_id: str,
        old: MemoryRecord | None,
        new: MemoryRecord | None,
        changed_by: str | None = None,
        related_id: str | None = None,
        at: str | None = None,
    ) -> None:
        """Append an audit row for a change made in this transaction."""
        ...

    def import_history(self, row: dict[str, Any], *, keep_id: bool = True) -> str:
        """Add an exported history row unless the same change is already there.

        Returns ``"duplicate"`` (skipped), ``"added"``, or ``"renumbered"`` (added under a
        new id because ``row["id"]`` is taken). With ``keep_id`` a free ``row["id"]`` is kept,
        so a restore gives back identical rows.
        """
        ...

    def import_history_many(
        self, rows: Sequence[dict[str, Any]], *, keep_id: bool = True
    ) -> list[str]:
        """:meth:`import_history` for each row, in order (the bulk path of a store copy)."""
        ...

    def journal(
        self,
        key: str,
        state: str,
        *,
        result: Any = None,
        error: str | None = None,
        kind: str = "add",
        payload: Any = None,
        batch_id: str | None = None,
    ) -> None:
        """Set a journal row's state (creating it) — exactly-once ingest and idempotency."""
        ...

    def restore_journal(self, row: dict[str, Any]) -> None:
        """Insert a stored journal row as it is (a store copy); an existing key is kept."""
        ...

    def usage(self, op: str, model: str | None, usage: dict[str, int]) -> None:
        """Record LLM token usage with the change it paid for."""
        ...


@runtime_checkable
class Store(Protocol):
    """A memvault store. Thread-safe; shareable by processes (and hosts, for servers)."""

    #: Where the store lives, for messages and ``stats()`` (a path, or a DSN without secrets).
    location: str
    #: Set by an external vector index (Chroma) so changes are queued for it in the outbox.
    outbox_enabled: bool
    #: Model names recorded when a vector space is created (space -> embedder name).
    space_models: dict[str, str]

    # -- transactions and the change log ------------------------------------------------------
    def write(self) -> AbstractContextManager[Tx]:
        """One atomic write transaction; bumps the generation and logs what changed."""
        ...

    def snapshot(self) -> AbstractContextManager[None]:
        """Reads by this thread inside the block see one consistent state (export)."""
        ...

    def generation(self) -> int: ...

    def changes_since(self, gen: int) -> list[Change] | None:
        """What changed after generation ``gen``; None when the log no longer reaches back."""
        ...

    def close(self) -> None: ...

    # -- records ----------------------------------------------------------------------------------
    def get(self, memory_id: str) -> MemoryRecord | None: ...

    def get_many(self, ids: Sequence[str]) -> list[MemoryRecord]: ...

    def records_by_seq(self, seqs: Sequence[int]) -> list[MemoryRecord]:
        """In seq order."""
        ...

    def scope_records(self, scope: Scope) -> list[MemoryRecord]:
        """Every stored version in ``scope`` (all states), oldest first."""
        ...

    def iter_all(self) -> Iterator[MemoryRecord]:
        """Every memory, oldest first."""
        ...

    def find_active(self, scope: Scope, hash_: str, *, exact: bool = True) -> MemoryRecord | None:
        """An active memory with this text hash in exactly this scope (or within it)."""
        ...

    def find_key(self, scope: Scope, namespace: Sequence[str], key: str) -> MemoryRecord | None:
        """The active memory stored under (namespace, key) in exactly this scope."""
        ...

    def expired(self, now: str, scope: Scope) -> list[MemoryRecord]:
        """Memories in ``scope`` (any scope if empty) whose expiration_date has passed."""
        ...

    def seq_scopes(self, seqs: Sequence[int]) -> dict[int, tuple[str, Scope]]:
        """(memory id, scope) of live memories by seq."""
        ...

    # -- keyword index ----------------------------------------------------------------------------
    def scope_terms(self, scope: Scope) -> dict[int, list[str]]:
        """seq -> analysed terms (as stored for the keyword index) of every memory in ``scope``.

        What a search's in-memory BM25 index of the scope is built from, once per view
        (:class:`memvault.bm25.KeywordIndex`); one read of the scope's own rows.
        """
        ...

    def rebuild_keyword_index(self) -> int:
        """Recreate the keyword index from the memories (derived data); returns rows."""
        ...

    # -- vectors and vector spaces ----------------------------------------------------------------
    def spaces(self) -> dict[str, tuple[int, str | None]]:
        """space -> (dims, model)."""
        ...

    def space_dims(self, space: str) -> int | None: ...

    def register_space(self, space: str, dims: int, model: str | None) -> None:
        """Create a space; refuse (DimensionMismatchError) another width for an existing one."""
        ...

    def spaces_used(self, scope: Scope) -> dict[str, int]:
        """Spaces (name -> dims) holding vectors of the scope's memories (all if no scope)."""
        ...

    def vectors(self, space: str, scope: Scope) -> tuple[np.ndarray, np.ndarray]:
        """(seqs, float32 matrix), one row per vector, in (seq, idx) order."""
        ...

    def vectors_by_seq(self, space: str, seqs: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """Like :meth:`vectors`, for these memories."""
        ...

    def vectors_for(self, space: str, seqs: Sequence[int]) -> dict[int, np.ndarray]:
        """seq -> that memory's vectors in ``space`` (one row each)."""
        ...

    def all_vectors(self, seq: int) -> dict[str, np.ndarray]:
        """space -> one memory's vectors."""
        ...

    def vector_count(self) -> int:
        """Memories that have at least one vector."""
        ...

    # -- history ----------------------------------------------------------------------------------
    def history(self, memory_id: str) -> list[dict[str, Any]]:
        """One memory's audit rows, oldest first, in the public (mem0) shape."""
        ...

    def history_rows(self, memory_id: str | None = None) -> Iterator[dict[str, Any]]:
        """Stored history rows (every column, JSON as text) by id: one memory's, or all."""
        ...

    def has_history(self) -> bool: ...

    # -- background-indexing queue ----------------------------------------------------------------
    def lease_pending(
        self, limit: int, lease_s: float, *, exclude: Sequence[int] = (), steal: bool = False
    ) -> list[MemoryRecord]:
        """Take up to ``limit`` queued memories for ``lease_s`` seconds, oldest first.

        Rows leased by another indexer are skipped unless ``steal``; ``exclude`` are rows
        the caller already works on. Committed at once, so every process sees the lease.
        """
        ...

    def unlease(self, seqs: Sequence[int]) -> None: ...

    def still_queued(self, records: list[MemoryRecord]) -> list[MemoryRecord]: ...

    def pending_in_scope(self, scope: Scope) -> list[MemoryRecord]:
        """The scope's memories still waiting for vectors, oldest first."""
        ...

    def pending_count(self) -> int: ...

    # -- journal, usage ---------------------------------------------------------------------------
    def journal_get(self, key: str) -> dict[str, Any] | None: ...

    def journal_rows(self, kind: str, states: Sequence[str]) -> list[dict[str, Any]]: ...

    def journal_states(self, keys: Sequence[str]) -> dict[str, str]: ...

    def write_journal(self, key: str, state: str, **kw: Any) -> None:
        """A journal update in a transaction of its own (e.g. recording a failure)."""
        ...

    def journal_all(self) -> Iterator[dict[str, Any]]:
        """Every stored journal row (JSON columns as text), for a store copy."""
        ...

    def usage_totals(self) -> dict[str, int]: ...

    # -- outbox (external index sync) -------------------------------------------------------------
    def outbox(self, limit: int = 1000) -> list[tuple[int, int, str, str]]:
        """(outbox id, seq, memory id, op) changes not yet applied to the external index."""
        ...

    def ack_outbox(self, ids: Sequence[int]) -> None: ...

    # -- maintenance ------------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]: ...

    def reset(self) -> None:
        """Delete everything (memories, vectors, spaces, history, journal, queue)."""
        ...
