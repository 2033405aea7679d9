"""Hybrid retrieval behaviour: union of candidates, signals, dedup, explain."""

from __future__ import annotations

import pytest

from memvault import Memory, ValidationError


def test_keyword_only_match_can_win(memory: Memory) -> None:
    # A rare token (an order id) that the dense model cannot relate to the query's meaning.
    memory.add(
        [
            "The weather was lovely and sunny at the beach",
            "We talked about holidays, sunshine and swimming",
            "Reference XK-4471-QZ was mentioned once",
        ],
        user_id="u",
    )
    hits = memory.search("XK-4471-QZ", user_id="u", explain=True)["results"]
    assert hits[0]["memory"] == "Reference XK-4471-QZ was mentioned once"
    assert hits[0]["score_details"]["keyword"] > 0


def test_explain_reports_each_signal(memory: Memory) -> None:
    memory.add(
        [
            {"role": "user", "content": "I adopted a greyhound", "name": "Maria"},
            {"role": "user", "content": "I bought a new laptop", "name": "John"},
        ],
        user_id="u",
        run_id="s1",
    )
    hits = memory.search("What pet did Maria adopt?", user_id="u", explain=True)["results"]
    top = hits[0]
    assert top["memory"] == "I adopted a greyhound"
    d = top["score_details"]
    assert {"dense", "keyword", "neighbor", "actor", "raw_score", "final_score"} <= d.keys()
    assert d["actor"] > 0  # the query names Maria, the speaker of this memory
    assert abs(d["dense"] + d["keyword"] + d["neighbor"] + d["actor"] - d["raw_score"]) < 1e-9
    assert hits[1]["score_details"]["actor"] == 0


def test_neighbour_context_lifts_the_answer_turn(memory: Memory) -> None:
    # The answer ("Paris!") shares no word with the question; its neighbour does.
    memory.add(
        [
            {"role": "user", "content": "Where did you go for your honeymoon?"},
            {"role": "assistant", "content": "Paris! It was wonderful."},
            {"role": "user", "content": "I like gardening on weekends"},
            {"role": "user", "content": "My brother plays the violin"},
        ],
        user_id="u",
        run_id="chat1",
    )
    hits = memory.search("honeymoon destination", user_id="u", explain=True)["results"]
    ranks = [h["memory"] for h in hits]
    assert ranks.index("Paris! It was wonderful.") <= 1
    paris = next(h for h in hits if h["memory"].startswith("Paris"))
    assert paris["score_details"]["neighbor"] > 0


def test_identical_memories_in_two_runs_are_shown_once(memory: Memory) -> None:
    memory.add("likes jazz music", user_id="u", run_id="a")
    memory.add("likes jazz music", user_id="u", run_id="b")
    assert len(memory.get_all(user_id="u")["results"]) == 2
    hits = memory.search("jazz", user_id="u")["results"]
    assert [h["memory"] for h in hits].count("likes jazz music") == 1


def test_threshold_and_top_k(memory: Memory) -> None:
    memory.add([f"fact {i} about cooking pasta" for i in range(10)], user_id="u")
    assert len(memory.search("pasta", user_id="u", top_k=3)["results"]) == 3
    assert len(memory.search("pasta", user_id="u", limit=4)["results"]) == 4
    scores = [h["score"] for h in memory.search("pasta", user_id="u")["results"]]
    assert scores == sorted(scores, reverse=True)
    strict = memory.search("pasta", user_id="u", threshold=scores[2])["results"]
    assert all(h["score"] >= scores[2] for h in strict) and len(strict) >= 3


def test_search_sees_writes_immediately(memory: Memory) -> None:
    memory.add("first memory about kites", user_id="u")
    assert memory.search("kites", user_id="u")["results"]
    memory.add("second memory about kites", user_id="u")
    assert len(memory.search("kites", user_id="u")["results"]) == 2
    mid = memory.search("second kites", user_id="u")["results"][0]["id"]
    memory.delete(mid)
    assert [h["memory"] for h in memory.search("kites", user_id="u")["results"]] == [
        "first memory about kites"
    ]


def test_caches_follow_writes_from_another_instance(store_path, embedder) -> None:  # type: ignore[no-untyped-def]
    """Two handles on one store (as two processes would be): reads never go stale."""
    a = Memory(path=store_path, embedder=embedder)
    b = Memory(path=store_path, embedder=embedder)
    try:
        a.add("the red kite flies high", user_id="u")
        assert len(a.search("kite", user_id="u")["results"]) == 1  # a has cached views now
        b.add("the blue kite is new", user_id="u")  # insert by another handle
        b.add("unrelated other user kite", user_id="v")  # change in another scope
        assert {h["memory"] for h in a.search("kite", user_id="u")["results"]} == {
            "the red kite flies high",
            "the blue kite is new",
        }
        mid = b.search("blue kite", user_id="u")["results"][0]["id"]
        b.update(mid, "the green kite is new")  # text + vector change
        top = a.search("green kite", user_id="u", explain=True)["results"][0]
        assert top["memory"] == "the green kite is new"
        assert top["score_details"]["semantic_similarity"] > 0.5
        b.delete(mid)  # delete
        assert [h["memory"] for h in a.search("kite", user_id="u")["results"]] == [
            "the red kite flies high"
        ]
        b.reset()
        assert a.search("kite", user_id="u")["results"] == []
        assert a.get_all(user_id="u")["results"] == []
    finally:
        a.close()
        b.close()


def test_per_call_retrieval_override_gives_pure_vector_ranking(memory: Memory) -> None:
    vecs = [[1.0, 0.0, 0.0], [0.6, 0.8, 0.0], [0.0, 0.0, 1.0]]
    memory.add(["a", "b", "c"], user_id="u", embeddings=[[v] for v in vecs], vector_space="v3")
    q = [0.1, 1.0, 0.0]
    plain = memory.search(
        vector=q,
        vector_space="v3",
        user_id="u",
        explain=True,
        retrieval={"keyword_weight": 0, "neighbor_weight": 0, "actor_weight": 0},
    )["results"]
    assert [h["memory"] for h in plain] == ["b", "a", "c"]
    assert all(h["score_details"]["neighbor"] == 0 for h in plain)
    assert plain[0]["score_details"]["semantic_similarity"] == pytest.approx(
        0.86 / (1.01**0.5), abs=1e-5
    )
    with pytest.raises(ValidationError):
        memory.search("x", user_id="u", retrieval={"dense_weight": -1})
    assert memory.count(user_id="u") == 3
    assert memory.count(user_id="u", filters={"memory": "a"}) == 1


def test_vector_ranking_unranked_fill_and_offset(memory: Memory) -> None:
    memory.add(
        ["a", "b", "c"],
        user_id="u",
        embeddings=[[[1.0, 0.0]], [[0.6, 0.8]], [[0.0, 1.0]]],
        vector_space="v2",
    )
    memory.put(("ns",), "plain", {}, text="no vector here", index=False, user_id="u")
    hits = memory.search(vector=[0.0, 1.0], vector_space="v2", user_id="u", ranking="vector")
    assert [(h["memory"], h["score"]) for h in hits["results"]] == [
        ("c", 1.0),
        ("b", 0.8),
        ("a", 0.0),
    ]
    page = memory.search(
        vector=[0.0, 1.0],
        vector_space="v2",
        user_id="u",
        ranking="vector",
        include_unranked=True,
        offset=2,
        top_k=5,
    )["results"]
    assert [(h["memory"], h["score"]) for h in page] == [("a", 0.0), ("no vector here", None)]
    with pytest.raises(ValidationError):
        memory.search("x", user_id="u", offset=-1)


def test_repeated_queries_reuse_their_embedding(store_path, embedder) -> None:  # type: ignore[no-untyped-def]
    from memvault.embedding import CallableEmbedder

    calls: list[list[str]] = []

    def embed(texts: list[str]) -> list[list[float]]:
        calls.append(texts)
        return embedder.embed(texts).tolist()

    counting = CallableEmbedder(embed, 384, name=embedder.name)
    with Memory(path=store_path, embedder=counting) as m:
        m.add("the cat sleeps on the sofa", user_id="u")
        m.flush()  # the memory's own vector first (background indexing), then count queries
        before = len(calls)
        first = m.search("where does the cat sleep", user_id="u")["results"]
        second = m.search("where does the cat sleep", user_id="u")["results"]
        assert len(calls) == before + 1  # the second search did not embed again
        assert first == second
        m.search("something else entirely", user_id="u")
        assert len(calls) == before + 2
