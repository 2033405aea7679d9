"""The model's answer as decisions: ADD / UPDATE / DELETE / NONE against shown memories.

No I/O here: decoding is tolerant (``memvault.llm.decode``), ids are resolved against the
memories the prompt showed, and attributions and names are fixed from the messages.
Whether a supersession may stand is :mod:`memvault.write.guarding`'s question.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from memvault.inputs import Message
from memvault.llm.coverage import first_person, words
from memvault.llm.decode import AMBIGUOUS, Proposal, decode_memories
from memvault.llm.guard import subject
from memvault.models import MemoryRecord
from memvault.write.shown import copies

log = logging.getLogger("memvault")


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


def _lookup(ref: str | None, shown: dict[str, MemoryRecord]) -> MemoryRecord | None:
    """The shown memory the model referred to: by short id, else by its exact text."""
    if ref is None:
        return None
    if ref in shown:
        return shown[ref]
    return next((r for r in shown.values() if copies(ref, r)), None)


def _resolve(p: Proposal, shown: dict[str, MemoryRecord]) -> Decision | None:
    target, text, who = _lookup(p.ref, shown), p.text, p.attributed_to
    same = target is not None and text is not None and copies(text, target)
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
    if event in ("ADD", "UPDATE") and text is not None:
        # A copy of a shown memory is that memory, known (LoCoMo 30/3: the model answered
        # with the memories it was shown); a cut one would otherwise be stored as new. So
        # is an UPDATE of one memory with another's text (LoCoMo 26/8: "UPDATE 8" with the
        # opening of memory 9): it changes nothing.
        copied = next((r for r in shown.values() if copies(text, r)), None)
        if copied is not None:
            return Decision("NONE", None, copied, who)
    if event == "ADD" and text is None:
        log.warning("LLM answered ADD without a text (id %r); ignored", p.ref)
        return None
    return Decision(event, text, target if event != "ADD" else None, who)


def first_decisions(
    raw: str, shown: dict[str, MemoryRecord], messages: list[Message]
) -> list[Decision]:
    """Parse an extraction answer and fix its attributions (no I/O).

    Separate from :func:`read_answer` so a batch row whose first answer was collected in an
    earlier round can rebuild its decisions without embedding the coverage check again.
    """
    return named(attributed(parse_decisions(raw, shown), messages), messages)


def named(decisions: list[Decision], messages: list[Message]) -> list[Decision]:
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
        said.setdefault(m.speaker, set()).update(words(m.content))
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


def attributed(decisions: list[Decision], messages: list[Message]) -> list[Decision]:
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
