"""``RememberTool`` / ``RecallTool`` / ``ForgetTool`` on a real store.

The scope is the tools' contract: fixed when the tool is built, absent from what
the model may pass, enforced by memvault on every call. The LLM path (memvault's
own extraction inside ``Memory.add(infer=True)``) runs against the fake OpenAI
server, the only faked part.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from memvault import Memory
from memvault.embedding import LocalEmbedder
from memvault_crewai import (
    ForgetTool,
    MemvaultStorage,
    RecallTool,
    RememberTool,
    create_memory_tools,
)
from tests.support.fake_openai import FakeOpenAI


def _ids(recall_output: str) -> list[str]:
    return [line.split("]")[0].lstrip("- [") for line in recall_output.splitlines() if "[" in line]


def test_model_facing_arguments_carry_no_scope(memory: Memory) -> None:
    remember, recall, forget = create_memory_tools(memory, user_id="u1")
    assert set(remember.args_schema.model_fields) == {"content"}
    assert set(recall.args_schema.model_fields) == {"query", "limit"}
    assert set(forget.args_schema.model_fields) == {"memory_id"}
    assert [t.name for t in (remember, recall, forget)] == ["remember", "recall", "forget"]


def test_a_scope_is_required_and_validated(memory: Memory) -> None:
    # pydantic wraps memvault's ScopeError (a ValueError) in its own ValidationError
    with pytest.raises(ValueError, match="fixed scope"):
        RememberTool(memory=memory)
    with pytest.raises(ValueError, match="contains whitespace"):
        RecallTool(memory=memory, user_id="has space")


def test_model_cannot_redirect_the_scope(memory: Memory) -> None:
    remember = RememberTool(memory=memory, user_id="alice")
    out = remember.run(content="Likes hiking", user_id="mallory", agent_id="x")
    assert out == "Remembered: Likes hiking"
    assert memory.get_all(user_id="mallory")["results"] == []
    (item,) = memory.get_all(user_id="alice")["results"]
    assert (item["memory"], item["agent_id"]) == ("Likes hiking", None)


def test_remember_recall_forget_within_the_scope(memory: Memory) -> None:
    remember, recall, forget = create_memory_tools(memory, user_id="alice", agent_id="travel")
    _, other_recall, other_forget = create_memory_tools(memory, user_id="bob")
    assert remember.run(content="Prefers aisle seats") == "Remembered: Prefers aisle seats"
    assert remember.run(content="Prefers aisle seats").startswith("Already known")
    found = recall.run(query="which seat does she like")
    assert "Prefers aisle seats" in found
    (mid,) = _ids(found)
    assert other_recall.run(query="which seat does she like") == "No matching memories."
    assert "nothing was forgotten" in other_forget.run(memory_id=mid)  # not bob's memory
    assert memory.get(mid) is not None
    assert forget.run(memory_id=mid) == f"Forgot memory {mid}."
    assert memory.get(mid) is None
    assert [h["event"] for h in memory.history(mid)] == ["ADD", "DELETE"]
    assert memory.history(mid)[-1]["changed_by"] == "crewai"
    assert "nothing was forgotten" in forget.run(memory_id=mid)
    assert forget.run(memory_id="bad id").startswith("Nothing forgotten")


def test_recall_limit_is_bounded(memory: Memory) -> None:
    remember, recall, _ = create_memory_tools(memory, run_id="r1")
    for i in range(4):
        remember.run(content=f"fact number {i} about llamas")
    assert len(_ids(recall.run(query="llamas", limit=2))) == 2
    with pytest.raises(ValueError, match="arguments validation failed"):
        recall.run(query="llamas", limit=500)


def test_results_are_never_cached(memory: Memory) -> None:
    remember, recall, _ = create_memory_tools(memory, user_id="c")
    assert recall.cache_function({"query": "x"}, "result") is False
    assert recall.run(query="favourite colour") == "No matching memories."
    remember.run(content="Favourite colour is teal")
    assert "teal" in recall.run(query="favourite colour")


async def test_async_tools(memory: Memory) -> None:
    remember, recall, forget = create_memory_tools(memory, user_id="dora")
    try:
        assert await remember.arun(content="Allergic to cats") == "Remembered: Allergic to cats"
        found = await recall.arun(query="pets allergy")
        (mid,) = _ids(found)
        assert await forget.arun(memory_id=mid) == f"Forgot memory {mid}."
        assert "nothing was forgotten" in await forget.arun(memory_id=mid)
        # one shared AsyncMemory twin for the three tools
        assert remember._handles is recall._handles is forget._handles
    finally:
        remember.close()
    assert memory.get_all(user_id="dora")["results"] == []


def test_tools_share_a_storage_store(storage: MemvaultStorage) -> None:
    remember, recall, _ = create_memory_tools(storage, user_id="erin")
    remember.run(content="Works night shifts")
    assert storage.memory.get_all(user_id="erin")["results"][0]["memory"] == "Works night shifts"
    remember.close()  # the storage owns its handles: still usable
    assert "night shifts" in recall.run(query="shift schedule")
    assert storage.count() == 0  # tool memories are not CrewAI records


def test_tools_on_the_default_store() -> None:
    tool = RememberTool(user_id="default-user")
    try:
        assert tool.run(content="Stored in the default store").startswith("Remembered")
    finally:
        tool.close()


def test_remember_metadata(memory: Memory) -> None:
    tool = RememberTool(memory=memory, user_id="f", metadata={"source": "crew"})
    tool.run(content="Speaks Portuguese")
    assert memory.get_all(user_id="f")["results"][0]["metadata"] == {"source": "crew"}


def test_bad_input_is_reported_to_the_model(memory: Memory) -> None:
    remember, recall, _ = create_memory_tools(memory, user_id="g")
    assert remember.run(content="   ").startswith("Nothing remembered")
    assert recall.run(query="   ").startswith("Cannot search memory")


def test_unknown_memory_type_is_rejected() -> None:
    with pytest.raises(TypeError, match="memvault Memory"):
        RecallTool(memory=object(), user_id="x")


# -- memvault's LLM extraction (fake OpenAI server) ----------------------------------------------
@pytest.fixture
def llm_memory(tmp_path: Path, embedder: LocalEmbedder) -> Iterator[tuple[Memory, FakeOpenAI]]:
    with (
        FakeOpenAI() as srv,
        Memory(srv.memvault_config(tmp_path / "llm.db"), embedder=embedder) as mem,
    ):
        yield mem, srv


def test_remember_runs_memvault_extraction(llm_memory: tuple[Memory, FakeOpenAI]) -> None:
    memory, srv = llm_memory
    remember = RememberTool(memory=memory, user_id="eli")
    srv.enqueue({"memories": [{"event": "ADD", "text": "Eli is vegetarian"}]})
    out = remember.run(content="btw I stopped eating meat last year")
    assert out == "Remembered: Eli is vegetarian"
    assert srv.count("chat.completions") == 1
    assert [r["memory"] for r in memory.get_all(user_id="eli")["results"]] == ["Eli is vegetarian"]


async def test_remember_extraction_async(llm_memory: tuple[Memory, FakeOpenAI]) -> None:
    memory, srv = llm_memory
    remember = RememberTool(memory=memory, user_id="fay")
    try:
        srv.enqueue({"memories": [{"event": "ADD", "text": "Fay lives in Porto"}]})
        assert await remember.arun(content="I moved to Porto!") == "Remembered: Fay lives in Porto"
        srv.enqueue({"memories": [{"event": "UPDATE", "id": "0", "text": "Fay lives in Braga"}]})
        out = await remember.arun(content="Actually I live in Braga now")
    finally:
        remember.close()
    assert srv.count("chat.completions") == 2
    assert "Fay lives in Braga" in out
    assert [r["memory"] for r in memory.get_all(user_id="fay")["results"]] == ["Fay lives in Braga"]


def test_forget_tool_direct(memory: Memory) -> None:
    added = memory.add("Temporary note", user_id="h", infer=False)["results"][0]
    tool = ForgetTool(memory=memory, user_id="h")
    assert tool.run(memory_id=added["id"]) == f"Forgot memory {added['id']}."
