"""Background indexing: embed new memories after ``add`` returns (the default).

Why: with ``embedding_mode="background"`` an ``add`` costs a SQLite transaction
(~1 ms) instead of a model run (~10–20 ms on a laptop CPU): the memory, its history,
its keyword entry and a queue entry commit at once; its vector follows within moments,
computed in batches by one worker thread. A search embeds its own scope's queued
memories first (read-your-writes), so the delay is never visible in results. The queue
is a table in the store, so nothing is lost if the process stops: the next ``Memory``
on the store (or ``flush()``) finishes the work.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, wait
from typing import TYPE_CHECKING

from memvault.models import DEFAULT_SPACE

if TYPE_CHECKING:
    import numpy as np

    from memvault.embedding.base import Embedder
    from memvault.models import MemoryRecord
    from memvault.store.contract import Store
    from memvault.store.vector_index import VectorIndex

log = logging.getLogger("memvault")

#: How long an indexer owns the queued rows it took; after that (a process that died
#: mid-batch) any indexer takes them over.
LEASE_SECONDS = 60.0


class BackgroundIndexer:
    """One worker thread that embeds queued memories in batches.

    Searches embed their own scope's queued memories (read-your-writes); a claim set
    makes sure the worker and a search never embed the same memory twice in this process.
    """

    def __init__(
        self, store: Store, embedder: Embedder, index: VectorIndex, batch: int = 16
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.index = index
        self.batch = batch  # small: a search waiting on the worker waits for one batch at most
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()  # one drain at a time (worker or flush)
        self._mu = threading.Lock()  # guards _claims and starting the worker
        #: seq -> the future of the batch embedding it now (worker or a search, this process)
        self._claims: dict[int, Future[None]] = {}
        self._thread: threading.Thread | None = None

    def notify(self) -> None:
        """New work was queued: make sure the worker runs."""
        with self._mu:  # adds in several threads notify at once: start one worker only
            if not self._stop.is_set() and (self._thread is None or not self._thread.is_alive()):
                self._thread = threading.Thread(
                    target=self._run, name="memvault-indexer", daemon=True
                )
                self._thread.start()
        self._wake.set()

    def claim(
        self, records: list[MemoryRecord], limit: int | None = None
    ) -> tuple[list[MemoryRecord], Future[None], list[Future[None]]]:
        """Claim up to ``limit`` records nobody is embedding yet.

        Returns the caller's records, the future to complete with :meth:`release`, and the
        futures of the batches already embedding the others (await them, never re-embed).
        Futures rather than a lock, so an async search waits without holding a pool thread.
        """
        mine_fut: Future[None] = Future()
        with self._mu:
            others = {id(f): f for r in records if (f := self._claims.get(r.seq)) is not None}
            mine = [r for r in records if r.seq not in self._claims][:limit]
            for r in mine:
                self._claims[r.seq] = mine_fut
        return mine, mine_fut, list(others.values())

    def release(self, records: list[MemoryRecord], fut: Future[None]) -> None:
        """End a claim (done or failed): its waiters go on."""
        with self._mu:
            for r in records:
                if self._claims.get(r.seq) is fut:
                    del self._claims[r.seq]
        fut.set_result(None)

    def drain(self, *, share: bool = False) -> int:
        """Embed what is queued now, in the calling thread; returns how many.

        ``share`` (the worker): skip rows another process's indexer has leased. Without
        it (``flush()``) every queued row is taken, leased elsewhere or not.
        """
        done = 0
        with self._lock:
            while not self._stop.is_set() or threading.current_thread() is not self._thread:
                with self._mu:
                    busy = list(self._claims)
                records = self.store.lease_pending(
                    self.batch, LEASE_SECONDS, exclude=busy, steal=not share
                )
                if not records:
                    if busy and not share:  # only searches' work is left: wait for it
                        with self._mu:
                            others = list({id(f): f for f in self._claims.values()}.values())
                        wait(others, timeout=60)
                        continue
                    break
                mine, fut, others = self.claim(records, limit=self.batch)
                try:
                    if mine:
                        self.attach(mine, self.embedder.embed([r.memory for r in mine]))
                except BaseException:
                    # Give the rows back at once (a retry, or another process, takes them)
                    # instead of leaving them leased to a batch that failed.
                    self.store.unlease([r.seq for r in records])
                    raise
                finally:
                    self.release(mine, fut)
                if others and not mine:  # all of it is being embedded by searches: let them end
                    wait(others, timeout=60)
                done += len(mine)
        return done

    def attach(self, records: list[MemoryRecord], vectors: np.ndarray) -> None:
        """Store freshly computed vectors of queued memories (worker, flush or a search)."""
        with self.store.write() as tx:
            for r, v in zip(records, vectors, strict=True):
                # Skipped by the store if deleted, indexed elsewhere or edited meanwhile.
                tx.attach_vectors(r, {DEFAULT_SPACE: v})
        self.index.sync(tx.touched, tx.removed)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(timeout=1.0)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                self.drain(share=True)
            except Exception:  # logged, retried on the next wake; the queue keeps the work
                log.exception("background indexing failed; will retry")
                self._stop.wait(1.0)

    def close(self) -> None:
        """Stop the worker (queued work stays in the store for the next open or flush)."""
        with self._mu:  # no worker starts after this
            self._stop.set()
        self._wake.set()
        # The worker finishes its batch (at most ``batch`` texts) and stops. Not when
        # called from the worker itself (a finalizer run by a collection in that thread).
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=30)
