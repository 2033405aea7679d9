"""Result diversity: the per-thread penalty (greedy MMR by thread), opt-in."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from memvault import Memory
from memvault.retrieval import RetrievalConfig, rank


def _links(thread: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """prev/next within each thread, in index order (as the scope view builds them)."""
    n = len(thread)
    prev_idx = np.full(n, -1, dtype=np.int64)
    next_idx = np.full(n, -1, dtype=np.int64)
    last: dict[int, int] = {}
    for i, t in enumerate(thread.tolist()):
        if t in last:
            prev_idx[i], next_idx[last[t]] = last[t], i
        last[t] = i
    return prev_idx, next_idx


def _inputs(keyword: list[float], thread: list[int]) -> dict:
    kw = np.array(keyword, dtype=np.float64)
    th = np.array(thread, dtype=np.int64)
    prev_idx, next_idx = _links(th)
    return {
        "visible": np.ones(len(kw), dtype=bool),
        "dense": None,
        "keyword": kw,
        "prev_idx": prev_idx,
        "next_idx": next_idx,
        "actor_hit": np.zeros(len(kw), dtype=bool),
        "thread": th,
    }


cases = st.integers(2, 30).flatmap(
    lambda n: st.tuples(
        st.lists(st.floats(0.0, 10.0, allow_nan=False), min_size=n, max_size=n),
        st.lists(st.integers(0, 3), min_size=n, max_size=n),
    )
)


@settings(max_examples=150, deadline=None)
@given(cases, st.floats(0.01, 1.0), st.integers(1, 3))
def test_thread_penalty_is_greedy_mmr_by_thread(
    case: tuple[list[float], list[int]], penalty: float, free: int
) -> None:
    keyword, thread = case
    inputs = _inputs(keyword, thread)
    base = RetrievalConfig(keyword_norm="minmax", neighbor_weight=0.3, entity_weight=0.0)
    plain = rank(**inputs, cfg=base)
    cfg = base.model_copy(update={"thread_penalty": penalty, "thread_free": free})
    div = rank(**inputs, cfg=cfg)
    # Greedy: repeatedly take the best undiminished score minus penalty x (picks from its
    # thread beyond `free`), ties to the more recent memory, as the plain ranking does.
    left = plain.order.tolist()
    taken: dict[int, int] = {}
    greedy = []
    while left:

        def adjusted(i: int) -> tuple[float, int]:
            extra = max(taken.get(thread[i], 0) - free + 1, 0)
            return (float(plain.final[i]) - penalty * extra, i)

        best = max(left, key=adjusted)
        greedy.append(best)
        left.remove(best)
        taken[thread[best]] = taken.get(thread[best], 0) + 1
    np.testing.assert_allclose(div.final[greedy], np.sort(div.final[div.order])[::-1])
    assert div.final[div.order].tolist() == sorted(div.final[div.order].tolist(), reverse=True)
    # The same picks; order may differ only among exactly equal adjusted scores.
    assert sorted(div.order.tolist()) == sorted(greedy)
    np.testing.assert_allclose(div.diversity, div.final - plain.final, atol=1e-12)
    assert (div.diversity <= 0).all()
    for t in set(thread):  # each thread's first `free` results keep their score
        mine = [i for i in plain.order.tolist() if thread[i] == t]
        assert all(div.diversity[i] == 0 for i in mine[:free])


def test_neutral_settings_change_nothing() -> None:
    rng = np.random.default_rng(7)
    inputs = _inputs(rng.random(40).tolist(), rng.integers(0, 4, 40).tolist())
    a = rank(**inputs, cfg=RetrievalConfig())
    b = rank(**{**inputs, "thread": None}, cfg=RetrievalConfig(thread_penalty=0.0))
    assert a.order.tolist() == b.order.tolist()
    assert not a.diversity.any()


def test_thread_penalty_brings_a_second_session_into_the_top(memory: Memory) -> None:
    # One session talks about the garden at length; another mentions it once. Without
    # diversity the long session fills the top 3; with it the other session gets a place.
    memory.add(
        [
            {"role": "user", "content": "I planted tomatoes in the garden today"},
            {"role": "user", "content": "The garden tomatoes need watering every morning"},
            {"role": "user", "content": "I built a fence around the garden for the tomatoes"},
            {"role": "user", "content": "Garden tomatoes again: the fence works"},
        ],
        user_id="u",
        run_id="s1",
    )
    memory.add(
        [
            {"role": "user", "content": "My cousin visited from Porto"},
            {"role": "user", "content": "We ate the first tomatoes from my garden together"},
            {"role": "user", "content": "Then we watched a film"},
        ],
        user_id="u",
        run_id="s2",
    )

    def top_runs(**retrieval: float) -> list[str]:
        hits = memory.search(
            "garden tomatoes", user_id="u", top_k=3, explain=True, retrieval=retrieval
        )["results"]
        return [h["run_id"] for h in hits]

    assert top_runs() == ["s1", "s1", "s1"]
    runs = top_runs(thread_penalty=0.5)
    assert "s2" in runs
    hits = memory.search(
        "garden tomatoes", user_id="u", explain=True, retrieval={"thread_penalty": 0.5}
    )["results"]
    assert any(h["score_details"]["diversity"] < 0 for h in hits)
    assert all(0.0 <= h["score"] <= 1.0 for h in hits)
    scores = [h["score"] for h in hits]
    assert scores == sorted(scores, reverse=True)
