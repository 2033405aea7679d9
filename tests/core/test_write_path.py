"""The LLM write path, end to end through the real openai client and a local fake server."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from memvault import AsyncMemory, LLMError, Memory, ValidationError
from memvault.embedding import LocalEmbedder
from memvault.llm.prompts import EXTRACTION_PROMPT, FACTS_PROMPT, PROCEDURAL_PROMPT
from tests.support.fake_openai import FakeOpenAI, Fault, Reply
from tests.support.prompt_parts import shown_memories


@pytest.fixture
def srv() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as s:
        yield s


def llm_config(srv: FakeOpenAI, path: Path, **llm: Any) -> dict[str, Any]:
    return srv.memvault_config(path, **{"max_retries": 3, **llm})


@pytest.fixture
def mem(srv: FakeOpenAI, store_path: Path, embedder: LocalEmbedder) -> Iterator[Memory]:
    with Memory(llm_config(srv, store_path), embedder=embedder) as m:
        yield m


def existing_ids(request: dict[str, Any]) -> dict[str, str]:
    """text -> short id, as shown to the model in the user prompt."""
    user = request["messages"][-1]["content"]
    return {text: short for short, text in shown_memories(user).items()}


def test_add_extracts_facts_in_one_call_with_usage(mem: Memory, srv: FakeOpenAI) -> None:
    srv.enqueue(
        Reply.json(
            {
                "memories": [
                    {"event": "ADD", "text": "Alice is vegetarian", "attributed_to": "user"},
                    {"event": "ADD", "text": "Alice lives in Lyon", "attributed_to": "Alice"},
                ]
            },
            usage={"prompt_tokens": 900, "completion_tokens": 40, "cached_tokens": 512},
        )
    )
    res = mem.add(
        [
            {"role": "user", "content": "Hi! I'm Alice, vegetarian, living in Lyon."},
            {"role": "assistant", "content": "Nice to meet you, Alice!"},
        ],
        user_id="alice",
    )
    assert [r["event"] for r in res["results"]] == ["ADD", "ADD"]
    assert res["usage"] == {
        "prompt_tokens": 900,
        "completion_tokens": 40,
        "cached_tokens": 512,
        "calls": 1,
    }
    assert srv.count("chat.completions") == 1  # extraction + reconciliation: one call
    body = srv.requests_for("chat.completions")[0].body
    assert body["response_format"] == {"type": "json_object"}
    assert body["messages"][0]["content"] == EXTRACTION_PROMPT
    hits = mem.search("what does Alice eat", user_id="alice")["results"]
    assert hits[0]["memory"] == "Alice is vegetarian"
    assert mem.get(res["results"][1]["id"])["actor_id"] == "Alice"  # type: ignore[index]
    assert mem.stats()["llm_usage"]["prompt_tokens"] == 900
    assert mem.history(res["results"][0]["id"])[0]["changed_by"] == "llm"


def test_update_supersedes_and_as_of_answers_the_past(mem: Memory, srv: FakeOpenAI) -> None:
    srv.enqueue({"memories": [{"event": "ADD", "text": "Bob lives in Paris"}]})
    old = mem.add("I live in Paris", user_id="bob", timestamp=datetime(2024, 1, 10, tzinfo=UTC))[
        "results"
    ][0]

    def move(req: dict[str, Any]) -> dict[str, Any]:
        ids = existing_ids(req)
        return {
            "memories": [
                {"event": "UPDATE", "id": ids["Bob lives in Paris"], "text": "Bob lives in Berlin"}
            ]
        }

    srv.chat_handler = move
    res = mem.add(
        "I moved to Berlin last month", user_id="bob", timestamp=datetime(2024, 6, 1, tzinfo=UTC)
    )["results"][0]
    assert res["event"] == "UPDATE" and res["previous_id"] == old["id"]
    assert res["previous_memory"] == "Bob lives in Paris" and res["id"] != old["id"]
    now = [r["memory"] for r in mem.search("where does Bob live", user_id="bob")["results"]]
    assert now == ["Bob lives in Berlin"]
    both = mem.get_all(user_id="bob", include_superseded=True)["results"]
    assert {r["memory"] for r in both} == {"Bob lives in Paris", "Bob lives in Berlin"}
    past = mem.search("where does Bob live", user_id="bob", as_of="2024-03-01")["results"]
    assert [r["memory"] for r in past] == ["Bob lives in Paris"]
    kept = mem.get(old["id"])
    assert kept is not None and kept["superseded_by"] == res["id"]
    assert kept["valid_to"].startswith("2024-06-01") and kept["state"] == "superseded"
    assert mem.get(res["id"])["valid_from"].startswith("2024-06-01")  # type: ignore[index]
    trail = mem.history(old["id"])
    assert [h["event"] for h in trail] == ["ADD", "SUPERSEDE"]
    assert trail[1]["related_id"] == res["id"] and trail[1]["new_memory"] == "Bob lives in Berlin"
    assert mem.history(res["id"])[0]["related_id"] == old["id"]


def test_delete_invalidates_without_destroying(mem: Memory, srv: FakeOpenAI) -> None:
    srv.enqueue({"memories": [{"event": "ADD", "text": "Carol has a cat named Tom"}]})
    cat = mem.add("My cat Tom", user_id="carol")["results"][0]
    srv.chat_handler = lambda req: {
        "memories": [{"event": "DELETE", "id": existing_ids(req)["Carol has a cat named Tom"]}]
    }
    res = mem.add("Sadly Tom passed away", user_id="carol")["results"]
    assert res == [{"id": cat["id"], "memory": "Carol has a cat named Tom", "event": "DELETE"}]
    assert mem.get_all(user_id="carol")["results"] == []
    gone = mem.get(cat["id"])
    assert gone is not None and gone["state"] == "superseded" and gone["valid_to"]
    assert [h["event"] for h in mem.history(cat["id"])] == ["ADD", "INVALIDATE"]


def test_none_and_hallucinated_ids_are_safe(mem: Memory, srv: FakeOpenAI) -> None:
    srv.enqueue({"memories": [{"event": "ADD", "text": "Dan plays chess"}]})
    first = mem.add("I play chess", user_id="dan")["results"][0]
    srv.chat_handler = lambda req: {
        "memories": [
            {"event": "NONE", "id": existing_ids(req)["Dan plays chess"]},
            {"event": "DELETE", "id": "99"},  # never shown: ignored
            {"event": "UPDATE", "id": "42", "text": "Dan plays go"},  # unknown id: kept as ADD
        ]
    }
    res = mem.add("Chess again today, and some go", user_id="dan")["results"]
    assert res[0] == {"id": first["id"], "memory": "Dan plays chess", "event": "NONE"}
    assert res[1]["event"] == "ADD" and res[1]["memory"] == "Dan plays go"
    assert {r["memory"] for r in mem.get_all(user_id="dan")["results"]} == {
        "Dan plays chess",
        "Dan plays go",
    }


def test_observation_date_comes_from_the_messages_not_the_clock(
    mem: Memory, srv: FakeOpenAI
) -> None:
    srv.enqueue({"memories": [{"event": "ADD", "text": "Eve ran a marathon on 2023-05-06"}]})
    mem.add(
        [
            {
                "role": "user",
                "content": "I ran a marathon last Saturday",
                "timestamp": "2023-05-08T10:00:00Z",
            }
        ],
        user_id="eve",
    )
    user = srv.requests_for("chat.completions")[0].body["messages"][1]["content"]
    assert "OBSERVATION DATE: 2023-05-08T10:00:00" in user
    assert str(datetime.now(UTC).date()) not in user
    got = mem.get_all(user_id="eve")["results"][0]
    assert got["valid_from"].startswith("2023-05-08")


def test_prompt_is_compact() -> None:
    import bpe_openai  # dev dependency: exact cl100k (tiktoken) counts with no download

    enc = bpe_openai.get_encoding("cl100k_base")
    assert len(enc.encode(EXTRACTION_PROMPT)) <= 2000
    assert len(enc.encode(EXTRACTION_PROMPT)) <= 800  # our own budget, well under the cap
    assert len(enc.encode(PROCEDURAL_PROMPT)) <= 400
    # the second pass's instruction: a third of the first's (it is sent in most adds of a
    # small model)
    assert len(enc.encode(FACTS_PROMPT)) * 3 <= len(enc.encode(EXTRACTION_PROMPT))


@pytest.mark.parametrize(
    "reply",
    [
        Reply.think({"memories": [{"event": "ADD", "text": "Finn likes jazz"}]}),
        Reply.fenced({"memories": [{"event": "ADD", "text": "Finn likes jazz"}]}),
        Reply(
            'Here you go: {"memories": [{"event": "ADD", "text": "Finn likes jazz"}]} '
            "Hope that helps {not json}"
        ),
    ],
)
def test_reasoning_and_chatty_outputs_are_parsed(
    mem: Memory, srv: FakeOpenAI, reply: Reply
) -> None:
    srv.enqueue(reply)
    assert mem.add("I like jazz", user_id="finn")["results"][0]["memory"] == "Finn likes jazz"


@pytest.mark.parametrize(
    "fault",
    [
        Fault.malformed_content(),
        Fault.malformed_body(),
        Reply.truncated({"memories": [{"event": "ADD", "text": "cut"}]}),
        Reply.json({"unexpected": True}),
        Fault.malformed_body("<html>bad gateway</html>", content_type="text/html"),
    ],
)
def test_unparseable_output_raises_and_keeps_the_input(
    mem: Memory, srv: FakeOpenAI, fault: Any
) -> None:
    srv.enqueue(fault)
    with pytest.raises(LLMError) as info:
        mem.add("Gina's birthday is March 3", user_id="gina")
    assert mem.get_all(user_id="gina")["results"] == []
    pending = mem.pending()
    assert len(pending) == 1
    assert pending[0]["payload"]["messages"][0]["content"] == "Gina's birthday is March 3"
    assert pending[0]["error"] == str(info.value)
    srv.enqueue({"memories": [{"event": "ADD", "text": "Gina's birthday is March 3"}]})
    out = mem.retry_pending()
    assert out == {"retried": 1, "done": 1, "failed": []}
    assert mem.pending() == []
    assert [r["memory"] for r in mem.get_all(user_id="gina")["results"]] == [
        "Gina's birthday is March 3"
    ]


def test_rate_limits_and_5xx_are_retried(mem: Memory, srv: FakeOpenAI) -> None:
    srv.enqueue(
        Fault.rate_limit(retry_after=0.05),
        Fault.server_error(503),
        {"memories": [{"event": "ADD", "text": "Hana speaks Japanese"}]},
    )
    assert mem.add("I speak Japanese", user_id="hana")["results"][0]["event"] == "ADD"
    assert srv.count("chat.completions") == 3


def test_persistent_failure_is_a_typed_error(mem: Memory, srv: FakeOpenAI) -> None:
    srv.enqueue(*[Fault.server_error(500)] * 5)
    with pytest.raises(LLMError, match="failed"):
        mem.add("Ivan likes tea", user_id="ivan")
    assert len(mem.pending()) == 1


def test_responses_api_and_flex_tier(
    srv: FakeOpenAI, store_path: Path, embedder: LocalEmbedder
) -> None:
    cfg = llm_config(srv, store_path, api="responses", service_tier="flex")
    with Memory(cfg, embedder=embedder) as m:
        srv.enqueue({"memories": [{"event": "ADD", "text": "Jo owns a bike"}]})
        res = m.add("I own a bike", user_id="jo")
        assert res["results"][0]["memory"] == "Jo owns a bike"
        req = srv.requests_for("responses")[0].body
        assert req["service_tier"] == "flex" and req["instructions"] == EXTRACTION_PROMPT
        assert res["usage"]["calls"] == 1


def test_custom_instructions_reach_the_model(
    srv: FakeOpenAI, store_path: Path, embedder: LocalEmbedder
) -> None:
    cfg = llm_config(srv, store_path)
    cfg["custom_instructions"] = "Only remember food preferences."
    with Memory(cfg, embedder=embedder) as m:
        m.add("I love ramen", user_id="k")
        m.add("I love udon", user_id="k", prompt="Record noodles only.")
    users = [r.body["messages"][1]["content"] for r in srv.requests_for("chat.completions")]
    assert "Only remember food preferences." in users[0]
    assert "Record noodles only." in users[1]


def test_procedural_memory_summarises_a_run(mem: Memory, srv: FakeOpenAI) -> None:
    srv.enqueue({"summary": "Goal: book a flight. Step 1: searched LHR-JFK, found BA117."})
    res = mem.add(
        [
            {"role": "user", "content": "Book me a flight to JFK"},
            {"role": "assistant", "content": "Searching... found BA117."},
        ],
        agent_id="travel-bot",
        memory_type="procedural_memory",
    )
    (item,) = res["results"]
    assert item["memory"].startswith("Goal: book a flight")
    assert mem.get(item["id"])["metadata"] == {"memory_type": "procedural_memory"}  # type: ignore[index]
    assert (
        srv.requests_for("chat.completions")[0].body["messages"][0]["content"] == PROCEDURAL_PROMPT
    )
    with pytest.raises(ValidationError, match="agent_id"):
        mem.add("x", user_id="u", memory_type="procedural_memory")


def test_idempotency_key_replays_without_calling_again(mem: Memory, srv: FakeOpenAI) -> None:
    srv.enqueue({"memories": [{"event": "ADD", "text": "Lea likes kayaking"}]})
    a = mem.add("I like kayaking", user_id="lea", idempotency_key="msg-1")
    b = mem.add("I like kayaking", user_id="lea", idempotency_key="msg-1")
    assert b["replayed"] is True and b["results"] == a["results"]
    assert srv.count("chat.completions") == 1
    assert len(mem.get_all(user_id="lea")["results"]) == 1


def test_infer_false_never_calls_the_llm(mem: Memory, srv: FakeOpenAI) -> None:
    mem.add("raw note", user_id="u", infer=False)
    assert srv.count("chat.completions") == 0


async def test_async_add_uses_the_llm_natively(
    srv: FakeOpenAI, store_path: Path, embedder: LocalEmbedder
) -> None:
    srv.latency_ms = 200
    srv.chat_handler = lambda req: {
        "memories": [{"event": "ADD", "text": req["messages"][1]["content"].rsplit(": ", 1)[-1]}]
    }
    m = AsyncMemory(llm_config(srv, store_path), embedder=embedder, max_workers=2)
    try:
        import asyncio
        import time

        t0 = time.perf_counter()
        await asyncio.gather(*(m.add(f"fact number {i}", user_id=f"u{i}") for i in range(12)))
        elapsed = time.perf_counter() - t0
        # 12 calls of 200 ms each, awaited concurrently (not one pool thread each).
        assert elapsed < 12 * 0.2
        for i in range(12):
            got = (await m.get_all(user_id=f"u{i}"))["results"]
            assert [g["memory"] for g in got] == [f"fact number {i}"]
    finally:
        await m.close()


def test_small_scopes_show_every_memory_without_a_query_embedding(
    srv: FakeOpenAI, store_path: Path, embedder: LocalEmbedder
) -> None:
    """Up to 10 current memories the prompt shows them all: no model run to rank them.
    Past that, the new messages are embedded and the 10 most similar are shown."""
    from memvault.embedding import CallableEmbedder

    kinds: list[str] = []

    class Counting(CallableEmbedder):
        def embed(self, texts: list[str], *, kind: str = "passage") -> Any:
            kinds.extend(kind for _ in texts)
            return embedder.embed(texts, kind=kind)

    counting = Counting(lambda t: embedder.embed(t).tolist(), 384, name=embedder.name)
    cfg = {**llm_config(srv, store_path), "embedding_mode": "sync"}
    with Memory(cfg, embedder=counting) as m:
        for i in range(10):
            m.add(f"fact number {i} about the garden", user_id="u", infer=False)
        m.add("superseded soon", user_id="u", infer=False)
        m.delete_all(user_id="u", filters={"memory": {"contains": "superseded"}})
        srv.enqueue(Reply.json({"memories": [{"event": "ADD", "text": "Likes roses"}]}))
        kinds.clear()
        m.add("I like roses", user_id="u")
        assert "query" not in kinds  # 10 memories: all shown, nothing to rank
        shown = existing_ids(srv.requests_for("chat.completions")[-1].body)
        assert len(shown) == 10 and "superseded soon" not in shown

        srv.enqueue(Reply.json({"memories": [{"event": "NONE", "text": "Likes roses"}]}))
        kinds.clear()
        m.add("Roses are still my favourite", user_id="u")  # now 11 memories
        assert kinds == ["query"]
        assert len(existing_ids(srv.requests_for("chat.completions")[-1].body)) == 10


def test_extracted_facts_are_indexed_in_the_background(
    srv: FakeOpenAI, store_path: Path, embedder: LocalEmbedder
) -> None:
    """With background indexing (the default) the LLM add commits its facts and queues
    their vectors; the next search in the scope embeds them first, so nothing is missed."""
    with Memory(llm_config(srv, store_path), embedder=embedder) as m:
        m._engine.indexer.close()  # no worker: only the search itself can embed
        srv.enqueue(
            Reply.json({"memories": [{"event": "ADD", "text": "Keeps bees in the garden"}]})
        )
        added = m.add("I keep bees in my garden", user_id="u")["results"][0]
        assert m.stats()["pending_vectors"] == 1
        hit = m.search("what insects does the user raise", user_id="u", explain=True)["results"]
        assert hit[0]["id"] == added["id"]
        assert hit[0]["score_details"]["semantic_similarity"] > 0.2
        assert m.stats()["pending_vectors"] == 0
