"""Expiration, observation time, and bring-your-own vectors in named spaces."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np

from memvault import Memory


def test_expired_memories_hidden_unless_asked(memory: Memory) -> None:
    past = memory.add("old promo code SPRING", user_id="u", expiration_date="2020-01-01")
    future = memory.add(
        "new promo code WINTER", user_id="u", expiration_date=date.today() + timedelta(days=30)
    )
    today = memory.add("promo code valid today TODAY", user_id="u", expiration_date=date.today())
    visible = {r["memory"] for r in memory.get_all(user_id="u")["results"]}
    assert visible == {"new promo code WINTER", "promo code valid today TODAY"}
    hits = {r["memory"] for r in memory.search("promo code", user_id="u")["results"]}
    assert hits == visible
    every = memory.get_all(user_id="u", show_expired=True)["results"]
    assert len(every) == 3
    assert (
        memory.search("SPRING", user_id="u", show_expired=True)["results"][0]["id"]
        == past["results"][0]["id"]
    )
    # get() by id still returns it (expiry hides from listings, it does not delete)
    assert memory.get(past["results"][0]["id"])["expiration_date"].startswith("2020-01-02")  # type: ignore[index]
    assert future["results"][0]["event"] == today["results"][0]["event"] == "ADD"


def test_observation_timestamp_sets_valid_from(memory: Memory) -> None:
    when = datetime(2023, 5, 7, 13, 0, tzinfo=UTC)
    mid = memory.add("went to the lake", user_id="u", timestamp=when)["results"][0]["id"]
    got = memory.get(mid)
    assert got is not None and got["valid_from"].startswith("2023-05-07T13:00:00")
    per_msg = memory.add(
        [{"role": "user", "content": "ate sushi", "timestamp": "2022-01-02T03:04:05Z"}], user_id="u"
    )
    assert memory.get(per_msg["results"][0]["id"])["valid_from"].startswith("2022-01-02T03:04:05")  # type: ignore[index]


def test_bring_your_own_vectors_in_a_named_space(memory: Memory) -> None:
    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(5, 16)).astype(np.float32)
    names = ["alpha", "bravo", "charlie", "delta", "echo"]
    texts = [f"record {n}" for n in names]
    res = memory.add(
        texts,
        user_id="u",
        embeddings=[v.tolist() for v in vecs],
        vector_space="custom16",
        infer=False,
    )
    ids = [r["id"] for r in res["results"]]
    for i in range(5):
        hits = memory.search(
            vector=vecs[i].tolist(), vector_space="custom16", user_id="u", top_k=5
        )["results"]
        assert hits[0]["id"] == ids[i]
    # Query text and vector together: hybrid in the named space.
    hits = memory.search(
        "record delta", vector=vecs[3].tolist(), vector_space="custom16", user_id="u"
    )["results"]
    assert hits[0]["id"] == ids[3]
    # The default space is untouched by BYO vectors: a text search still works (keyword).
    assert memory.search("record charlie", user_id="u")["results"][0]["id"] == ids[2]
    assert memory.stats()["spaces"]["custom16"][0] == 16


def test_multi_vector_items_are_max_pooled(memory: Memory) -> None:
    a = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]  # two vectors for one memory
    b = [[0.0, 0.0, 1.0]]
    res = memory.add(["doc a", "doc b"], user_id="u", embeddings=[a, b], vector_space="v3")
    ida, idb = (r["id"] for r in res["results"])
    top = memory.search(vector=[0.0, 1.0, 0.1], vector_space="v3", user_id="u")["results"]
    assert top[0]["id"] == ida  # matched through its second vector
    top = memory.search(vector=[0.0, 0.1, 1.0], vector_space="v3", user_id="u")["results"]
    assert top[0]["id"] == idb
