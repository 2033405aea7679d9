"""The promise that a stated fact is never dropped silently: check, ask again, keep words.

After the first answer, every stated sentence no fact (nor a known memory) covers is asked
about once more, alone; what both answers leave out is kept verbatim when it may say
something about someone. Shared by the live add and Batch-API ingest.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from memvault.effects import Embed, Op
from memvault.errors import LLMError
from memvault.inputs import Message
from memvault.llm.coverage import (
    COVERED,
    COVERED_MARGIN,
    KNOWN,
    lexically_covered,
    personal,
    statements,
    touched,
)
from memvault.llm.decode import Proposal, decode_memories
from memvault.llm.guard import quoted, sentences, subject, unit
from memvault.llm.prompts import FACTS_PROMPT, build_extraction_input, build_facts_input
from memvault.models import MemoryRecord
from memvault.write.decisions import Decision, first_decisions, named
from memvault.write.guarding import guarded
from memvault.write.shown import same_text

if TYPE_CHECKING:
    from memvault.engine import Engine

log = logging.getLogger("memvault")


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
    try:
        answer = decode_memories(raw)
    except LLMError as e:
        # No judgment at all (LoCoMo 41/5: one fact looping in a single string until the
        # token limit, no item complete): the first answer's facts stand and every sentence
        # asked about is kept in its speaker's words, rather than failing the whole add.
        log.warning("the second answer could not be read (%s); keeping its sentences", e)
        return decisions + _verbatim(missed, decisions, messages)
    extra = named(_second_pass(answer, decisions, shown), messages)
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
        _every_sentence(messages),
        _speakers(messages),
    )
    return decisions + _verbatim(left, decisions, messages)


def _verbatim(
    left: list[tuple[str, str]], decisions: list[Decision], messages: list[Message]
) -> list[Decision]:
    """``left`` sentences that may say something about someone, as ``"<speaker>: ..."``."""
    names = _speakers(messages)
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
    return verbatim


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
    # A copy of a shown memory is a NONE of it by now (``decisions``): it covers only as a
    # known memory does (LoCoMo 30/3: one, 0.32 from "I emailed some wholesalers and one
    # replied and said yes today!", had covered it at the new-fact bar).
    new = [d.text for d in decisions if d.text and d.event in ("ADD", "UPDATE")]
    known = [d.target.memory for d in decisions if d.target and d.event == "NONE"]
    # A retired memory marks the sentences it was read from (``decisions`` are guarded, so
    # only a DELETE that stands); an UPDATE's own text is judged like any new fact.
    deleted = [d.target.memory for d in decisions if d.target and d.event == "DELETE"]
    open_ = [(who, s) for who, s in said if not touched(s, deleted)]
    missed = yield from _not_covered(
        engine, open_, new, known, _every_sentence(messages), _speakers(messages), shown=memories
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


def _every_sentence(messages: list[Message]) -> list[str]:
    """Every sentence of the input, questions and the assistant's included: what a fact may
    have come from. LoCoMo 41/8: "Maria: ... That baby is adorable! What's their name?",
    stored as said, covered John's "his name is Kyle!" (0.41) because its own source, a
    question, was not among the sentences it was compared with (0.56 with it)."""
    return sentences([m.content for m in messages], limit=None)


def _speakers(messages: list[Message]) -> frozenset[str]:
    return frozenset(m.speaker.lower() for m in messages)


def _stated(messages: list[Message]) -> list[tuple[str, str]]:
    return statements([(m.role, m.speaker, m.content) for m in messages])


def _not_covered(
    engine: Engine,
    said: list[tuple[str, str]],
    new: list[str],
    known: list[str],
    context: list[str],
    speakers: frozenset[str],
    shown: Sequence[str] = (),
) -> Op[list[tuple[str, str]]]:
    """The sentences of ``said`` that neither a new fact nor a known memory covers.

    The answer's facts and the memories it named (``known``) that together repeat half of
    a sentence's words cover it (free); a memory it was only ``shown`` must do so alone —
    pooled, ten memories of a long chat held half the words of "Started to learn all these
    marketing and analytics tools to push the biz forward today" (LoCoMo 30/17) between
    them, and the fact was lost. Otherwise a new fact must be close to it (cosine >=
    ``COVERED``) *and* about as close to it as to any sentence of ``context`` (every
    sentence of the input: within ``COVERED_MARGIN`` of the fact's best match), a known or
    shown memory very close (``KNOWN``). A fact written as someone's quote ("Maria: ...")
    covers only that speaker's sentences. Only what the word checks leave is embedded.
    """
    quote_of = {f: _quoted_speaker(f, speakers) for f in new}  # each fact read once

    def usable(f: str, who: str) -> bool:
        return quote_of[f] in (None, who.lower())

    missed = [
        (who, s)
        for who, s in said
        if not lexically_covered(s, [f for f in new if usable(f, who)] + known)
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
        allowed = np.array([[usable(f, who) for f in new_u] for who, _ in missed])
        facts = np.where(allowed, facts, -1.0)
    bar = np.array([COVERED] * len(new_u) + [KNOWN] * len(known_u))
    covered = (np.concatenate([facts, sims[:, len(new_u) :]], axis=1) >= bar).any(axis=1)
    return [m for m, c in zip(missed, covered, strict=True) if not c]


def _quoted_speaker(fact: str, speakers: frozenset[str]) -> str | None:
    """The speaker (lower-cased) a fact quotes, which then covers only that speaker's
    sentences; None for any other fact (a label such as "Fact: ..." is nobody's quote).

    LoCoMo 41/8: the model stored Maria's message as said ("Maria: ... That baby in the pic
    is adorable! What's their name?"); 0.41 from John's reply "his name is Kyle!", it
    covered it, and Kyle was stored nowhere.
    """
    who = subject(fact) if quoted(fact) else None
    return who if who in speakers else None


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
        if p.event == "DELETE" or not p.text or any(same_text(p.text, h) for h in have):
            continue
        have.append(p.text)
        out.append(Decision("ADD", p.text, None, p.attributed_to))
    return out
