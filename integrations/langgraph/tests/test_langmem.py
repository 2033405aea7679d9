"""langmem's memory tools, unchanged, against MemvaultStore (directly and inside an agent)."""

from __future__ import annotations

import json
import warnings

from langchain_core.messages import AIMessage
from langgraph.checkpoint.memory import InMemorySaver
from langmem import create_manage_memory_tool, create_search_memory_tool

from integrations.langgraph.tests.fakes import ScriptedChatModel, call
from memvault import Memory
from memvault_langgraph import MemvaultStore

NAMESPACE = ("memories", "{user_id}")


def test_manage_and_search_tools_with_an_explicit_store(
    store: MemvaultStore, memory: Memory
) -> None:
    manage = create_manage_memory_tool(NAMESPACE, store=store)
    search = create_search_memory_tool(NAMESPACE, store=store)
    alice = {"configurable": {"user_id": "alice"}}
    bob = {"configurable": {"user_id": "bob"}}

    created = manage.invoke(
        {"content": "Alice is training for a marathon", "action": "create"}, config=alice
    )
    memory_id = created.split()[-1]
    manage.invoke({"content": "Alice prefers trail running", "action": "create"}, config=alice)
    manage.invoke({"content": "Bob collects stamps", "action": "create"}, config=bob)

    found = json.loads(search.invoke({"query": "what sport does she do"}, config=alice))
    assert found[0]["namespace"] == ["memories", "alice"]
    assert {f["value"]["content"] for f in found} == {
        "Alice is training for a marathon",
        "Alice prefers trail running",
    }
    assert all(f["score"] is not None for f in found)
    # filters and pagination pass through
    only = json.loads(
        search.invoke(
            {"query": "running", "filter": {"content": "Alice prefers trail running"}}, config=alice
        )
    )
    assert [f["value"]["content"] for f in only] == ["Alice prefers trail running"]
    assert len(json.loads(search.invoke({"query": "running", "limit": 1}, config=alice))) == 1

    manage.invoke(
        {"content": "Alice ran her first marathon", "action": "update", "id": memory_id},
        config=alice,
    )
    assert store.get(("memories", "alice"), memory_id).value == {  # type: ignore[union-attr]
        "content": "Alice ran her first marathon"
    }
    manage.invoke({"action": "delete", "id": memory_id}, config=alice)
    assert store.get(("memories", "alice"), memory_id) is None

    # What langmem wrote is memvault memory: alice's scope in the core, with history.
    core = memory.search("running", user_id="alice")["results"]
    assert [c["memory"] for c in core] == ["Alice prefers trail running"]
    assert [h["event"] for h in memory.history(core[0]["id"])] == ["ADD"]
    assert "Bob collects stamps" not in {
        r["memory"] for r in memory.search("stamps", user_id="alice")["results"]
    }


def test_tools_inside_a_react_agent_use_the_agents_store(
    store: MemvaultStore, memory: Memory
) -> None:
    from langgraph.prebuilt import create_react_agent

    model = ScriptedChatModel(
        script=[
            call("manage_memory", "c1", content="User's favourite colour is teal", action="create"),
            AIMessage("Saved."),
            call("search_memory", "c2", query="favourite colour"),
            lambda messages: AIMessage(f"Found: {messages[-1].text}"),
        ]
    )
    tools = [create_manage_memory_tool(NAMESPACE), create_search_memory_tool(NAMESPACE)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # create_react_agent is deprecated in favour of langchain
        agent = create_react_agent(model, tools, store=store, checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "t1", "user_id": "u-42"}}
    agent.invoke({"messages": [("user", "my favourite colour is teal")]}, config)
    out = agent.invoke({"messages": [("user", "what is my favourite colour?")]}, config)
    assert "teal" in out["messages"][-1].text
    assert store.search(("memories", "u-42"))[0].value == {
        "content": "User's favourite colour is teal"
    }
    assert memory.get_all(user_id="u-42")["results"][0]["memory"] == (
        "User's favourite colour is teal"
    )


async def test_async_tools_inside_create_agent(store: MemvaultStore) -> None:
    from langchain.agents import create_agent

    model = ScriptedChatModel(
        script=[
            call("manage_memory", "c1", content="Prefers window seats", action="create"),
            call("search_memory", "c2", query="seat preference"),
            lambda messages: AIMessage(messages[-1].text),
        ]
    )
    agent = create_agent(
        model,
        [create_manage_memory_tool(NAMESPACE), create_search_memory_tool(NAMESPACE)],
        store=store,
    )
    out = await agent.ainvoke(
        {"messages": [("user", "book me a flight")]}, {"configurable": {"user_id": "traveller"}}
    )
    assert "Prefers window seats" in out["messages"][-1].text
