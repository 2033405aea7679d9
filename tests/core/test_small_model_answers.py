"""What small real models answer, replayed through the stand-in server (issue 16).

Each answer shape here was seen from Qwen2.5-Coder-1.5B-Instruct on llama.cpp, or is its
direct variant. The rule they check: every stated fact is kept (or the add fails and is
journaled), and a wrong id never supersedes an unrelated memory.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memvault import LLMError, Memory
from memvault.embedding import LocalEmbedder
from memvault.llm.guard import distinctive, other_subjects, quoted, subject
from memvault.llm.prompts import FACTS_PROMPT
from tests.support.fake_openai import FakeOpenAI, Fault, Reply
from tests.support.prompt_parts import shown_memories

FOUR_FACTS = [
    {
        "role": "user",
        "content": "I'm allergic to peanuts. I moved to Lisbon in March, where I work at a "
        "bakery. My sister lives in Porto.",
    },
    {"role": "assistant", "content": "Thanks for telling me!"},
]


@pytest.fixture
def srv() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as s:
        yield s


@pytest.fixture
def mem(srv: FakeOpenAI, store_path: Path, embedder: LocalEmbedder) -> Iterator[Memory]:
    cfg = {
        "path": str(store_path),
        "llm": {
            "provider": "openai",
            "config": {
                "model": "qwen",
                "openai_base_url": srv.base_url,
                "api_key": "local",
                "max_retries": 0,
                "timeout": 5,
            },
        },
    }
    with Memory(cfg, embedder=embedder) as m:
        yield m


def current(mem: Memory, user: str) -> set[str]:
    return {r["memory"] for r in mem.get_all(user_id=user)["results"]}


def test_schema_text_copied_as_the_event_keeps_every_fact(mem: Memory, srv: FakeOpenAI) -> None:
    """The issue's first failure: ``"ADD|UPDATE"`` failed the whole add with LLMError."""
    facts = [
        "User is allergic to peanuts",
        "User moved to Lisbon in March 2024",
        "User works at a bakery in Lisbon",
        "User's sister lives in Porto",
    ]
    srv.enqueue(
        Reply.fenced(
            {
                "memories": [
                    {"event": "ADD|UPDATE", "text": f, "attributed_to": "user"} for f in facts
                ]
            },
            before="",
            after="",
        )
    )
    res = mem.add(FOUR_FACTS, user_id="ana", timestamp="2024-05-02")
    assert [r["event"] for r in res["results"]] == ["ADD"] * 4
    assert current(mem, "ana") == set(facts)
    assert mem.pending() == []


def test_update_aimed_at_an_unrelated_memory_adds_instead(mem: Memory, srv: FakeOpenAI) -> None:
    """The issue's second failure: a new job "updated" the vegetarian memory."""
    srv.enqueue({"memories": [{"event": "ADD", "text": "User is vegetarian and runs marathons"}]})
    first = mem.add("I'm vegetarian and I run marathons.", user_id="bo")["results"][0]
    srv.enqueue(
        {
            "memories": [
                {"event": "UPDATE", "id": "0", "text": "User works as a nurse at the city hospital"}
            ]
        }
    )
    res = mem.add("I started a new job as a nurse at the city hospital.", user_id="bo")
    assert [r["event"] for r in res["results"]] == ["ADD"]
    srv.enqueue(
        {
            "memories": [
                {"event": "DELETE", "id": "0"},
                {"event": "ADD", "text": "User adopted a cat named Pixel"},
            ]
        }
    )
    mem.add("I just adopted a cat named Pixel.", user_id="bo")
    assert current(mem, "bo") == {
        "User is vegetarian and runs marathons",
        "User works as a nurse at the city hospital",
        "User adopted a cat named Pixel",
    }
    assert [h["event"] for h in mem.history(first["id"])] == ["ADD"]  # never superseded


def test_a_related_update_still_supersedes(mem: Memory, srv: FakeOpenAI) -> None:
    srv.enqueue({"memories": [{"event": "ADD", "text": "User lives in Lyon"}]})
    old = mem.add("I live in Lyon.", user_id="cy")["results"][0]
    srv.enqueue({"memories": [{"event": "ADD|UPDATE", "id": 0, "text": "User lives in Berlin"}]})
    res = mem.add("I moved to Berlin, I don't live in Lyon anymore.", user_id="cy")["results"]
    assert res[0]["event"] == "UPDATE" and res[0]["previous_id"] == old["id"]
    assert current(mem, "cy") == {"User lives in Berlin"}


@pytest.mark.parametrize(
    "answer",
    [
        # a bare list, no object around it
        Reply(json.dumps([{"event": "ADD", "text": "User keeps bees"}])),
        # one item instead of a list
        Reply.json({"event": "ADD", "text": "User keeps bees"}),
        # the fact under another key, a synonym for the event
        Reply.json({"facts": [{"action": "insert", "fact": "User keeps bees"}]}),
        # no event at all
        Reply.json({"memories": [{"text": "User keeps bees", "attributed_to": "user"}]}),
        # prose and a fence around it
        Reply.fenced({"memories": [{"event": "Add", "text": "User keeps bees"}]}),
        # an unknown event with a text is a fact to keep
        Reply.json({"memories": [{"event": "FACT", "text": "User keeps bees"}]}),
        # plain strings
        Reply.json({"memories": ["User keeps bees"]}),
    ],
    ids=["bare-list", "one-item", "other-keys", "no-event", "fenced", "unknown-event", "strings"],
)
def test_answer_shapes_keep_the_fact(mem: Memory, srv: FakeOpenAI, answer: Reply) -> None:
    srv.enqueue(answer)
    mem.add("I keep bees in my garden", user_id="u")
    assert current(mem, "u") == {"User keeps bees"}


def test_ids_written_loosely_still_name_the_memory(mem: Memory, srv: FakeOpenAI) -> None:
    srv.enqueue({"memories": [{"event": "ADD", "text": "User has two kids"}]})
    old = mem.add("I have two kids", user_id="k")["results"][0]
    srv.enqueue({"memories": [{"event": "MODIFY", "id": "#0", "text": "User has three kids"}]})
    res = mem.add("We just had our third child!", user_id="k")["results"]
    assert res[0]["event"] == "UPDATE" and res[0]["previous_id"] == old["id"]


def test_none_with_a_new_fact_is_kept_and_none_of_a_known_one_is_not(
    mem: Memory, srv: FakeOpenAI
) -> None:
    srv.enqueue({"memories": [{"event": "ADD", "text": "User plays chess"}]})
    mem.add("I play chess", user_id="n")
    srv.enqueue(
        {
            "memories": [
                {"event": "NONE", "id": "0", "text": "User plays chess."},
                {"event": "NONE", "id": "0", "text": "User is learning Japanese"},
            ]
        }
    )
    mem.add("Chess as usual; also I started learning Japanese", user_id="n")
    assert current(mem, "n") == {"User plays chess", "User is learning Japanese"}


def test_items_without_a_fact_are_dropped_not_fatal(mem: Memory, srv: FakeOpenAI) -> None:
    srv.enqueue(
        {
            "memories": [
                {"event": "ADD"},
                {"event": "UPDATE", "id": "7"},
                42,
                {"event": "ADD", "text": "User likes figs"},
            ]
        }
    )
    mem.add("I like figs", user_id="f")
    assert current(mem, "f") == {"User likes figs"}


def test_nul_and_lone_surrogates_from_the_model_are_cleaned_not_fatal(
    mem: Memory, srv: FakeOpenAI
) -> None:
    """A caller's NUL is a typed error; the model's is cleaned, so the fact is kept."""
    srv.enqueue(Reply('{"memories": [{"event": "ADD", "text": "User likes \\u0000plums\\ud800"}]}'))
    mem.add("I like plums", user_id="p")
    assert current(mem, "p") == {"User likes plums?"}


def test_an_answer_with_no_facts_at_all_still_fails_and_is_journaled(
    mem: Memory, srv: FakeOpenAI
) -> None:
    srv.enqueue(Reply("Sure, I will remember that you like figs."))
    with pytest.raises(Exception, match="JSON"):
        mem.add("I like figs", user_id="g")
    assert len(mem.pending()) == 1


def test_json_mode_refused_falls_back_once_and_is_remembered(mem: Memory, srv: FakeOpenAI) -> None:
    srv.enqueue(
        Fault.error(400, message="'response_format' of type 'json_object' is not supported"),
        {"memories": [{"event": "ADD", "text": "User likes tea"}]},
        {"memories": [{"event": "ADD", "text": "User likes green tea"}]},
    )
    mem.add("I like tea", user_id="t")
    mem.add("Green tea especially", user_id="t")
    bodies = [r.body for r in srv.requests_for("chat.completions")]
    assert [("response_format" in b) for b in bodies] == [True, False, False]
    assert current(mem, "t") == {"User likes tea", "User likes green tea"}


def test_other_bad_requests_are_not_retried_without_json_mode(mem: Memory, srv: FakeOpenAI) -> None:
    srv.enqueue(Fault.error(400, message="context length exceeded", code="context_length_exceeded"))
    with pytest.raises(Exception, match="context length"):
        mem.add("I like tea", user_id="t")
    assert srv.count("chat.completions") == 1
    assert len(mem.pending()) == 1


def test_a_delete_of_the_memory_talked_about_still_invalidates(
    mem: Memory, srv: FakeOpenAI
) -> None:
    srv.enqueue({"memories": [{"event": "ADD", "text": "User works at a bakery"}]})
    job = mem.add("I work at a bakery", user_id="d")["results"][0]
    srv.enqueue({"memories": [{"event": "DELETE", "id": "0"}]})
    assert mem.add("I quit my job at the bakery.", user_id="d")["results"][0]["event"] == "DELETE"
    assert current(mem, "d") == set()
    assert [h["event"] for h in mem.history(job["id"])] == ["ADD", "INVALIDATE"]


def test_a_dropped_fact_is_asked_for_again(mem: Memory, srv: FakeOpenAI) -> None:
    """Seen with the real model: a new fact answered as an UPDATE that copies an existing
    memory's own text. Nothing failed, the fact was just gone; now the sentence nobody
    covered is asked about once more, alone, and its fact is kept."""
    srv.enqueue(
        {"memories": [{"event": "ADD", "text": "I started a new job as a nurse at the hospital."}]}
    )
    mem.add("I started a new job as a nurse at the hospital.", user_id="bo")
    srv.enqueue(
        {
            "memories": [
                {
                    "event": "UPDATE",
                    "id": "0",
                    "text": "I started a new job as a nurse at the hospital.",
                    "attributed_to": "Assistant",
                }
            ]
        },
        {"memories": [{"event": "ADD", "text": "User's daughter Mia turned five in April 2024"}]},
    )
    res = mem.add("My daughter Mia turned five last week.", user_id="bo", timestamp="2024-05-02")
    assert [r["memory"] for r in res["results"] if r["event"] == "ADD"] == [
        "User's daughter Mia turned five in April 2024"
    ]
    system, second = (
        m["content"] for m in srv.requests_for("chat.completions")[-1].body["messages"]
    )
    assert "My daughter Mia turned five last week." in second
    # without the memories that confused it, so the short facts-only instruction
    assert system == FACTS_PROMPT and "EXISTING MEMORIES" not in second
    assert res["usage"]["calls"] == 2


def test_a_custom_extraction_prompt_asks_the_second_question_too(
    srv: FakeOpenAI, store_path: Path, embedder: LocalEmbedder
) -> None:
    """The user's own extraction rule, not the built-in facts prompt, in the first format."""
    cfg = srv.memvault_config(store_path, model="qwen")
    cfg["custom_fact_extraction_prompt"] = "Extract only facts about pets."
    srv.enqueue(
        {"memories": [{"event": "ADD", "text": "User has a cat named Pixel"}]},
        {"memories": [{"event": "ADD", "text": "User's dog is called Rex"}]},
    )
    with Memory(cfg, embedder=embedder) as m:
        m.add("I have a cat named Pixel. My dog Rex loves the beach.", user_id="pets")
    system, second = (
        m["content"] for m in srv.requests_for("chat.completions")[-1].body["messages"]
    )
    assert system == "Extract only facts about pets."
    assert "EXISTING MEMORIES:\n[]" in second and "My dog Rex loves the beach." in second


def test_covered_answers_and_small_talk_cost_one_call(mem: Memory, srv: FakeOpenAI) -> None:
    srv.enqueue({"memories": [{"event": "ADD", "text": "User keeps bees in the garden"}]})
    mem.add("I keep bees in my garden. How are you?", user_id="s")
    srv.enqueue({"memories": []})
    mem.add(
        [
            {"role": "user", "content": "Just saying hello, lovely weather today."},
            {"role": "assistant", "content": "Hello! Indeed it is lovely weather."},
        ],
        user_id="s2",
    )
    assert srv.count("chat.completions") == 2


def test_a_short_fact_the_answer_dropped_is_asked_for_again(mem: Memory, srv: FakeOpenAI) -> None:
    """LoCoMo 30/2 (real model): Jon's "Oh, I've been to Paris yesterday!" was in no answer
    and, one content word long, never checked; small talk around it still is not asked."""
    srv.enqueue(
        {"memories": [{"event": "ADD", "text": "Jon is looking for a place for his dance studio"}]},
        {"memories": [{"text": "Jon went to Paris"}]},
    )
    msgs = [
        {
            "role": "user",
            "name": "Jon",
            "content": "I'm looking for a place for my dance studio. Oh, I've been to Paris "
            "yesterday! Thanks, I'm fine!",
        },
        {"role": "user", "name": "Gina", "content": "Wow, Jon!"},
    ]
    mem.add(msgs, user_id="pa")
    second = srv.requests_for("chat")[-1].body["messages"][-1]["content"]
    assert srv.count("chat") == 2
    assert "Paris" in second and "fine" not in second and "Wow" not in second
    assert "Jon went to Paris" in current(mem, "pa")


def test_a_failed_second_call_fails_the_add_and_journals_it(mem: Memory, srv: FakeOpenAI) -> None:
    srv.enqueue(
        {"memories": [{"event": "ADD", "text": "User adopted a cat named Pixel"}]},
        Fault.error(503, message="overloaded"),
    )
    with pytest.raises(LLMError):
        mem.add("I adopted a cat named Pixel. My brother Tiago is a pilot in Faro.", user_id="p")
    assert current(mem, "p") == set()
    assert len(mem.pending()) == 1


@pytest.mark.parametrize(
    "second",
    [
        Fault.malformed_content(),
        # LoCoMo 41/5: one fact looping in a single string until the token limit
        Reply('{"memories": [{"text": "Tiago flies planes. Tiago flies planes. Tiago fl', "length"),
    ],
    ids=["prose", "cut-in-its-only-item"],
)
def test_an_unreadable_second_answer_keeps_the_first_and_the_words(
    mem: Memory, srv: FakeOpenAI, second: Any
) -> None:
    """The second answer gave no judgment: the first answer's facts stand and the sentences
    asked about are kept in their speaker's words, instead of failing the whole add."""
    srv.enqueue({"memories": [{"event": "ADD", "text": "User adopted a cat named Pixel"}]}, second)
    res = mem.add("I adopted a cat named Pixel. My brother Tiago is a pilot in Faro.", user_id="p")
    assert current(mem, "p") == {
        "User adopted a cat named Pixel",
        "user: My brother Tiago is a pilot in Faro.",
    }
    assert res["usage"]["calls"] == 2 and mem.pending() == []


def test_a_user_fact_labelled_assistant_stays_the_users(mem: Memory, srv: FakeOpenAI) -> None:
    srv.enqueue(
        {
            "memories": [
                {"event": "ADD", "text": "User works at a bakery", "attributed_to": "Assistant"},
                {"event": "ADD", "text": "Assistant recommends rye", "attributed_to": "assistant"},
            ]
        }
    )
    res = mem.add(
        [
            {"role": "user", "content": "I work at a bakery."},
            {"role": "assistant", "content": "Then I recommend rye bread for you."},
        ],
        user_id="w",
    )["results"]
    roles = {r["memory"]: mem.get(r["id"])["role"] for r in res}  # type: ignore[index]
    assert roles == {"User works at a bakery": "user", "Assistant recommends rye": "assistant"}


def test_a_structured_procedural_summary_is_kept_as_text(mem: Memory, srv: FakeOpenAI) -> None:
    """Seen with the real model: the summary came back as an object, and the add failed."""
    srv.enqueue(
        {
            "summary": {
                "task goal": "Book a flight from London to New York on June 3",
                "steps taken in order": [
                    {"action": "Searching LHR to JFK for 2024-06-03", "outcome": "Found BA117"},
                    {"action": "Booked it", "outcome": "Booked BA117 at 08:25 for 420 GBP"},
                ],
                "what worked": "Found and booked the flight",
            }
        }
    )
    (item,) = mem.add(
        [{"role": "user", "content": "Book me a flight to New York on June 3."}],
        agent_id="travel-bot",
        memory_type="procedural_memory",
    )["results"]
    text = item["memory"]
    assert text.startswith("task goal: Book a flight from London to New York on June 3")
    assert "- action: Searching LHR to JFK for 2024-06-03" in text
    assert "Booked BA117 at 08:25 for 420 GBP" in text
    srv.enqueue({"summary": ""})
    with pytest.raises(Exception, match="summary"):
        mem.add("Another run", agent_id="travel-bot", memory_type="procedural_memory")
    assert len(mem.pending()) == 1


def test_an_answer_cut_off_at_the_token_limit_keeps_its_whole_items(
    mem: Memory, srv: FakeOpenAI
) -> None:
    """Seen with the real model on a LoCoMo session: it repeated facts until max_tokens.
    The complete items are kept and the sentences they miss are asked about again."""
    looped = (
        '{"memories": [{"event": "ADD", "text": "User volunteers at an animal shelter"}, '
        '{"event": "ADD", "text": "User volunteers at an animal shelter"}, '
        '{"event": "ADD", "text": "User volunteers at an ani'
    )
    srv.enqueue(
        Reply(looped, finish_reason="length"),
        {"memories": [{"event": "ADD", "text": "User's brother Tiago is a pilot in Faro"}]},
    )
    mem.add(
        "I volunteer at an animal shelter on weekends. My brother Tiago is a pilot in Faro.",
        user_id="v",
    )
    assert current(mem, "v") == {
        "User volunteers at an animal shelter",
        "User's brother Tiago is a pilot in Faro",
    }
    assert mem.pending() == []


CAMPING = [
    {
        "role": "user",
        "name": "Caroline",
        "content": "Sounds fun! Lucky you to have such an awesome family!",
    },
    {
        "role": "user",
        "name": "Melanie",
        "content": "We always look forward to our family camping trip. I'll always remember "
        "the trip last year when we saw the Perseid meteor shower.",
    },
]


def test_what_both_answers_drop_is_kept_verbatim_and_chatter_is_not(
    mem: Memory, srv: FakeOpenAI
) -> None:
    """Seen with the real model on a LoCoMo session: both answers left the camping trip and
    the meteor shower out. The words are kept (category ``verbatim``) rather than nothing;
    a reaction to the other speaker is not a fact and is not kept."""
    srv.enqueue(
        {"memories": [{"event": "ADD", "text": "Melanie went to the beach recently"}]},
        {"memories": [{"event": "ADD", "text": "Melanie has a family"}]},
    )
    res = mem.add(CAMPING, user_id="lc")
    assert res["usage"]["calls"] == 2
    kept = {r["memory"] for r in mem.get_all(user_id="lc")["results"]}
    assert "Melanie: We always look forward to our family camping trip." in kept
    assert (
        "Melanie: I'll always remember the trip last year when we saw the Perseid meteor shower."
        in kept
    )
    assert not any("Lucky you" in k for k in kept)
    verbatim = [
        r for r in mem.get_all(user_id="lc")["results"] if "verbatim" in (r.get("categories") or [])
    ]
    assert len(verbatim) == 2 and all(r["memory"].startswith("Melanie: ") for r in verbatim)
    assert {r["memory"] for r in res["results"] if r["event"] == "ADD"} == kept
    facts_only = mem.get_all(
        user_id="lc", filters={"NOT": [{"categories": {"contains": "verbatim"}}]}
    )["results"]
    assert {r["memory"] for r in facts_only} == {
        "Melanie went to the beach recently",
        "Melanie has a family",
    }


def test_nothing_is_kept_verbatim_when_the_second_answer_covers_it(
    mem: Memory, srv: FakeOpenAI
) -> None:
    srv.enqueue(
        {"memories": [{"event": "ADD", "text": "Melanie went to the beach recently"}]},
        {
            "memories": [
                # made-up ids in the second answer: nothing was shown, so these are facts
                {
                    "event": "UPDATE",
                    "id": "3",
                    "text": "Melanie's family goes on a camping trip every summer",
                },
                {
                    "event": "NONE",
                    "id": "7",
                    "text": "Melanie saw the Perseid meteor shower last year while camping",
                },
            ]
        },
    )
    res = mem.add(CAMPING, user_id="lc2")
    assert current(mem, "lc2") == {
        "Melanie went to the beach recently",
        "Melanie's family goes on a camping trip every summer",
        "Melanie saw the Perseid meteor shower last year while camping",
    }
    assert res["usage"]["calls"] == 2


def test_a_none_about_a_loosely_related_memory_does_not_cover_a_new_fact(
    mem: Memory, srv: FakeOpenAI
) -> None:
    """Seen on LoCoMo: in a scope that keeps to one topic the model answered NONE about an
    old memory sharing a word or two with the new fact, and the new fact counted as known."""
    srv.enqueue({"memories": [{"event": "ADD", "text": "Caroline went to an LGBTQ support group"}]})
    mem.add("I went to an LGBTQ support group yesterday.", user_id="cg")
    srv.enqueue(
        {"memories": [{"event": "NONE", "id": "0"}]},
        {
            "memories": [
                {
                    "event": "ADD",
                    "text": "Caroline joined the activist group Connected LGBTQ Activists",
                }
            ]
        },
    )
    res = mem.add(
        "I just joined a new LGBTQ activist group last Tuesday, Connected LGBTQ Activists.",
        user_id="cg",
    )
    assert res["usage"]["calls"] == 2
    assert "Caroline joined the activist group Connected LGBTQ Activists" in current(mem, "cg")


def test_a_none_about_the_same_fact_costs_one_call(mem: Memory, srv: FakeOpenAI) -> None:
    srv.enqueue({"memories": [{"event": "ADD", "text": "User keeps bees in the garden"}]})
    mem.add("I keep bees in my garden.", user_id="bz")
    srv.enqueue({"memories": [{"event": "NONE", "id": "0"}]})
    res = mem.add("I keep bees in my garden, as you know.", user_id="bz")
    assert res["usage"]["calls"] == 1
    assert current(mem, "bz") == {"User keeps bees in the garden"}


def test_an_empty_second_answer_is_a_judgment_and_keeps_nothing_verbatim(
    mem: Memory, srv: FakeOpenAI
) -> None:
    srv.enqueue(
        {"memories": [{"event": "ADD", "text": "Melanie went to the beach recently"}]},
        {"memories": []},
    )
    res = mem.add(CAMPING, user_id="lc3")
    assert res["usage"]["calls"] == 2
    assert current(mem, "lc3") == {"Melanie went to the beach recently"}


# ------------------------------------------------------- supersessions seen on LoCoMo
# With the real model on LoCoMo (19 sessions of one conversation), 4 of 8 UPDATEs retired
# a memory the new fact was not about: every memory there is about the same two people and
# a handful of topics, so a shared topic word or a cosine of 0.68 proved nothing.


def update_of(marker: str, text: str) -> Any:
    """A chat handler answering UPDATE of the shown memory containing ``marker``."""

    def handler(request: dict[str, Any]) -> dict[str, Any]:
        user = request["messages"][-1]["content"]
        if "EXISTING MEMORIES:\n" not in user:  # the second call: nothing more to say
            return {"memories": []}
        target = next(k for k, t in shown_memories(user).items() if marker in t)
        return {"memories": [{"event": "UPDATE", "id": target, "text": text}]}

    return handler


def seed(mem: Memory, user: str, texts: list[str], **kw: Any) -> dict[str, str]:
    return {t: mem.add(t, user_id=user, infer=False, **kw)["results"][0]["id"] for t in texts}


ADOPTION = [
    "Caroline went to a council meeting for adoption last Friday.",
    "Caroline is researching adoption agencies.",
    "Caroline wants to adopt a child as a single parent.",
    "Caroline talked to her mentor about adoption.",
]


@pytest.mark.parametrize(
    ("marker", "update", "seeded"),
    [
        # the conversation's topic word ("adoption") is in most shown memories: no evidence
        (
            "council meeting",
            "Caroline plans to find an adoption agency or a lawyer for the adoption process.",
            ADOPTION,
        ),
        # same person, the conversation's domain (dance), 0.68: not the same fact
        (
            "ideal spot",
            "Jon is getting ready for a dance competition next month.",
            [
                "Jon is on the hunt for the ideal spot for his dance studio.",
                "Jon is starting his own dance studio.",
                "Jon has loved dance since he was a kid.",
                "Jon lost his job as a banker.",
            ],
        ),
        # someone else's fact is never an update of this one
        (
            "Melanie",
            "Caroline is starting to realize that self-care is really important.",
            [
                "Melanie is starting to realize that self-care is really important.",
                "Melanie signed up for a pottery class.",
            ],
        ),
        # shared words that only say "a photo was shared"
        (
            "sunset",
            "Melanie shared a photo of a cup with a dog face on it.",
            [
                "Melanie shared a photo of a painting of a sunset over a lake.",
                "Melanie shared a photo of her kids at the museum.",
                "Melanie shared a photo of her family camping at the beach.",
            ],
        ),
        # copied speech as the new text (second run, 0.57: "dance studio" shared)
        (
            "starting",
            "Jon: Thanks a bunch! It's awesome seeing my vision happen. How's the dance "
            "studio going? Did you find the right spot?",
            ["Jon is starting a dance studio.", "Gina lost her job at Door Dash."],
        ),
        # copied speech as the old memory too (0.46: "kids", "went")
        (
            "quiet weekend",
            "Melanie: Oh yeah, we went to the beach recently. The kids had such a blast.",
            [
                "Melanie: I had a quiet weekend after we went camping with my kids.",
                "Caroline joined a mentorship program.",
            ],
        ),
        # two quoted reactions sharing only the name they address (37-session run, 0.43)
        (
            "congrats",  # within the words the prompt shows of a quote
            "Melanie: Wow, Caroline, that's awesome. Giving a home to needy kids is such a "
            "loving way to build a family.",
            [
                "Melanie: Caroline, congrats! So proud of you for taking this step. How does "
                "it feel? Also, do you have any pets?",
                "Caroline is looking into adoption agencies.",
            ],
        ),
    ],
    ids=[
        "topic-word",
        "same-domain",
        "other-person",
        "photo-shared",
        "speech-new",
        "speech-old",
        "quoted-vocative",
    ],
)
def test_a_wrong_update_seen_on_locomo_adds_instead(
    mem: Memory, srv: FakeOpenAI, marker: str, update: str, seeded: list[str]
) -> None:
    ids = seed(mem, "lc", seeded)
    srv.chat_handler = update_of(marker, update)
    res = mem.add(f"Message about it: {update}", user_id="lc")["results"]
    assert [r["event"] for r in res if r["event"] != "NONE"] == ["ADD"]
    assert current(mem, "lc") == set(seeded) | {update}
    for memory_id in ids.values():
        assert [h["event"] for h in mem.history(memory_id)] == ["ADD"]


def test_a_verbatim_memory_is_never_replaced_by_an_update(mem: Memory, srv: FakeOpenAI) -> None:
    """The same UPDATE supersedes the memory as an extracted fact, not as the words said."""
    # not in the first person nor quoted (either alone would keep it): the category is
    # what protects it
    said = "Caroline's new flat in Lyon has a view of the river."
    update = "Caroline's new flat in Lyon has a view of the Rhone river."
    srv.chat_handler = update_of("Lyon", update)
    for user, categories in (("fact", None), ("vb", ["verbatim"])):
        ids = seed(mem, user, [said], categories=categories)
        res = mem.add("The river is the Rhone.", user_id=user)["results"]
        events = [r["event"] for r in res if r["event"] != "NONE"]
        if categories is None:
            assert events == ["UPDATE"] and current(mem, user) == {update}
        else:
            assert events == ["ADD"] and current(mem, user) == {said, update}
            assert [h["event"] for h in mem.history(ids[said])] == ["ADD"]


def test_a_name_that_is_a_pronoun_elsewhere_still_updates(mem: Memory, srv: FakeOpenAI) -> None:
    """ "Mia" is a name here, not the Italian "mia": not first person, so a real update."""
    ids = seed(mem, "mia", ["Bo's daughter Mia is five years old."])
    srv.chat_handler = update_of("Mia", "Bo's daughter Mia is six years old.")
    res = mem.add("Mia turned six today!", user_id="mia")["results"]
    assert [r["event"] for r in res if r["event"] != "NONE"] == ["UPDATE"]
    assert mem.get(ids["Bo's daughter Mia is five years old."])["state"] == "superseded"


def test_a_real_update_still_supersedes_among_topic_memories(mem: Memory, srv: FakeOpenAI) -> None:
    """The stricter bar must not block the updates it exists for: a shared word that
    singles the target out ("lives") is evidence even when the rest is about one topic."""
    seeded = [*ADOPTION, "Caroline lives in Lyon."]
    ids = seed(mem, "ru", seeded)
    srv.chat_handler = update_of("Lyon", "Caroline lives in Berlin now.")
    res = mem.add("I moved to Berlin.", user_id="ru")["results"]
    assert [r["event"] for r in res if r["event"] != "NONE"] == ["UPDATE"]
    assert current(mem, "ru") == set(ADOPTION) | {"Caroline lives in Berlin now."}
    assert mem.get(ids["Caroline lives in Lyon."])["state"] == "superseded"


def test_a_name_the_other_memories_open_with_is_not_distinctive() -> None:
    old = "Melanie: Caroline, congrats! How does it feel? Also, do you have any pets?"
    new = "Melanie: Wow, Caroline, that's awesome, a home for needy kids."
    assert distinctive(new, old) == {"carol"}
    others = ["Caroline is looking into adoption agencies.", "Caroline joined a mentorship group."]
    assert distinctive(new, old, others) == set()
    assert distinctive(new, old, others[:1]) == {"carol"}  # one other holding it: still evidence


def test_quoted_speech_is_told_from_a_fact() -> None:
    assert quoted("Melanie: Wow, that's awesome.")
    assert quoted("  Jon: I lost my job.")
    assert not quoted("Melanie's kids: two.")  # a possessive, not a speaker
    assert not quoted("The flat: two rooms.")  # an article opens it, no name
    assert not quoted("Melanie has two kids: Ana and Bo.")
    assert not quoted("")


@given(st.text(max_size=60), st.text(max_size=60), st.lists(st.text(max_size=40), max_size=4))
@settings(max_examples=200, deadline=None)
def test_the_guard_words_never_fail_on_any_text(a: str, b: str, others: list[str]) -> None:
    subject(a)
    quoted(a)
    assert other_subjects(a, b) == other_subjects(b, a)
    assert distinctive(a, b, others) <= distinctive(a, b)


# ------------------------------------------------------- coverage seen on LoCoMo (30, s3)
DREAMS = [
    {
        "role": "user",
        "name": "Jon",
        "content": "Hey Gina! Still following my passion for dance. I'm still searching for a "
        "place to open my dance studio.",
    },
    {
        "role": "user",
        "name": "Gina",
        "content": "I chose furniture that looks great and is comfy too. I'm staying positive "
        "and pushing forward. Stay motivated and keep going.",
    },
]
#: What the real model answered: Gina's sentences copied, Jon's left out.
GINAS = [
    "I chose furniture that looks great and is comfy too.",
    "I'm staying positive and pushing forward.",
    "Stay motivated and keep going.",
]


def test_a_fact_covers_the_sentence_it_came_from_not_every_similar_one(
    mem: Memory, srv: FakeOpenAI
) -> None:
    """Gina's "Stay motivated and keep going" scores 0.32 with Jon's "Still following my
    passion for dance" (over the 0.28 bar) but 1.0 with her own sentence: it does not cover
    Jon's, so his dance-studio search is asked about again instead of being lost."""
    srv.enqueue(
        {"memories": [{"event": "ADD", "text": t} for t in GINAS]},
        {
            "memories": [
                {"event": "ADD", "text": "Jon is searching for a place for his dance studio"}
            ]
        },
    )
    mem.add(DREAMS, user_id="jg")
    second = srv.requests_for("chat")[-1].body["messages"][-1]["content"]
    assert srv.count("chat") == 2
    assert "Still following my passion for dance" in second
    assert "searching for a place to open my dance studio" in second
    assert "Stay motivated" not in second  # Gina's own sentences were covered
    assert "Jon is searching for a place for his dance studio" in current(mem, "jg")


def test_first_person_facts_of_named_speakers_carry_the_name(mem: Memory, srv: FakeOpenAI) -> None:
    """Asked about bare sentences, the model copies them; "I chose furniture" stored as it
    is would be nobody's. Facts that already name someone, and chats without names, stay."""
    srv.enqueue(
        {
            "memories": [
                {"event": "ADD", "text": GINAS[0]},
                {"event": "ADD", "text": GINAS[1], "attributed_to": "Gina"},
                {"event": "ADD", "text": "Jon: I'm still searching for a place for my studio."},
                {"event": "ADD", "text": "I am following my passion for dance."},
            ]
        }
    )
    mem.add(DREAMS, user_id="named")
    assert current(mem, "named") == {
        "Gina: I chose furniture that looks great and is comfy too.",
        "Gina: I'm staying positive and pushing forward.",
        "Jon: I'm still searching for a place for my studio.",
        "Jon: I am following my passion for dance.",
    }
    srv.enqueue({"memories": [{"event": "ADD", "text": "I like green tea"}]})
    mem.add("I like green tea.", user_id="plain")
    assert current(mem, "plain") == {"I like green tea"}


def test_a_shown_memory_copied_as_a_new_fact_covers_nothing_new(
    mem: Memory, srv: FakeOpenAI
) -> None:
    """LoCoMo 30/3: the model answered with the memories it was shown, as ADDs. One of
    them is 0.32 from Gina's news, over the new-fact bar: the news was stored nowhere. A
    copy is the known memory, and covers only as a known memory does."""
    known = (
        "Gina launched an ad campaign for her clothing store in hopes of growing the "
        "business. It's awesome seeing my vision happen."
    )
    news = "Inspiring 💪 I emailed some wholesalers and one replied and said yes today!"
    seed(mem, "gi", [known])
    srv.enqueue(
        {"memories": [{"event": "ADD", "text": known}]},
        {"memories": [{"text": "Gina got a yes from a wholesaler"}]},
    )
    mem.add([{"role": "user", "name": "Gina", "content": news}], user_id="gi")
    assert srv.count("chat") == 2
    assert news in srv.requests_for("chat")[-1].body["messages"][-1]["content"]
    assert current(mem, "gi") == {known, "Gina got a yes from a wholesaler"}


def test_memories_no_update_may_replace_are_shown_cut_and_a_copy_of_one_is_known(
    mem: Memory, srv: FakeOpenAI
) -> None:
    """Issue 16's token bar: quotes kept in someone's words were ~2/3 of the shown memories'
    tokens on LoCoMo. They can only be named as known or retired, so the prompt shows their
    first words; a fact stays whole. The model copying the cut text (mark left off) adds
    nothing and covers nothing new: the new sentence is still asked about."""
    quote = (
        "Caroline: I'm really lucky to have such a great support system, they have been "
        "there through everything since I moved."
    )
    fact = "Caroline works as a counselor for trans teenagers at a clinic in Boston"
    cut = " ".join(quote.split()[:10])
    seed(mem, "cu", [quote, fact])
    news = "I started volunteering at the animal shelter on Saturdays."
    srv.enqueue(
        {"memories": [{"event": "ADD", "text": cut}]},
        {"memories": [{"text": "Caroline volunteers at the animal shelter on Saturdays"}]},
    )
    mem.add([{"role": "user", "name": "Caroline", "content": news}], user_id="cu")
    first = srv.requests_for("chat")[0].body["messages"][-1]["content"]
    assert set(shown_memories(first).values()) == {fact, cut + " …"}
    assert srv.count("chat") == 2
    assert news in srv.requests_for("chat")[-1].body["messages"][-1]["content"]
    assert current(mem, "cu") == {
        quote,
        fact,
        "Caroline volunteers at the animal shelter on Saturdays",
    }


def test_an_update_with_another_memorys_opening_changes_nothing(
    mem: Memory, srv: FakeOpenAI
) -> None:
    """LoCoMo 26/8 with Qwen 1.5B: "UPDATE 8" whose text was the opening of memory 9 with
    its cut mark rewritten as "...". It is a copy of 9 (known), not a change of 8, and not
    a new memory; the new sentence is still asked about."""
    quote = (
        "Caroline: I'm really lucky to have such a great support system, they have been "
        "there through everything since I moved."
    )
    fact = "Caroline works as a counselor for trans teenagers at a clinic in Boston"
    ids = seed(mem, "cp", [fact, quote])

    def answer(request: dict[str, Any]) -> dict[str, Any]:
        user = request["messages"][-1]["content"]
        if "EXISTING MEMORIES:\n" not in user:
            return {"memories": [{"text": "Caroline volunteers at the animal shelter"}]}
        shown = shown_memories(user)
        target = next(k for k, t in shown.items() if t == fact)
        opening = next(t for t in shown.values() if t.startswith("Caroline: "))
        copy = opening.removesuffix(" …") + " ..."
        return {"memories": [{"event": "UPDATE", "id": target, "text": copy}]}

    srv.chat_handler = answer
    news = "I started volunteering at the animal shelter on Saturdays."
    mem.add([{"role": "user", "name": "Caroline", "content": news}], user_id="cp")
    assert srv.count("chat") == 2
    assert current(mem, "cp") == {quote, fact, "Caroline volunteers at the animal shelter"}
    assert [h["event"] for h in mem.history(ids[fact])] == ["ADD"]


def test_one_speakers_quote_does_not_cover_anothers_sentence(mem: Memory, srv: FakeOpenAI) -> None:
    """LoCoMo 41/8: the model stored Maria's message as said; 0.41 from John's answer, it
    covered it, and "his name is Kyle" was stored nowhere. A quote covers only its own
    speaker's sentences."""
    question = "Maria: Thanks for your support, John. How's your family doing? That baby in the pic is adorable! What's their name?"
    kyle = "Our one-year-old is so cute, his name is Kyle!"
    srv.enqueue(
        {"memories": [{"event": "ADD", "text": question}]},
        {"memories": [{"text": "John's one-year-old son is named Kyle"}]},
    )
    mem.add(
        [
            {"role": "user", "name": "Maria", "content": question.removeprefix("Maria: ")},
            {"role": "user", "name": "John", "content": kyle},
        ],
        user_id="ky",
    )
    assert srv.count("chat") == 2
    assert kyle in srv.requests_for("chat")[-1].body["messages"][-1]["content"]
    assert "John's one-year-old son is named Kyle" in current(mem, "ky")


def test_a_sentence_sharing_a_word_with_an_update_target_is_still_covered_by_text(
    mem: Memory, srv: FakeOpenAI
) -> None:
    """The UPDATE's own text is judged like any fact; its target sharing "job" with an
    unrelated sentence (0.09) does not make that sentence read."""
    ids = seed(mem, "jb", ["Jon lost his job as a banker."])
    srv.enqueue(
        {
            "memories": [
                {"event": "UPDATE", "id": "0", "text": "Jon lost his job as a banker last year."}
            ]
        },
        {"memories": [{"text": "Jon got a job offer from a dance school"}]},
    )
    msgs = [
        {"role": "user", "name": "Jon", "content": "I lost my job as a banker last year."},
        {"role": "user", "name": "Jon", "content": "I got a job offer from a dance school today!"},
    ]
    mem.add(msgs, user_id="jb")
    assert srv.count("chat") == 2
    assert "dance school" in srv.requests_for("chat")[-1].body["messages"][-1]["content"]
    assert mem.get(ids["Jon lost his job as a banker."])["state"] == "superseded"
    assert current(mem, "jb") == {
        "Jon lost his job as a banker last year.",
        "Jon got a job offer from a dance school",
    }


def test_a_delete_the_guard_ignores_does_not_cover_its_sentence(
    mem: Memory, srv: FakeOpenAI
) -> None:
    """A DELETE of Gina's dog Max for news about a coworker Max (0.29): the guard keeps the
    dog, and the sentence, which only shared the name, is asked about again."""
    dog = "Gina's dog Max loves the beach."
    ids = seed(mem, "mx", [dog])
    srv.enqueue(
        {"memories": [{"event": "DELETE", "id": "0"}]},
        {"memories": [{"text": "Gina's coworker Max invited her to his band's concert"}]},
    )
    news = "My coworker Max invited me to his band's concert today!"
    mem.add([{"role": "user", "name": "Gina", "content": news}], user_id="mx")
    assert srv.count("chat") == 2
    assert mem.get(ids[dog]).get("state", "active") == "active"
    assert current(mem, "mx") == {dog, "Gina's coworker Max invited her to his band's concert"}


def test_shown_memories_do_not_pool_their_words_to_cover_a_sentence(
    mem: Memory, srv: FakeOpenAI
) -> None:
    """LoCoMo 30/17: ten memories of a long chat held half the words of Jon's news between
    them ("push", "start", "learn", "biz"), none of them more than two; the sentence counted
    as said before and was lost. A memory the answer did not name covers only on its own."""
    seed(
        mem,
        "mk",
        [
            "Jon: Losing my job gave me the push to finally start my dream business.",
            "Jon: I went to a workshop to learn about running a biz.",
        ],
    )
    srv.enqueue(
        {"memories": [{"event": "ADD", "text": "Jon is going full-time with his business idea"}]},
        {"memories": [{"text": "Jon started learning marketing and analytics tools"}]},
    )
    news = "Started to learn all these marketing and analytics tools to push the biz forward today."
    msgs = [
        {"role": "user", "name": "Jon", "content": f"I'm going full-time with my biz idea. {news}"}
    ]
    mem.add(msgs, user_id="mk")
    assert srv.count("chat") == 2
    assert news in srv.requests_for("chat")[-1].body["messages"][-1]["content"]
    assert "Jon started learning marketing and analytics tools" in current(mem, "mk")
