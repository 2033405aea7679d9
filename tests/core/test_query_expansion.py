"""Opt-in query expansion (issue 12): the LLM says what answering memories would hold.

The stand-in server plays the model here (the answers are scripted, so the retrieval
around them is what is tested); tests/llm runs the same path against the real model.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memvault import AsyncMemory, LLMError, Memory, ValidationError
from memvault.embedding import LocalEmbedder
from memvault.expansion import EXPANSION_PROMPT, decode_statements, fuse
from tests.support.fake_openai import FakeOpenAI, Fault

MEMORIES = [
    "Caroline asked whether Dr. Seuss was a real doctor",
    "Caroline likes Dr. Pepper more than cola",
    "Caroline went to the doctor for a check-up last week",
    "Caroline collects classic children's books for her future kids",
    "Melanie ran a charity race for mental health",
]
TARGET = "Caroline collects classic children's books for her future kids"
QUESTION = "Would Caroline likely have Dr. Seuss books on her shelf?"
STATEMENTS = [
    "Caroline collects classic children's books",
    "Caroline keeps picture books for kids at home",
]


def llm_config(srv: FakeOpenAI, store_path: Path, **retrieval: int) -> dict:
    return {**srv.memvault_config(store_path), "retrieval": retrieval}


@pytest.fixture
def srv() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as s:
        yield s


@pytest.fixture
def mem(srv: FakeOpenAI, store_path: Path, embedder: LocalEmbedder) -> Iterator[Memory]:
    with Memory(llm_config(srv, store_path), embedder=embedder) as m:
        for t in MEMORIES:
            m.add(t, user_id="c", infer=False)
        yield m


def texts(res: dict) -> list[str]:
    return [r["memory"] for r in res["results"]]


def test_a_memory_unlike_the_question_is_found_through_the_statements(
    mem: Memory, srv: FakeOpenAI
) -> None:
    plain = mem.search(QUESTION, user_id="c", limit=1)
    assert texts(plain) != [TARGET]  # the question's words lead elsewhere
    assert srv.count("chat") == 0  # off by default: no model call
    srv.enqueue({"statements": STATEMENTS})
    res = mem.search(QUESTION, user_id="c", limit=1, retrieval={"expansions": 2})
    assert texts(res) == [TARGET]
    assert res["expansions"] == STATEMENTS
    assert 0 < res["results"][0]["score"] <= 1
    req = srv.requests_for("chat")[0].body["messages"]
    assert req[0]["content"] == EXPANSION_PROMPT and QUESTION in req[-1]["content"]
    assert "2 statements" in req[-1]["content"]
    assert mem.stats()["llm_usage"]["calls"] == 1  # the call is accounted for


def test_expansions_keep_the_scope(mem: Memory, srv: FakeOpenAI) -> None:
    """A statement naming someone of another scope finds nothing there."""
    mem.add("Dana collects classic children's books", user_id="other", infer=False)
    srv.enqueue({"statements": ["Dana collects classic children's books"]})
    res = mem.search(QUESTION, user_id="c", limit=10, retrieval={"expansions": 1})
    assert "Dana collects classic children's books" not in texts(res)
    assert set(texts(res)) <= set(MEMORIES)


def test_an_answer_without_statements_is_the_plain_search(mem: Memory, srv: FakeOpenAI) -> None:
    plain = mem.search(QUESTION, user_id="c", limit=3)
    srv.enqueue(Fault.malformed_content())
    res = mem.search(QUESTION, user_id="c", limit=3, retrieval={"expansions": 3})
    assert res["expansions"] == []
    assert texts(res) == texts(plain)


def test_a_failed_call_is_a_clear_error(mem: Memory, srv: FakeOpenAI) -> None:
    srv.enqueue(Fault.error(503, message="down"))
    with pytest.raises(LLMError):
        mem.search(QUESTION, user_id="c", retrieval={"expansions": 2})


def test_pages_and_the_threshold_apply_to_the_fused_ranking(mem: Memory, srv: FakeOpenAI) -> None:
    srv.enqueue({"statements": STATEMENTS}, {"statements": STATEMENTS})
    first = mem.search(QUESTION, user_id="c", limit=2, retrieval={"expansions": 2})
    second = mem.search(QUESTION, user_id="c", limit=2, offset=2, retrieval={"expansions": 2})
    assert not set(texts(first)) & set(texts(second))
    scores = [r["score"] for r in first["results"] + second["results"]]
    assert scores == sorted(scores, reverse=True)


@pytest.mark.parametrize(
    "kwargs",
    [{"vector": [0.1] * 384}, {"ranking": "vector"}, {"include_unranked": True}],
    ids=["vector", "ranking-vector", "unranked"],
)
def test_expansions_need_a_hybrid_text_search(mem: Memory, srv: FakeOpenAI, kwargs: dict) -> None:
    query = None if "vector" in kwargs else QUESTION
    with pytest.raises(ValidationError, match="expansions"):
        mem.search(query, user_id="c", retrieval={"expansions": 2}, **kwargs)
    assert srv.count("chat") == 0


def test_expansions_need_an_llm(store_path: Path, embedder: LocalEmbedder) -> None:
    with Memory({"path": str(store_path)}, embedder=embedder) as m:
        m.add(TARGET, user_id="c", infer=False)
        with pytest.raises(ValidationError, match="LLM"):
            m.search(QUESTION, user_id="c", retrieval={"expansions": 2})


def test_out_of_range_expansions_are_refused(mem: Memory) -> None:
    for bad in (-1, 9, "two"):
        with pytest.raises(ValidationError):
            mem.search(QUESTION, user_id="c", retrieval={"expansions": bad})


def test_the_async_api_expands_too(
    srv: FakeOpenAI, store_path: Path, embedder: LocalEmbedder
) -> None:
    async def main() -> list[str]:
        async with AsyncMemory(llm_config(srv, store_path, expansions=2), embedder=embedder) as m:
            for t in MEMORIES:
                await m.add(t, user_id="c", infer=False)
            srv.enqueue({"statements": STATEMENTS})
            return texts(await m.search(QUESTION, user_id="c", limit=1))

    assert asyncio.run(main()) == [TARGET]


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        ('{"statements": ["A b", "C d"]}', ["A b", "C d"]),
        ('```json\n["A b", "a B", "C d", "E f"]\n```', ["A b", "C d", "E f"]),
        ('Sure! {"queries": [{"text": "A b"}, {"q": "C  d"}]}', ["A b", "C d"]),
        ('{"answer": "A b"}', ["A b"]),
        ("no JSON at all", []),
        ('{"statements": [1, null, ""]}', []),
    ],
)
def test_statements_are_read_tolerantly(raw: str, want: list[str]) -> None:
    assert decode_statements(raw, 3) == want


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_any_answer_decodes_without_raising(raw: str) -> None:
    out = decode_statements(raw, 4)
    assert len(out) <= 4 and all(isinstance(t, str) and t for t in out)


def test_fusion_rewards_agreement_and_keeps_scores_in_range() -> None:
    a = [{"id": "x"}, {"id": "y"}, {"id": "z"}]
    b = [{"id": "y"}, {"id": "w"}]
    fused = fuse([a, b])
    assert [r["id"] for r in fused] == ["y", "x", "w", "z"]
    assert all(0 < r["score"] <= 1 for r in fused)
    assert fuse([a])[0]["score"] == 1.0
    # weighted: what the heavier ranking holds comes before what only the other holds
    assert [r["id"] for r in fuse([a, b], [3, 1])] == ["y", "x", "z", "w"]
    assert [r["id"] for r in fuse([a, b], [1, 3])] == ["y", "w", "x", "z"]
