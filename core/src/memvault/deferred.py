"""Deferred adds: a durable queue of ``add`` calls to run later, kept in the store's journal.

Why: an agent hook records each finished turn in the background, debounced, so a
burst of turns becomes one ``add`` (one LLM extraction) and the reply never waits.
A queue kept in process memory loses whatever was waiting when the process exits
or crashes. Here each turn is committed to the journal (the table that already
keeps failed LLM adds and ingest progress) before ``enqueue`` returns, and a
queue is run exactly once, even across a crash:

1. ``enqueue`` writes a ``queued`` row (the messages, the scope, ``infer``);
2. ``run`` *claims* rows in one transaction, grouping them per scope into batches
   (state ``claimed``, the batch id stored on each row), then applies each batch as
   ONE ``add`` whose idempotency key is the batch id, then marks the rows ``done``;
3. after a crash, ``recover`` re-runs claimed batches under the same key (an add
   that had committed is replayed, applying nothing) and runs rows still queued.

An add whose LLM call fails is handed over to the core's own retry path: its raw
input is in the journal as a failed add (``Memory.pending()`` / ``retry_pending()``),
so the deferred rows are done. Any other error marks the rows ``failed`` with the
error (see :meth:`DeferredAdds.failed`); nothing is silently dropped.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from memvault.errors import LLMError, MemvaultError
from memvault.memory import Memory
from memvault.models import to_iso, utcnow
from memvault.scope import resolve_scope

__all__ = ["KIND", "DeferredAdds"]

log = logging.getLogger("memvault")

#: The journal kind of a deferred add row.
KIND = "deferred_add"


class DeferredAdds:
    """The durable deferred-add queue of one store, driven through a sync ``Memory``."""

    def __init__(self, memory: Memory) -> None:
        self.memory = memory
        self._store = memory._engine.store

    def enqueue(
        self,
        messages: list[dict[str, Any]],
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        run_id: str | None = None,
        infer: bool = True,
        metadata: dict[str, Any] | None = None,
    ) -> str:
        """Commit ``messages`` for a later ``add`` in this scope; returns the row's key."""
        scope, _ = resolve_scope(user_id, agent_id, run_id)
        key = f"deferred:{uuid.uuid4()}"
        payload = {
            "messages": list(messages),
            "scope": scope.as_dict(),
            "infer": infer,
            "metadata": metadata,
        }
        self._store.write_journal(key, "queued", kind=KIND, payload=payload)
        return key

    def run(self, keys: Sequence[str]) -> int:
        """Apply these queued rows (one ``add`` per scope, in enqueue order); returns how many.

        Rows another process claimed or finished meanwhile are skipped. An add that
        fails (not for its LLM) marks its rows ``failed`` and raises; batches after it
        stay claimed for :meth:`recover`.
        """
        batches = self._claim(keys)
        for batch, rows in batches.items():
            self._apply(batch, rows)
        return sum(len(rows) for rows in batches.values())

    def recover(self, older_than: float = 0.0) -> int:
        """Finish what a stopped process left: its claimed batches, then queued rows.

        ``older_than`` (seconds) leaves rows younger than that to the live process
        that is still debouncing them. Returns how many rows were applied.
        """
        cutoff = to_iso(datetime.fromisoformat(utcnow()) - timedelta(seconds=older_than))
        claimed: dict[str, list[dict[str, Any]]] = {}
        for row in self._store.journal_rows(KIND, ("claimed",)):
            if row["updated_at"] <= cutoff:
                claimed.setdefault(row["batch_id"], []).append(row)
        for batch, rows in claimed.items():
            self._apply(batch, rows)
        queued = self._store.journal_rows(KIND, ("queued",))
        stale = [r["key"] for r in queued if r["created_at"] <= cutoff]
        return sum(len(rows) for rows in claimed.values()) + self.run(stale)

    def pending(self) -> list[dict[str, Any]]:
        """Rows not applied yet (queued or claimed), oldest first."""
        return self._store.journal_rows(KIND, ("queued", "claimed"))

    def failed(self) -> list[dict[str, Any]]:
        """Rows whose add failed for a reason other than the LLM (with the error)."""
        return self._store.journal_rows(KIND, ("failed",))

    # -- internals ----------------------------------------------------------------------------
    def _claim(self, keys: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        groups: dict[tuple[str, bool, str], list[dict[str, Any]]] = {}
        with self._store.write() as tx:  # one writer at a time: a row is claimed once
            states = self._store.journal_states(list(keys))
            for key in keys:
                if states.get(key) != "queued":
                    continue
                row = self._store.journal_get(key)
                if row is None:
                    continue
                p = row["payload"]
                scope = repr(sorted(p["scope"].items()))
                groups.setdefault((scope, bool(p["infer"]), repr(p["metadata"])), []).append(row)
            batches: dict[str, list[dict[str, Any]]] = {}
            for rows in groups.values():
                digest = hashlib.sha256("|".join(r["key"] for r in rows).encode()).hexdigest()
                batch = f"deferred-batch:{digest[:40]}"
                for row in rows:
                    tx.journal(row["key"], "claimed", kind=KIND, batch_id=batch)
                batches[batch] = rows
        return batches

    def _apply(self, batch: str, rows: list[dict[str, Any]]) -> None:
        rows = sorted(rows, key=lambda r: (r["created_at"], r["key"]))
        p = rows[0]["payload"]
        messages = [m for r in rows for m in r["payload"]["messages"]]
        failure: MemvaultError | None = None
        try:
            self.memory.add(
                messages,
                **p["scope"],
                infer=p["infer"],
                metadata=p["metadata"],
                idempotency_key=batch,
            )
        except LLMError as e:  # its input is kept as a failed add: Memory.pending()
            log.warning("deferred add: LLM failed (%s); kept for Memory.retry_pending()", e)
        except MemvaultError as e:
            failure = e
        with self._store.write() as tx:
            for row in rows:
                error = None if failure is None else f"{type(failure).__name__}: {failure}"
                tx.journal(
                    row["key"], "done" if failure is None else "failed", kind=KIND, error=error
                )
        if failure is not None:
            raise failure
