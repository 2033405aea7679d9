"""Apply guarded decisions to the store: one transaction, superseding, never destroying."""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from memvault.llm.client import Completion
from memvault.models import ACTIVE, SUPERSEDED, MemoryRecord, content_hash, utcnow
from memvault.scope import Scope
from memvault.write.decisions import Decision

if TYPE_CHECKING:
    from memvault.engine import Engine


def apply_decisions(
    engine: Engine,
    scope: Scope,
    decisions: list[Decision],
    vecs: np.ndarray,
    completion: Completion,
    *,
    meta: dict[str, Any],
    observed: str,
    expires: str | None,
    categories: list[str],
    importance: float | None,
    changed_by: str,
    journal_key: str,
    payload: dict[str, Any],
    defer_dims: int | None = None,
) -> dict[str, Any]:
    """Apply the model's decisions, its usage and the journal mark in ONE transaction.

    ``vecs`` holds the new texts' vectors in order, or is None when they are queued for
    background indexing (``defer_dims`` = the embedder's width, checked against the store).
    """
    now = utcnow()
    results: list[dict[str, Any]] = []
    vec_iter = iter(vecs if vecs is not None else ())
    deferred = False
    with engine.store.write() as tx:
        done = engine.store.journal_get(journal_key)
        if done is not None and done["state"] == "done":  # applied already (a replay)
            return {"results": done["result"] or [], "usage": {}, "replayed": True}
        for d in decisions:
            wants_vec = vecs is not None and d.event in ("ADD", "UPDATE") and bool(d.text)
            vec = next(vec_iter) if wants_vec else None
            old = engine.store.get(d.target.id) if d.target is not None else None
            if old is not None and old.state != ACTIVE:
                old = None  # superseded meanwhile (a concurrent add): treat as new
            if d.event == "NONE":
                results.append(
                    {
                        "id": d.target.id if d.target else None,
                        "memory": d.target.memory if d.target else None,
                        "event": "NONE",
                    }
                )
                continue
            if d.event == "DELETE":
                if old is None:
                    continue
                gone = replace(old, state=SUPERSEDED, valid_to=observed, updated_at=now)
                tx.update(gone, text_changed=False)
                tx.history("INVALIDATE", memory_id=old.id, old=old, new=gone, changed_by=changed_by)
                results.append({"id": old.id, "memory": old.memory, "event": "DELETE"})
                continue
            text = d.text or ""
            dup = engine.store.find_active(scope, content_hash(text))
            if dup is not None and (old is None or dup.id != old.id):
                results.append({"id": dup.id, "memory": dup.memory, "event": "NONE"})
                continue
            new = MemoryRecord(
                id=str(uuid.uuid4()),
                memory=text,
                scope=scope,
                hash=content_hash(text),
                metadata=dict(meta),
                created_at=now,
                updated_at=now,
                role="assistant" if (d.attributed_to or "").lower() == "assistant" else "user",
                actor_id=d.attributed_to
                if d.attributed_to and d.attributed_to.lower() not in ("user", "assistant")
                else None,
                categories=[*categories, "verbatim"] if d.verbatim else list(categories),
                importance=importance,
                valid_from=observed,
                expiration_date=expires,
            )
            seq = tx.insert(new, {"default": vec} if vec is not None else None)
            if vec is None and defer_dims is not None:
                tx.defer_vectors(seq, defer_dims)
                deferred = True
            if d.event == "UPDATE" and old is not None:
                superseded = replace(
                    old, state=SUPERSEDED, valid_to=observed, superseded_by=new.id, updated_at=now
                )
                tx.update(superseded, text_changed=False)
                tx.history(
                    "SUPERSEDE",
                    memory_id=old.id,
                    old=old,
                    new=new,
                    changed_by=changed_by,
                    related_id=new.id,
                )
                tx.history(
                    "ADD",
                    memory_id=new.id,
                    old=old,
                    new=new,
                    changed_by=changed_by,
                    related_id=old.id,
                )
                results.append(
                    {
                        "id": new.id,
                        "memory": text,
                        "event": "UPDATE",
                        "previous_id": old.id,
                        "previous_memory": old.memory,
                    }
                )
            else:
                tx.history("ADD", memory_id=new.id, old=None, new=new, changed_by=changed_by)
                results.append({"id": new.id, "memory": text, "event": "ADD"})
        usage = completion.usage.as_dict()
        tx.usage("add", completion.model, usage)
        tx.journal(journal_key, "done", result=results, payload=payload)
    engine.index.sync(tx.touched, tx.removed)
    if deferred:
        engine.indexer.notify()
    return {"results": results, "usage": usage}
