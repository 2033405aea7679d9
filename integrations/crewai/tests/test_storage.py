"""``MemvaultStorage`` against the real memvault core on a real store.

Covers what CrewAI's own contract tests (test_upstream.py) leave open: the scope
path -> memvault scope mapping, raw cosine scores and ``min_score``, vector spaces,
every ``delete`` criterion, moves on update, ordering, preserved fields, isolation
from other data in the same store, the async twins, the storage factory.
"""

from __future__ import annotations

import asyncio
import math
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from crewai.memory.storage import factory as crewai_factory
from crewai.memory.storage.backend import StorageBackend
from crewai.memory.types import MemoryRecord
from crewai.memory.unified_memory import Memory as CrewMemory

from memvault import AsyncMemory, Memory
from memvault.embedding import LocalEmbedder
from memvault_crewai import (
    MemvaultStorage,
    MemvaultStorageFactory,
    ScopeMapping,
    vector_space_for,
)

E1 = [1.0, 0.0, 0.0, 0.0]
E2 = [0.8, 0.6, 0.0, 0.0]  # cosine with E1: 0.8
E3 = [0.0, 0.0, 1.0, 0.0]  # orthogonal to E1
E4 = [-1.0, 0.0, 0.0, 0.0]  # opposite


def rec(
    content: str = "note",
    scope: str = "/",
    embedding: list[float] | None = E1,
    **kwargs: Any,
) -> MemoryRecord:
    return MemoryRecord(content=content, scope=scope, embedding=embedding, **kwargs)


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


# -- construction ----------------------------------------------------------------------------
def test_is_a_crewai_storage_backend(storage: MemvaultStorage) -> None:
    assert isinstance(storage, StorageBackend)


def test_default_store_lives_under_memvault_home(tmp_path: Path) -> None:
    with MemvaultStorage() as s:
        s.save([rec("in the default store")])
        assert Path(s.memory.path).is_relative_to(tmp_path / "memvault-home")
    with MemvaultStorage() as again:
        assert [r.content for r in again.list_records()] == ["in the default store"]


def test_path_store_persists_across_instances(tmp_path: Path, embedder: LocalEmbedder) -> None:
    path = tmp_path / "crew.db"
    with MemvaultStorage(path=path, embedder=embedder) as s:
        s.save([rec("persisted", scope="/a")])
    with MemvaultStorage(path, embedder=embedder) as s:
        assert s.count("/a") == 1


def test_given_memory_is_not_closed(memory: Memory) -> None:
    s = MemvaultStorage(memory=memory)
    s.save([rec("x")])
    s.close()
    s.close()  # idempotent
    assert memory.count(agent_id="crewai") == 1  # still open


def test_memory_and_path_are_exclusive(memory: Memory, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="either memory="):
        MemvaultStorage(path=tmp_path / "other.db", memory=memory)
    with pytest.raises(TypeError, match=r"memvault\.Memory or memvault\.AsyncMemory"):
        MemvaultStorage(memory="not a memory")  # type: ignore[arg-type]


# -- scopes ----------------------------------------------------------------------------------
def test_scope_path_maps_onto_memvault_scope(storage: MemvaultStorage, memory: Memory) -> None:
    r = rec("alice likes tea", scope="/crew/support/user/alice/prefs")
    storage.save([r])
    (item,) = memory.get_all(user_id="alice", agent_id="crewai")["results"]
    assert item["key"] == r.id
    assert item["namespace"] == ["crewai", "crew", "support", "user", "alice", "prefs"]
    assert item["memory"] == "alice likes tea"
    assert item["value"]["scope"] == "/crew/support/user/alice/prefs"
    # mem0-style reads of the same user see what the crew remembered
    hits = memory.search("tea", user_id="alice")["results"]
    assert [h["memory"] for h in hits] == ["alice likes tea"]


def test_user_scopes_are_isolated(storage: MemvaultStorage) -> None:
    storage.save(
        [
            rec("alice fact", scope="/user/alice"),
            rec("bob fact", scope="/user/bob/work"),
            rec("shared fact", scope="/team"),
        ]
    )
    found = storage.search(E1, scope_prefix="/user/alice", limit=10)
    assert [r.content for r, _ in found] == ["alice fact"]
    assert storage.count("/user/bob") == 1
    assert storage.count("/user") == 2
    assert storage.count() == 3
    assert storage.list_scopes("/") == ["/team", "/user"]
    assert storage.list_scopes("/user") == ["/user/alice", "/user/bob"]
    assert storage.list_scopes("/user/bob") == ["/user/bob/work"]
    assert storage.list_scopes("/user/bob/work") == []


def test_prefix_matches_whole_segments(storage: MemvaultStorage) -> None:
    storage.save([rec("a", scope="/ab"), rec("b", scope="/a/b"), rec("c", scope="/a")])
    assert storage.count("/a") == 2
    assert {r.content for r in storage.list_records("/a")} == {"b", "c"}
    assert {r.content for r, _ in storage.search(E1, scope_prefix="/a")} == {"b", "c"}
    assert storage.delete(scope_prefix="/a") == 2
    assert [r.content for r in storage.list_records()] == ["a"]


def test_scope_paths_are_normalised_like_crewai(storage: MemvaultStorage) -> None:
    storage.save([rec("x", scope="team//eng/")])
    (r,) = storage.list_records("/team/")
    assert r.scope == "/team/eng"
    assert storage.list_scopes("team") == ["/team/eng"]


def test_invalid_user_segment_stays_agent_scoped(storage: MemvaultStorage, memory: Memory) -> None:
    storage.save([rec("odd", scope="/user/not an id/x")])
    (item,) = memory.get_all(agent_id="crewai")["results"]
    assert item["user_id"] is None
    assert storage.count("/user/not an id") == 1
    assert storage.delete(scope_prefix="/user/not an id") == 1


def test_literal_star_segment_is_not_a_wildcard(storage: MemvaultStorage) -> None:
    storage.save([rec("a", scope="/*/x"), rec("b", scope="/y/z")])
    assert storage.list_scopes("/*") == ["/*/x"]
    assert storage.count("/*") == 1


def test_mapping_is_configurable(memory: Memory) -> None:
    mapping = ScopeMapping(agent_id="support-crew", user_segment="customer", run_segment="session")
    assert mapping.scope_ids("/customer/c1/session/s9/notes") == {
        "agent_id": "support-crew",
        "user_id": "c1",
        "run_id": "s9",
    }
    with MemvaultStorage(memory=memory, mapping=mapping) as s:
        s.save([rec("note", scope="/customer/c1/session/s9")])
        assert memory.get_all(user_id="c1", run_id="s9")["results"][0]["agent_id"] == "support-crew"
    # another agent id is another storage: no crosstalk
    with MemvaultStorage(memory=memory) as other:
        assert other.count() == 0


def test_prefix_derives_the_same_ids_as_its_records() -> None:
    m = ScopeMapping()
    for path in ["/user/u1/a/b", "/x/user/u2/user/u3", "/user", "/a/user/u4"]:
        segs = ScopeMapping.segments(path)
        for i in range(len(segs) + 1):
            prefix = "/" + "/".join(segs[:i])
            ids = m.scope_ids(prefix)
            if ids["user_id"] is not None:
                assert ids == m.scope_ids(path)


# -- search ----------------------------------------------------------------------------------
def test_scores_are_raw_cosine_similarity_best_first(storage: MemvaultStorage) -> None:
    storage.save([rec("e2", embedding=E2), rec("e3", embedding=E3), rec("e1", embedding=E1)])
    query = [0.9, 0.1, 0.2, 0.0]
    found = storage.search(query, limit=10, min_score=-1.0)
    assert [r.content for r, _ in found] == ["e1", "e2", "e3"]
    for r, score in found:
        expected = cosine(query, {"e1": E1, "e2": E2, "e3": E3}[r.content])
        assert score == pytest.approx(expected, abs=1e-6)


def test_min_score_compares_raw_cosine(storage: MemvaultStorage) -> None:
    storage.save([rec("e1", embedding=E1), rec("e2", embedding=E2), rec("e4", embedding=E4)])
    assert [r.content for r, _ in storage.search(E1, min_score=0.9)] == ["e1"]
    assert [r.content for r, _ in storage.search(E1, min_score=0.79)] == ["e1", "e2"]
    assert [r.content for r, _ in storage.search(E1, min_score=0.0)] == ["e1", "e2"]
    assert len(storage.search(E1, min_score=-1.0)) == 3


def test_limit_and_large_limits(storage: MemvaultStorage) -> None:
    records = [rec(f"n{i}", embedding=[1.0, i / 100, 0.0, 0.0]) for i in range(80)]
    storage.save(records)
    assert len(storage.search(E1, limit=5)) == 5
    found = storage.search(E1, limit=75)  # beyond memvault's default candidate pool of 50
    assert [r.content for r, _ in found] == [f"n{i}" for i in range(75)]
    assert storage.search(E1, limit=0) == []


def test_identical_vectors_all_returned(storage: MemvaultStorage) -> None:
    storage.save([rec(f"same vector {i}") for i in range(5)])
    assert len(storage.search(E1, limit=10)) == 5


def test_identical_content_in_two_scopes_both_returned(storage: MemvaultStorage) -> None:
    a, b = rec("same words", scope="/a"), rec("same words", scope="/b", embedding=E2)
    storage.save([a, b])
    assert [(r.id, r.scope) for r, _ in storage.search(E1)] == [(a.id, "/a"), (b.id, "/b")]


def test_each_dimension_is_its_own_vector_space(storage: MemvaultStorage, memory: Memory) -> None:
    storage.save([rec("four", embedding=E1), rec("three", embedding=[1.0, 0.0, 0.0])])
    assert [r.content for r, _ in storage.search(E1)] == ["four"]
    assert [r.content for r, _ in storage.search([1.0, 0.0, 0.0])] == ["three"]
    assert storage.search([1.0, 0.0]) == []
    assert {vector_space_for(4), vector_space_for(3)} <= set(memory.stats()["spaces"])


def test_record_without_vector_is_stored_but_not_searched(storage: MemvaultStorage) -> None:
    storage.save([rec("no vector", embedding=None), rec("zeros", embedding=[0.0] * 4)])
    assert storage.count() == 2
    assert storage.search(E1) == []
    assert storage.search([0.0] * 4) == []  # a zero query is similar to nothing


def test_categories_match_any_of(storage: MemvaultStorage) -> None:
    storage.save(
        [
            rec("a", categories=["x"]),
            rec("b", categories=["y", "z"]),
            rec("c", categories=[]),
        ]
    )
    assert {r.content for r, _ in storage.search(E1, categories=["x", "z"])} == {"a", "b"}
    assert {r.content for r, _ in storage.search(E1, categories=["y"])} == {"b"}
    assert storage.search(E1, categories=["nope"]) == []


def test_metadata_filter_equality_semantics(storage: MemvaultStorage) -> None:
    storage.save(
        [
            rec("prod", metadata={"env": "prod", "user_id": "u1", "cfg": {"a": 1}}),
            rec("dev", metadata={"env": "dev", "n": None}),
            rec("bare", metadata={}),
        ]
    )

    def hits(f: dict[str, Any]) -> set[str]:
        return {r.content for r, _ in storage.search(E1, metadata_filter=f, limit=10)}

    assert hits({"env": "prod"}) == {"prod"}
    # scope-like keys are plain metadata here (memvault refuses them as *its* metadata)
    assert hits({"user_id": "u1"}) == {"prod"}
    assert hits({"cfg": {"a": 1}}) == {"prod"}  # a dict value is a value, not operators
    # CrewAI compares metadata.get(k) == v: None also matches records without the key
    assert hits({"n": None}) == {"bare", "dev", "prod"}
    assert hits({"env": "prod", "user_id": "u2"}) == set()


def test_search_does_not_see_other_data_in_the_store(
    storage: MemvaultStorage, memory: Memory
) -> None:
    memory.add("crewai likes this text", agent_id="crewai", infer=False)
    memory.put(("langgraph", "x"), "k", {"v": 1}, agent_id="crewai")
    storage.save([rec("mine", scope="/x")])
    assert storage.count() == 1
    assert [r.content for r, _ in storage.search(E1)] == ["mine"]
    storage.reset()
    assert memory.count(agent_id="crewai") == 2  # the non-CrewAI memories survive reset


# -- fields round trip -------------------------------------------------------------------------
def test_fields_round_trip(storage: MemvaultStorage) -> None:
    created = datetime(2024, 3, 1, 12, 30, 15, 123456)
    r = rec(
        "full",
        scope="/p/q",
        categories=["c1", "c2"],
        metadata={"k": [1, 2], "nested": {"a": "b"}},
        importance=0.93,
        created_at=created,
        last_accessed=created + timedelta(days=1),
        source="session-7",
        private=True,
    )
    storage.save([r])
    got = storage.get_record(r.id)
    assert got == r  # embedding included (E1 is a unit vector, exact in float32)
    assert got is not None and got.embedding == E1
    assert got.created_at.tzinfo is None  # naive UTC, as CrewAI computes recency with utcnow()


def test_aware_datetimes_are_stored_as_utc(storage: MemvaultStorage) -> None:
    from datetime import timezone

    aware = datetime(2024, 1, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    r = rec("aware", created_at=aware)
    storage.save([r])
    got = storage.get_record(r.id)
    assert got is not None and got.created_at == datetime(2024, 1, 1, 10, 0)


def test_touch_records_refreshes_last_accessed(storage: MemvaultStorage) -> None:
    old = datetime(2020, 1, 1)
    r = rec("t", created_at=old, last_accessed=old)
    storage.save([r, rec("untouched", created_at=old, last_accessed=old)])
    storage.touch_records([r.id, "unknown-id"])
    storage.touch_records([])
    by_content = {x.content: x for x in storage.list_records()}
    assert by_content["t"].last_accessed > datetime(2025, 1, 1)
    assert by_content["untouched"].last_accessed == old


def test_get_record_unknown_or_odd_ids(storage: MemvaultStorage) -> None:
    assert storage.get_record("nope") is None
    assert storage.get_record("") is None


# -- update / save -------------------------------------------------------------------------------
def test_update_in_place_keeps_one_record(storage: MemvaultStorage) -> None:
    r = rec("v1", scope="/a", embedding=E1)
    storage.save([r])
    storage.update(r.model_copy(update={"content": "v2", "embedding": E3, "importance": 0.1}))
    assert storage.count() == 1
    got = storage.get_record(r.id)
    assert got is not None and (got.content, got.importance) == ("v2", 0.1)
    (hit,) = storage.search(E3)
    assert hit[0].id == r.id and hit[1] == pytest.approx(1.0)
    assert storage.search(E1, min_score=0.5) == []


def test_update_can_move_a_record_to_another_user(storage: MemvaultStorage, memory: Memory) -> None:
    r = rec("moving", scope="/user/alice/notes")
    storage.save([r])
    storage.update(r.model_copy(update={"scope": "/user/bob/notes"}))
    assert storage.count() == 1
    assert storage.count("/user/alice") == 0
    assert memory.get_all(user_id="alice")["results"] == []
    got = storage.get_record(r.id)
    assert got is not None and got.scope == "/user/bob/notes"
    assert [x.id for x, _ in storage.search(E1, scope_prefix="/user/bob")] == [r.id]


def test_save_of_an_existing_id_replaces_it(storage: MemvaultStorage) -> None:
    r = rec("first", scope="/a")
    storage.save([r])
    storage.save([r.model_copy(update={"content": "second", "scope": "/b"})])
    assert [(x.content, x.scope) for x in storage.list_records()] == [("second", "/b")]


def test_same_id_twice_in_one_batch_keeps_the_last(storage: MemvaultStorage) -> None:
    r = rec("first", scope="/a")
    storage.save([r, r.model_copy(update={"content": "last", "scope": "/b"})])
    assert [(x.content, x.scope) for x in storage.list_records()] == [("last", "/b")]


def test_update_keeps_created_at_and_history(storage: MemvaultStorage, memory: Memory) -> None:
    created = datetime(2023, 5, 5)
    r = rec("v1", created_at=created)
    storage.save([r])
    storage.update(r.model_copy(update={"content": "v2"}))
    got = storage.get_record(r.id)
    assert got is not None and got.created_at == created
    (item,) = memory.get_all(agent_id="crewai")["results"]
    assert [h["event"] for h in memory.history(item["id"])] == ["ADD", "UPDATE"]


def test_update_without_embedding_drops_the_vector(storage: MemvaultStorage) -> None:
    r = rec("v1")
    storage.save([r])
    storage.update(r.model_copy(update={"embedding": None, "categories": ["c"]}))
    got = storage.get_record(r.id)
    assert got is not None and got.embedding is None
    assert storage.search(E1) == []  # like CrewAI's own backends (they store zeros)


def test_crewai_update_without_content_keeps_record_searchable(
    storage: MemvaultStorage,
) -> None:
    # crewai Memory.update() without content writes back the embedding get_record read.
    mem = CrewMemory(storage=storage, llm="unused", embedder=lambda texts: [E3 for _ in texts])
    try:
        r = rec("keep me findable", embedding=E2)
        storage.save([r])
        mem.update(r.id, categories=["new"])
        (hit,) = storage.search(E2)
        assert hit[0].id == r.id and hit[0].categories == ["new"]
        assert hit[1] == pytest.approx(1.0)
    finally:
        mem.close()


def test_embeddings_read_back_l2_normalised(storage: MemvaultStorage) -> None:
    r = rec("scaled", embedding=[3.0, 4.0, 0.0, 0.0])
    storage.save([r, rec("none", embedding=None)])
    by_content = {x.content: x for x in storage.list_records()}
    assert by_content["scaled"].embedding == pytest.approx([0.6, 0.8, 0.0, 0.0])
    assert by_content["none"].embedding is None
    got = storage.get_record(r.id)
    assert got is not None and got.embedding == pytest.approx([0.6, 0.8, 0.0, 0.0])
    (hit, _), *_ = storage.search(E1)
    assert hit.embedding is None  # memvault's search does not return vectors


def test_failed_update_preserves_the_record(storage: MemvaultStorage) -> None:
    r = rec("original", metadata={"v": 1})
    storage.save([r])
    with pytest.raises(ValueError):
        storage.update(r.model_copy(update={"content": "bad", "metadata": {"when": {1, 2}}}))
    got = storage.get_record(r.id)
    assert got is not None and (got.content, got.metadata) == ("original", {"v": 1})


# -- listing -------------------------------------------------------------------------------------
def test_list_records_newest_first_with_offset(storage: MemvaultStorage) -> None:
    base = datetime(2025, 1, 1)
    batch = [rec(f"day {i}", created_at=base + timedelta(days=i)) for i in (3, 0, 4, 1, 2)]
    storage.save(batch)  # out of order in one batch
    listed = storage.list_records(limit=10)
    assert [r.content for r in listed] == ["day 4", "day 3", "day 2", "day 1", "day 0"]
    assert [r.content for r in storage.list_records(limit=2, offset=1)] == ["day 3", "day 2"]
    assert storage.list_records(limit=0) == []
    assert storage.list_records(offset=10) == []


def test_list_records_orders_by_created_at_across_saves(storage: MemvaultStorage) -> None:
    base = datetime(2025, 1, 1)
    for i in (3, 0, 4, 1, 2):  # one save each: insertion order is not created_at order
        storage.save([rec(f"day {i}", scope="/d", created_at=base + timedelta(days=i))])
    assert [r.content for r in storage.list_records("/d")] == [
        "day 4",
        "day 3",
        "day 2",
        "day 1",
        "day 0",
    ]
    assert [r.content for r in storage.list_records("/", limit=2, offset=2)] == ["day 2", "day 1"]
    assert storage.delete(older_than=base + timedelta(days=2)) == 2
    assert [r.content for r in storage.list_records()] == ["day 4", "day 3", "day 2"]


def test_resave_keeps_the_first_created_at(storage: MemvaultStorage) -> None:
    # As CrewAI's update intends ("preserves created_at"): memvault keeps a key's first
    # observation time when the key is written again.
    r = rec("v1", created_at=datetime(2024, 1, 1))
    storage.save([r])
    storage.save([r.model_copy(update={"content": "v2", "created_at": datetime(2025, 1, 1)})])
    got = storage.get_record(r.id)
    assert got is not None and (got.content, got.created_at) == ("v2", datetime(2024, 1, 1))


def test_created_at_is_memvaults_valid_from(storage: MemvaultStorage, memory: Memory) -> None:
    storage.save([rec("x", scope="/a/b", created_at=datetime(2024, 2, 3, 4, 5, 6))])
    (item,) = memory.get_all(agent_id="crewai")["results"]
    assert item["valid_from"] == "2024-02-03T04:05:06.000000+00:00"
    # nothing in the value is a copy kept only for deletes or ordering
    assert set(item["value"]) == {"scope", "last_accessed", "metadata", "source", "private"}


def test_scope_info(storage: MemvaultStorage) -> None:
    storage.save(
        [
            rec("a", scope="/p", categories=["x"], created_at=datetime(2024, 1, 1)),
            rec("b", scope="/p/q", categories=["y", "x"], created_at=datetime(2024, 6, 1)),
            rec("c", scope="/p/r/s", created_at=datetime(2024, 3, 1)),
            rec("d", scope="/other", categories=["z"]),
        ]
    )
    info = storage.get_scope_info("/p/")
    assert info.path == "/p"
    assert info.record_count == 3
    assert info.categories == ["x", "y"]
    assert info.oldest_record == datetime(2024, 1, 1)
    assert info.newest_record == datetime(2024, 6, 1)
    assert info.child_scopes == ["/p/q", "/p/r"]
    empty = storage.get_scope_info("/nothing")
    assert (empty.record_count, empty.child_scopes, empty.oldest_record) == (0, [], None)
    assert storage.list_categories() == {"x": 2, "y": 1, "z": 1}
    assert storage.list_categories("/p/q") == {"x": 1, "y": 1}


# -- delete / reset ------------------------------------------------------------------------------
@pytest.fixture
def populated(storage: MemvaultStorage) -> dict[str, MemoryRecord]:
    records = {
        "old-a": rec(
            "old-a",
            scope="/a",
            categories=["k1"],
            metadata={"env": "prod"},
            created_at=datetime(2020, 1, 1),
        ),
        "new-a": rec("new-a", scope="/a/sub", categories=["k2"], metadata={"env": "dev"}),
        "old-b": rec("old-b", scope="/b", categories=["k1", "k2"], created_at=datetime(2021, 1, 1)),
        "new-b": rec("new-b", scope="/b", metadata={"env": "prod"}),
    }
    storage.save(list(records.values()))
    return records


def _left(storage: MemvaultStorage) -> set[str]:
    return {r.content for r in storage.list_records()}


@pytest.mark.parametrize(
    ("criteria", "deleted"),
    [
        ({"scope_prefix": "/a"}, {"old-a", "new-a"}),
        ({"categories": ["k1"]}, {"old-a", "old-b"}),
        ({"categories": ["k2"], "scope_prefix": "/b"}, {"old-b"}),
        ({"older_than": datetime(2022, 1, 1)}, {"old-a", "old-b"}),
        ({"metadata_filter": {"env": "prod"}}, {"old-a", "new-b"}),
        ({"metadata_filter": {"env": "prod"}, "older_than": datetime(2022, 1, 1)}, {"old-a"}),
        ({}, {"old-a", "new-a", "old-b", "new-b"}),
        ({"scope_prefix": "/"}, {"old-a", "new-a", "old-b", "new-b"}),
    ],
)
def test_delete_criteria_are_anded(
    storage: MemvaultStorage,
    populated: dict[str, MemoryRecord],
    criteria: dict[str, Any],
    deleted: set[str],
) -> None:
    assert storage.delete(**criteria) == len(deleted)
    assert _left(storage) == set(populated) - deleted


def test_delete_by_ids(storage: MemvaultStorage, populated: dict[str, MemoryRecord]) -> None:
    ids = [populated["old-a"].id, populated["new-b"].id, "missing"]
    assert storage.delete(record_ids=ids) == 2
    assert _left(storage) == {"new-a", "old-b"}
    assert storage.delete(record_ids=[populated["new-a"].id], scope_prefix="/b") == 0
    assert storage.delete(record_ids=[]) == 0  # an empty id list deletes nothing
    assert storage.count() == 2


def test_reset_scoped_and_full(
    storage: MemvaultStorage, populated: dict[str, MemoryRecord]
) -> None:
    storage.reset("/a")
    assert _left(storage) == {"old-b", "new-b"}
    storage.reset()
    assert storage.count() == 0


# -- async ---------------------------------------------------------------------------------------
async def test_async_methods_use_async_memory(store_path: Path, embedder: LocalEmbedder) -> None:
    amem = AsyncMemory(path=store_path, embedder=embedder)
    storage = MemvaultStorage(memory=amem)
    try:
        await storage.asave([rec("a1", scope="/x"), rec("a2", scope="/y", embedding=E2)])
        found = await storage.asearch(E1, scope_prefix="/x")
        assert [(r.content, s) for r, s in found] == [("a1", pytest.approx(1.0))]
        found = await storage.asearch(E1, min_score=0.5)
        assert [r.content for r, _ in found] == ["a1", "a2"]
        assert await storage.adelete(scope_prefix="/y") == 1
        assert storage.handles._sync is None  # all of it ran on AsyncMemory
        assert storage.count() == 1  # the sync twin sees the async writes
    finally:
        await storage.aclose()
        await amem.close()


async def test_async_handle_is_a_twin_of_the_given_memory(memory: Memory) -> None:
    storage = MemvaultStorage(memory=memory)
    await storage.asave([rec("via the twin")])
    assert storage.amemory.path == memory.path
    assert storage.amemory.embedder is memory.embedder  # one engine, one loaded model
    await storage.aclose()  # releases the twin's pool only
    assert memory.count(agent_id="crewai") == 1  # the given memory still works


def test_storage_over_a_path_closes_both_handles(tmp_path: Path, embedder: LocalEmbedder) -> None:
    storage = MemvaultStorage(path=tmp_path / "own.db", embedder=embedder)
    storage.save([rec("sync")])
    found = asyncio.run(storage.asearch(E1))
    assert [r.content for r, _ in found] == ["sync"]
    storage.close()  # the async twin's pool first, then the engine
    storage.close()  # idempotent
    with MemvaultStorage(path=tmp_path / "own.db", embedder=embedder) as again:
        assert again.count() == 1


async def test_async_and_sync_share_one_store(storage: MemvaultStorage) -> None:
    storage.save([rec("sync write", scope="/s")])
    assert [r.content for r, _ in await storage.asearch(E1)] == ["sync write"]
    await storage.asave([rec("async write", scope="/s")])
    assert storage.count("/s") == 2
    assert await storage.adelete(categories=["none"]) == 0


# -- crewai wiring -------------------------------------------------------------------------------
@pytest.fixture
def clean_factory() -> Any:
    original = crewai_factory._factory
    yield crewai_factory
    crewai_factory.set_memory_storage_factory(original)


def test_storage_factory(clean_factory: Any, memory: Memory) -> None:
    factory = MemvaultStorageFactory(memory=memory)
    clean_factory.set_memory_storage_factory(factory)
    m1 = CrewMemory(embedder=lambda texts: [E1 for _ in texts])
    m2 = CrewMemory(storage="lancedb", embedder=lambda texts: [E1 for _ in texts])
    assert isinstance(m1._storage, MemvaultStorage) and isinstance(m2._storage, MemvaultStorage)
    assert m1._storage is not m2._storage
    assert factory("some/path") is None  # other specs: CrewAI's built-in selection
    m1.remember("from crew one", scope="/t", categories=["c"], importance=0.5)
    m1.close()  # closes m1's storage, not the shared store
    assert m2._storage.count("/t") == 1
    m2.close()
    factory.close()
    assert memory.count(agent_id="crewai") == 1  # a memory= passed in stays open


def test_factory_opening_its_own_store(clean_factory: Any, tmp_path: Path) -> None:
    factory = MemvaultStorageFactory(path=tmp_path / "f.db", agent_id="crew-x")
    storage = factory("lancedb")
    assert storage is not None and storage.mapping.agent_id == "crew-x"
    storage.save([rec("x")])
    factory.close()
    with MemvaultStorage(path=tmp_path / "f.db", agent_id="crew-x") as again:
        assert again.count() == 1
