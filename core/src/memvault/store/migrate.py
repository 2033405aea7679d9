"""Copy a whole store into another backend (``memvault migrate --to ...``).

Why through the contract and not through a JSONL export: both ends are stores, so the
copy keeps everything an export leaves out or recomputes — the memories' insertion
order (adjacency in retrieval), every vector of every space without re-embedding, the
background-indexing queue, the journal (idempotency keys and ingest progress keep
working after the move) and LLM usage — and it needs no embedder at all.

The target must be empty (a half-finished copy is reset and re-run: see
:func:`copy_store`). Reads come from one snapshot of the source, so writers may keep
using it, but what they write after the snapshot is not copied.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from itertools import islice
from typing import Any, TypeVar

from memvault.errors import StorageError
from memvault.models import DEFAULT_SPACE
from memvault.scope import Scope
from memvault.store.contract import Store

T = TypeVar("T")
BATCH = 500


def _chunks(items: Iterator[T], n: int) -> Iterator[list[T]]:
    while chunk := list(islice(items, n)):
        yield chunk


def open_location(where: str, **kw: Any) -> Store:
    """A store from a location: a ``postgres://`` / ``postgresql://`` DSN, else a file path."""
    if where.startswith(("postgres://", "postgresql://")):
        from memvault.store.postgres import PostgresStore

        return PostgresStore(where, **kw)
    from memvault.store.sqlite import SQLiteStore

    return SQLiteStore(where)  # type: ignore[return-value]


def copy_store(
    src: Store, dst: Store, *, progress: Callable[[int], None] | None = None
) -> dict[str, int]:
    """Copy every memory, vector, space, queue entry, history row and journal row.

    Returns counts. Refuses a target that already holds memories or history, so a copy
    never merges two stores by accident; an interrupted copy is committed in batches, so
    ``dst.reset()`` (``--force``) and a re-run finish it.
    """
    if next(iter(dst.iter_all()), None) is not None or dst.has_history():
        raise StorageError(
            f"the target store {dst.location} is not empty; migrate into a new store "
            "(or pass --force to empty it first)"
        )
    counts = {"memories": 0, "vectors": 0, "queued": 0, "history": 0, "journal": 0}
    with src.snapshot():
        for name, (dims, model) in sorted(src.spaces().items()):
            dst.register_space(name, dims, model)
        queued = {r.seq for r in src.pending_in_scope(Scope())}
        default_dims = (src.spaces().get(DEFAULT_SPACE) or (0, None))[0]
        for chunk in _chunks(src.iter_all(), BATCH):
            old_seqs = [r.seq for r in chunk]
            vectors = [src.all_vectors(s) or None for s in old_seqs]
            with dst.write() as tx:
                tx.insert_many(chunk, vectors)  # sets each r.seq to the target's
                for old_seq, r, v in zip(old_seqs, chunk, vectors, strict=True):
                    counts["vectors"] += sum(len(m) for m in (v or {}).values())
                    if old_seq in queued and default_dims:
                        tx.defer_vectors(r.seq, default_dims)
                        counts["queued"] += 1
            counts["memories"] += len(chunk)
            if progress is not None:
                progress(len(chunk))
        for rows in _chunks(src.history_rows(), BATCH):
            with dst.write() as tx:
                outcomes = tx.import_history_many(rows)
                counts["history"] += sum(o != "duplicate" for o in outcomes)
        for rows in _chunks(iter(src.journal_all()), BATCH):
            with dst.write() as tx:
                for j in rows:
                    tx.restore_journal(j)
            counts["journal"] += len(rows)
    return counts
