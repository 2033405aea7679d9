"""Opt-in query expansion: the configured LLM says what memories would answer a query.

Why: similarity retrieval finds memories that resemble the question, and some questions
are answered by memories that do not ("Would Caroline likely have Dr. Seuss books on her
shelf?" by "I collect classic children's books"; "What activities does Melanie do?" by
five turns about pottery, camping, running...). Asked first, a model writes statements an
answer would be made of; each is searched too, and the rankings are fused by reciprocal
rank, the question's own ranking weighing as much as all the statements' together (a rule
fixed before any measurement, so nothing is fitted to the conversations it is judged on:
a statement is a guess, the question is what was asked).

Opt-in (``RetrievalConfig.expansions``): one LLM call per search — seconds on a small
local model, against single-digit milliseconds without it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from memvault.effects import Op
from memvault.errors import LLMError
from memvault.llm.client import Completion, LLMClient
from memvault.llm.parse import extract_json

#: Reciprocal-rank fusion constant (the usual 60: a rank-1 hit is worth ~1.6 rank-40 hits).
RRF_K = 60

EXPANSION_PROMPT = """\
You help search the long-term memory of an AI assistant: short facts about people and \
their lives, or sentences they said. For the QUESTION, write statements that such memories \
would contain if they answer it: concrete facts (activities, places, people, things, \
dates), each a short sentence that names who it is about, in the question's language. \
Write different possible answers rather than one answer reworded; guess when unsure.

Answer with JSON only: {"statements": ["...", "..."]}"""


def expansion_input(query: str, n: int) -> str:
    return f"QUESTION: {query}\n\nWrite {n} statements."


def decode_statements(raw: str, n: int) -> list[str]:
    """Up to ``n`` distinct statements from the answer: ``{"statements": [...]}`` or any list
    of strings (or of objects with a text) in it; ``[]`` when the answer holds none."""
    try:
        data = extract_json(raw, allow_list=True)
    except LLMError:
        return []
    items: Any = data
    if isinstance(data, dict):
        items = next((v for v in data.values() if isinstance(v, list)), None)
        if items is None:
            items = [v for v in data.values() if isinstance(v, str)]
    out: list[str] = []
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict):
            item = next((v for v in item.values() if isinstance(v, str)), None)
        if isinstance(item, str):
            text = " ".join(item.split())[:500]
            if text and text.casefold() not in {o.casefold() for o in out}:
                out.append(text)
    return out[:n]


def expand(llm: LLMClient, query: str, n: int) -> Op[tuple[list[str], Completion]]:
    """The statements the model expects answering memories to hold, and its completion.

    An answer with no usable statement is no error (the query itself is still searched);
    a failed call is (``LLMError``), as for an add: the caller asked for the model.
    """
    completion: Completion = yield from llm.call(EXPANSION_PROMPT, expansion_input(query, n))
    return decode_statements(completion.text, n), completion


def fuse(
    rankings: Sequence[Sequence[dict[str, Any]]],
    weights: Sequence[float] | None = None,
    key: str = "id",
) -> list[dict[str, Any]]:
    """Weighted reciprocal-rank fusion of result lists, best first; ``score`` becomes the
    fused score.

    Each result keeps the dict of the ranking that placed it highest. Scores are divided by
    the best possible (first in every ranking), so they stay in [0, 1].
    """
    weights = list(weights) if weights is not None else [1.0] * len(rankings)
    fused: dict[Any, float] = {}
    best: dict[Any, tuple[int, dict[str, Any]]] = {}
    for results, w in zip(rankings, weights, strict=True):
        for rank, item in enumerate(results):
            k = item[key]
            fused[k] = fused.get(k, 0.0) + w / (RRF_K + rank + 1)
            if k not in best or rank < best[k][0]:
                best[k] = (rank, item)
    top = sum(weights) / (RRF_K + 1) or 1.0
    order = sorted(fused, key=lambda k: (-fused[k], best[k][0]))
    return [{**best[k][1], "score": round(fused[k] / top, 6)} for k in order]
