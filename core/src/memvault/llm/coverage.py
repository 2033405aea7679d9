"""Which stated sentences did the model's answer not cover? (the second-pass trigger)

Why: a small model drops facts. With Qwen2.5 1.5B (issue 16), "My daughter Mia turned five
last week", said to a user with two stored memories, came back as an UPDATE of an existing
memory with that memory's own text: no fact about Mia at all, and nothing failed. A fact
dropped that way is lost silently, so after each extraction the write path checks that every
sentence that may state something is covered — by a fact in the answer or by a memory the
model was shown — and asks once more, about the uncovered sentences only, without the
existing memories that confused it.

Coverage is cheap on purpose: shared content words first (no model run); only sentences
with no shared word are embedded and compared (cosine >= ``COVERED``), so a good answer
costs no embedding at all. Questions and very short sentences ("Thanks!", "How are you?")
state nothing and are not checked.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from memvault.llm.guard import SENTENCE, STOPWORDS

#: Cosine from which a sentence counts as covered by a fact. With the bundled MiniLM the
#: dropped facts seen with the real model scored 0.07-0.16 against the answer, paraphrases
#: 0.3-0.9 ("btw I stopped eating meat last year" / "Eli is vegetarian": 0.30): the bar
#: catches an answer that is about something else, not a loose paraphrase (a second call
#: each time would double the cost of such adds).
COVERED = 0.25
#: A sentence needs this many content words to possibly state a fact.
MIN_WORDS = 3

_TOKEN = re.compile(r"[^\W_]{2,}", re.UNICODE)
# The guard's stopwords plus short words and the chatter of a conversation.
_STOP = STOPWORDS | {
    "a",
    "an",
    "as",
    "at",
    "be",
    "by",
    "cool",
    "good",
    "great",
    "haha",
    "hello",
    "hey",
    "hi",
    "i'm",
    "im",
    "in",
    "is",
    "it",
    "it's",
    "lol",
    "me",
    "mine",
    "my",
    "nice",
    "no",
    "of",
    "oh",
    "ok",
    "okay",
    "on",
    "or",
    "our",
    "ours",
    "please",
    "really",
    "so",
    "sure",
    "thank",
    "thanks",
    "to",
    "too",
    "we",
    "well",
    "wow",
    "yeah",
    "you",
    "your",
    "yours",
}


def _stem(word: str) -> str:
    if len(word) > 3 and word.endswith("s"):
        word = word[:-1]
    return word[:5]


def words(text: str) -> set[str]:
    """Lower-cased content words cut to a crude stem (so "moved"/"moving", "bee"/"bees" meet)."""
    return {_stem(w.lower()) for w in _TOKEN.findall(text) if w.lower() not in _STOP}


def statements(messages: Sequence[tuple[str, str, str]]) -> list[tuple[str, str]]:
    """``(speaker, sentence)`` for every sentence that may state a fact.

    ``messages`` are ``(role, speaker, content)``; the assistant's sentences are left out
    (its facts are kept only when the user confirms them, which the user's turn covers).
    """
    out: list[tuple[str, str]] = []
    for role, who, content in messages:
        if role == "assistant":
            continue
        for s in SENTENCE.split(content):
            s = s.strip()
            if s and not s.endswith(("?", "？")) and len(words(s)) >= MIN_WORDS:
                out.append((who, s))
    return out


def lexically_covered(sentence: str, texts: Sequence[str]) -> bool:
    """Whether one of ``texts`` (what the model answered) shares a content word with it.

    One word is enough: the model clearly read that sentence ("Sadly Tom passed away" and
    a DELETE of "Carol has a cat named Tom"); the check is for sentences it ignored.
    """
    mine = words(sentence)
    return any(mine & words(t) for t in texts)
