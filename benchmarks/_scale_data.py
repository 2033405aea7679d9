"""The synthetic corpus of ``bench_scale.py``: deterministic texts, vectors and queries.

Imported by both venvs (memvault's and mem0's), so numpy and the standard library only.

* Scope ``i`` is ``user_id = f"u{i:05d}"`` and holds ``PER_SCOPE`` memories.
* A memory is a templated sentence: a speaker, 4-7 content words drawn from a Zipf
  distribution over a vocabulary of ``VOCAB`` pronounceable made-up words, and stopwords.
  Zipf matters: the common words occur in a large share of *all* memories, so a keyword
  index that decodes a term's posting list store-wide (instead of the scope's) shows up
  as growing search time. Texts are unique within a scope (memvault dedups exact text).
* Vectors are random unit 384-d float32 vectors, seeded per scope (no model needed, same
  numbers on every run and in both venvs). Dense search cost does not depend on what the
  vectors mean; recall is measured elsewhere (LoCoMo).
* A query is 3 content words + question scaffolding, with a vector of its own.
"""

from __future__ import annotations

import numpy as np

DIMS = 384
PER_SCOPE = 100
VOCAB = 5000
#: Bump when the generated data changes: cached stores built from older data are rebuilt.
DATA_VERSION = 1

_ONSETS = [
    "b",
    "d",
    "f",
    "g",
    "k",
    "l",
    "m",
    "n",
    "p",
    "r",
    "s",
    "t",
    "v",
    "z",
    "br",
    "dr",
    "gr",
    "kl",
    "pl",
    "st",
    "tr",
    "sk",
    "sl",
    "ch",
    "sh",
    "th",
]
_VOWELS = ["a", "e", "i", "o", "u", "ai", "ea", "oo"]
_CODAS = ["n", "r", "l", "s", "x", "k", "m", "nd", "st"]
_NAMES = [
    "Ava",
    "Ben",
    "Cleo",
    "Dev",
    "Elif",
    "Finn",
    "Gia",
    "Hugo",
    "Iris",
    "Jon",
    "Kai",
    "Lena",
    "Milo",
    "Nia",
    "Omar",
    "Pia",
    "Quin",
    "Rosa",
    "Sam",
    "Tara",
    "Uma",
    "Vik",
    "Wren",
    "Xena",
    "Yara",
    "Zed",
]
_VERBS = [
    "likes",
    "visited",
    "fixed",
    "ordered",
    "planned",
    "mentioned",
    "bought",
    "lost",
    "found",
    "painted",
]


def _vocabulary() -> list[str]:
    rng = np.random.default_rng(20261206)
    words: list[str] = []
    seen: set[str] = set()
    while len(words) < VOCAB:
        n = int(rng.integers(2, 4))
        w = (
            "".join(
                _ONSETS[rng.integers(len(_ONSETS))] + _VOWELS[rng.integers(len(_VOWELS))]
                for _ in range(n)
            )
            + _CODAS[rng.integers(len(_CODAS))]
        )
        if w not in seen:
            seen.add(w)
            words.append(w)
    return words


WORDS = _vocabulary()
_ZIPF = 1.0 / np.arange(1, VOCAB + 1) ** 1.05
_CDF = np.cumsum(_ZIPF / _ZIPF.sum())


def _zipf_words(rng: np.random.Generator, k: int) -> list[str]:
    return [WORDS[min(int(j), VOCAB - 1)] for j in np.searchsorted(_CDF, rng.random(k))]


def scope_id(i: int) -> str:
    return f"u{i:05d}"


def n_scopes(size: int) -> int:
    return max(1, size // PER_SCOPE)


def _unit(rng: np.random.Generator, n: int) -> np.ndarray:
    m = rng.standard_normal((n, DIMS), dtype=np.float32)
    m /= np.linalg.norm(m, axis=1, keepdims=True)
    return m


def scope_texts(i: int) -> list[str]:
    """The scope's PER_SCOPE memory texts, unique, in insertion order."""
    rng = np.random.default_rng([DATA_VERSION, 1, i])
    out: list[str] = []
    seen: set[str] = set()
    while len(out) < PER_SCOPE:
        k = int(rng.integers(4, 8))
        content = _zipf_words(rng, k)
        name = _NAMES[rng.integers(len(_NAMES))]
        verb = _VERBS[rng.integers(len(_VERBS))]
        text = f"{name} {verb} the {content[0]} {content[1]} with {' and '.join(content[2:])}."
        if text not in seen:
            seen.add(text)
            out.append(text)
    return out


def scope_vectors(i: int) -> np.ndarray:
    """(PER_SCOPE, DIMS) float32 unit vectors, row j for text j."""
    return _unit(np.random.default_rng([DATA_VERSION, 2, i]), PER_SCOPE)


def query(i: int, variant: int = 0) -> tuple[str, np.ndarray]:
    """A query for scope ``i`` (its text and its vector); ``variant`` gives another one."""
    rng = np.random.default_rng([DATA_VERSION, 3, i, variant])
    content = _zipf_words(rng, 3)
    text = f"what did they say about the {content[0]} {content[1]} and {content[2]}?"
    return text, _unit(rng, 1)[0]
