"""Notice when an extraction answer has started repeating itself.

Why: a small model (Qwen2.5-Coder-1.5B on llama.cpp, issue 16) often states the genuine
facts and then cycles through them again (``ADD "Melanie is taking care of herself"`` /
``UPDATE id 10`` with the same text, over and over) until ``max_tokens``. At ~9 tokens/s
that is ~90 s of generation per call that adds nothing: the decoder keeps the complete
items of a cut-off answer and the write path de-duplicates repeated ones. With
``LLMSettings.stop_repeats`` the client streams the answer and asks :func:`is_looping`
whenever an item may have completed; on ``True`` it stops reading.

The rule: the last ``window`` complete items each repeat an earlier item of the same
answer. One repeat happens in honest answers (an ADD and an UPDATE about the same fact);
``window`` (3 by default) repeats in a row is the loop. Items compare by their fact text,
normalised (casefolded, whitespace collapsed, trailing periods dropped), so ``"Likes tea."``
repeats ``"likes  tea"``; an item without a text compares as its whole JSON (a loop of
``{"event": "NONE", "id": "3"}`` is a loop too). Pure functions: no I/O, no state.
"""

from __future__ import annotations

import json
import re
from typing import Any

from memvault.llm.parse import salvage_items

#: How many repeats in a row make a loop (an honest answer repeats a fact once at most).
DEFAULT_WINDOW = 3
_SPACE = re.compile(r"\s+")
_TEXT_KEYS = ("text", "fact", "memory", "content", "new_text", "new_memory", "value", "data")
_BARE_LIST = re.compile(r"^\s*(?:```(?:json|JSON)?\s*)?\[")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
#: Shorter sentences ("Yes.", "Thanks!") may honestly recur.
MIN_SENTENCE_WORDS = 4


def normalise_fact(text: str) -> str:
    """``"  Likes   Tea. "`` -> ``"likes tea"``: the form two repeats of one fact share."""
    return _SPACE.sub(" ", text.casefold()).strip().rstrip(".").rstrip()


def item_key(item: Any) -> str:
    """What an answer item is compared by: its normalised fact text, else its whole JSON."""
    if isinstance(item, str):
        return normalise_fact(item)
    if isinstance(item, dict):
        lower = {str(k).lower(): v for k, v in item.items()}
        for key in _TEXT_KEYS:
            value = lower.get(key)
            if isinstance(value, str) and value.strip():
                return normalise_fact(value)
    return json.dumps(item, sort_keys=True, ensure_ascii=False)


def complete_items(raw: str) -> list[Any]:
    """The complete items so far of an answer still being written.

    ``{"memories": [...`` (or ``"facts"``) and a bare ``[...`` list are read; anything else
    has no items yet (a summary, prose).
    """
    items = salvage_items(raw)
    if items:
        return items
    m = _BARE_LIST.match(raw)
    if m is None:
        return []
    return salvage_items('{"memories": [' + raw[m.end() :])


def is_looping(raw: str, window: int = DEFAULT_WINDOW) -> bool:
    """Whether the last ``window`` complete items of ``raw`` each repeat an earlier one, or
    its last ``window`` complete sentences do (a loop inside one item's text)."""
    if window < 1:
        raise ValueError("window must be at least 1")
    keys = [item_key(item) for item in complete_items(raw)]
    return _repeats(keys, window) or _repeats(_sentences(raw), window)


def _repeats(keys: list[str], window: int) -> bool:
    if len(keys) <= window:
        return False
    return all(keys[i] in keys[:i] for i in range(len(keys) - window, len(keys)))


def _sentences(raw: str) -> list[str]:
    """The complete sentences of ``raw`` of at least ``MIN_SENTENCE_WORDS`` words, normalised.

    LoCoMo 41/5: Qwen 1.5B wrote one item whose text cycled through two sentences until the
    token limit, ~170 s, and no item ever completed for the item rule to see.
    """
    parts = _SENTENCE_END.split(raw)[:-1]  # the last part may still be being written
    return [normalise_fact(p) for p in parts if len(p.split()) >= MIN_SENTENCE_WORDS]
