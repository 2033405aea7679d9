"""Read the extraction answer the way a small model actually writes it.

Why: real small models (Qwen2.5 1.5B on llama.cpp, issue 16) answer with the right facts
in the wrong shape: an event copied from the schema (``"ADD|UPDATE"``), a synonym
(``"INSERT"``, ``"MODIFY"``), no event at all, the id as a number or as ``"#2"``, the fact
under ``"memory"`` or ``"fact"``, a bare list instead of ``{"memories": [...]}``, one item
instead of a list. Rejecting such an answer loses every fact in it; guessing wildly could
supersede the wrong memory. So this module only *normalises* the shape into
:class:`Proposal` items, keeping the model's intent where it is clear and marking it
``AMBIGUOUS`` where it is not; the caller resolves ambiguity against the memories it showed
(and the supersession guard), never by dropping a fact.

What still raises ``LLMError`` (and so journals the add as failed, nothing lost): no JSON at
all, truncated JSON, or JSON with no list of memories anywhere.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from memvault.errors import LLMError
from memvault.llm.parse import extract_json, salvage_items

log = logging.getLogger("memvault")

#: The model's intent is unclear (compound, unknown or missing event): the caller decides.
AMBIGUOUS = "AMBIGUOUS"
_SYNONYMS = {
    "ADD": "ADD",
    "NEW": "ADD",
    "CREATE": "ADD",
    "INSERT": "ADD",
    "APPEND": "ADD",
    "STORE": "ADD",
    "SAVE": "ADD",
    "REMEMBER": "ADD",
    "UPDATE": "UPDATE",
    "MODIFY": "UPDATE",
    "CHANGE": "UPDATE",
    "EDIT": "UPDATE",
    "REPLACE": "UPDATE",
    "REVISE": "UPDATE",
    "SUPERSEDE": "UPDATE",
    "DELETE": "DELETE",
    "REMOVE": "DELETE",
    "INVALIDATE": "DELETE",
    "FORGET": "DELETE",
    "NONE": "NONE",
    "NOOP": "NONE",
    "NOTHING": "NONE",
    "KEEP": "NONE",
    "SKIP": "NONE",
    "UNCHANGED": "NONE",
    "IGNORE": "NONE",
    "EXISTS": "NONE",
}
_LIST_KEYS = ("memories", "facts", "memory", "items", "results", "decisions", "events", "updates")
_EVENT_KEYS = ("event", "action", "operation", "op", "type")
_TEXT_KEYS = ("text", "fact", "memory", "content", "new_text", "new_memory", "value", "data")
_ID_KEYS = ("id", "memory_id", "target", "target_id", "existing_id", "ref")
_WHO_KEYS = ("attributed_to", "speaker", "source", "author")
_WORD = re.compile(r"[A-Z]+")
_DIGITS = re.compile(r"^\D{0,4}(\d{1,3})\D{0,2}$")


@dataclass(frozen=True, slots=True)
class Proposal:
    """One item of the model's answer, normalised but not yet checked against the store.

    ``event`` is ADD / UPDATE / DELETE / NONE or ``AMBIGUOUS``; ``ref`` is the short id as
    a string (``"3"`` from ``3``, ``"#3"``, ``"id 3"``) or the model's raw reference.
    """

    event: str
    text: str | None
    ref: str | None
    attributed_to: str | None
    raw_event: str | None = None


def normalise_event(value: Any) -> str:
    """``"ADD"`` from ``"add"``/``"insert"``; ``AMBIGUOUS`` from ``"ADD|UPDATE"``, ``"?"``, None."""
    if not isinstance(value, str):
        return AMBIGUOUS
    words = _WORD.findall(value.upper())
    if words[:1] == ["NO"] and len(words) == 2:  # "no change", "NO_OP", "no-update"
        return "NONE"
    found = {_SYNONYMS[w] for w in words if w in _SYNONYMS}
    return found.pop() if len(found) == 1 else AMBIGUOUS


def normalise_ref(value: Any) -> str | None:
    """The short id the model meant: ``3`` / ``3.0`` / ``"#3"`` / ``"id 3"`` -> ``"3"``."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    if not text or text.lower() in ("none", "null", "n/a", "new", "-"):
        return None
    m = _DIGITS.match(text)
    return str(int(m.group(1))) if m else text


def _field(item: dict[str, Any], keys: tuple[str, ...]) -> Any:
    lower = {str(k).lower(): v for k, v in item.items()}
    for k in keys:
        if k in lower and lower[k] not in (None, ""):
            return lower[k]
    return None


def _kept(text: str) -> str:
    """A model's text as memvault may keep it: no NUL, valid Unicode.

    Why: a caller's NUL or lone surrogate is refused with a typed error, but a model's
    output is not the caller's input; it is cleaned instead, so one odd character never
    fails a whole add (or a later copy to PostgreSQL, which cannot store NUL).
    """
    return text.replace("\x00", "").encode("utf-8", "replace").decode("utf-8").strip()


def _text(value: Any) -> str | None:
    """The fact as a string; numbers become text, structures are not a fact."""
    if isinstance(value, bool) or value is None or isinstance(value, dict | list):
        return None
    text = _kept(str(value))
    # "..." or "<the fact>" copied from the prompt's example is not a fact
    if not any(c.isalnum() for c in text) or (text.startswith("<") and text.endswith(">")):
        return None
    return text


def _items(data: Any, raw: str) -> list[Any]:
    """The list of memories wherever the model put it."""
    if isinstance(data, list):
        return data
    assert isinstance(data, dict)
    lower = {str(k).lower(): v for k, v in data.items()}
    for key in _LIST_KEYS:
        value = lower.get(key)
        if isinstance(value, list):
            return value
        if isinstance(value, dict) and value:
            return [value]
    lists = [v for v in data.values() if isinstance(v, list)]
    if len(lists) == 1:
        return lists[0]
    if _field(data, _TEXT_KEYS) is not None and isinstance(_field(data, _TEXT_KEYS), str):
        return [data]  # one bare item instead of a list
    raise LLMError("the LLM answer has no 'memories' list", raw_output=raw)


def decode_memories(raw: str) -> list[Proposal]:
    """Every item the model answered, in order (see the module docstring)."""
    try:
        data = extract_json(raw, allow_list=True)
    except LLMError:
        salvaged = salvage_items(raw)
        if not salvaged:
            raise
        log.warning("LLM answer was cut off; kept its %d complete item(s)", len(salvaged))
        data = salvaged
    out: list[Proposal] = []
    pending = list(_items(data, raw))
    while pending:
        item = pending.pop(0)
        if isinstance(item, str):  # a bare fact
            if _kept(item):
                out.append(Proposal("ADD", _kept(item), None, None, None))
            continue
        if isinstance(item, list):  # nested lists: flatten, in order
            pending[:0] = item
            continue
        if not isinstance(item, dict):
            log.warning("LLM answer item %r is not a memory; ignored", item)
            continue
        raw_event = _field(item, _EVENT_KEYS)
        event = normalise_event(raw_event) if raw_event is not None else AMBIGUOUS
        if event == AMBIGUOUS and raw_event is not None:
            log.info("LLM answered the event %r; resolved from the id and text", raw_event)
        out.append(
            Proposal(
                event,
                _text(_field(item, _TEXT_KEYS)),
                normalise_ref(_field(item, _ID_KEYS)),
                _text(_field(item, _WHO_KEYS)),
                raw_event if isinstance(raw_event, str) else None,
            )
        )
    return out


def _render(value: Any, indent: str = "") -> str:
    """A JSON value as readable text: ``key: value`` lines, list items as ``- ...``."""
    if isinstance(value, dict):
        lines = []
        for k, v in value.items():
            body = _render(v, indent + "  ")
            sep = "\n" if isinstance(v, dict | list) and v else " "
            lines.append(f"{indent}{k}:{sep}{body}")
        return "\n".join(lines)
    if isinstance(value, list):
        return "\n".join(f"{indent}- {_render(v, indent + '  ').lstrip()}" for v in value)
    return str(value).strip()


def decode_summary(raw: str) -> str:
    """The procedural summary, as text even when the model structured it.

    Why: asked for ``{"summary": "<text>"}``, Qwen2.5 1.5B answered ``{"summary": {"task
    goal": ..., "steps taken in order": [...]}}`` (issue 16). The structure holds exactly
    the requested content, so it is rendered to text rather than failing the add. No
    ``summary`` (or an empty one): ``LLMError``, and the add is journaled as failed.
    """
    data = extract_json(raw)
    lower = {str(k).lower(): v for k, v in data.items()}
    value = lower.get("summary", lower.get("procedural_memory"))
    text = "" if value is None else value.strip() if isinstance(value, str) else _render(value)
    if not text:
        raise LLMError("the LLM answer has no 'summary'", raw_output=raw)
    return text
