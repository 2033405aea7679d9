"""remember / recall / forget: scope from the run, LLM extraction through Memory.add."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage, ToolMessage

from integrations.langgraph.tests.fakes import ScriptedChatModel, call
from memvault import Memory, ScopeError
from memvault.embedding import LocalEmbedder
from memvault_langgraph import MemvaultStore, create_memory_tools
from tests.support.fake_openai import FakeOpenAI


def test_the_model_never_sees_a_scope_argument(memory: Memory) -> None:
    for tool in create_memory_tools(memory):
        props = tool.tool_call_schema.model_json_schema()["properties"]
        assert not {"user_id", "agent_id", "run_id", "config"} & set(props), tool.name


def test_scope_comes_from_the_run_config(memory: Memory) -> None:
    remember, recall, forget = create_memory_tools(memory)
    alice = {"configurable": {"user_id": "alice"}}
    bob = {"configurable": {"user_id": "bob"}}
    out = remember.invoke({"content": "Alice's cat is called Miso"}, config=alice)
    assert out.startswith("Remembered: Alice's cat is called Miso")
    assert "Miso" in recall.invoke({"query": "pet name"}, config=alice)
    assert recall.invoke({"query": "pet name"}, config=bob) == "No relevant memories."
    memory_id = memory.get_all(user_id="alice")["results"][0]["id"]
    # bob's run cannot delete alice's memory, and learns nothing about it
    msg = forget.invoke({"memory_id": memory_id}, config=bob)
    assert msg == f"No memory with id {memory_id!r} to forget."
    assert forget.invoke({"memory_id": memory_id}, config=alice) == f"Forgot memory {memory_id}."
    assert memory.get_all(user_id="alice")["results"] == []
    assert remember.invoke({"content": "Alice's cat is called Miso"}, config=alice)
    assert "already known" in remember.invoke(
        {"content": "Alice's cat is called Miso"}, config=alice
    )


def test_no_scope_is_an_error_not_a_global_write(memory: Memory) -> None:
    remember, _, _ = create_memory_tools(memory)
    with pytest.raises(ScopeError, match="user_id"):
        remember.invoke({"content": "orphan"})
    default_scoped, _, _ = create_memory_tools(memory, user_id="fallback")
    default_scoped.invoke({"content": "kept under the default user"})
    assert memory.get_all(user_id="fallback")["results"][0]["memory"] == (
        "kept under the default user"
    )


async def test_async_tools(memory: Memory) -> None:
    remember, recall, forget = create_memory_tools(memory)
    cfg = {"configurable": {"user_id": "u1", "agent_id": "coach"}}
    assert "Remembered" in await remember.ainvoke({"content": "Runs 5k on Tuesdays"}, config=cfg)
    assert "5k" in await recall.ainvoke({"query": "running schedule"}, config=cfg)
    rec = memory.get_all(user_id="u1")["results"][0]
    assert rec["agent_id"] == "coach"
    assert "Forgot" in await forget.ainvoke({"memory_id": rec["id"]}, config=cfg)


@dataclass
class Context:
    user_id: str


def test_scope_from_runtime_context_in_create_agent(store: MemvaultStore) -> None:
    """create_agent(context_schema=...) + tools built without memory: the agent's store."""
    from langchain.agents import create_agent

    model = ScriptedChatModel(
        script=[
            call("remember", "c1", content="Prefers aisle seats"),
            call("recall", "c2", query="seat"),
            lambda messages: AIMessage(messages[-1].text),
        ]
    )
    agent = create_agent(model, create_memory_tools(), store=store, context_schema=Context)
    out = agent.invoke(
        {"messages": [("user", "I like aisle seats")]}, context=Context(user_id="dana")
    )
    tool_results = [m.text for m in out["messages"] if isinstance(m, ToolMessage)]
    assert tool_results[0].startswith("Remembered: Prefers aisle seats")
    assert "Prefers aisle seats" in out["messages"][-1].text
    assert store.memory.get_all(user_id="dana")["results"][0]["memory"] == "Prefers aisle seats"


@pytest.fixture
def llm_memory(tmp_path: Path, embedder: LocalEmbedder) -> Iterator[tuple[Memory, FakeOpenAI]]:
    with (
        FakeOpenAI() as srv,
        Memory(srv.memvault_config(tmp_path / "llm.db"), embedder=embedder) as mem,
    ):
        yield mem, srv


def test_remember_uses_llm_extraction_when_configured(
    llm_memory: tuple[Memory, FakeOpenAI],
) -> None:
    memory, srv = llm_memory
    remember, _, _ = create_memory_tools(memory)
    srv.enqueue({"memories": [{"event": "ADD", "text": "Eli is vegetarian"}]})
    out = remember.invoke(
        {"content": "btw I stopped eating meat last year"},
        config={"configurable": {"user_id": "eli"}},
    )
    assert out.startswith("Remembered: Eli is vegetarian")
    assert srv.count("chat.completions") == 1
    assert [r["memory"] for r in memory.get_all(user_id="eli")["results"]] == ["Eli is vegetarian"]
