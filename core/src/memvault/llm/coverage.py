"""Which stated sentences did the model's answer not cover? (the second-pass trigger)

Why: a small model drops facts. With Qwen2.5 1.5B (issue 16), "My daughter Mia turned five
last week", said to a user with two stored memories, came back as an UPDATE of an existing
memory with that memory's own text: no fact about Mia at all, and nothing failed. A fact
dropped that way is lost silently, so after each extraction the write path checks that every
sentence that may state something is covered — by a fact in the answer or by a memory the
model was shown — and asks once more, about the uncovered sentences only, without the
existing memories that confused it.

Coverage is cheap on purpose: shared content words first (no model run); only sentences
a fact does not repeat are embedded and compared (cosine >= ``COVERED`` with a new fact,
``KNOWN`` with a memory already stored), so a good answer costs no embedding at all.
Questions and very short sentences ("Thanks!", "How are you?") state nothing and are not
checked. What even the second answer leaves uncovered is kept verbatim when it is
:func:`personal` (see ``memvault.write.second_pass``): dropped by the model, never by memvault.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from memvault.llm.guard import SENTENCE, STOPWORDS

#: Cosine from which a sentence counts as covered by a fact of the answer. With the bundled
#: MiniLM, the facts the real model dropped scored 0.07-0.16 against its answer on short
#: chats and 0.13-0.25 on long LoCoMo sessions (every sentence there is about the same two
#: people); a fact taken from the sentence scores 0.55-0.85, a loose paraphrase lower
#: ("btw I stopped eating meat last year" / "Eli is vegetarian": 0.29, which a capable
#: model's answer must not turn into a second call). The two ranges touch; the bar sits
#: between them.
COVERED = 0.28
#: ... and the fact must be about as close to that sentence as to the sentence it matches
#: best (within this margin). In a LoCoMo session where both speakers chase their dreams,
#: Gina's "Stay motivated and keep going" (1.0 with her own sentence) scored 0.32 with
#: Jon's "Still following my passion for dance", which the absolute bar alone took as
#: covered — Jon's dance-studio search was lost. A fact drawn from two sentences is close
#: to both, so it still covers both.
COVERED_MARGIN = 0.15
#: Share of a sentence's content words a fact must repeat to cover it without an embedding.
SHARED = 0.5
#: Cosine from which a sentence counts as already known from a memory the model was shown
#: (or answered NONE about). High on purpose: in a long-running scope topics recur, and
#: "I just joined a new LGBTQ activist group" is not known because "went to an LGBTQ
#: support group" is (0.5-0.65); that leniency lost most of a LoCoMo session's facts.
KNOWN = 0.6
#: A sentence needs this many content words to possibly state a fact — fewer when it names
#: something (one is enough: "Oh, I've been to Paris yesterday!", a LoCoMo fact no answer
#: held, was never checked) or speaks in the first person (two: "I quit smoking"). A short
#: reaction ("Thanks, I'm fine!", "Wow, Caroline!") is not asked about again.
MIN_WORDS = 3
MIN_WORDS_FIRST_PERSON = 2

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
    "aw",
    "aww",
    "yay",
    "omg",
    # what the token pattern leaves of "I've", "we'll", "you're"
    "ve",
    "ll",
    "re",
    # fillers: a fact need not repeat them to cover its sentence
    "again",
    "all",
    "also",
    "any",
    "get",
    "got",
    "just",
    "lot",
    "lots",
    "much",
    "now",
    "some",
    "still",
    "then",
    "thing",
    "things",
    "today",
    "tomorrow",
    "very",
    "yesterday",
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
    names = frozenset(who.lower() for _, who, _ in messages)
    out: list[tuple[str, str]] = []
    for role, who, content in messages:
        if role == "assistant":
            continue
        for s in SENTENCE.split(content):
            s = s.strip()
            if s and not s.endswith(("?", "？")) and _may_state(s, names):
                out.append((who, s))
    return out


def _may_state(sentence: str, names: frozenset[str]) -> bool:
    n = len(words(sentence))
    if n >= MIN_WORDS:
        return True
    if n >= MIN_WORDS_FIRST_PERSON and first_person(sentence):
        return True
    return n >= 1 and names_something(sentence, names)


def lexically_covered(sentence: str, texts: Sequence[str]) -> bool:
    """Whether ``texts`` together repeat at least half of the sentence's content words.

    A fact taken from a sentence repeats most of its words ("I just joined a new LGBTQ
    activist group" / "Caroline joined a new LGBTQ activist group": 5 of 8), and one
    sentence may feed two facts ("Chess again today, and some go": a known "Dan plays
    chess" and a new "Dan plays go"); one shared topic word ("group") is not enough in a
    conversation that keeps to one topic.
    """
    mine = words(sentence)
    if not mine:
        return True
    seen: set[str] = set()
    for t in texts:
        seen |= mine & words(t)
    return len(seen) >= SHARED * len(mine)


def touched(sentence: str, texts: Sequence[str]) -> bool:
    """Whether one of ``texts`` shares any content word with the sentence.

    For the memories the answer retires (DELETE targets the guard accepts): one word is
    enough there, the model clearly read that sentence ("Sadly Tom passed away" and a
    DELETE of "Carol has a cat named Tom").
    """
    mine = words(sentence)
    return any(mine & words(t) for t in texts)


_FIRST_PERSON = frozenset(
    # English, then German, French, Spanish, Portuguese, Italian: enough to tell a
    # statement about the speaker's life from a reaction ("Bet that was fun").
    [
        "i",
        "i'm",
        "im",
        "i've",
        "ive",
        "i'll",
        "i'd",
        "me",
        "my",
        "mine",
        "myself",
        "we",
        "we're",
        "we've",
        "we'll",
        "us",
        "our",
        "ours",
        "ich",
        "mein",
        "meine",
        "meinen",
        "meinem",
        "meiner",
        "mir",
        "mich",
        "wir",
        "uns",
        "unser",
        "unsere",
        "je",
        "j'",
        "moi",
        "mon",
        "ma",
        "mes",
        "nous",
        "notre",
        "nos",
        "yo",
        "mi",
        "mis",
        "me",
        "nosotros",
        "nosotras",
        "nuestro",
        "nuestra",
        "nuestros",
        "eu",
        "meu",
        "minha",
        "meus",
        "minhas",
        "nós",
        "nosso",
        "nossa",
        "io",
        "mio",
        "mia",
        "miei",
        "mie",
        "noi",
        "nostro",
        "nostra",
    ]
)
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?", re.UNICODE)


def first_person(text: str) -> bool:
    """Whether ``text`` speaks in the first person ("I chose the furniture", "nuestra casa").

    A capitalised word counts only as "I" or at the start of a sentence: "Mia" in "Bo's
    daughter Mia" is a name, not the Italian "mia".
    """
    for sentence in SENTENCE.split(text):
        for i, t in enumerate(_WORD.findall(sentence)):
            low = t.lower()
            if low in _FIRST_PERSON and (t == low or i == 0 or t[0] == "I"):
                return True
    return False


def personal(sentence: str, names: frozenset[str] = frozenset()) -> bool:
    """Whether a sentence may state a fact worth keeping verbatim.

    It speaks about the speaker (a first-person word), names someone or something (a
    capitalised word after the first), or holds a number or date. Reactions to the other
    person ("Lucky you to have such an awesome family!") do not qualify, nor does a
    capitalised word in ``names`` (lower-cased): the speakers' own names, which a chat
    uses to address each other ("Wow, Caroline, that's great!").
    """
    return first_person(sentence) or names_something(sentence, names)


def names_something(sentence: str, names: frozenset[str] = frozenset()) -> bool:
    """Whether a sentence holds a number or date, or a capitalised word after its first that
    is neither "I" nor one of ``names`` (the speakers, lower-cased) nor the name the
    speaker addresses: "Wow, Mel." / "Hey Jo!" name nobody the chat is about (a nickname
    is not among the speakers' names, and LoCoMo's "Caroline: Wow, Mel." was kept as a
    fact)."""
    if any(ch.isdigit() for ch in sentence):
        return True
    rest = _VOCATIVE.sub(",", _GREETING.sub("", sentence))
    return any(
        t[:1].isupper() and t.lower() not in _FIRST_PERSON and t.lower() not in names
        for t in _WORD.findall(rest)[1:]
    )


# A name set off by a comma up to the clause's end ("Thanks, Mel!", "Aw, Mel, I love it"),
# or right after an opening greeting ("Hey Mel, ..."): the person spoken to.
_NAME = r"[^\W\d_][\w'’-]*"
_VOCATIVE = re.compile(rf",\s*{_NAME}\s*(?=[,.!?…;:]|$)")
_GREETING = re.compile(
    rf"^\W*(?i:hey|hi|hello|hiya|yo|thanks|thank you|congrats|congratulations|wow|aw+|oh|"
    rf"bye|dear|sorry|welcome|good morning|good night)\b[\s,]+{_NAME}",
)
