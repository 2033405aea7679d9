"""The LLM write path: extract facts and reconcile them — superseding, never destroying.

One LLM call per ``add`` sees the new messages and the most similar memories of
the same scope and answers ADD / UPDATE / DELETE / NONE per fact. UPDATE and
DELETE *supersede*: the old memory stays with ``valid_to`` and ``superseded_by``
(history event ``SUPERSEDE`` / ``INVALIDATE``), the new one starts at the
observation time, so ``search(as_of=...)`` can answer "what did we know then".

If the call fails or its output cannot be parsed, ``LLMError`` is raised and the
raw input is kept in the journal (state ``failed``): ``Memory.pending()`` lists
it and ``Memory.retry_pending()`` runs it again — nothing is lost.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from memvault.effects import Blocking, Embed, Op
from memvault.errors import LLMError
from memvault.llm.client import Completion
from memvault.llm.parse import extract_json
from memvault.llm.prompts import (
    EXTRACTION_PROMPT,
    PROCEDURAL_PROMPT,
    Existing,
    build_extraction_input,
    build_procedural_input,
)
from memvault.models import ACTIVE, SUPERSEDED, MemoryRecord, content_hash, utcnow
from memvault.scope import Scope
from memvault.store.sqlite import Visibility

if TYPE_CHECKING:
    from memvault.engine import Engine
    from memvault.inputs import Message

log = logging.getLogger("memvault")

EVENTS = ("ADD", "UPDATE", "DELETE", "NONE")
#: How many similar memories the model sees (mem0 uses 10 too).
CONTEXT_MEMORIES = 10


@dataclass(slots=True)
class Decision:
    event: str
    text: str | None
    target: MemoryRecord | None
    attributed_to: str | None


def journal_key(scope: Scope, messages: list[Message], extra: str = "") -> str:
    """Idempotency key: content hash + scope (the same input in the same scope = same key)."""
    h = hashlib.sha256()
    h.update(json.dumps(scope.as_dict(), sort_keys=True).encode())
    for m in messages:
        h.update(f"\x1e{m.role}\x1f{m.name or ''}\x1f{m.timestamp or ''}\x1f{m.content}".encode())
    h.update(extra.encode())
    return h.hexdigest()


def speaker(m: Message) -> str:
    return m.name or m.role


def parse_decisions(raw: str, shown: dict[str, MemoryRecord]) -> list[Decision]:
    """Validate the model's answer. Unknown ids degrade safely, never destructively."""
    data = extract_json(raw)
    items = data.get("memories", data.get("facts"))
    if not isinstance(items, list):
        raise LLMError("the LLM answer has no 'memories' list", raw_output=raw)
    out = []
    for item in items:
        if isinstance(item, str):  # a bare fact list is read as ADDs
            item = {"event": "ADD", "text": item}
        if not isinstance(item, dict):
            raise LLMError(f"unexpected item in 'memories': {item!r}", raw_output=raw)
        event = str(item.get("event", "ADD")).upper()
        if event not in EVENTS:
            raise LLMError(f"unknown event {event!r} in the LLM answer", raw_output=raw)
        text = item.get("text")
        text = text.strip() if isinstance(text, str) and text.strip() else None
        target = shown.get(str(item.get("id"))) if item.get("id") is not None else None
        who = item.get("attributed_to")
        if event in ("ADD", "UPDATE") and text is None:
            raise LLMError(f"{event} without text in the LLM answer", raw_output=raw)
        if event == "UPDATE" and target is None:
            event = "ADD"  # refers to nothing we showed: keep the fact, touch nothing
        if event in ("DELETE", "NONE") and target is None:
            log.warning("LLM answered %s for an unknown id %r; ignored", event, item.get("id"))
            continue
        out.append(Decision(event, text, target, str(who) if who else None))
    return out


def infer_add(
    engine: Engine,
    *,
    scope: Scope,
    messages: list[Message],
    meta: dict[str, Any],
    observed: str | None,
    expires: str | None,
    categories: list[str],
    importance: float | None,
    changed_by: str | None,
    prompt: str | None,
    memory_type: str | None,
    key: str | None = None,
) -> Op[dict[str, Any]]:
    """The whole LLM add as one operation (see module docstring)."""
    llm = engine.llm
    assert llm is not None
    key = key or journal_key(scope, messages, memory_type or "")
    when = max((m.timestamp for m in messages if m.timestamp), default=None) or observed
    observed_at = when or utcnow()
    convo = [(speaker(m), m.content) for m in messages]
    payload = {
        "scope": scope.as_dict(),
        "messages": [
            {"role": m.role, "name": m.name, "content": m.content, "timestamp": m.timestamp}
            for m in messages
        ],
        "metadata": meta,
        "timestamp": observed,
        "memory_type": memory_type,
    }

    if memory_type == "procedural_memory":
        system, user, shown = PROCEDURAL_PROMPT, build_procedural_input(convo, observed_at), {}
    else:
        query = "\n".join(text for _, text in convo)
        shown = yield Blocking(_all_if_few, (engine, scope))
        if shown is None:  # more than the prompt shows: rank them against the new messages
            yield from engine.index_queued(scope)
            qvec = (yield Embed(engine.embedder, [query[:4000]], kind="query"))[0]
            shown = yield Blocking(_similar, (engine, scope, query, qvec))
        custom = prompt or engine.config.custom_instructions
        system = engine.config.custom_fact_extraction_prompt or EXTRACTION_PROMPT
        user = build_extraction_input(
            messages=convo,
            existing=[Existing(k, r.memory) for k, r in shown.items()],
            observed=observed_at,
            custom=custom,
        )
    try:
        completion: Completion = yield llm.call(system, user)
        if memory_type == "procedural_memory":
            data = extract_json(completion.text)
            summary = data.get("summary")
            if not isinstance(summary, str) or not summary.strip():
                raise LLMError("the LLM answer has no 'summary'", raw_output=completion.text)
            decisions = [Decision("ADD", summary.strip(), None, None)]
        else:
            decisions = parse_decisions(completion.text, shown)
    except LLMError as e:
        # Keep the raw input so nothing is lost; retry_pending() replays it.
        yield Blocking(
            engine.store.write_journal,
            (key, "failed"),
            {"error": str(e), "payload": payload, "kind": "add"},
        )
        raise
    texts = [d.text for d in decisions if d.event in ("ADD", "UPDATE") and d.text]
    # Queued like raw adds by default: the next search (or add) in the scope embeds them.
    vecs, defer_dims = yield from engine.embed_or_defer(texts)
    return (
        yield Blocking(
            apply_decisions,
            (engine, scope, decisions, vecs, completion),
            {
                "meta": meta if memory_type is None else {**meta, "memory_type": memory_type},
                "observed": observed_at,
                "expires": expires,
                "categories": categories,
                "importance": importance,
                "changed_by": changed_by or "llm",
                "journal_key": key,
                "payload": payload,
                "defer_dims": defer_dims,
            },
        )
    )


def _all_if_few(engine: Engine, scope: Scope) -> dict[str, MemoryRecord] | None:
    """Every current memory of the scope when the prompt can show them all, else None.

    Why: a new user's first adds (and small per-run scopes) need no ranking, so the
    query embedding is skipped — one model run less per add, most of the CPU of an add.
    """
    view = engine.views.view(scope)
    now, vis = utcnow(), Visibility()
    current: list[MemoryRecord] = []
    seen: set[str] = set()
    for r in view.records:
        if vis.visible(r, now) and r.hash not in seen:
            seen.add(r.hash)
            current.append(r)
            if len(current) > CONTEXT_MEMORIES:
                return None
    return {str(i): r for i, r in enumerate(current)}


def _similar(engine: Engine, scope: Scope, query: str, qvec: np.ndarray) -> dict[str, MemoryRecord]:
    """The scope's most similar current memories, under short ids "0".."9"."""
    hits = engine._search(
        query, qvec, "default", scope, None, Visibility(), CONTEXT_MEMORIES, None, False
    )["results"]
    recs = {r.id: r for r in engine.store.get_many([h["id"] for h in hits])}
    return {str(i): recs[h["id"]] for i, h in enumerate(hits) if h["id"] in recs}


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
                categories=list(categories),
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
