"""The supersession guard: UPDATE / DELETE may only touch a memory the new fact is about.

Why: small models pick wrong ids. With a real 1.5B model (issue 16), a fact about a bakery
job came back as ``UPDATE`` of "User is vegetarian and runs marathons", which would have
silently retired a true memory. Superseding is the one decision that can lose knowledge
(the old memory stops being current), so it needs evidence beyond the model's word:

* the texts' embeddings are very close (cosine >= ``SAME_TOPIC``): "has two kids" -> "has
  three kids" (0.97), a fact reworded; or
* they are fairly close (>= ``NEAR_TOPIC``) *and* share a content word — an entity or a
  predicate, not just the person they are about: "lives in Paris" -> "lives in Berlin"
  (0.72, "lives"), "Carol has a cat named Tom" vs "Tom passed away".

Measured with the bundled MiniLM on same-person pairs: related updates 0.57-0.98, unrelated
facts 0.21-0.56 (with a shared content word only among the related ones), so a wrong id
falls back to ADD (both facts stay current: nothing lost) and a wrong DELETE is ignored.
A rejected supersession costs a missed update, an accepted wrong one costs a true memory;
the thresholds lean on the side of keeping.

What a long real conversation added (LoCoMo with the real 1.5B model, 19 sessions: 4 of 8
supersessions were wrong): there every memory is about the same two people and the same
few topics, so a shared word proves nothing. "Melanie shared a photo of a painting of a
sunset" was retired by "Melanie shared a photo of a cup with a dog face" (0.46, sharing
"shared" and "photo"), "went to a council meeting for adoption" by advice on finding an
adoption agency (0.54, "adoption"), "Jon is on the hunt for the ideal spot for his dance
studio" by "Jon is getting ready for a dance comp" (0.68, which the old bar of 0.6 took as
proof on its own). Hence:

* cosine alone is proof only from 0.8; below, a shared content word must back it;

* the shared word must single the target out among the memories shown with it: a word
  that two or more of the *other* shown memories also hold is the conversation's topic,
  not evidence (``distinctive``);
* a fact about someone else is never an update: "Melanie is starting to realize that
  self-care is important" came back as an UPDATE to "Caroline is starting ..." (0.70) —
  when both texts begin with a name and the names differ, they are unrelated
  (``other_subjects``);
* a memory kept verbatim (category ``verbatim``: what someone said, in their words) is
  never replaced by an UPDATE: a later fact does not change what was said, and the
  sentence often holds more than the fact the model had in mind. The fact is added beside
  it. (A DELETE may still retire it, under the same evidence as any other memory.) The
  same holds for any text in the first person, old or new: an UPDATE restates a fact about
  someone, and a model that answers with copied speech ("Melanie: Wow, ... we went to the
  beach recently") is not restating the fact it names — three of three UPDATEs the model
  made in the first 21 sessions of the second LoCoMo run were such copies (0.46-0.57,
  sharing "kids", "went", "dance studio"). Copied speech is also written as a quote,
  "Name: what they said" (the form verbatim memories take): such a text is not a restated
  fact either, first person or not (``quoted``). The 37-session run retired "Melanie:
  Caroline, congrats! ... do you have any pets?" with "Melanie: Wow, Caroline, that's
  awesome. Giving a home to needy kids ..." (0.43), two reactions sharing only the name
  they address. That name was counted as distinctive because the other memories hold it
  only as their first word; a name that opens other shown memories is their topic too, so
  ``distinctive`` now counts every word of the others.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

import numpy as np

from memvault.text import STOPWORDS as TEXT_STOPWORDS

#: Cosine at which two facts are about the same thing without further evidence (0.6 until
#: the LoCoMo run: same-domain facts about one person reach 0.68).
SAME_TOPIC = 0.8
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
# Preference verbs join every "likes X" fact to every other: not evidence of one topic; nor
# do function words (the BM25 list) or a chat's praise ("It's a great chance" / "great news").
_STOP = (
    STOPWORDS
    | TEXT_STOPWORDS
    | {"like", "likes", "love", "loves", "want", "wants"}
    | {"great", "good", "nice", "awesome", "amazing", "cool", "fun", "glad", "happy", "really"}
)
#: How many of the other shown memories may hold a shared word before it stops being
#: evidence that the target is the memory meant.
TOPIC_WORD = 2
#: Capitalised words that open a fact without naming who it is about (pronouns, articles,
#: the roles; English, German, French, Spanish, Portuguese, Italian).
_NOT_NAMES = frozenset(
    """user users assistant the a an she he they it its his her hers their we our i my me
    this that these those there here yes no also both when after before on in at for to
    of and but so if then now today yesterday
    er sie es wir ich der die das den dem ein eine mein meine sein seine ihr ihre
    il elle ils elles nous je le la les un une mon ma mes son sa ses
    él ella ellos ellas yo el los las una mi mis su sus
    ele ela eles elas eu o os um uma meu minha seu sua
    lui lei loro io lo gli uno mio mia suo""".split()  # noqa: SIM905 (a word list)
)
_SUBJECT = re.compile(r"\s*([^\W\d_][\w'’-]*)", re.UNICODE)


def unit(v: np.ndarray) -> np.ndarray:
    """``v`` scaled to length 1 (rows, for a matrix); zero vectors stay zero."""
    v = np.asarray(v, dtype=np.float32)
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.where(n == 0, 1, n)


def _stems(words: Iterable[str]) -> set[str]:
    return {w.lower()[:5] for w in words if w.lower() not in _STOP}


def content_words(text: str) -> set[str]:
    """Lower-cased content words, cut to a 5-letter stem, without the first word.

    Why drop the first word: it is almost always who the fact is about ("Alice ...",
    "User's ..."), which every memory of the scope shares — not evidence of relatedness.
    """
    return _stems(_TOKEN.findall(text)[1:])


def subject(text: str) -> str | None:
    """The name a fact opens with ("Caroline ...", "Jon's ...", "Maria: ..."), lower-cased,
    or None when it opens otherwise (a pronoun, "User", a lower-case word)."""
    m = _SUBJECT.match(text)
    if m is None or not m.group(1)[:1].isupper():
        return None
    word = re.sub(r"['’]s?$", "", m.group(1)).lower()
    return None if word in _NOT_NAMES else word


def quoted(text: str) -> bool:
    """Whether ``text`` is written as a quote, "Name: what they said"."""
    m = _SUBJECT.match(text)
    return m is not None and subject(text) is not None and text[m.end() : m.end() + 1] == ":"


def other_subjects(a: str, b: str) -> bool:
    """Whether ``a`` and ``b`` both open with a name, and not the same one."""
    sa, sb = subject(a), subject(b)
    return sa is not None and sb is not None and sa != sb


def distinctive(a: str, b: str, others: Iterable[str] = ()) -> set[str]:
    """The content words ``a`` and ``b`` share that fewer than ``TOPIC_WORD`` of ``others``
    (the other memories shown with the target) also hold — as any word, their first
    included: a name the others open with is what they are about too."""
    shared = content_words(a) & content_words(b)
    if not shared:
        return shared
    seen = Counter(w for o in others for w in _stems(_TOKEN.findall(o)) & shared)
    return {w for w in shared if seen[w] < TOPIC_WORD}


def related(
    cos: float,
    a: str,
    b: str,
    *,
    same: float = SAME_TOPIC,
    near: float = NEAR_TOPIC,
    others: Iterable[str] = (),
) -> bool:
    """Whether facts ``a`` and ``b`` (cosine ``cos``) are about the same thing; ``others``:
    the other memories the model was shown beside ``b``."""
    if cos >= same:
        return True
    return cos >= near and bool(distinctive(a, b, others))


def sentences(messages: list[str], limit: int | None = 40) -> list[str]:
    """The messages cut into sentences (a long message's embedding blurs its parts); the
    first ``limit`` of them (None: all)."""
    out: dict[str, None] = {}
    for m in messages:
        for s in SENTENCE.split(m):
            if s.strip():
                out[s.strip()] = None
    return list(out)[:limit]
