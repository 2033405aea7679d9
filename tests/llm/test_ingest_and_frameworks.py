"""The cold-path ingest and the framework hooks that call the LLM, with the real model.

Why here too: ingest runs extractions concurrently on the async client and resumes from the
journal; the adapters (LangGraph, LlamaIndex, CrewAI) reach ``Memory.add(infer=True)`` by
their own routes (a background writer, a memory ``put``, a tool). Each must end with the
real model's facts stored, once.
"""

from __future__ import annotations

from typing import Any

import pytest

from memvault import Memory

#: A small model on 2 shared cores can take minutes per call when the machine is busy.
pytestmark = pytest.mark.timeout(900)

TRANSCRIPTS = [
    {
        "user_id": "ivo",
        "timestamp": "2024-03-01",
        "messages": [
            {"role": "user", "content": "I play the violin in a string quartet every Tuesday."},
            {"role": "assistant", "content": "That sounds lovely!"},
        ],
    },
    {
        "user_id": "jun",
        "timestamp": "2024-03-02",
        "messages": [
            {"role": "user", "content": "My husband Kenji is a chef in Osaka."},
        ],
    },
    {
        "user_id": "kai",
        "timestamp": "2024-03-03",
        "messages": [
            {"role": "user", "content": "I'm training for a triathlon in September."},
        ],
    },
]
KEYWORD = {"ivo": "violin", "jun": "Kenji", "kai": "triathlon"}


def llm_calls(mem: Memory) -> int:
    return int(mem.stats()["llm_usage"].get("calls", 0))


def has(mem: Memory, user: str, word: str) -> bool:
    return any(word.lower() in r["memory"].lower() for r in mem.get_all(user_id=user)["results"])


def test_ingest_runs_concurrently_and_resumes_exactly_once(mem: Memory) -> None:
    first = mem.ingest(TRANSCRIPTS[:2], concurrency=2)  # then "the process stopped"
    assert (first.done, first.failed) == (2, 0), first.errors
    again = mem.ingest(TRANSCRIPTS, concurrency=2)  # the same command, re-run
    assert (again.done, again.skipped, again.failed) == (1, 2, 0), again.errors
    assert again.llm_calls >= 1 and again.prompt_tokens > 0
    for user, word in KEYWORD.items():
        assert has(mem, user, word), (user, mem.get_all(user_id=user)["results"])
    assert mem.pending() == []


def test_langgraph_writer_extracts_in_the_background(mem: Memory) -> None:
    from langchain_core.messages import AIMessage, HumanMessage

    from memvault_langgraph import MemoryWriter

    writer = MemoryWriter(mem, debounce_seconds=0.05)
    try:
        cfg: Any = {"configurable": {"thread_id": "t1", "user_id": "lea"}}
        writer.record(
            [
                HumanMessage("I keep two beehives on my roof in Ghent.", id="h1"),
                AIMessage("Bees on a roof, how nice!", id="a1"),
            ],
            cfg,
        )
        assert writer.flush(timeout=240)
    finally:
        assert writer.close(timeout=240)
    assert writer.errors == 0 and llm_calls(mem) >= 1
    assert has(mem, "lea", "bee") or has(mem, "lea", "hive")


def test_llamaindex_memory_put_goes_through_the_model(mem: Memory) -> None:
    from llama_index.core.llms import ChatMessage

    from memvault_llamaindex import MemvaultMemory

    memory = MemvaultMemory(memory=mem, context={"user_id": "max"})
    memory.put(ChatMessage(role="user", content="I'm learning Icelandic for a move to Reykjavik."))
    assert llm_calls(mem) >= 1
    assert has(mem, "max", "Icelandic") or has(mem, "max", "Reykjavik")


def test_crewai_remember_tool_goes_through_the_model(mem: Memory) -> None:
    from memvault_crewai import RememberTool

    tool = RememberTool(memory=mem, user_id="noa")
    try:
        out = tool.run(content="Noa is allergic to shellfish and avoids shrimp.")
    finally:
        tool.close()
    assert out.startswith("Remembered") and llm_calls(mem) >= 1
    assert has(mem, "noa", "shellfish") or has(mem, "noa", "shrimp")
