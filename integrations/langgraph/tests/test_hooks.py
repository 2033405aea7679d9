"""Hooks: memories into the prompt (hot path), turns to memvault in the background (cold)."""

from __future__ import annotations

import logging
import threading
import time
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langgraph.checkpoint.memory import InMemorySaver
from pytest_mock import MockerFixture

from integrations.langgraph.tests.fakes import ScriptedChatModel, call, system_text
from memvault import Memory
from memvault_langgraph import (
    MemoryWriter,
    MemvaultMiddleware,
    MemvaultStore,
    create_memory_hook,
    create_memory_tools,
)


@pytest.fixture
def writer(store: MemvaultStore) -> Iterator[MemoryWriter]:
    w = MemoryWriter(store, debounce_seconds=0.05)
    try:
        yield w
    finally:
        assert w.close(timeout=10)


def _react_agent(model: Any, **kwargs: Any) -> Any:
    from langgraph.prebuilt import create_react_agent

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecated in favour of langchain.agents.create_agent
        return create_react_agent(model, [], checkpointer=InMemorySaver(), **kwargs)


def test_pre_model_hook_puts_memories_in_the_prompt(memory: Memory) -> None:
    memory.add("Mia is allergic to shellfish", user_id="mia")
    memory.add("Mia lives in Oslo", user_id="mia")
    memory.add("Noah loves shellfish", user_id="noah")
    model = ScriptedChatModel(script=[AIMessage("ok")])
    agent = _react_agent(
        model, pre_model_hook=create_memory_hook(memory, limit=1, system_prompt="You are a chef.")
    )
    out = agent.invoke(
        {"messages": [("user", "what seafood dish should I cook?")]},
        {"configurable": {"thread_id": "t", "user_id": "mia"}},
    )
    seen = system_text(model.seen[0])
    assert seen.startswith("You are a chef.") and "Mia is allergic to shellfish" in seen
    assert "Noah" not in seen and "Oslo" not in seen  # other users; limit=1
    # the hook changes what the model sees, not the conversation state
    assert not any(isinstance(m, SystemMessage) for m in out["messages"])


async def test_pre_model_hook_async_uses_the_agents_store(store: MemvaultStore) -> None:
    store.put(("memories", "zoe"), "k", {"content": "Zoe is a night owl"})
    model = ScriptedChatModel(script=[AIMessage("ok")])
    agent = _react_agent(model, pre_model_hook=create_memory_hook(), store=store)
    await agent.ainvoke(
        {"messages": [("user", "when should we meet, early or late?")]},
        {"configurable": {"thread_id": "t", "user_id": "zoe"}},
    )
    assert "Zoe is a night owl" in system_text(model.seen[0])


def test_writer_records_new_messages_once_per_thread(
    store: MemvaultStore, writer: MemoryWriter
) -> None:
    cfg = {"configurable": {"thread_id": "t1", "user_id": "ava"}}
    first = [HumanMessage("I just adopted a beagle", id="1"), AIMessage("Congrats!", id="2")]
    assert writer.record(first, cfg) == 2
    assert writer.record(first, cfg) == 0  # already recorded
    second = [
        *first,
        HumanMessage("His name is Biscuit", id="3"),
        AIMessage("", id="4", tool_calls=[{"name": "x", "args": {}, "id": "c"}]),
    ]
    assert writer.record(second, cfg) == 1  # tool-call-only AI message: nothing said
    assert writer.flush(timeout=10)
    texts = {r["memory"] for r in store.memory.get_all(user_id="ava")["results"]}
    assert texts == {"I just adopted a beagle", "Congrats!", "His name is Biscuit"}
    roles = {r["memory"]: r.get("role") for r in store.memory.get_all(user_id="ava")["results"]}
    assert roles["Congrats!"] == "assistant"


def test_writer_debounces_a_burst_into_one_add(store: MemvaultStore, mocker: MockerFixture) -> None:
    add = mocker.spy(store.memory, "add")
    writer = MemoryWriter(store, debounce_seconds=0.3, roles=("user",))
    try:
        cfg = {"configurable": {"thread_id": "t", "user_id": "ben"}}
        for i in range(5):
            writer.record([HumanMessage(f"fact number {i}", id=str(i))], cfg)
        assert add.call_count == 0  # still inside the debounce window
        assert writer.flush(timeout=10)
        assert add.call_count == 1
        assert [m["content"] for m in add.call_args.args[0]] == [
            f"fact number {i}" for i in range(5)
        ]
        assert add.call_args.kwargs["user_id"] == "ben" and add.call_args.kwargs["infer"]
    finally:
        writer.close()


def test_writer_never_blocks_the_caller(store: MemvaultStore, mocker: MockerFixture) -> None:
    gate = threading.Event()
    real_add = store.memory.add

    def slow_add(*args: Any, **kwargs: Any) -> Any:
        gate.wait(10)
        return real_add(*args, **kwargs)

    mocker.patch.object(store.memory, "add", side_effect=slow_add)
    writer = MemoryWriter(store, debounce_seconds=0.0)
    try:
        cfg = {"configurable": {"thread_id": "t", "user_id": "cy"}}
        writer.record([HumanMessage("first", id="a")], cfg)
        time.sleep(0.1)  # the writer thread is now stuck inside add()
        started = time.monotonic()
        writer.record([HumanMessage("second", id="b")], cfg)
        assert time.monotonic() - started < 0.05
        assert not writer.flush(timeout=0.1)
        gate.set()
        assert writer.flush(timeout=10)
        assert {r["memory"] for r in store.memory.get_all(user_id="cy")["results"]} == {
            "first",
            "second",
        }
    finally:
        gate.set()
        writer.close()


def test_writer_logs_failures_and_keeps_going(
    store: MemvaultStore, writer: MemoryWriter, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="memvault_langgraph"):
        # an id memvault refuses (whitespace): the add fails in the background thread
        writer.record([HumanMessage("lost", id="1")], {"configurable": {"user_id": "bad id"}})
        assert writer.flush(timeout=10)
        assert writer.errors == 1
        assert "could not record 1 message(s)" in caplog.text and "ScopeError" in caplog.text
        # no scope at all: refused up front, logged, and the caller is not interrupted
        assert writer.record([HumanMessage("orphan", id="2")], {}) == 0
        assert writer.errors == 2
    writer.record([HumanMessage("kept", id="3")], {"configurable": {"user_id": "dee"}})
    assert writer.flush(timeout=10)
    assert store.memory.get_all(user_id="dee")["results"][0]["memory"] == "kept"


def test_post_model_hook_records_finished_turns(store: MemvaultStore, writer: MemoryWriter) -> None:
    model = ScriptedChatModel(
        script=[
            call("remember", "c1", content="Eve speaks Finnish"),
            AIMessage("Hyvä!"),
        ]
    )
    from langgraph.prebuilt import create_react_agent

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        agent = create_react_agent(
            model,
            create_memory_tools(),
            store=store,
            post_model_hook=writer.post_model_hook,
            checkpointer=InMemorySaver(),
        )
    agent.invoke(
        {"messages": [("user", "I speak Finnish")]},
        {"configurable": {"thread_id": "t", "user_id": "eve"}},
    )
    assert writer.flush(timeout=10)
    texts = [r["memory"] for r in store.memory.get_all(user_id="eve")["results"]]
    # the tool's memory, plus the finished turn (user message and final answer)
    assert sorted(texts) == sorted(["Eve speaks Finnish", "I speak Finnish", "Hyvä!"])


def test_middleware_injects_and_records(store: MemvaultStore) -> None:
    from langchain.agents import create_agent

    store.memory.add("Finn is training for a triathlon", user_id="finn")
    model = ScriptedChatModel(script=[AIMessage("Swim first."), AIMessage("Rest today.")])
    middleware = MemvaultMiddleware(
        store, writer=MemoryWriter(store, debounce_seconds=0.05, roles=("user",))
    )
    agent = create_agent(
        model, system_prompt="Be brief.", middleware=[middleware], checkpointer=InMemorySaver()
    )
    try:
        cfg = {"configurable": {"thread_id": "t1", "user_id": "finn"}}
        agent.invoke({"messages": [("user", "what workout today?")]}, cfg)
        seen = system_text(model.seen[0])
        assert seen.startswith("Be brief.") and "triathlon" in seen
        assert middleware.writer is not None and middleware.writer.flush(timeout=10)
        agent.invoke({"messages": [("user", "my knee hurts")]}, cfg)
        assert middleware.writer.flush(timeout=10)
        texts = {r["memory"] for r in store.memory.get_all(user_id="finn")["results"]}
        assert texts == {"Finn is training for a triathlon", "what workout today?", "my knee hurts"}
        assert "my knee" not in system_text(model.seen[0])
        assert "what workout today?" in system_text(model.seen[1])  # recorded, then recalled
    finally:
        assert middleware.close(timeout=10)


async def test_middleware_async_path(store: MemvaultStore) -> None:
    from langchain.agents import create_agent

    store.put(("memories", "gil"), "k", {"content": "Gil is vegan"})
    model = ScriptedChatModel(script=[AIMessage("Try lentils.")])
    middleware = MemvaultMiddleware(store, record=False)
    agent = create_agent(model, middleware=[middleware], store=store)
    await agent.ainvoke(
        {"messages": [("user", "dinner ideas?")]}, {"configurable": {"user_id": "gil"}}
    )
    assert "Gil is vegan" in system_text(model.seen[0])
    assert middleware.writer is None and middleware.close()
