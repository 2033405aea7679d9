"""Hybrid retrieval behaviour: union of candidates, signals, dedup, explain."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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
    signals = ("dense", "keyword", "neighbor", "actor", "entity", "temporal", "diversity")
    assert {*signals, "raw_score", "final_score"} <= d.keys()
    assert d["actor"] > 0  # the query names Maria, the speaker of this memory
    assert d["entity"] > 0  # ... and Maria is an entity of her own memories
    assert abs(sum(d[s] for s in signals) - d["raw_score"]) < 1e-9
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


# -- signals that carry over (issue 12) ---------------------------------------------------------
def test_a_one_word_keyword_match_is_not_stretched_over_meaning(memory: Memory) -> None:
    # Both memories match only "Ana"; the shorter one has the higher BM25. Min-max over the
    # candidates turned that length difference into the whole keyword weight, so the
    # vegetarian fact outranked the cat for a pet question. The ceiling keeps it small.
    memory.add(
        [
            "Ana is vegetarian",
            "Ana adopted a grey cat",
            "Ben plays tennis on Sundays",
            "The office moved to the third floor",
        ],
        user_id="u",
    )
    query = "What pet does Ana have?"
    top = memory.search(query, user_id="u")["results"][0]["memory"]
    assert top == "Ana adopted a grey cat"
    minmax = memory.search(query, user_id="u", retrieval={"keyword_norm": "minmax"})["results"]
    assert minmax[0]["memory"] == "Ana is vegetarian"  # the artifact the ceiling removes


def test_keyword_ceiling_bounds_every_bm25_score() -> None:
    import random

    from memvault.bm25 import KeywordIndex
    from memvault.retrieval import RetrievalConfig, query_signals

    rng = random.Random(7)
    vocab = [f"w{i}" for i in range(24)]
    cfg = RetrievalConfig()
    for _ in range(50):
        docs = [
            [rng.choice(vocab) for _ in range(rng.randint(0, 8))] for _ in range(rng.randint(1, 35))
        ]
        index = KeywordIndex.build(docs)
        terms = rng.sample(vocab, rng.randint(1, 4))
        weights = index.idf(terms)  # as the engine: the scores' own IDF
        scores = index.scores(weights)
        ceiling = query_signals(None, terms, [], cfg, weights).keyword_ceiling
        if not scores.any():
            assert ceiling is None
            continue
        assert ceiling is not None and scores.max() < ceiling
    assert query_signals(None, [], [], cfg, None).keyword_ceiling is None  # no query terms


def test_entities_are_capitalised_names_not_sentence_starts() -> None:
    from memvault.entities import extract

    assert extract("Yesterday we drove to Sweden with James. Great trip!") == ["sweden", "jame"]
    assert extract("Caroline's mentor gave her Dr. Seuss books") == ["seuss"]
    assert extract("I joined an LGBTQ group in May") == ["lgbtq"]  # acronyms; no months
    assert extract("hello there, nothing named here") == []


def test_memories_naming_the_querys_entity_get_the_entity_signal(memory: Memory) -> None:
    memory.add(
        [
            {"role": "user", "content": "We had lunch with Jonas at the harbour", "name": "Eva"},
            {"role": "user", "content": "The harbour was busy with boats", "name": "Eva"},
        ],
        user_id="u",
        run_id="r",
    )
    # Lower case on purpose: a query term is an entity when the scope knows it as one.
    hits = memory.search("who is jonas", user_id="u", explain=True)["results"]
    by_text = {h["memory"]: h["score_details"]["entity"] for h in hits}
    assert by_text["We had lunch with Jonas at the harbour"] > 0
    assert by_text["The harbour was busy with boats"] == 0
    off = memory.search("who is jonas", user_id="u", explain=True, retrieval={"entity_weight": 0})
    assert all(h["score_details"]["entity"] == 0 for h in off["results"])


def test_neighbour_bonus_reaches_two_turns_away(memory: Memory) -> None:
    memory.add(
        [
            {"role": "user", "content": "Any plans for the honeymoon?"},
            {"role": "assistant", "content": "Still deciding, give me a second"},
            {"role": "assistant", "content": "Okay: Lisbon in April."},
            {"role": "user", "content": "My brother plays the violin"},
            {"role": "user", "content": "I like gardening on weekends"},
        ],
        user_id="u",
        run_id="chat",
    )

    def bonus(span: int) -> float:
        hits = memory.search(
            "honeymoon plans", user_id="u", explain=True, retrieval={"neighbor_span": span}
        )["results"]
        return next(h for h in hits if h["memory"].startswith("Okay"))["score_details"]["neighbor"]

    assert bonus(2) > 0
    assert bonus(1) < bonus(2)


def test_query_dates_favour_memories_observed_then(memory: Memory) -> None:
    memory.add("We went hiking in the hills", user_id="u", timestamp="2023-05-08T10:00:00")
    memory.add("We went hiking by the lake", user_id="u", timestamp="2023-07-20T10:00:00")
    hits = memory.search(
        "Where did we go hiking on 8 May, 2023?",
        user_id="u",
        explain=True,
        retrieval={"temporal_weight": 0.3},
    )["results"]
    assert hits[0]["memory"] == "We went hiking in the hills"
    assert hits[0]["score_details"]["temporal"] > 0
    assert hits[1]["score_details"]["temporal"] == 0


def test_query_days_reads_common_date_forms() -> None:
    from datetime import date

    from memvault.text import query_days

    def days(q: str) -> tuple[date, date] | None:
        span = query_days(q)
        return (
            None
            if span is None
            else (date.fromordinal(int(span[0])), date.fromordinal(int(span[1])))
        )

    assert days("on 8 May, 2023") == (date(2023, 5, 8), date(2023, 5, 8))
    assert days("last weekend before April 10, 2023") == (date(2023, 4, 10), date(2023, 4, 10))
    assert days("in December 2023") == (date(2023, 12, 1), date(2023, 12, 31))
    assert days("on 2024-02-29") == (date(2024, 2, 29), date(2024, 2, 29))
    assert days("during 2022") == (date(2022, 1, 1), date(2022, 12, 31))
    assert days("May I ask something?") is None
    assert days("on 31 February, 2023") == (date(2023, 2, 1), date(2023, 2, 28))  # month kept


@settings(max_examples=200, deadline=None)
@given(st.dates(min_value=date(1900, 1, 1), max_value=date(2099, 12, 31)), st.integers(0, 3))
def test_query_days_finds_a_written_date(day: date, form: int) -> None:
    from memvault.text import query_days

    month = day.strftime("%B")
    text = [
        f"what happened on {day.day} {month}, {day.year}?",
        f"what happened on {month} {day.day}, {day.year}?",
        f"what happened on {day.isoformat()}?",
        f"what happened in {month} {day.year}?",
    ][form]
    span = query_days(text)
    assert span is not None
    lo, hi = date.fromordinal(int(span[0])), date.fromordinal(int(span[1]))
    if form < 3:
        assert lo == hi == day
    else:
        assert lo == day.replace(day=1) and hi.month == day.month and lo <= day <= hi


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80).filter(lambda s: not any(c.isdigit() for c in s)))
def test_query_days_needs_a_year(text: str) -> None:
    from memvault.text import query_days

    assert query_days(text) is None
    assert query_days(text + " in May") is None
