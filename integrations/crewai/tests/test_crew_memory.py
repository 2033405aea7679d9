"""CrewAI's ``Memory`` API end to end over ``MemvaultStorage`` with memvault's real embedder.

CrewAI embeds with ``embedding_function`` (memvault's bundled model); its LLM
analysis falls back to defaults (``UnhelpfulLLM``) unless the call passes scope,
categories and importance itself. Checks the behaviour a crew relies on:
remember -> recall (shallow and deep), forget, update re-embedding, the scope
tree, reset, background saves.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from crewai.memory.unified_memory import Memory as CrewMemory

from integrations.crewai.tests.fakes import UnhelpfulLLM
from memvault import Memory
from memvault.embedding import LocalEmbedder
from memvault_crewai import MemvaultStorage, embedding_function


@pytest.fixture
def crew_memory(storage: MemvaultStorage, embedder: LocalEmbedder) -> Iterator[CrewMemory]:
    m = CrewMemory(
        storage=storage, llm=UnhelpfulLLM(model="fake"), embedder=embedding_function(embedder)
    )
    try:
        yield m
    finally:
        m.close()


def test_embedding_function_uses_memvault_model(
    embedder: LocalEmbedder, storage: MemvaultStorage
) -> None:
    for fn in (embedding_function(embedder), embedding_function(storage)):
        vecs = fn(["hello", "world"])
        assert len(vecs) == 2 and len(vecs[0]) == embedder.dims
        assert all(isinstance(x, float) for x in vecs[0])
        assert fn([]) == []


@pytest.mark.parametrize("depth", ["shallow", "deep"])
def test_remember_then_recall(crew_memory: CrewMemory, depth: str) -> None:
    crew_memory.remember(
        "The deploy window is Tuesday 10:00 UTC.",
        scope="/project/ops",
        categories=["schedule"],
        importance=0.8,
    )
    crew_memory.remember(
        "Alice prefers dark mode.", scope="/user/alice", categories=["ui"], importance=0.4
    )
    matches = crew_memory.recall("When can we deploy?", limit=2, depth=depth)
    assert matches[0].record.content == "The deploy window is Tuesday 10:00 UTC."
    scoped = crew_memory.recall("When can we deploy?", scope="/user/alice", depth=depth)
    assert [m.record.content for m in scoped] == ["Alice prefers dark mode."]
    # recall touched the hits (CrewAI's touch_records)
    rec = crew_memory.list_records(scope="/project/ops")[0]
    assert rec.last_accessed >= rec.created_at


def test_remember_with_fallback_analysis_lands_at_root(
    crew_memory: CrewMemory, storage: MemvaultStorage
) -> None:
    crew_memory.remember("Standup moved to 9:30.")
    assert [r.scope for r in storage.list_records()] == ["/"]


def test_remember_many_in_background_then_recall(crew_memory: CrewMemory) -> None:
    crew_memory.remember_many(
        ["Bob owns billing.", "Carol owns search."], scope="/team", categories=["owners"]
    )
    crew_memory.drain_writes()
    hits = crew_memory.recall("who owns search", scope="/team", depth="shallow", limit=1)
    assert [m.record.content for m in hits] == ["Carol owns search."]


def test_update_reembeds_and_forget(crew_memory: CrewMemory, storage: MemvaultStorage) -> None:
    r = crew_memory.remember(
        "The office is in Berlin.", scope="/company", categories=["facts"], importance=0.5
    )
    assert r is not None
    crew_memory.update(r.id, content="The office moved to Lisbon.")
    hits = crew_memory.recall("Where is the office, Lisbon?", scope="/company", depth="shallow")
    assert [m.record.content for m in hits] == ["The office moved to Lisbon."]
    assert crew_memory.forget(scope="/company", categories=["facts"]) == 1
    assert storage.count() == 0


def test_scope_tree_info_and_reset(crew_memory: CrewMemory, storage: MemvaultStorage) -> None:
    for scope in ("/crew/a/agent/x", "/crew/a/agent/y", "/crew/b"):
        crew_memory.remember(f"note in {scope}", scope=scope, categories=["n"], importance=0.5)
    assert crew_memory.list_scopes("/crew") == ["/crew/a", "/crew/b"]
    info = crew_memory.info("/crew/a")
    assert info.record_count == 2 and info.child_scopes == ["/crew/a/agent"]
    assert "/crew/a" in crew_memory.tree("/crew")
    assert crew_memory.list_categories() == {"n": 3}
    crew_memory.reset(scope="/crew/a")
    assert storage.count() == 1
    crew_memory.reset()
    assert storage.count() == 0


def test_crew_memory_is_visible_to_memvault_users(crew_memory: CrewMemory, memory: Memory) -> None:
    crew_memory.remember(
        "Dana is allergic to peanuts.",
        scope="/user/dana/health",
        categories=["health"],
        importance=1.0,
    )
    hits = memory.search("peanut allergy", user_id="dana")["results"]
    assert hits and hits[0]["memory"] == "Dana is allergic to peanuts."
    assert hits[0]["categories"] == ["health"] and hits[0]["importance"] == 1.0
