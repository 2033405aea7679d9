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
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from memvault.effects import Blocking, Embed, Op
from memvault.errors import LLMError
from memvault.llm.client import Completion
from memvault.llm.coverage import (
    COVERED,
    COVERED_MARGIN,
    KNOWN,
    first_person,
    lexically_covered,
    personal,
    statements,
    touched,
    words,
)
from memvault.llm.decode import AMBIGUOUS, Proposal, decode_memories, decode_summary
from memvault.llm.guard import (
    SAID_NEAR_TOPIC,
    SAID_SAME_TOPIC,
    SAME_FACT,
    other_subjects,
    quoted,
    related,
    sentences,
    subject,
    unit,
)
from memvault.llm.prompts import (
    FACTS_PROMPT,
    PROCEDURAL_PROMPT,
    Existing,
    build_extraction_input,
    build_facts_input,
    build_procedural_input,
)
from memvault.models import ACTIVE, SUPERSEDED, MemoryRecord, content_hash, utcnow
from memvault.scope import Scope, scoped_key
from memvault.store.sqlite import Visibility

if TYPE_CHECKING:
    from memvault.engine import Engine
    from memvault.inputs import Message

log = logging.getLogger("memvault")

#: How many similar memories the model sees (mem0 uses 10 too).
CONTEXT_MEMORIES = 10


@dataclass(slots=True)
class Decision:
    """What to do with one fact. ``maybe_new``: the model said NONE but wrote a different
    text, so the guard checks whether that text is really known already."""

    event: str
    text: str | None
    target: MemoryRecord | None
    attributed_to: str | None
    maybe_new: bool = False
    #: a sentence kept in the speaker's words because no answer covered it
    verbatim: bool = False


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
    """The model's answer as decisions against the memories it was shown.

    Decoding is tolerant (``memvault.llm.decode``): every stated fact is kept, and an
    unclear answer can only ever become an ADD or a no-op, never a destructive change.
    Unknown ids degrade safely: UPDATE of an unknown id is an ADD, DELETE / NONE of one
    is ignored. Supersessions still have to pass :func:`guard_decisions`.
    """
    out = []
    for p in decode_memories(raw):
        d = _resolve(p, shown)
        if d is not None:
            out.append(d)
    return out


def _same_text(a: str, b: str) -> bool:
    return " ".join(a.casefold().split()).rstrip(".") == " ".join(b.casefold().split()).rstrip(".")


def _lookup(ref: str | None, shown: dict[str, MemoryRecord]) -> MemoryRecord | None:
    """The shown memory the model referred to: by short id, else by its exact text."""
    if ref is None:
        return None
    if ref in shown:
        return shown[ref]
    return next((r for r in shown.values() if _same_text(r.memory, ref)), None)


def _resolve(p: Proposal, shown: dict[str, MemoryRecord]) -> Decision | None:
    target, text, who = _lookup(p.ref, shown), p.text, p.attributed_to
    same = target is not None and text is not None and _same_text(text, target.memory)
    event = p.event
    if event == AMBIGUOUS:  # e.g. "ADD|UPDATE" copied from the schema: read the id and text
        if target is not None:
            event = "NONE" if same or text is None else "UPDATE"
        else:
            event = "ADD"
    if event == "NONE" and target is not None and text is not None and not same:
        return Decision("NONE", text, target, who, maybe_new=True)
    if event in ("DELETE", "NONE") and target is None:
        log.warning("LLM answered %s for an unknown id %r; ignored", event, p.ref)
        return None
    if event == "UPDATE" and (text is None or same):
        event = "NONE"  # nothing to change: the memory stands
    if event == "UPDATE" and target is None:
        event = "ADD"  # refers to nothing we showed: keep the fact, touch nothing
    if event == "ADD" and text is None:
        log.warning("LLM answered ADD without a text (id %r); ignored", p.ref)
        return None
    return Decision(event, text, target if event != "ADD" else None, who)


def guard_texts(
    decisions: list[Decision], shown: dict[str, MemoryRecord], messages: list[str]
) -> list[str]:
    """The texts :func:`guard_decisions` needs vectors for (none when nothing supersedes)."""
    need: dict[str, None] = {}
    for d in decisions:
        if d.event == "UPDATE" and d.target is not None and d.text:
            need.update(dict.fromkeys((d.text, d.target.memory)))
        elif d.event == "DELETE" and d.target is not None:
            need.update(dict.fromkeys((d.target.memory, *sentences(messages))))
        elif d.maybe_new and d.text:
            need.update(dict.fromkeys((d.text, *(r.memory for r in shown.values()))))
    return list(need)


def guard_decisions(
    decisions: list[Decision],
    vectors: dict[str, np.ndarray],
    shown: dict[str, MemoryRecord],
    messages: list[str],
) -> list[Decision]:
    """Let UPDATE / DELETE supersede only a memory the new fact is really about.

    A wrong id (small models pick them, issue 16) turns an UPDATE into an ADD and drops a
    DELETE, so an unrelated memory is never superseded; a NONE whose text is a new fact is
    an ADD. See ``memvault.llm.guard`` for the evidence required and why.
    """
    vec = {t: unit(v) for t, v in vectors.items()}

    def cos(a: str, b: str) -> float:
        return float(vec[a] @ vec[b])

    def others(target: MemoryRecord) -> list[str]:
        return [r.memory for r in shown.values() if r.id != target.id]

    out = []
    for d in decisions:
        if d.event == "UPDATE" and d.target is not None and d.text:
            old = d.target.memory
            if (
                "verbatim" in (d.target.categories or ())
                or any(first_person(t) or quoted(t) for t in (old, d.text))
                or other_subjects(d.text, old)
                or not related(cos(d.text, old), d.text, old, others=others(d.target))
            ):
                log.warning(
                    "LLM answered UPDATE of an unrelated memory (%r -> %r); kept as ADD",
                    old,
                    d.text,
                )
                d = Decision("ADD", d.text, None, d.attributed_to)
        elif d.event == "DELETE" and d.target is not None:
            old = d.target.memory
            said = sentences(messages)
            rest = others(d.target)
            if not any(
                related(
                    cos(m, old), m, old, same=SAID_SAME_TOPIC, near=SAID_NEAR_TOPIC, others=rest
                )
                for m in said
            ):
                log.warning("LLM answered DELETE of an unrelated memory %r; ignored", old)
                continue
        elif d.maybe_new and d.text:
            known = max((cos(d.text, r.memory) for r in shown.values()), default=0.0)
            if known < SAME_FACT:
                d = Decision("ADD", d.text, None, d.attributed_to)
            else:
                d = Decision("NONE", None, d.target, d.attributed_to)
        out.append(d)
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
    key = key or scoped_key(scope, journal_key(scope, messages, memory_type or ""))
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
        system = engine.config.extraction_prompt
        user = build_extraction_input(
            messages=convo,
            existing=[Existing(k, r.memory) for k, r in shown.items()],
            observed=observed_at,
            custom=custom,
        )
    try:
        completion: Completion = yield from llm.call(system, user)
        if memory_type == "procedural_memory":
            decisions = [Decision("ADD", decode_summary(completion.text), None, None)]
        else:
            decisions, missed = yield from read_answer(engine, messages, completion.text, shown)
            if missed:  # a small model dropped them: ask once more, about them only
                again = yield from llm.call(
                    *second_pass_prompt(
                        missed, observed_at, custom, engine.config.custom_fact_extraction_prompt
                    )
                )
                decisions = yield from merge_second_pass(
                    engine, again.text, decisions, shown, missed, messages
                )
                completion.usage += again.usage
    except LLMError as e:
        # Keep the raw input so nothing is lost; retry_pending() replays it.
        yield Blocking(
            engine.store.write_journal,
            (key, "failed"),
            {"error": str(e), "payload": payload, "kind": "add"},
        )
        raise
    decisions = yield from guarded(engine, decisions, shown, [text for _, text in convo])
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


def read_answer(
    engine: Engine, messages: list[Message], raw: str, shown: dict[str, MemoryRecord]
) -> Op[tuple[list[Decision], list[tuple[str, str]]]]:
    """The first answer as decisions, and the stated sentences it left uncovered.

    Shared by the live add and Batch-API ingest (``memvault.batch_api``), so both keep the
    same promise: a sentence the model ignored is asked about again, never lost silently.
    """
    decisions = first_decisions(raw, shown, messages)
    # Guarded first: which sentences a DELETE covers depends on whether the DELETE stands.
    decisions = yield from guarded(engine, decisions, shown, [m.content for m in messages])
    missed = yield from _uncovered(engine, messages, decisions, shown)
    return decisions, missed


def first_decisions(
    raw: str, shown: dict[str, MemoryRecord], messages: list[Message]
) -> list[Decision]:
    """Parse an extraction answer and fix its attributions (no I/O).

    Separate from :func:`read_answer` so a batch row whose first answer was collected in an
    earlier round can rebuild its decisions without embedding the coverage check again.
    """
    return _named(_attributed(parse_decisions(raw, shown), messages), messages)


def second_pass_prompt(
    missed: list[tuple[str, str]],
    observed: str,
    custom: str | None,
    extraction_prompt: str | None,
) -> tuple[str, str]:
    """The second question (system, user): only the uncovered sentences, no existing memories.

    Why without them: what confused the model the first time was usually a shown memory
    (it "updated" one instead of stating the new fact); alone, the sentences get answered.
    With nothing shown there is nothing to reconcile, so the short :data:`FACTS_PROMPT`
    asks for facts only. A configured ``custom_fact_extraction_prompt`` is the user's own
    extraction rule: it is asked the second question too, in the first call's format.
    """
    if extraction_prompt:
        user = build_extraction_input(
            messages=missed, existing=[], observed=observed, custom=custom
        )
        return extraction_prompt, user
    return FACTS_PROMPT, build_facts_input(messages=missed, observed=observed, custom=custom)


def merge_second_pass(
    engine: Engine,
    raw: str,
    decisions: list[Decision],
    shown: dict[str, MemoryRecord],
    missed: list[tuple[str, str]],
    messages: list[Message],
) -> Op[list[Decision]]:
    """``decisions`` plus the second answer's new facts, plus what it still left out, verbatim.

    A sentence the model was asked about twice and still did not turn into a fact is kept
    as ``"<speaker>: <sentence>"`` (category ``verbatim``) when it may state something about
    someone (:func:`memvault.llm.coverage.personal`): a weak model drops facts (Qwen 1.5B
    left the camping trip and the meteor shower of a LoCoMo session out of both answers),
    and a memory layer that promises to lose nothing keeps the words rather than nothing.
    Reactions and chatter ("Lucky you!") are not kept.
    """
    answer = decode_memories(raw)
    extra = _named(_second_pass(answer, decisions, shown), messages)
    log.info(
        "second pass kept %d new fact(s)", len(extra), extra={"facts": [d.text for d in extra]}
    )
    decisions = decisions + extra
    # Everything the second answer said counts, repeats of known facts included: asked about
    # these sentences alone, the model said what they state. An empty answer is its judgment
    # that they state nothing worth keeping, not a drop.
    said_again = [p.text for p in answer if p.text]
    if not said_again:
        return decisions
    left = yield from _not_covered(
        engine,
        missed,
        [d.text for d in decisions if d.text] + said_again,
        [],
        [s for _, s in _stated(messages)],
    )
    names = frozenset(speaker(m).lower() for m in messages)
    have = {" ".join((d.text or "").casefold().split()) for d in decisions}
    verbatim = []
    for who, sentence in left:
        text = f"{who}: {sentence}"
        if personal(sentence, names) and " ".join(text.casefold().split()) not in have:
            verbatim.append(Decision("ADD", text, None, who, verbatim=True))
    if verbatim:
        log.info(
            "kept %d sentence(s) verbatim that no answer covered",
            len(verbatim),
            extra={"verbatim": [d.text for d in verbatim]},
        )
    return decisions + verbatim


def guarded(
    engine: Engine, decisions: list[Decision], shown: dict[str, MemoryRecord], said: list[str]
) -> Op[list[Decision]]:
    """:func:`guard_decisions` with the few vectors it needs (none unless something supersedes)."""
    need = guard_texts(decisions, shown, said)
    if not need:
        return decisions
    vecs = yield Embed(engine.embedder, need, kind="passage")
    return guard_decisions(decisions, dict(zip(need, vecs, strict=True)), shown, said)


def _uncovered(
    engine: Engine,
    messages: list[Message],
    decisions: list[Decision],
    shown: dict[str, MemoryRecord],
) -> Op[list[tuple[str, str]]]:
    """The stated sentences no fact of the answer (nor a memory already stored) covers.

    Empty when asking again would only repeat the first question (nothing shown, nothing
    answered, every sentence open): the model already judged the whole input as nothing to
    remember.
    """
    said = _stated(messages)
    if not said:
        return []
    memories = [r.memory for r in shown.values()]
    # A "new" fact that copies a shown memory word for word is that memory (LoCoMo 30/3:
    # the model answered with the memories it was shown; one, 0.32 from "I emailed some
    # wholesalers and one replied and said yes today!", covered it at the new-fact bar and
    # the sentence was lost): it covers only as a known memory does.
    new = [
        d.text
        for d in decisions
        if d.text
        and d.event in ("ADD", "UPDATE")
        and not any(_same_text(d.text, m) for m in memories)
    ]
    known = [d.target.memory for d in decisions if d.target and d.event == "NONE"]
    # A retired memory marks the sentences it was read from (``decisions`` are guarded, so
    # only a DELETE that stands); an UPDATE's own text is judged like any new fact.
    deleted = [d.target.memory for d in decisions if d.target and d.event == "DELETE"]
    open_ = [(who, s) for who, s in said if not touched(s, deleted)]
    missed = yield from _not_covered(
        engine, open_, new, known, [s for _, s in said], shown=memories
    )
    if missed and not shown and not decisions and len(missed) == len(said):
        return []
    if missed:
        log.info(
            "LLM answer left %d stated sentence(s) uncovered; asking again",
            len(missed),
            extra={"sentences": [s for _, s in missed]},
        )
    return missed


def _stated(messages: list[Message]) -> list[tuple[str, str]]:
    return statements([(m.role, speaker(m), m.content) for m in messages])


def _not_covered(
    engine: Engine,
    said: list[tuple[str, str]],
    new: list[str],
    known: list[str],
    context: list[str],
    shown: Sequence[str] = (),
) -> Op[list[tuple[str, str]]]:
    """The sentences of ``said`` that neither a new fact nor a known memory covers.

    The answer's facts and the memories it named (``known``) that together repeat half of
    a sentence's words cover it (free); a memory it was only ``shown`` must do so alone —
    pooled, ten memories of a long chat held half the words of "Started to learn all these
    marketing and analytics tools to push the biz forward today" (LoCoMo 30/17) between
    them, and the fact was lost. Otherwise a new fact must be close to it (cosine >=
    ``COVERED``) *and* about as close to it as to any sentence of ``context`` (every stated
    sentence of the input: within ``COVERED_MARGIN`` of the fact's best match), a known or
    shown memory very close (``KNOWN``). Only what the word checks leave is embedded.
    """
    missed = [
        (who, s)
        for who, s in said
        if not lexically_covered(s, new + known)
        and not any(lexically_covered(s, [m]) for m in shown)
    ]
    known = known + list(shown)
    new_u, known_u = list(dict.fromkeys(new)), list(dict.fromkeys(known))
    if not missed or not (new_u or known_u):
        return missed
    texts = [s for _, s in missed]
    asked = set(texts)
    others = [c for c in dict.fromkeys(context) if c not in asked]
    vecs = unit((yield Embed(engine.embedder, texts + others + new_u + known_u, kind="passage")))
    n, k = len(texts), len(texts) + len(others)
    sims = vecs[:n] @ vecs[k:].T
    facts = sims[:, : len(new_u)]
    if len(new_u):
        # A fact covers the sentences it came from, not every sentence it resembles: in a
        # long chat about the same people, unrelated sentences reach 0.28-0.32.
        best = (vecs[:k] @ vecs[k : k + len(new_u)].T).max(axis=0)
        facts = np.where(facts >= best - COVERED_MARGIN, facts, -1.0)
    bar = np.array([COVERED] * len(new_u) + [KNOWN] * len(known_u))
    covered = (np.concatenate([facts, sims[:, len(new_u) :]], axis=1) >= bar).any(axis=1)
    return [m for m, c in zip(missed, covered, strict=True) if not c]


def _named(decisions: list[Decision], messages: list[Message]) -> list[Decision]:
    """Put the speaker's name before a fact the model wrote in the first person.

    Why: asked about bare sentences, a small model copies them ("I chose furniture that
    looks great", from Gina in a LoCoMo session), and in a conversation between named
    people a stored "I" is nobody. The speaker is the one the model attributed the fact to,
    else the one whose messages share the most content words with it; when no single
    speaker does, the text stays as the model wrote it. Chats without names (the user and
    the assistant of one scope) are left alone: there the scope says whose facts they are.
    """
    names = {m.name for m in messages if m.name}
    if not names:
        return decisions
    said: dict[str, set[str]] = {}
    for m in messages:
        said.setdefault(speaker(m), set()).update(words(m.content))
    by_lower = {n.lower(): n for n in said}
    for d in decisions:
        if d.event not in ("ADD", "UPDATE") or not d.text or d.verbatim:
            continue
        if not first_person(d.text) or subject(d.text) in by_lower:
            continue
        who = by_lower.get((d.attributed_to or "").lower())
        if who is None:
            mine = words(d.text)
            overlap = sorted(((len(mine & w), n) for n, w in said.items()), reverse=True)
            if overlap and overlap[0][0] and (len(overlap) == 1 or overlap[1][0] < overlap[0][0]):
                who = overlap[0][1]
        if who is not None:
            d.text = f"{who}: {d.text}"
    return decisions


def _attributed(decisions: list[Decision], messages: list[Message]) -> list[Decision]:
    """Drop an "assistant" attribution the assistant's own words do not support.

    Why: small models label user facts "Assistant" (seen with Qwen 1.5B on "I moved to
    Lisbon..."), which would store the user's fact as the assistant's. A fact is the
    assistant's only if it shares more content words with the assistant's messages than
    with everyone else's.
    """
    theirs = " ".join(m.content for m in messages if m.role == "assistant")
    others = " ".join(m.content for m in messages if m.role != "assistant")
    for d in decisions:
        if d.text and (d.attributed_to or "").lower() == "assistant":
            mine = words(d.text)
            if len(mine & words(theirs)) <= len(mine & words(others)):
                d.attributed_to = None
    return decisions


def _second_pass(
    answer: list[Proposal], decisions: list[Decision], shown: dict[str, MemoryRecord]
) -> list[Decision]:
    """New facts from the second answer, none already in the first or shown.

    Nothing was shown the second time, so every item with a text is a new fact whatever
    its event says (small models still answer "UPDATE" of an id they made up, or "NONE").
    """
    have = [d.text for d in decisions if d.text] + [r.memory for r in shown.values()]
    out: list[Decision] = []
    for p in answer:
        if p.event == "DELETE" or not p.text or any(_same_text(p.text, h) for h in have):
            continue
        have.append(p.text)
        out.append(Decision("ADD", p.text, None, p.attributed_to))
    return out


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
