"""MemvaultStore beyond the upstream suites: scope mapping, core visibility, embeddings, TTL."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest
from langgraph.store.base import GetOp, InvalidNamespaceError, PutOp, SearchOp
from langgraph.store.memory import InMemoryStore

from memvault import AsyncMemory, DimensionMismatchError, Memory
from memvault.embedding import LocalEmbedder
from memvault_langgraph import MemvaultStore


class CountingEmbeddings:
    """A deterministic bag-of-letters embedding (a user-supplied ``IndexConfig.embed``)."""

    def __init__(self, dims: int = 32) -> None:
        self.dims = dims
        self.calls = 0

    def _one(self, text: str) -> list[float]:
        vec = [0.0] * self.dims
        for ch in text.lower():
            vec[ord(ch) % self.dims] += 1.0
        vec[0] += 0.01  # never the zero vector
        return vec

    def __call__(self, texts: list[str]) -> list[list[float]]:
        self.calls += 1
        return [self._one(t) for t in texts]


def test_items_are_scoped_memvault_memories(store: MemvaultStore, memory: Memory) -> None:
    store.put(("memories", "alice"), "k1", {"content": "Alice drinks green tea every morning"})
    store.put(("memories", "bob"), "k1", {"content": "Bob drinks black coffee"})
    item = store.get(("memories", "alice"), "k1")
    assert item is not None and item.value == {"content": "Alice drinks green tea every morning"}
    # The core sees the item in alice's scope (user from the namespace, agent "langgraph"),
    # with the value's text as the memory.
    hits = memory.search("what does alice drink", user_id="alice")["results"]
    assert [h["memory"] for h in hits] == ["Alice drinks green tea every morning"]
    assert hits[0]["agent_id"] == "langgraph" and hits[0]["key"] == "k1"
    assert memory.search("coffee", user_id="alice")["results"][0]["user_id"] == "alice"
    # Updates and deletes are in the core's history.
    store.put(("memories", "alice"), "k1", {"content": "Alice switched to oolong"})
    store.delete(("memories", "alice"), "k1")
    events = [h["event"] for h in memory.history(hits[0]["id"])]
    assert events == ["ADD", "UPDATE", "DELETE"]


def test_scope_mapping_is_configurable(memory: Memory) -> None:
    with MemvaultStore(memory=memory, agent_id="planner", user_label=None) as store:
        store.put(("memories", "alice"), "k", {"content": "likes jazz"})
        assert memory.get_all(user_id="alice")["results"] == []
        rec = memory.get_all(agent_id="planner")["results"][0]
        assert rec["user_id"] is None and rec["namespace"] == ["memories", "alice"]
    with MemvaultStore(memory=memory, agent_id="tutor", user_label=2) as store:
        store.put(("org", "acme", "carol"), "k", {"content": "studies maths"})
        assert memory.get_all(user_id="carol", agent_id="tutor")["results"][0]["key"] == "k"
        # Two stores on one file with different agents never see each other's items.
        assert store.search(("memories",)) == []


def test_namespace_labels_that_are_not_ids_still_address_items(
    store: MemvaultStore, memory: Memory
) -> None:
    store.put(("users", "alice smith"), "k", {"v": 1})
    store.put(("users", "alice"), "k", {"v": 2})
    assert store.get(("users", "alice smith"), "k").value == {"v": 1}  # type: ignore[union-attr]
    assert store.get(("users", "alice"), "k").value == {"v": 2}  # type: ignore[union-attr]
    assert {i.namespace for i in store.search(("users",))} == {
        ("users", "alice smith"),
        ("users", "alice"),
    }
    # the label with a space maps to no user_id; the other to user "alice"
    assert [r["value"] for r in memory.get_all(user_id="alice")["results"]] == [{"v": 2}]


def test_batch_reads_see_state_before_puts_and_last_put_wins(store: MemvaultStore) -> None:
    store.put(("t",), "a", {"n": 0})
    results = store.batch(
        [
            PutOp(("t",), "a", {"n": 1}),
            GetOp(("t",), "a"),
            SearchOp(("t",)),
            PutOp(("t",), "a", {"n": 2}),
            PutOp(("t",), "b", {"n": 3}),
            PutOp(("t",), "b", None),
        ]
    )
    assert results[0] is None and results[3:] == [None, None, None]
    assert results[1].value == {"n": 0}  # type: ignore[union-attr]
    assert [i.value for i in results[2]] == [{"n": 0}]  # type: ignore[union-attr]
    assert store.get(("t",), "a").value == {"n": 2}  # type: ignore[union-attr]
    assert store.get(("t",), "b") is None


def test_raw_batch_validates_every_op_before_running_any(store: MemvaultStore) -> None:
    with pytest.raises(InvalidNamespaceError):
        store.batch([PutOp(("ok",), "k", {"v": 1}), GetOp(("bad.label",), "k")])
    assert store.get(("ok",), "k") is None
    with pytest.raises(ValueError, match="Unsupported operator"):
        store.batch([PutOp(("ok",), "k", {"v": 1}), SearchOp(("ok",), filter={"v": {"$in": [1]}})])
    assert store.get(("ok",), "k") is None


def test_search_with_memvault_hybrid_retrieval(store: MemvaultStore) -> None:
    ns = ("memories", "alice")
    store.put(ns, "1", {"content": "Alice's sister lives in Lisbon"})
    store.put(ns, "2", {"content": "Alice is allergic to peanuts"})
    store.put(ns, "3", {"content": "Alice plays the cello on Sundays"})
    store.put(ns, "4", {"content": "peanut-free bakery list"}, index=False)
    hits = store.search(ns, query="which food allergy does she have", limit=2)
    assert hits[0].key == "2" and hits[0].score is not None and hits[0].score > 0
    assert store.search(ns, query="cello", limit=1)[0].key == "3"


def test_search_pages_rank_then_fill(store: MemvaultStore) -> None:
    ns = ("memories", "alice")
    for i in range(60):  # more than the hybrid retriever's candidate pool
        store.put(ns, f"n{i}", {"content": f"note number {i} about gardening"})
    store.put(ns, "x", {"content": "zzz"}, index=False)
    keys = [i.key for i in store.search(ns, query="gardening notes", limit=100)]
    assert len(keys) == 61 and len(set(keys)) == 61  # every item, each once
    paged = [
        i.key
        for off in range(0, 61, 7)
        for i in store.search(ns, query="gardening notes", limit=7, offset=off)
    ]
    assert paged == keys


def test_filters_follow_inmemorystore(store: MemvaultStore) -> None:
    """Same answers as LangGraph's InMemoryStore for the filter forms it documents."""
    reference = InMemoryStore()
    docs: list[tuple[str, dict[str, Any]]] = [
        ("a", {"color": "red", "size": 3, "meta": {"lang": "en", "n": 1}, "tags": ["x", "y"]}),
        ("b", {"color": "blue", "size": 5, "meta": {"lang": "fr", "n": 2}, "tags": ["y"]}),
        ("c", {"color": "red", "size": 8, "meta": {"lang": "en", "n": 3}, "opt": None}),
        ("d", {"color": "*", "size": 1.5}),
    ]
    for key, value in docs:
        store.put(("f",), key, value)
        reference.put(("f",), key, value)
    filters: list[dict[str, Any]] = [
        {"color": "red"},
        {"color": "*"},
        {"size": {"$gt": 3}},
        {"size": {"$gte": 3, "$lt": 8}},
        {"size": {"$lte": 1.5}},
        {"color": {"$ne": "red"}},
        {"color": {"$eq": "blue"}},
        {"meta": {"lang": "en"}},
        {"meta": {"lang": "en", "n": {"$gt": 1}}},
        {"tags": ["x", "y"]},
        {"tags": ("y",)},
        {"tags": ["y", "x"]},
        {"opt": None},
        {"missing": None},
        {"color": "red", "size": 8},
        {"nope": 1},
    ]
    for flt in filters:
        ours = sorted(i.key for i in store.search(("f",), filter=flt))
        theirs = sorted(i.key for i in reference.search(("f",), filter=flt))
        assert ours == theirs, flt
    with pytest.raises(ValueError, match="Unsupported operator"):
        store.search(("f",), filter={"size": {"$regex": "x"}})


def test_user_supplied_embed_and_dims(memory: Memory) -> None:
    embed = CountingEmbeddings(dims=32)
    index = {"dims": 32, "embed": embed, "fields": ["text"]}
    with MemvaultStore(memory=memory, index=index) as store:  # type: ignore[arg-type]
        assert store.vector_space == "langgraph:32"
        store.put(("d",), "1", {"text": "aaaa", "other": "zzzz"})
        store.put(("d",), "2", {"text": "zzzz"})
        store.put(("d",), "3", {"text": "aaaa"}, index=False)
        store.put(("d",), "4", {"other": "aaaa"})  # nothing at the indexed path: no vector
        hits = store.search(("d",), query="aaaa")
        assert hits[0].key == "1" and hits[0].score is not None
    # A store declaring other dims for the same space name gets memvault's error.
    bad = {"dims": 32, "embed": CountingEmbeddings(dims=16)}
    with (
        MemvaultStore(memory=memory, index=bad) as store,  # type: ignore[arg-type]
        pytest.raises(DimensionMismatchError),
    ):
        store.put(("d",), "5", {"text": "abc"})


def test_user_supplied_embed_scores_are_cosine_and_unembedded_fill(memory: Memory) -> None:
    embed = CountingEmbeddings(dims=32)
    with MemvaultStore(memory=memory, index={"dims": 32, "embed": embed}) as store:
        store.put(("d",), "1", {"text": "abc"})
        store.put(("d",), "2", {"text": "abc"})  # same text: both listed, same score
        store.put(("d",), "3", {"text": "xyz"}, index=False)
        hits = store.search(("d",), query="abc")
        assert [h.key for h in hits] == ["1", "2", "3"]
        assert hits[0].score == pytest.approx(1.0, abs=1e-5) and hits[0].score == hits[1].score
        assert hits[2].score is None


async def test_async_embed_function_and_abatch(memory: Memory) -> None:
    sync = CountingEmbeddings(dims=24)

    async def aembed(texts: list[str]) -> list[list[float]]:
        await asyncio.sleep(0)
        return sync(texts)

    async with MemvaultStore(memory=memory, index={"dims": 24, "embed": aembed}) as store:
        await store.aput(("d",), "1", {"text": "bbbb"})
        await store.aput(("d",), "2", {"text": "qqqq"})
        hits = await store.asearch(("d",), query="bbbb")
        assert [h.key for h in hits][:1] == ["1"]
        got = await store.aget(("d",), "2")
        assert got is not None and got.value == {"text": "qqqq"}
        assert await store.alist_namespaces() == [("d",)]


def test_memory_index_config_without_embed_uses_memvault_embedder(memory: Memory) -> None:
    with MemvaultStore(memory=memory, index={"fields": ["title"]}) as store:  # type: ignore[arg-type]
        assert store.embeddings is None
        store.put(("docs",), "1", {"title": "Quarterly tax filing", "body": "cooking pasta"})
        store.put(("docs",), "2", {"title": "Pasta recipes", "body": "taxes"})
        assert store.search(("docs",), query="recipes for pasta")[0].key == "2"
    with pytest.raises(ValueError, match="dims"):
        MemvaultStore(memory=memory, index={"dims": 7})  # type: ignore[arg-type]


async def test_given_async_memory_opens_a_sync_twin(
    store_path: Path, embedder: LocalEmbedder
) -> None:
    amem = AsyncMemory(path=store_path, embedder=embedder)
    try:
        store = MemvaultStore(memory=amem)
        await store.aput(("memories", "u1"), "k", {"content": "likes chess"})
        # the sync API works too, on the same file (run off the loop)
        item = await asyncio.to_thread(store.get, ("memories", "u1"), "k")
        assert item is not None and item.value == {"content": "likes chess"}
        await store.aclose()
        # the caller's AsyncMemory is still usable: the store only closed what it opened
        assert (await amem.get_all(user_id="u1"))["results"][0]["memory"] == "likes chess"
    finally:
        await amem.close()


def test_ttl_put_refresh_and_sweeper_thread(memory: Memory) -> None:
    ttl = {"default_ttl": 10.0, "refresh_on_read": True, "sweep_interval_minutes": 0.001}
    before = {t.name for t in threading.enumerate()}
    store = MemvaultStore(memory=memory, ttl=ttl)  # type: ignore[arg-type]
    try:
        assert store.supports_ttl
        assert any(t.name == "memvault-ttl-sweeper" for t in threading.enumerate())
        store.put(("t",), "short", {"v": 1}, ttl=0.0005)  # 30 ms
        store.put(("t",), "default", {"v": 2})
        store.put(("t",), "forever", {"v": 3}, ttl=None)
        rec = memory.get_key(("t",), "default", agent_id="langgraph")
        assert rec["ttl_seconds"] == 600.0
        deadline = threading.Event()
        for _ in range(100):  # the sweeper (every 60 ms) deletes the expired item
            if memory.get_key(("t",), "short", agent_id="langgraph", show_expired=True) is None:
                break
            deadline.wait(0.05)
        assert memory.get_key(("t",), "short", agent_id="langgraph", show_expired=True) is None
        assert store.get(("t",), "default") is not None
        assert store.get(("t",), "forever") is not None
        assert store.sweep_ttl() == 0
    finally:
        store.close()
    assert {t.name for t in threading.enumerate()} - before == set()


def _expire(store: MemvaultStore, namespace: tuple[str, ...], key: str) -> None:
    """Make an item expired-but-unswept: a TTL of 30 ms, then wait it out."""
    store.put(namespace, key, {"v": key}, ttl=0.0005)
    threading.Event().wait(0.1)


@pytest.mark.parametrize("omit", [None, False])
def test_expired_items_are_read_until_swept_by_default(memory: Memory, omit: bool | None) -> None:
    """As PostgresStore: without ``omit_expired`` an expired item stays readable until swept."""
    ttl: dict[str, Any] = {} if omit is None else {"omit_expired": omit}
    store = MemvaultStore(memory=memory, ttl=ttl)  # type: ignore[arg-type]
    _expire(store, ("keep",), "k")
    assert store.get(("keep",), "k", refresh_ttl=False) is not None
    assert [i.key for i in store.search(("keep",), refresh_ttl=False)] == ["k"]
    assert store.sweep_ttl() == 1
    assert store.get(("keep",), "k") is None


def test_omit_expired_hides_expired_items_and_never_refreshes_them(memory: Memory) -> None:
    store = MemvaultStore(memory=memory, ttl={"omit_expired": True})  # type: ignore[arg-type]
    store.put(("omit", "live"), "live", {"v": 1}, ttl=10.0)
    store.put(("omit", "live"), "forever", {"v": 2})
    _expire(store, ("omit", "gone"), "gone")
    assert store.get(("omit", "gone"), "gone", refresh_ttl=True) is None
    assert store.search(("omit", "gone"), refresh_ttl=True) == []
    assert sorted(i.key for i in store.search(("omit",))) == ["forever", "live"]
    # the expired item was not resurrected by those reads: the sweep still finds it
    assert store.sweep_ttl() == 1


def test_reads_refresh_ttl_unless_asked_not_to(memory: Memory) -> None:
    """As PostgresStore: get/search refresh an item's TTL (``refresh_on_read`` default True)."""
    store = MemvaultStore(memory=memory, ttl={"default_ttl": 1.0})  # type: ignore[arg-type]
    store.put(("r",), "k", {"v": 1})

    def expires() -> str:
        return str(memory.get_key(("r",), "k", agent_id="langgraph")["expiration_date"])

    first = expires()
    threading.Event().wait(0.01)
    store.get(("r",), "k", refresh_ttl=False)
    assert expires() == first
    store.get(("r",), "k")
    second = expires()
    assert second > first
    threading.Event().wait(0.01)
    store.search(("r",))
    assert expires() > second
    off = MemvaultStore(memory=memory, ttl={"refresh_on_read": False})  # type: ignore[arg-type]
    before = expires()
    off.get(("r",), "k")
    assert expires() == before


def test_put_without_ttl_support_semantics(store: MemvaultStore) -> None:
    store.put(("t",), "k", {"v": 1}, ttl=1.0)
    rec = store.memory.get_key(("t",), "k", agent_id="langgraph")
    assert rec["ttl_seconds"] == 60.0
    store.put(("t",), "k", {"v": 2})  # no default_ttl configured: the new version has no TTL
    assert "ttl_seconds" not in store.memory.get_key(("t",), "k", agent_id="langgraph")


def test_owned_store_on_a_path(tmp_path: Path, embedder: LocalEmbedder) -> None:
    with MemvaultStore(path=tmp_path / "own.db", embedder=embedder) as store:
        store.put(("a",), "k", {"v": "x"})
    with Memory(path=tmp_path / "own.db", embedder=embedder) as mem:
        assert mem.get_key(("a",), "k", agent_id="langgraph")["value"] == {"v": "x"}
    with pytest.raises(ValueError, match="either memory"):
        MemvaultStore(memory=Memory(path=tmp_path / "x.db", embedder=embedder), path="y.db")


def test_equal_values_under_different_keys_are_all_found(store: MemvaultStore) -> None:
    for key in ("a", "b", "c"):
        store.put(("dup",), key, {"content": "the same sentence"})
    assert sorted(i.key for i in store.search(("dup",), query="same sentence")) == ["a", "b", "c"]
