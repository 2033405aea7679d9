"""The extraction + reconciliation prompt: one call, compact, cache-friendly.

Why compact: the instruction is sent with every add. mem0's is ~8,000 tokens;
this one stays far under 2,000 (tests measure it with the cl100k tokenizer), and
it is a constant prefix, so providers' prompt caches serve it. Why one call:
extraction and the ADD / UPDATE / DELETE / NONE decision against the most
similar stored memories need the same context, so asking twice only doubles cost.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

EXTRACTION_PROMPT = """\
You maintain the long-term memory of an AI assistant. From NEW MESSAGES, extract durable facts \
worth remembering in future conversations, and reconcile them with EXISTING MEMORIES.

What to extract:
- Facts about people and their lives: preferences, plans, relationships, events, possessions, \
work, health, opinions, goals; and durable instructions the user gives the assistant.
- Each fact self-contained and specific: name who it is about (use names when known, \
otherwise "User" / "Assistant"); one fact per item; keep the messages' language.
- Turn relative times into absolute dates using OBSERVATION DATE (e.g. "last Saturday" \
-> the actual date). Never use any other date as "now".
- Skip greetings, small talk, how someone feels right now ("I'm fine"), questions without \
answers, and anything speculative: a conversation of only those (e.g. "Hi, how are you?" / \
"Fine, just saying hello.") gives {"memories": []}. \
Facts stated only by the assistant, or what it asked or said it would do, are kept only if \
the user confirms them.

How to reconcile, for each fact (existing memories are referred to by their id):
- ADD: new information not covered by any existing memory.
- UPDATE: it refines or changes an existing memory; give that id and the full new text.
- DELETE: the messages show an existing memory is no longer true and give no replacement \
fact; give its id.
- NONE: already known exactly; give its id.
Never invent ids. A changed fact (e.g. a new favourite, a move, a new job) is an UPDATE \
of the old memory, not a second ADD.

Answer with JSON only, no prose. In each item, "event" is exactly one of ADD, UPDATE, DELETE, \
NONE; "id" is an existing memory's id (UPDATE, DELETE and NONE only); "text" is the fact as a \
full sentence about the person (e.g. "User is allergic to peanuts"); "attributed_to" is who \
stated it. For example:
{"memories": [{"event": "ADD", "text": "...", "attributed_to": "user"}, \
{"event": "UPDATE", "id": "0", "text": "...", "attributed_to": "user"}]}
If nothing is worth remembering: {"memories": []}"""

#: The second pass (``memvault.write.second_pass``): only sentences the first answer left out, no
#: existing memories, so no ids and no events to choose — a third of the tokens of
#: ``EXTRACTION_PROMPT``. Why it matters: a small model drops facts in most adds (Qwen 1.5B
#: on LoCoMo: every session), and with the full prompt the second call alone cost ~0.12 of
#: mem0's per-add tokens.
FACTS_PROMPT = """\
You maintain the long-term memory of an AI assistant. NEW MESSAGES are sentences people \
said. Write the durable facts they state about people and their lives (preferences, plans, \
relationships, events, possessions, work, health, opinions, goals): one fact per item, a \
full sentence that names who it is about, in the messages' language. Turn relative times \
into dates using OBSERVATION DATE. Leave out greetings, small talk and reactions.

Answer with JSON only: {"memories": [{"text": "...", "attributed_to": "..."}]}
If no sentence states a fact worth remembering: {"memories": []}"""

PROCEDURAL_PROMPT = """\
You summarise an AI agent's run into one procedural memory that lets the agent repeat \
or continue the task later. From the MESSAGES, write: the task goal; the steps taken in \
order, each with the action, the key inputs and the outcome (keep exact values, URLs, \
file names, commands and errors); what worked and what failed; the current state and \
next steps. Keep the messages' language. Be complete but concise.

Answer with JSON only: {"summary": "<the procedural memory>"}"""


@dataclass(slots=True)
class Existing:
    """A stored memory shown to the model under a short id (never the real uuid)."""

    short_id: str
    text: str


def build_extraction_input(
    *,
    messages: Sequence[tuple[str, str]],
    existing: Sequence[Existing],
    observed: str,
    custom: str | None = None,
) -> str:
    """The user-side payload: existing memories, new messages, observation date."""
    parts = []
    if custom:
        parts.append(f"CUSTOM INSTRUCTIONS (follow them):\n{custom.strip()}")
    # One "[id] text" line each: JSON objects cost ~10 tokens of keys and quotes apiece.
    # None is "[]", as the answer's empty list: with "(none)" Qwen 1.5B answered small talk
    # with the instruction's example fact ("User is allergic to peanuts").
    mem = "\n".join(f"[{e.short_id}] {' '.join(e.text.split())}" for e in existing)
    parts.append("EXISTING MEMORIES:\n" + (mem or "[]"))
    parts.append(f"OBSERVATION DATE: {observed}")
    parts.append("NEW MESSAGES:\n" + "\n".join(f"{who}: {text}" for who, text in messages))
    return "\n\n".join(parts)


def build_facts_input(
    *, messages: Sequence[tuple[str, str]], observed: str, custom: str | None = None
) -> str:
    """The user-side payload of :data:`FACTS_PROMPT`: the sentences and their date."""
    parts = []
    if custom:
        parts.append(f"CUSTOM INSTRUCTIONS (follow them):\n{custom.strip()}")
    parts.append(f"OBSERVATION DATE: {observed}")
    parts.append("NEW MESSAGES:\n" + "\n".join(f"{who}: {text}" for who, text in messages))
    return "\n\n".join(parts)


def build_procedural_input(messages: Sequence[tuple[str, str]], observed: str) -> str:
    body = "\n".join(f"{who}: {text}" for who, text in messages)
    return f"OBSERVATION DATE: {observed}\n\nMESSAGES:\n{body}"
