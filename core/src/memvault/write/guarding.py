"""Let UPDATE / DELETE supersede only a memory the new fact is really about (issue 16).

Small models name wrong ids; the evidence required is in ``memvault.llm.guard``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np

from memvault.effects import Embed, Op
from memvault.llm.coverage import first_person
from memvault.llm.guard import (
    SAID_NEAR_TOPIC,
    SAID_SAME_TOPIC,
    SAME_FACT,
    other_subjects,
    quoted,
    related,
    sentences,
    unit,
)
from memvault.models import MemoryRecord
from memvault.write.decisions import Decision
from memvault.write.shown import replaceable

if TYPE_CHECKING:
    from memvault.engine import Engine

log = logging.getLogger("memvault")


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
                not replaceable(d.target)
                or first_person(d.text)
                or quoted(d.text)
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


def guarded(
    engine: Engine, decisions: list[Decision], shown: dict[str, MemoryRecord], said: list[str]
) -> Op[list[Decision]]:
    """:func:`guard_decisions` with the few vectors it needs (none unless something supersedes)."""
    need = guard_texts(decisions, shown, said)
    if not need:
        return decisions
    vecs = yield Embed(engine.embedder, need, kind="passage")
    return guard_decisions(decisions, dict(zip(need, vecs, strict=True)), shown, said)
