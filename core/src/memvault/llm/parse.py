"""Robust JSON out of LLM text: reasoning blocks, code fences and prose are tolerated.

Why: reasoning models emit ``<think>…</think>`` first, many models wrap JSON in
```json fences or add a sentence around it. We strip what is clearly not the
answer and take the first balanced JSON object. Anything else raises
``LLMError`` carrying the raw output — never a silent empty result.
"""

from __future__ import annotations

import json
import re
from typing import Any

from memvault.errors import LLMError

_THINK = re.compile(r"<(think|thinking|reasoning)>.*?</\1>", re.DOTALL | re.IGNORECASE)
_OPEN_THINK = re.compile(r"^\s*<(think|thinking|reasoning)>.*", re.DOTALL | re.IGNORECASE)
_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)


def _balanced_objects(text: str) -> list[str]:
    """Every top-level ``{...}`` span, respecting strings and escapes."""
    spans, depth, start, in_str, esc = [], 0, -1, False, False
    for i, ch in enumerate(text):
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
            continue
        if ch == '"' and depth > 0:
            in_str = True
        elif ch == "{":
            if depth == 0:
                start = i
            depth += 1
        elif ch == "}" and depth > 0:
            depth -= 1
            if depth == 0:
                spans.append(text[start : i + 1])
    return spans


def _first_array(text: str) -> list[Any] | None:
    """The first parseable ``[...]`` in prose (only when no object was found at all)."""
    start = text.find("[")
    while start != -1:
        try:
            value, _ = json.JSONDecoder().raw_decode(text, start)
        except json.JSONDecodeError:
            value = None
        if isinstance(value, list):
            return value
        start = text.find("[", start + 1)
    return None


def extract_json(raw: str | None, *, allow_list: bool = False) -> Any:
    """The JSON object the model meant to return, or ``LLMError`` naming the raw output.

    ``allow_list``: a top-level JSON array is an answer too (small models often send the
    list of memories without the object around it); a dict is still preferred.
    """
    if raw is None or not raw.strip():
        raise LLMError("the LLM returned an empty response", raw_output=raw or "")
    text = _THINK.sub("", raw)
    if _OPEN_THINK.match(text):  # an unterminated reasoning block: the answer never came
        raise LLMError("the LLM output is an unterminated reasoning block", raw_output=raw)
    candidates = [m.strip() for m in _FENCE.findall(text)] + [text.strip()]
    for cand in candidates:
        try:
            value = json.loads(cand)
        except json.JSONDecodeError:
            spans = _balanced_objects(cand)
            for span in spans:
                try:
                    value = json.loads(span)
                except json.JSONDecodeError:
                    continue
                if isinstance(value, dict):
                    return value
            continue
        if isinstance(value, dict) or (allow_list and isinstance(value, list)):
            return value
    if allow_list:
        for cand in candidates:
            value = _first_array(cand)
            if value is not None:
                return value
    raise LLMError("could not find a JSON object in the LLM output", raw_output=raw)


_LIST_START = re.compile(r'"(?:memories|facts)"\s*:\s*\[')


def salvage_items(raw: str | None) -> list[Any]:
    """The complete items of a memories list whose JSON was cut off (``max_tokens``).

    Why: on a long conversation a small model can run until the token limit (Qwen2.5 1.5B
    repeated its facts to 1,500 tokens on a LoCoMo session), which leaves truncated JSON.
    The items before the cut are whole facts; keeping them (the write path then asks
    again about the sentences they do not cover) beats failing the add. Empty when no
    complete item precedes the cut.
    """
    if not raw:
        return []
    m = _LIST_START.search(_THINK.sub("", raw))
    if m is None:
        return []
    text, pos, out = _THINK.sub("", raw), m.end(), []
    decoder = json.JSONDecoder()
    while True:
        while pos < len(text) and text[pos] in " \t\r\n,":
            pos += 1
        if pos >= len(text) or text[pos] == "]":
            return out
        try:
            value, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError:
            return out
        out.append(value)
