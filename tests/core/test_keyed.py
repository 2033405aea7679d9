"""Keyed records: namespace + key addressing, namespaces listing, TTL and touch."""

from __future__ import annotations

import time

import pytest

from memvault import Memory, ValidationError


def test_put_get_replace_delete_by_key(memory: Memory) -> None:
    ns = ("memories", "alice")
    first = memory.put(ns, "k1", {"content": "likes tea", "n": 1}, user_id="alice")
    assert first["event"] == "ADD" and first["value"] == {"content": "likes tea", "n": 1}
    assert first["namespace"] == ["memories", "alice"] and first["key"] == "k1"
    again = memory.put(
        ns, "k1", {"content": "likes coffee", "n": 2}, text="likes coffee", user_id="alice"
    )
    assert again["event"] == "UPDATE" and again["id"] == first["id"]
    got = memory.get_key(ns, "k1", user_id="alice")
    assert got is not None and got["value"]["n"] == 2 and got["memory"] == "likes coffee"
    assert got["created_at"] == first["created_at"] and got["updated_at"] > first["updated_at"]
    assert memory.get_key(ns, "k1", user_id="bob") is None  # scope is part of the address
    hist = memory.history(first["id"])
    assert [h["event"] for h in hist] == ["ADD", "UPDATE"]
    assert memory.search("coffee", user_id="alice")["results"][0]["id"] == first["id"]
    assert memory.delete_key(ns, "k1", user_id="alice") is True
    assert memory.delete_key(ns, "k1", user_id="alice") is False
    assert memory.get_key(ns, "k1", user_id="alice") is None


def test_namespace_prefix_search_and_listing(memory: Memory) -> None:
    memory.put(("docs", "a", "x"), "1", {"t": "alpha"}, text="alpha doc", user_id="u")
    memory.put(("docs", "a", "y"), "2", {"t": "beta"}, text="beta doc", user_id="u")
    memory.put(("docs", "b"), "3", {"t": "gamma"}, text="gamma doc", user_id="u")
    memory.put(("other",), "4", {"t": "delta"}, text="delta doc", user_id="u")
    memory.add("plain memory without namespace", user_id="u")
    hits = memory.search("doc", user_id="u", namespace_prefix=("docs", "a"))["results"]
    assert {h["key"] for h in hits} == {"1", "2"}
    listed = memory.get_all(user_id="u", namespace_prefix=("docs",))["results"]
    assert {r["key"] for r in listed} == {"1", "2", "3"}
    assert memory.namespaces(user_id="u") == [
        ("docs", "a", "x"),
        ("docs", "a", "y"),
        ("docs", "b"),
        ("other",),
    ]
    assert memory.namespaces(user_id="u", prefix=("docs",), max_depth=2) == [
        ("docs", "a"),
        ("docs", "b"),
    ]
    assert memory.namespaces(user_id="u", suffix=("*", "x")) == [("docs", "a", "x")]
    assert memory.namespaces(user_id="u", prefix=("docs", "*", "y")) == [("docs", "a", "y")]
    assert memory.namespaces(user_id="u", limit=2, offset=1) == [("docs", "a", "y"), ("docs", "b")]
    assert memory.get_all(user_id="u", filters={"value.t": "gamma"})["results"][0]["key"] == "3"


def test_put_index_control(memory: Memory) -> None:
    memory.put(("n",), "vec", {"x": 1}, text="solar panels on the roof", user_id="u")
    memory.put(("n",), "novec", {"x": 2}, text="wind turbines offshore", index=False, user_id="u")
    memory.put(("n",), "multi", {"x": 3}, text="garden", index=["tomatoes", "violins"], user_id="u")
    assert memory.stats()["vectors"] == 1 + 0 + 2
    hits = memory.search("music instruments", user_id="u", explain=True)["results"]
    by_key = {h["key"]: h for h in hits}
    assert by_key["novec"]["score_details"]["semantic_similarity"] is None
    assert (
        by_key["multi"]["score_details"]["semantic_similarity"]
        > by_key["vec"]["score_details"]["semantic_similarity"]
    )
    # keyword search still reaches the un-embedded one
    hits = memory.search("turbines", user_id="u", explain=True)["results"]
    novec = next(h for h in hits if h["key"] == "novec")
    assert novec["score_details"]["keyword"] > 0
    assert [h["key"] for h in hits].index("novec") < [h["key"] for h in hits].index("vec")


def test_ttl_expires_refreshes_and_purges(memory: Memory) -> None:
    memory.put(("t",), "short", {"v": 1}, text="short lived", user_id="u", ttl_seconds=0.6)
    memory.put(("t",), "kept", {"v": 2}, text="long lived", user_id="u", ttl_seconds=3600)
    time.sleep(0.35)
    assert memory.get_key(("t",), "short", user_id="u", touch=True) is not None  # refresh
    time.sleep(0.35)
    assert memory.get_key(("t",), "short", user_id="u") is not None  # alive thanks to touch
    time.sleep(0.7)
    assert memory.get_key(("t",), "short", user_id="u") is None  # expired: hidden
    assert memory.purge_expired(user_id="u") == 1
    assert memory.get_key(("t",), "short", user_id="u", show_expired=True) is None  # gone
    assert memory.get_key(("t",), "kept", user_id="u") is not None
    mid = memory.search("short lived", user_id="u", show_expired=True)["results"][0]
    assert mid["key"] == "kept"


@pytest.mark.parametrize(
    ("ns", "key"),
    [((), "k"), ("flat", "k"), (("a", ""), "k"), (("a", 3), "k"), (("a",), ""), (("a",), 5)],
)
def test_bad_namespace_or_key(memory: Memory, ns: object, key: object) -> None:
    with pytest.raises(ValidationError):
        memory.put(ns, key, {"v": 1}, user_id="u")  # type: ignore[arg-type]
    assert memory.stats()["memories"] == 0


def test_vectors_read_back_dedupe_prefix_delete_and_observation_order(memory: Memory) -> None:
    v1, v2 = [[1.0, 0.0]], [[0.0, 1.0]]
    a = memory.put(
        ("p", "x"),
        "a",
        {},
        text="same text",
        embeddings=v1,
        vector_space="v2",
        user_id="u",
        timestamp="2020-01-01",
    )
    memory.put(
        ("p", "y"),
        "b",
        {},
        text="same text",
        embeddings=v2,
        vector_space="v2",
        user_id="u",
        timestamp="2019-01-01",
    )
    memory.put(
        ("q",),
        "c",
        {},
        text="other text",
        embeddings=v2,
        vector_space="v2",
        user_id="u",
        timestamp="2021-01-01",
    )
    got = memory.get_key(("p", "x"), "a", user_id="u", include_vectors=True)
    assert got["vectors"] == {"v2": [[1.0, 0.0]]}
    assert memory.get(a["id"], include_vectors=True)["vectors"] == {"v2": [[1.0, 0.0]]}
    assert "vectors" not in memory.get(a["id"])
    listed = memory.get_all(user_id="u", include_vectors=True)["results"]
    assert all("vectors" in r for r in listed)
    hits = memory.search("same text", user_id="u")["results"]
    assert [h["memory"] for h in hits].count("same text") == 1
    hits = memory.search("same text", user_id="u", dedupe=False)["results"]
    assert [h["memory"] for h in hits].count("same text") == 2
    by_obs = memory.get_all(user_id="u", order_by="valid_from")["results"]
    assert [r["key"] for r in by_obs] == ["c", "a", "b"]  # newest observation first
    old = memory.get_all(user_id="u", filters={"valid_from": {"lt": "2020-06-01"}})["results"]
    assert {r["key"] for r in old} == {"a", "b"}
    assert memory.delete_all(user_id="u", namespace_prefix=("p",))["deleted"] == 2
    assert [r["key"] for r in memory.get_all(user_id="u")["results"]] == ["c"]
