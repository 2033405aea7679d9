"""Background indexing: embed raw memories after ``add`` returns (opt-in).

Why: with ``embedding_mode="background"`` a raw ``add`` costs a SQLite transaction
(~1 ms) instead of a model run (~10–20 ms on a laptop CPU): the memory, its history
and its keyword entry commit at once and it is found by keyword search immediately;
its vector follows within moments, computed in batches by one worker thread. The
queue is a table in the store, so nothing is lost if the process stops: the next
``Memory`` on the store (or ``flush()``) finishes the work.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from memvault.models import DEFAULT_SPACE

if TYPE_CHECKING:
    from memvault.embedding.base import Embedder
    from memvault.store.sqlite import SQLiteStore
    from memvault.store.vector_index import VectorIndex

log = logging.getLogger("memvault")


class BackgroundIndexer:
    """One worker thread that embeds queued memories in batches."""

    def __init__(
        self, store: SQLiteStore, embedder: Embedder, index: VectorIndex, batch: int = 64
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.index = index
        self.batch = batch
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()  # one drain at a time (worker or flush)
        self._thread: threading.Thread | None = None

    def notify(self) -> None:
        """New work was queued: make sure the worker runs."""
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="memvault-indexer", daemon=True)
            self._thread.start()
        self._wake.set()

    def drain(self) -> int:
        """Embed everything queued now, in the calling thread; returns how many."""
        done = 0
        with self._lock:
            while not self._stop.is_set() or threading.current_thread() is not self._thread:
                records = self.store.pending_vectors(self.batch)
                if not records:
                    break
                vecs = self.embedder.embed([r.memory for r in records])
                with self.store.write() as tx:
                    for r, v in zip(records, vecs, strict=True):
                        # Deleted (or indexed by another process) while we embedded: skip.
                        if tx.conn.execute(
                            "SELECT 1 FROM pending_vectors WHERE seq = ?", (r.seq,)
                        ).fetchone():
                            tx.attach_vectors(r, {DEFAULT_SPACE: v})
                self.index.sync(tx.touched, tx.removed)
                done += len(records)
        return done

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(timeout=1.0)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                self.drain()
            except Exception:  # logged, retried on the next wake; the queue keeps the work
                log.exception("background indexing failed; will retry")
                self._stop.wait(1.0)

    def close(self) -> None:
        """Stop the worker (queued work stays in the store for the next open or flush)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
