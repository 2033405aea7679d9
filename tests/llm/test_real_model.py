"""The write path against a real small model (Qwen2.5-Coder-1.5B-Instruct on llama.cpp).

What a stand-in server cannot show: how a real model reads the prompt. Each test states a
behaviour the issue requires of a *real* model — facts extracted, nothing silently dropped,
a contradiction superseded with its history, an unrelated memory never superseded, small
talk adding nothing, other languages kept, procedural memory — and can fail if the model or
the write path gets it wrong. Assertions look for the facts' key words, not exact wording.
"""

from __future__ import annotations

from typing import Any

import pytest

from memvault import Memory

#: A small model on 2 shared cores can take minutes per call when the machine is busy.
pytestmark = pytest.mark.timeout(900)


def texts(mem: Memory, user: str, **kw: Any) -> list[str]:
    return [r["memory"] for r in mem.get_all(user_id=user, **kw)["results"]]


def mentions(memories: list[str], *words: str) -> bool:
    """Whether one memory mentions any of ``words`` (case-insensitive)."""
    return any(w.lower() in m.lower() for m in memories for w in words)


def test_every_stated_fact_is_extracted(mem: Memory) -> None:
    """The issue's first failure: this stored nothing (the model wrote ``"ADD|UPDATE"``)."""
    res = mem.add(
        [
            {
                "role": "user",
                "content": "I'm allergic to peanuts. I moved to Lisbon in March, where I work "
                "at a bakery. My sister lives in Porto.",
            },
            {"role": "assistant", "content": "Thanks for telling me!"},
        ],
        user_id="ana",
        timestamp="2024-05-02",
    )
    got = texts(mem, "ana")
    for fact in (("peanut",), ("Lisbon",), ("bakery", "baker"), ("Porto",)):
        assert mentions(got, *fact), (fact, got)
    assert mem.pending() == []
    assert res["usage"]["prompt_tokens"] > 0 and res["usage"]["calls"] >= 1


def test_unrelated_adds_never_supersede_and_no_fact_is_dropped(mem: Memory) -> None:
    """The issue's second failure: a later UPDATE with a wrong id retired the first fact."""
    mem.add("I'm vegetarian and I run marathons.", user_id="bo")
    mem.add("I started a new job as a nurse at the city hospital.", user_id="bo")
    mem.add("My daughter Mia turned five last week.", user_id="bo", timestamp="2024-05-02")
    mem.add("I just adopted a cat named Pixel.", user_id="bo")
    got = texts(mem, "bo")
    for fact in (("vegetarian",), ("nurse",), ("Mia",), ("Pixel",)):
        assert mentions(got, *fact), (fact, got)
    everything = mem.get_all(user_id="bo", include_superseded=True)["results"]
    assert len(everything) == len(got), "an unrelated memory was superseded"


def test_a_contradicted_fact_is_superseded_with_history(mem: Memory) -> None:
    old = mem.add("I live in Lyon.", user_id="cy", timestamp="2024-01-10")["results"]
    assert mentions([r["memory"] for r in old], "Lyon")
    mem.add(
        "I moved to Berlin last month, so I don't live in Lyon anymore.",
        user_id="cy",
        timestamp="2024-06-01",
    )
    now = texts(mem, "cy")
    assert mentions(now, "Berlin"), now
    lyon = next(r for r in old if "lyon" in r["memory"].lower())
    kept = mem.get(lyon["id"])
    assert kept is not None and kept["state"] == "superseded", now
    assert kept["valid_to"].startswith("2024-06-01")
    assert [h["event"] for h in mem.history(lyon["id"])][-1] in ("SUPERSEDE", "INVALIDATE")
    past = mem.search("where does the user live", user_id="cy", as_of="2024-03-01")["results"]
    assert mentions([r["memory"] for r in past], "Lyon")


def test_small_talk_adds_nothing(mem: Memory) -> None:
    res = mem.add(
        [
            {"role": "user", "content": "Hi! How are you today?"},
            {"role": "assistant", "content": "I'm fine, thanks! How can I help?"},
            {"role": "user", "content": "Nothing really, just saying hello."},
        ],
        user_id="dd",
    )
    assert [r for r in res["results"] if r["event"] != "NONE"] == []
    assert texts(mem, "dd") == []


def test_other_languages_are_kept_in_their_language(mem: Memory) -> None:
    mem.add("J'habite à Marseille et je travaille comme infirmière.", user_id="fr")
    got = texts(mem, "fr")
    assert mentions(got, "Marseille"), got
    assert mentions(got, "infirmière", "habite", "travaille", "vit ", "utilisateur"), got


def test_procedural_memory_keeps_the_steps_and_values(mem: Memory) -> None:
    res = mem.add(
        [
            {"role": "user", "content": "Book me a flight from London to New York on June 3."},
            {"role": "assistant", "content": "Searching LHR to JFK for 2024-06-03."},
            {"role": "assistant", "content": "Found BA117 at 08:25 for 420 GBP. Booked it."},
        ],
        agent_id="travel-bot",
        memory_type="procedural_memory",
    )
    (item,) = res["results"]
    assert "BA117" in item["memory"] and mentions([item["memory"]], "JFK", "New York")
    stored = mem.get(item["id"])
    assert stored is not None and stored["metadata"]["memory_type"] == "procedural_memory"


def test_query_expansion_finds_an_answer_unlike_its_question(mem: Memory) -> None:
    """Issue 12's opt-in LLM query step with the real model: it writes statements, and the
    memory that answers (sharing no word with the question but "Caroline") is found."""
    for text in (
        "Caroline: I asked my friend whether Dr. Seuss was a real doctor.",
        "Caroline: Dr. Pepper is my favourite drink, way better than cola.",
        "Caroline: I went to the doctor for a check-up last week.",
        "Caroline: I've been collecting classic children's books for my future kids.",
        "Melanie: I ran a charity race for mental health on Saturday.",
    ):
        mem.add(text, user_id="cl", infer=False)
    question = "Would Caroline likely have Dr. Seuss books on her shelf?"
    plain = mem.search(question, user_id="cl", top_k=2)["results"]
    assert not mentions([r["memory"] for r in plain], "children's books")  # words lead elsewhere
    res = mem.search(question, user_id="cl", top_k=2, retrieval={"expansions": 3})
    assert 1 <= len(res["expansions"]) <= 3 and all(s.strip() for s in res["expansions"])
    assert mentions([r["memory"] for r in res["results"]], "children's books"), res
    assert mem.stats()["llm_usage"]["calls"] == 1
