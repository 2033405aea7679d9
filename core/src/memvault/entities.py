"""Entity links: which memories name which people, places and things (no model needed).

Why: a question names entities ("What did Caroline's mentor give her?"), and the memories
that answer it often share an entity with the query or with each other rather than the
question's other words. A cheap graph — memory -> entities, entity -> memories — gives two
signals to the fusion (see :mod:`memvault.retrieval`):

* **direct**: the share of the query's entity weight (IDF within the scope) a memory holds;
* **hop**: entities of the first-stage top results that the query did not name ("Sweden"
  in the top answer to "where did Caroline move from?") lift the other memories naming
  them — one step of multi-hop over the graph.

Extraction is deliberately crude and cheap: capitalised words that do not start a sentence
(or all-caps acronyms anywhere), minus stopwords, months and weekdays, analysed like the
keyword index (lower case, Snowball stem) so "Mel's" and "mel" meet; plus the first name of
the memory's speaker (``actor_id``). The query side needs no capitals: a query term is an
entity when the scope knows it as one, so "what does mel like" links too.

Per memory the extraction is cached by text hash; per scope the index is built once per
view of the scope and kept on the view (:meth:`memvault.views.ScopeView.entity_graph`), which
the view cache replaces when the scope changes.
"""

from __future__ import annotations

import math
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from memvault.models import MemoryRecord
from memvault.text import STOPWORDS, analyze

_SENTENCE = re.compile(r"[.!?:;\n\"“”()\[\]]+")
_WORD = re.compile(r"[A-Za-z][\w'’-]*")
_TITLE = re.compile(r"\b(Mr|Mrs|Ms|Dr|St|Prof)\.")  # not a sentence end
_POSSESSIVE = re.compile(r"['’]s?$")
_NOT_NAMES_TEXT = """january february march april may june july august september october november december
    monday tuesday wednesday thursday friday saturday sunday today yesterday tomorrow
    i im i'm i've i'd i'll hey hi hello oh wow yeah yes ok okay thanks thank omg lol haha
    mr mrs ms dr"""
_NOT_NAMES = frozenset(_NOT_NAMES_TEXT.split())


def extract(text: str) -> list[str]:
    """The entity keys (analysed terms) a text names, in order, without repeats."""
    out: list[str] = []
    for sentence in _SENTENCE.split(_TITLE.sub(r"\1", text)):
        words = _WORD.findall(sentence)
        for j, w in enumerate(words):
            if not w[0].isupper():
                continue
            acronym = len(w) >= 2 and w.isupper()
            if j == 0 and not acronym:
                continue  # sentence-initial capitals say nothing
            low = _POSSESSIVE.sub("", w.lower())
            if low in STOPWORDS or low in _NOT_NAMES or len(low) < 2:
                continue
            out.extend(analyze(low))
    return list(dict.fromkeys(out))


def _speaker_key(actor: str | None) -> list[str]:
    if not actor or not actor.strip():
        return []
    first = actor.split()[0].lower()
    return analyze(first) if first not in STOPWORDS else []


_record_cache: OrderedDict[tuple[str, str | None], tuple[str, ...]] = OrderedDict()
_record_lock = threading.Lock()
_RECORD_CACHE_SIZE = 200_000


def record_entities(r: MemoryRecord) -> tuple[str, ...]:
    key = (r.hash or r.memory, r.actor_id)
    with _record_lock:
        hit = _record_cache.get(key)
    if hit is not None:
        return hit
    ents = tuple(dict.fromkeys([*_speaker_key(r.actor_id), *extract(r.memory)]))
    with _record_lock:
        _record_cache[key] = ents
        while len(_record_cache) > _RECORD_CACHE_SIZE:
            _record_cache.popitem(last=False)
    return ents


@dataclass(slots=True)
class ScopeIndex:
    """The entity graph and observation days of one scope's records (aligned with them)."""

    records: Sequence[MemoryRecord]  # the view's own list, which the arrays align with
    ents: list[np.ndarray]  # record -> entity ids
    postings: list[np.ndarray]  # entity id -> record indices
    vocab: dict[str, int]
    idf: np.ndarray
    day: np.ndarray  # observation day (proleptic ordinal, float; NaN = unknown)


def _day(r: MemoryRecord) -> float:
    ts = r.valid_from or r.created_at
    if not ts:
        return math.nan
    try:
        return float(datetime.fromisoformat(ts[:10]).toordinal())
    except ValueError:
        return math.nan


def build(records: Sequence[MemoryRecord]) -> ScopeIndex:
    """The entity graph of a scope's records (indices aligned with ``records``)."""
    return _grow(records, {}, [], [], np.zeros(0))


def extend(index: ScopeIndex, records: Sequence[MemoryRecord]) -> ScopeIndex:
    """The graph of ``records``, whose first ``len(index.records)`` are ``index``'s, unchanged.

    Why: after an add, the scope's next search would otherwise rebuild the graph over every
    record (~1 ms per 500 memories); only the new records' entities are read here (and the
    postings they touch copied), and the result equals :func:`build` on ``records``.
    ``index`` itself is left as it was.
    """
    return _grow(records, dict(index.vocab), list(index.ents), list(index.postings), index.day)


def _grow(
    records: Sequence[MemoryRecord],
    vocab: dict[str, int],
    ents: list[np.ndarray],
    postings: list[np.ndarray],
    day: np.ndarray,
) -> ScopeIndex:
    """Add ``records[len(ents):]`` to a graph given by its (copied) parts."""
    start = len(ents)
    added: dict[int, list[int]] = {}
    for i in range(start, len(records)):
        ids = []
        for e in record_entities(records[i]):
            k = vocab.get(e)
            if k is None:
                k = vocab[e] = len(vocab)
            ids.append(k)
            added.setdefault(k, []).append(i)
        ents.append(np.asarray(ids, dtype=np.int64))
    old = len(postings)
    postings.extend(np.zeros(0, dtype=np.int64) for _ in range(len(vocab) - old))
    for k, rows in added.items():
        new = np.asarray(rows, dtype=np.int64)
        postings[k] = np.concatenate([postings[k], new]) if k < old else new
    n = max(len(records), 1)
    df = np.fromiter(map(len, postings), dtype=np.float64, count=len(postings))
    idf = np.log(1.0 + (n - df + 0.5) / (df + 0.5)) if len(df) else np.zeros(0)
    days = np.fromiter((_day(r) for r in records[start:]), dtype=np.float64)
    return ScopeIndex(records, ents, postings, vocab, idf, np.concatenate([day, days]))


def query_entities(terms: Sequence[str], index: ScopeIndex) -> np.ndarray:
    """Entity ids of the scope named by the query's analysed terms."""
    ids = [index.vocab[t] for t in dict.fromkeys(terms) if t in index.vocab]
    return np.asarray(ids, dtype=np.int64)


def direct(qents: np.ndarray, index: ScopeIndex, n: int) -> np.ndarray:
    """Per record: the share of the query's entity IDF mass it names, in [0, 1]."""
    out = np.zeros(n)
    if not len(qents):
        return out
    w = index.idf[qents]
    total = float(w.sum())
    if total <= 0:
        return out
    for e, wi in zip(qents.tolist(), w.tolist(), strict=True):
        out[index.postings[e]] += wi / total
    return out


def hop(
    seeds: np.ndarray, seed_weight: np.ndarray, qents: np.ndarray, index: ScopeIndex, n: int
) -> np.ndarray:
    """Per record: entity weight shared with the seed records, beyond the query's entities.

    Each entity of a seed (not named by the query) carries IDF x the seed's weight; a record
    scores the sum over the entities it names, scaled to [0, 1] by the best record.
    """
    out = np.zeros(n)
    if not len(seeds):
        return out
    named = set(qents.tolist())
    carry: dict[int, float] = {}
    for s, ws in zip(seeds.tolist(), seed_weight.tolist(), strict=True):
        for e in index.ents[s].tolist():
            if e not in named:
                carry[e] = carry.get(e, 0.0) + ws * float(index.idf[e])
    for e, we in carry.items():
        out[index.postings[e]] += we
    top = float(out.max()) if n else 0.0
    return out / top if top > 0 else out
