"""The supersession guard: UPDATE / DELETE may only touch a memory the new fact is about.

Why: small models pick wrong ids. With a real 1.5B model (issue 16), a fact about a bakery
job came back as ``UPDATE`` of "User is vegetarian and runs marathons", which would have
silently retired a true memory. Superseding is the one decision that can lose knowledge
(the old memory stops being current), so it needs evidence beyond the model's word:

* the texts' embeddings are close (cosine >= ``SAME_TOPIC``): "lives in Paris" -> "lives in
  Berlin" (0.72), "has two kids" -> "has three kids" (0.97); or
* they are fairly close (>= ``NEAR_TOPIC``) *and* share a content word — an entity or a
  predicate, not just the person they are about: "Carol has a cat named Tom" vs "Tom
  passed away".

Measured with the bundled MiniLM on same-person pairs: related updates 0.57-0.98, unrelated
facts 0.21-0.56 (with a shared content word only among the related ones), so a wrong id
falls back to ADD (both facts stay current: nothing lost) and a wrong DELETE is ignored.
A rejected supersession costs a missed update, an accepted wrong one costs a true memory;
the thresholds lean on the side of keeping.
"""

from __future__ import annotations

import re

import numpy as np

#: Cosine at which two facts are about the same thing without further evidence.
SAME_TOPIC = 0.6
#: Cosine from which a shared content word is enough evidence.
NEAR_TOPIC = 0.4
#: Cosine from which a fact the model marked NONE is taken as already known.
SAME_FACT = 0.8
#: For a DELETE there is no new fact, only what was said ("Sadly Tom passed away"), which is
#: worded unlike a stored fact ("Carol has a cat named Tom": 0.36): lower bars, measured the
#: same way (related sentence/memory pairs 0.27-0.80, unrelated -0.03-0.39).
SAID_SAME_TOPIC = 0.5
SAID_NEAR_TOPIC = 0.3
#: Where a message splits into sentences (shared with ``coverage``).
SENTENCE = re.compile(r"(?<=[.!?…。！？])\s+|\n+")
#: Words that say nothing about what a fact is about (shared with ``coverage``).
STOPWORDS = frozenset(
    (
        "about",
        "also",
        "and",
        "are",
        "assistant",
        "been",
        "being",
        "but",
        "can",
        "could",
        "did",
        "does",
        "doing",
        "done",
        "for",
        "from",
        "had",
        "has",
        "have",
        "her",
        "hers",
        "him",
        "his",
        "into",
        "its",
        "just",
        "not",
        "now",
        "onto",
        "over",
        "she",
        "should",
        "still",
        "than",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "under",
        "user",
        "users",
        "very",
        "was",
        "were",
        "what",
        "when",
        "where",
        "which",
        "who",
        "whom",
        "will",
        "with",
        "would",
        "yes",
    )
)

_TOKEN = re.compile(r"[^\W\d_]{3,}|\d+", re.UNICODE)
# Preference verbs join every "likes X" fact to every other: not evidence of one topic.
_STOP = STOPWORDS | {"like", "likes", "love", "loves", "want", "wants"}


def unit(v: np.ndarray) -> np.ndarray:
    """``v`` scaled to length 1 (rows, for a matrix); zero vectors stay zero."""
    v = np.asarray(v, dtype=np.float32)
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.where(n == 0, 1, n)


def content_words(text: str) -> set[str]:
    """Lower-cased content words, cut to a 5-letter stem, without the first word.

    Why drop the first word: it is almost always who the fact is about ("Alice ...",
    "User's ..."), which every memory of the scope shares — not evidence of relatedness.
    """
    words = _TOKEN.findall(text)
    out = set()
    for w in words[1:]:
        w = w.lower()
        if w not in _STOP:
            out.add(w[:5])
    return out


def related(
    cos: float, a: str, b: str, *, same: float = SAME_TOPIC, near: float = NEAR_TOPIC
) -> bool:
    """Whether facts ``a`` and ``b`` (cosine ``cos``) are about the same thing."""
    if cos >= same:
        return True
    return cos >= near and bool(content_words(a) & content_words(b))


def sentences(messages: list[str], limit: int = 40) -> list[str]:
    """The messages cut into sentences (a long message's embedding blurs its parts)."""
    out: dict[str, None] = {}
    for m in messages:
        for s in SENTENCE.split(m):
            if s.strip():
                out[s.strip()] = None
    return list(out)[:limit]
