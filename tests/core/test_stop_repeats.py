"""``stop_repeats``: a streamed answer is cut once the model loops (issue 16).

Why these tests: Qwen2.5-Coder-1.5B repeats its facts until ``max_tokens``, ~90 s per add
on a CPU. With the setting the client streams, notices the loop and hangs up; the write
path then keeps the complete items as it keeps a cut-off answer's. What must hold: the
loop rule never fires on an honest answer, it fires right after ``window`` repeats, the
client really stops reading (the stand-in server sees the hang-up), the stored memories
are the ones a full answer would give, usage is recorded (marked estimated when the
server's report never came), and refusals, retries and broken streams behave as for
ordinary requests.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memvault import Memory
from memvault.embedding import LocalEmbedder
from memvault.errors import LLMError
from memvault.llm.client import CHARS_PER_TOKEN, LLMClient
from memvault.llm.config import LLMSettings
from memvault.llm.repeats import complete_items, is_looping, normalise_fact
from tests.support.fake_openai import FakeOpenAI, Fault, Reply

FACTS = ["User likes green tea", "User lives in Oslo", "User's sister is a pilot"]


def answer(items: list[dict[str, str]], *, closed: bool = True) -> str:
    text = '{"memories": [' + ", ".join(json.dumps(i) for i in items)
    return text + "]}" if closed else text


# --------------------------------------------------------------------------- the rule


def test_normalised_facts_ignore_case_spacing_and_the_final_period() -> None:
    assert normalise_fact("  User  likes\tGreen tea. ") == "user likes green tea"
    assert normalise_fact("User likes green tea...") == normalise_fact("user likes green tea")


def test_an_honest_answer_with_one_repeat_is_not_a_loop() -> None:
    items = [{"event": "ADD", "text": f} for f in FACTS]
    items.append({"event": "UPDATE", "id": "2", "text": "user lives in Oslo."})
    assert not is_looping(answer(items))


def test_three_repeats_in_a_row_are_a_loop_and_two_are_not() -> None:
    items = [{"event": "ADD", "text": f} for f in FACTS]
    items += [
        {"event": "UPDATE", "id": "10", "text": "User likes green tea."},
        {"event": "ADD", "text": "USER LIVES IN  OSLO"},
    ]
    assert not is_looping(answer(items, closed=False))
    items.append({"event": "ADD", "text": "User likes green tea"})
    assert is_looping(answer(items, closed=False))
    assert not is_looping(answer(items, closed=False), window=4)


def test_a_new_fact_between_repeats_breaks_the_run() -> None:
    items = [{"event": "ADD", "text": f} for f in FACTS]
    items += [{"event": "ADD", "text": FACTS[0]}, {"event": "ADD", "text": FACTS[1]}]
    items += [{"event": "ADD", "text": "User plays chess"}, {"event": "ADD", "text": FACTS[2]}]
    assert not is_looping(answer(items))


def test_an_item_still_being_written_does_not_count() -> None:
    items = [{"event": "ADD", "text": f} for f in FACTS[:2]]
    items += [{"event": "ADD", "text": FACTS[0]}, {"event": "ADD", "text": FACTS[1]}]
    assert not is_looping(answer(items, closed=False) + ', {"event": "ADD", "text": "User likes')


CYCLE = (
    "Maria shared a photo of three women in green aprons holding pots. "
    "John mentioned that he had a little doll like this as a kid. "
)


def test_one_item_cycling_through_its_sentences_is_a_loop() -> None:
    """LoCoMo 41/5: one item's text cycled through two sentences until the token limit; no
    item ever completed, so the item rule never saw it."""
    start = '{"memories": [{"text": "John talked about education in his area. '
    assert not is_looping(start + CYCLE)  # said once
    assert not is_looping(start + CYCLE + CYCLE.split(". ")[0] + ". ")  # one repeat
    assert not is_looping(start + CYCLE * 2 + "Maria shared")  # two in a row
    assert is_looping(start + CYCLE * 2 + CYCLE.split(". ")[0] + ". Jo")  # three in a row
    honest = " ".join(f"John visited city number {i} with his family. " for i in "abcdefgh")
    assert not is_looping(start + honest)
    assert not is_looping(start + "Yes. No. Yes. No. Yes. No. Yes. ")  # short ones recur


def test_a_stream_looping_inside_one_item_is_cut(srv: FakeOpenAI) -> None:
    srv.enqueue(Reply('{"memories": [{"text": "' + CYCLE * 150, "length", stream_delay=0.001))
    out = client(srv).complete("s", "u")
    assert hung_up_early(srv)
    assert out.text.count("green aprons") < 5


def test_bare_lists_and_items_without_text_loop_too() -> None:
    assert is_looping('[{"text": "a"}, {"text": "a"}, {"text": "a"}, {"text": "a"}')
    assert is_looping("```json\n[" + ", ".join(['"likes tea"'] * 4))
    none = '{"event": "NONE", "id": "3"}'
    assert is_looping('{"memories": [' + ", ".join([none] * 4))
    assert complete_items('{"summary": "The agent booked a flight"}') == []
    assert not is_looping("Sure! The user likes tea.")


#: Facts as a model writes them: some letter or digit, any Unicode, no markup (``<think>``).
FACT = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"], exclude_characters="<"),
    min_size=1,
    max_size=40,
).filter(lambda t: any(c.isalnum() for c in t))


@settings(max_examples=150)
@given(
    facts=st.lists(FACT, min_size=1, max_size=8, unique_by=normalise_fact),
    cut=st.integers(0, 10_000),
)
def test_an_answer_of_distinct_facts_never_loops_wherever_it_is_cut(
    facts: list[str], cut: int
) -> None:
    """However the stream is split, distinct facts (plus one repeat) are no loop."""
    items = [{"event": "ADD", "text": f} for f in facts] + [{"event": "UPDATE", "text": facts[0]}]
    text = answer(items)
    assert not is_looping(text[: cut % (len(text) + 1)])


@settings(max_examples=150)
@given(
    facts=st.lists(FACT, min_size=1, max_size=6, unique_by=normalise_fact),
    picks=st.lists(st.integers(0, 100), min_size=3, max_size=10),
    restyle=st.booleans(),
)
def test_repeating_earlier_facts_is_a_loop_as_soon_as_three_are_complete(
    facts: list[str], picks: list[int], restyle: bool
) -> None:
    """Repeats (ADD or UPDATE, re-spaced, with a final period) loop from the third on."""
    items = [{"event": "ADD", "text": f} for f in facts]
    for i, p in enumerate(picks):
        again = facts[p % len(facts)]
        again = " " + again.replace(" ", "  ") + ". " if restyle else again
        items.append({"event": "UPDATE" if i % 2 else "ADD", "id": str(i), "text": again})
    assert is_looping(answer(items, closed=False))
    assert is_looping(answer(items[: len(facts) + 3], closed=False) + ', {"event": "A')
    assert not is_looping(answer(items[: len(facts) + 2], closed=False))


# --------------------------------------------------------------------------- the client


@pytest.fixture
def srv() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as s:
        yield s


def client(srv: FakeOpenAI, **kw: object) -> LLMClient:
    base = {"model": "qwen", "base_url": srv.base_url, "api_key": "k", "max_retries": 0}
    return LLMClient(LLMSettings.model_validate({**base, "stop_repeats": True, **kw}))


def hung_up_early(srv: FakeOpenAI) -> bool:
    record = srv.streams[-1]
    assert record.done.wait(5)
    return record.closed_early and record.sent < record.total // 10


def test_a_looping_stream_is_cut_and_keeps_what_came(srv: FakeOpenAI) -> None:
    srv.enqueue(Reply.looping(FACTS, stream_delay=0.001))
    llm = client(srv)
    out = llm.complete("system prompt", "user prompt")
    body = srv.requests_for("chat")[-1].body
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert hung_up_early(srv)
    items = complete_items(out.text)
    assert [i["text"] for i in items[:3]] == FACTS and len(items) == 6
    # no usage report came: estimated from what was received, and marked so
    assert out.usage.estimated_calls == 1 and out.usage.calls == 1
    assert 0 < out.usage.completion_tokens < srv.streams[-1].total // 10
    assert out.usage.prompt_tokens == -(-len("system promptuser prompt") // CHARS_PER_TOKEN)
    assert out.usage.as_dict()["estimated_calls"] == 1


def test_the_async_client_cuts_the_loop_too(srv: FakeOpenAI) -> None:
    srv.enqueue(Reply.looping(FACTS, stream_delay=0.001))
    out = asyncio.run(client(srv).acomplete("s", "u"))
    assert hung_up_early(srv)
    assert len(complete_items(out.text)) == 6 and out.usage.estimated_calls == 1


def test_an_answer_that_ends_carries_the_servers_usage(srv: FakeOpenAI) -> None:
    reply = {"memories": [{"event": "ADD", "text": f} for f in FACTS]}
    srv.enqueue(reply, reply)
    streamed = client(srv).complete("s", "u")
    whole = client(srv, stop_repeats=False).complete("s", "u")
    assert "stream" not in srv.requests_for("chat")[-1].body
    assert streamed.text == whole.text and streamed.model == "qwen"
    assert streamed.usage == whole.usage and streamed.usage.estimated_calls == 0
    assert "estimated_calls" not in streamed.usage.as_dict()
    assert not srv.streams[-1].closed_early


def test_the_responses_api_and_batch_lines_are_never_streamed(srv: FakeOpenAI) -> None:
    llm = client(srv, api="responses")
    srv.enqueue({"memories": []})
    llm.complete("s", "u")
    assert "stream" not in srv.requests_for("responses")[-1].body
    assert "stream" not in client(srv).request("s", "u")


def test_a_429_before_the_stream_is_retried_by_the_openai_client(srv: FakeOpenAI) -> None:
    srv.enqueue(Fault.rate_limit(retry_after=0.01), Reply.looping(FACTS))
    out = client(srv, max_retries=2).complete("s", "u")
    assert srv.count("chat") == 2 and len(complete_items(out.text)) == 6


def test_a_refused_stream_is_asked_again_without_and_remembered(srv: FakeOpenAI) -> None:
    srv.enqueue(
        Fault.error(400, message="Unrecognized request argument supplied: stream_options"),
        {"memories": [{"event": "ADD", "text": "User likes tea"}]},
        {"memories": []},
    )
    llm = client(srv)
    assert "likes tea" in llm.complete("s", "u").text
    llm.complete("s", "u")
    bodies = [r.body for r in srv.requests_for("chat")]
    assert [("stream" in b) for b in bodies] == [True, False, False]
    assert all("response_format" in b for b in bodies)  # JSON mode kept
    assert not llm.stream_supported and llm.json_supported


def test_json_mode_refused_while_streaming_keeps_streaming(srv: FakeOpenAI) -> None:
    srv.enqueue(
        Fault.error(400, message="'response_format' of type 'json_object' is not supported"),
        {"memories": []},
    )
    llm = client(srv)
    llm.complete("s", "u")
    bodies = [r.body for r in srv.requests_for("chat")]
    assert [("response_format" in b, "stream" in b) for b in bodies] == [
        (True, True),
        (False, True),
    ]


def test_a_plain_answer_to_a_stream_request_is_asked_again_without(srv: FakeOpenAI) -> None:
    # A server or proxy that ignores stream=True: the SDK's reader sees no event at all.
    # Asked again without streaming (remembered), the answer arrives, usage exact.
    tea = {"memories": [{"event": "ADD", "text": "User likes tea"}]}
    srv.enqueue(Reply.json(tea, ignore_stream=True), Reply.json(tea), Reply.json({"memories": []}))
    llm = client(srv)
    out = llm.complete("s", "u")
    assert "likes tea" in out.text and out.usage.estimated_calls == 0 and out.usage.calls == 1
    llm.complete("s", "u")
    assert [("stream" in r.body) for r in srv.requests_for("chat")] == [True, False, False]
    assert not llm.stream_supported
    srv.enqueue(Reply.json(tea, ignore_stream=True), Reply.json(tea))
    out = asyncio.run(client(srv).acomplete("s", "u"))
    assert "likes tea" in out.text and srv.count("chat") == 5


def test_the_timeout_bounds_the_whole_streamed_answer(srv: FakeOpenAI) -> None:
    # A model that streams on without repeating exactly: each chunk arrives well within the
    # timeout, the answer as a whole does not. Typed error, the text so far kept. (2 s, not
    # less: the timeout also bounds the first byte, which a loaded CI machine can delay.)
    srv.enqueue(Reply.looping([f"User fact {i}" for i in range(400)], stream_delay=0.01))
    with pytest.raises(LLMError, match="longer than the timeout") as info:
        client(srv, timeout=2.0).complete("s", "u")
    assert info.value.raw_output and info.value.raw_output.startswith('{"memories": [')
    record = srv.streams[-1]
    assert record.done.wait(5) and record.closed_early
    srv.enqueue(Reply.looping([f"User fact {i}" for i in range(400)], stream_delay=0.01))
    with pytest.raises(LLMError, match="longer than the timeout"):
        asyncio.run(client(srv, timeout=2.0).acomplete("s", "u"))


def test_other_bad_requests_fail_once_with_a_typed_error(srv: FakeOpenAI) -> None:
    srv.enqueue(Fault.error(400, message="context length exceeded"))
    with pytest.raises(LLMError, match="context length"):
        client(srv).complete("s", "u")
    assert srv.count("chat") == 1


def test_a_malformed_stream_is_a_typed_error_keeping_the_text(srv: FakeOpenAI) -> None:
    srv.enqueue(Fault.malformed_stream('{"memories": [{"event": "ADD", "text": "User likes'))
    with pytest.raises(LLMError) as info:
        client(srv).complete("s", "u")
    assert info.value.raw_output == '{"memories": [{"event": "ADD", "text": "User likes'
    srv.enqueue(Fault.malformed_stream())
    with pytest.raises(LLMError, match="JSONDecodeError"):
        asyncio.run(client(srv).acomplete("s", "u"))


def test_a_dropped_connection_mid_stream_is_a_typed_error(srv: FakeOpenAI) -> None:
    srv.enqueue(Reply.looping(FACTS, stream_delay=0.05))
    llm = client(srv)

    def drop() -> None:
        srv.wait_for_requests(1)
        srv.close()

    t = threading.Thread(target=drop)
    t.start()
    with pytest.raises(LLMError):
        llm.complete("s", "u")
    t.join()


# --------------------------------------------------------------------------- the write path


def memory(srv: FakeOpenAI, path: Path, embedder: LocalEmbedder, **llm: object) -> Memory:
    return Memory(srv.memvault_config(path, model="qwen", **llm), embedder=embedder)


SAID = "I like green tea. I live in Oslo. My sister is a pilot."


@pytest.mark.parametrize("stop", [True, False])
def test_a_looping_add_stores_each_fact_once(
    srv: FakeOpenAI, store_path: Path, embedder: LocalEmbedder, stop: bool
) -> None:
    srv.enqueue(Reply.looping(FACTS, stream_delay=0.001))
    with memory(srv, store_path, embedder, stop_repeats=stop, max_tokens=800) as mem:
        res = mem.add(SAID, user_id="u")
        stored = sorted(r["memory"] for r in mem.get_all(user_id="u")["results"])
        totals = mem.stats()["llm_usage"]
        assert mem.pending() == []
    assert stored == sorted(FACTS)
    added = [r["memory"] for r in res["results"] if r["event"] == "ADD"]
    assert added == FACTS  # each repeat is reported as NONE: 3 of them when cut, 197 when not
    assert len(res["results"]) == (6 if stop else 200)
    assert srv.count("chat") == 1
    body = srv.requests_for("chat")[0].body
    assert body.get("stream", False) is stop
    if stop:
        assert hung_up_early(srv)
        assert res["usage"]["estimated_calls"] == 1
    else:
        assert srv.streams == [] and "estimated_calls" not in res["usage"]
    assert res["usage"]["calls"] == 1 and res["usage"]["completion_tokens"] > 0
    assert totals["calls"] == 1 and totals["completion_tokens"] == res["usage"]["completion_tokens"]


def test_a_malformed_stream_fails_the_add_and_journals_it(
    srv: FakeOpenAI, store_path: Path, embedder: LocalEmbedder
) -> None:
    srv.enqueue(Fault.malformed_stream())
    with memory(srv, store_path, embedder, stop_repeats=True) as mem:
        with pytest.raises(LLMError, match="User"):
            mem.add(SAID, user_id="u")
        pending = mem.pending()
    assert len(pending) == 1


def test_ingest_counts_the_estimated_calls(
    srv: FakeOpenAI, store_path: Path, embedder: LocalEmbedder
) -> None:
    """Ingest runs the async client: the loop is cut there too, and the report counts the
    cut call as estimated (the other call's stream ended with the server's usage)."""
    srv.chat_handler = lambda req: (
        Reply.looping(FACTS, stream_delay=0.001)
        if "Oslo" in req["messages"][-1]["content"]
        else {"memories": []}
    )
    with memory(srv, store_path, embedder, stop_repeats=True) as mem:
        rep = mem.ingest([{"user_id": "u", "text": SAID}, {"user_id": "v", "text": "Hi!"}])
        stored = sorted(r["memory"] for r in mem.get_all(user_id="u")["results"])
    assert rep.done == 2 and rep.llm_calls == 2 and rep.estimated_llm_calls == 1
    assert stored == sorted(FACTS)
    assert [r.closed_early for r in srv.streams if r.done.wait(5)].count(True) == 1
