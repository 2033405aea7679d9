"""Which stored memories an extraction prompt shows, and in what words.

The model reconciles new facts against these (UPDATE / DELETE / NONE by short id), so
they are the scope's memories most similar to the new messages. They are also most of a
prompt's variable cost: on LoCoMo with Qwen 1.5B, ten shown memories were ~460 tokens of
an add's ~2,500, two thirds of it long quotes ("Caroline: I'm really lucky to have ...").
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import numpy as np

from memvault.llm.coverage import first_person
from memvault.llm.guard import quoted
from memvault.llm.prompts import Existing
from memvault.models import MemoryRecord, utcnow
from memvault.store.sqlite import Visibility

if TYPE_CHECKING:
    from memvault.engine import Engine
    from memvault.scope import Scope

#: How many similar memories the model sees (mem0 uses 10 too).
CONTEXT_MEMORIES = 10
#: Words of a memory an UPDATE may never replace that the prompt shows (see ``prompt_text``).
FIXED_MEMORY_WORDS = 10
#: How a cut memory ends in the prompt.
CUT = " …"
#: Any ellipsis ending a text: a model copying a cut memory writes the mark its own way.
_ELLIPSIS = re.compile(r"\s*(?:…|\.{2,})\s*$")
#: Opening words a text ending in an ellipsis must share with a memory to be its copy.
MIN_COPIED_WORDS = 5


def all_if_few(engine: Engine, scope: Scope) -> dict[str, MemoryRecord] | None:
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


def similar(engine: Engine, scope: Scope, query: str, qvec: np.ndarray) -> dict[str, MemoryRecord]:
    """The scope's most similar current memories, under short ids "0".."9"."""
    hits = engine._search(
        query, qvec, "default", scope, None, Visibility(), CONTEXT_MEMORIES, None, False
    )["results"]
    recs = {r.id: r for r in engine.store.get_many([h["id"] for h in hits])}
    return {str(i): recs[h["id"]] for i, h in enumerate(hits) if h["id"] in recs}


def same_text(a: str, b: str) -> bool:
    """Equal but for case, spacing and a final full stop."""
    return " ".join(a.casefold().split()).rstrip(".") == " ".join(b.casefold().split()).rstrip(".")


def replaceable(memory: MemoryRecord) -> bool:
    """Whether an UPDATE may replace this memory with a new text.

    Not a sentence kept in someone's own words (category ``verbatim``), nor text in the
    first person or written as a quote ("Name: ..."): those are what someone said, and a
    small model "updating" them rewrote unrelated facts (see ``memvault.llm.guard``).
    """
    text = memory.memory
    return (
        "verbatim" not in (memory.categories or ()) and not first_person(text) and not quoted(text)
    )


def prompt_text(memory: MemoryRecord) -> str:
    """The memory as the prompt shows it: whole, or its first words if it is not replaceable.

    Why cut: such a memory can only be named as known (NONE) or retired (DELETE), never
    rewritten, and a dozen words identify it; whole, these quotes were ~2/3 of the shown
    memories' tokens. Every check after the answer (coverage, the guard) reads the stored
    text, not this one.
    """
    text = " ".join(memory.memory.split())  # one line per memory in the prompt
    if replaceable(memory):
        return text
    words = text.split(" ")
    if len(words) <= FIXED_MEMORY_WORDS:
        return text
    return " ".join(words[:FIXED_MEMORY_WORDS]) + CUT


def copies(text: str, memory: MemoryRecord) -> bool:
    """Whether ``text`` repeats the memory: as stored, as the prompt showed it (the mark of
    the cut left off or not), or its opening words followed by any ellipsis ("... The ..."
    from Qwen 1.5B, which rewrote the mark in ASCII)."""
    if same_text(text, memory.memory):
        return True
    mark = _ELLIPSIS.search(text)
    if mark is None:
        return same_text(text, prompt_text(memory).removesuffix(CUT))
    head = _norm(text[: mark.start()])
    return len(head.split()) >= MIN_COPIED_WORDS and _norm(memory.memory).startswith(head)


def _norm(text: str) -> str:
    return " ".join(text.casefold().split())


def prompt_memories(shown: dict[str, MemoryRecord]) -> list[Existing]:
    """The shown memories under their short ids, in the prompt's words."""
    return [Existing(k, prompt_text(r)) for k, r in shown.items()]
