"""The second-pass trigger's word rules (memvault.llm.coverage), without a model."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from memvault.llm.coverage import lexically_covered, personal, statements, words


def test_one_shared_topic_word_does_not_cover_a_sentence() -> None:
    s = "I just joined a new LGBTQ activist group last Tuesday."
    assert not lexically_covered(s, ["Caroline went to an LGBTQ support group"])
    assert lexically_covered(s, ["Caroline joined a new LGBTQ activist group on Tuesday"])


def test_facts_together_cover_a_sentence_they_split() -> None:
    s = "Chess with Ana today, and some go"
    assert not lexically_covered(s, ["Dan plays go"])
    assert lexically_covered(s, ["Dan plays go", "Dan plays chess"])
    assert not lexically_covered("Chess with Ana and Bo today", ["Dan plays chess"])


def test_personal_sentences_are_about_someone() -> None:
    names = frozenset({"caroline", "melanie"})
    assert personal("We always look forward to our family camping trip.", names)
    assert personal("Ich habe einen Hund.", names)
    assert personal("The concert was on 12 May.", names)
    assert personal("That painting is by Frida Kahlo.", names)
    assert not personal("Lucky you to have such an awesome family!", names)
    assert not personal("Wow, Caroline, your group sounds awesome!", names)
    assert not personal("Bet the atmosphere was incredible.", names)


def test_questions_and_assistant_lines_state_nothing() -> None:
    said = statements(
        [
            ("user", "u", "Where do you live? I live in a small flat in Porto."),
            ("assistant", "assistant", "Porto is a lovely city by the river."),
        ]
    )
    assert said == [("u", "I live in a small flat in Porto.")]


def test_short_sentences_that_name_something_or_speak_of_oneself_are_statements() -> None:
    """LoCoMo 30/2: "Oh, I've been to Paris yesterday!" (one content word) was never checked,
    and the fact was lost. Short reactions still state nothing."""
    stated = [
        "Oh, I've been to Paris yesterday!",
        "I moved to Lisbon.",
        "I quit smoking.",
        "We adopted Luna.",
        "Turned 30 today.",
    ]
    chatter = [
        "Thanks, I'm fine!",
        "Wow, Caroline!",
        "See you soon.",
        "I love it!",
        "I'm so happy for you!",
        "Take care!",
    ]
    said = statements([("user", "Jon", t) for t in stated + chatter] + [("user", "Caroline", "")])
    assert [s for _, s in said] == stated


def test_the_name_a_speaker_addresses_names_nothing() -> None:
    """LoCoMo 26 (real model): "Caroline: Wow, Mel." was kept as a fact, "Mel" being no
    speaker's name. A vocative or greeted name is the person spoken to."""
    names = frozenset({"caroline", "melanie"})
    for said in ("Wow, Mel.", "Hey Mel!", "Thanks, Jon!", "Aw, that's sweet, Mel!"):
        assert not statements([("user", "Caroline", said), ("user", "Melanie", "")]), said
        assert not personal(said, names), said
    for said in (
        "Hey Mel, I moved to Lisbon!",
        "We went to Paris, Lisbon, and Rome.",
        "Caroline joined Pride, Mel.",
    ):
        assert personal(said, names), said


@given(st.text(max_size=200), st.lists(st.text(max_size=80), max_size=5))
def test_coverage_rules_take_any_text(sentence: str, texts: list[str]) -> None:
    covered = lexically_covered(sentence, texts)
    assert isinstance(covered, bool)
    assert isinstance(personal(sentence), bool)
    if not words(sentence):
        assert covered  # nothing to cover
    assert lexically_covered(sentence, [*texts, sentence])  # a sentence covers itself
