"""The per-scope view cache and the search indexes it keeps (keyword postings, entity graph).

Why these tests: a search reads the scope's keyword postings and entity graph from the
cached view instead of the store, so a cache that missed a write would silently rank on
stale text, and a cache that never let go would grow without bound.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from memvault import Memory, entities
from memvault.bm25 import K1, B, KeywordIndex
from memvault.scope import Scope
from memvault.store.sqlite import SQLiteStore
from memvault.text import analyze
from memvault.views import ScopeView, ViewCache
from tests.store.test_conformance import add, rec


def _reference_idf(docs: list[list[str]], terms: list[str]) -> dict[str, float]:
    """Lucene's non-negative IDF, one document at a time (terms no document holds: left out)."""
    n = len(docs)
    df = {t: sum(t in d for d in docs) for t in dict.fromkeys(terms)}
    return {t: math.log(1.0 + (n - d + 0.5) / (d + 0.5)) for t, d in df.items() if d}


def _reference_bm25(docs: list[list[str]], weights: dict[str, float]) -> list[float]:
    """Okapi BM25 one document at a time, in the same float operations as the index."""
    avgdl = (sum(map(len, docs)) / len(docs) if docs else 0.0) or 1.0
    out = []
    for doc in docs:
        tf = Counter(doc)
        norm = K1 * (1.0 - B + B * len(doc) / avgdl)
        score = 0.0
        for t, w in weights.items():
            f = tf.get(t, 0)
            if f:
                score += w * f * (K1 + 1.0) / (f + norm)
        out.append(score)
    return out


def test_keyword_index_scores_are_okapi_bm25_exactly() -> None:
    """The postings give plain BM25's IDF and floats bit for bit, built whole or appended."""
    rng = random.Random(3)
    vocab = [f"w{i}" for i in range(15)]
    for _ in range(60):
        docs = [[rng.choice(vocab) for _ in range(rng.randint(0, 9))] for _ in range(40)]
        cut = rng.randint(0, len(docs))
        built = KeywordIndex.build(docs[:cut]).extend(docs[cut:])  # as after appends
        whole = KeywordIndex.build(docs)
        terms = [*rng.sample(vocab, rng.randint(1, 4)), "absent"]
        weights = _reference_idf(docs, terms)
        expected = np.asarray(_reference_bm25(docs, weights))
        for index in (built, whole):
            assert index.idf(terms) == weights
            assert index.scores(weights).tolist() == expected.tolist()  # bit for bit


def test_extend_leaves_the_original_index_alone() -> None:
    old = KeywordIndex.build([["tea"], ["coffe"]])
    new = old.extend([["tea", "milk"]])
    assert old.n_docs == 2 and "milk" not in old.vocab
    assert old.scores(old.idf(["tea"])).nonzero()[0].tolist() == [0]
    assert new.scores(new.idf(["tea"])).nonzero()[0].tolist() == [0, 2]


def test_view_cache_evicts_the_least_recently_used_scope(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    try:
        a, b, c = Scope("a"), Scope("b"), Scope("c")
        for s in (a, b, c):
            add(store, rec(f"memory of {s.user_id}", s))
        views = ViewCache(store, max_scopes=2)
        first_a = views.view(a)
        views.view(b)
        assert views.view(a) is first_a  # a hit makes a the most recent
        views.view(c)  # evicts b, not every scope
        assert list(views._views) == [a, c]
        assert views.view(a) is first_a
    finally:
        store.close()


def _view(memory: Memory, user: str) -> ScopeView:
    return memory._engine.views.view(Scope(user))


def _bm25(memory: Memory, query: str, user: str) -> dict[str, float]:
    res = memory.search(query, user_id=user, explain=True)["results"]
    return {r["memory"]: r["score_details"]["bm25_raw"] for r in res}


def test_keyword_postings_follow_adds_edits_and_deletes(memory: Memory) -> None:
    first = memory.add("Ana drinks green tea", user_id="u", infer=False)["results"][0]
    assert _bm25(memory, "tea", "u")["Ana drinks green tea"] > 0
    built = _view(memory, "u")._keywords
    assert built is not None

    memory.add("Ben brews strong coffee", user_id="u", infer=False)
    appended = _view(memory, "u")
    assert appended._keywords is not None and appended._keywords is not built  # extended
    assert appended._keywords.vocab.keys() >= {"coffe", "brew"}
    assert _bm25(memory, "coffee", "u")["Ben brews strong coffee"] > 0

    memory.update(first["id"], "Ana drinks black tea at night")
    assert _view(memory, "u")._keywords is None  # text edited: rebuilt from the store
    assert _bm25(memory, "night", "u")["Ana drinks black tea at night"] > 0
    assert _bm25(memory, "green", "u").get("Ana drinks black tea at night", 0.0) == 0.0

    memory.delete(first["id"])
    assert set(_bm25(memory, "tea coffee", "u")) == {"Ben brews strong coffee"}


def test_other_scopes_writes_keep_a_scopes_indexes(memory: Memory) -> None:
    memory.add("Ana met Jonas in Sweden", user_id="u", infer=False)
    memory.search("Jonas", user_id="u")
    before = _view(memory, "u")
    graph = before.entity_graph()
    assert before.entity_graph() is graph  # built once per view
    assert "jona" in graph.vocab

    memory.add("unrelated", user_id="someone-else", infer=False)
    after = _view(memory, "u")
    assert after.generation > before.generation
    assert after._keywords is before._keywords and after.entity_graph() is graph

    memory.add("Jonas moved to Oslo", user_id="u", infer=False)
    mine = _view(memory, "u")
    assert mine._entities is not None  # extended from the old graph, not rebuilt
    assert mine.entity_graph() is not graph and "oslo" in mine.entity_graph().vocab
    assert graph.vocab.keys() == {"jona", "sweden"}  # the old view's graph is intact
    _same_graph(mine.entity_graph(), entities.build(mine.records))

    [first] = mine.records[:1]
    memory.update(first.id, "Ana met Jonas in Norway")
    edited = _view(memory, "u")
    assert edited._entities is None  # an edit can change what a record names: rebuilt
    assert "norway" in edited.entity_graph().vocab and "sweden" not in edited.entity_graph().vocab


def _same_graph(a: entities.ScopeIndex, b: entities.ScopeIndex) -> None:
    assert a.records == b.records and a.vocab == b.vocab
    assert [x.tolist() for x in a.ents] == [x.tolist() for x in b.ents]
    assert [x.tolist() for x in a.postings] == [x.tolist() for x in b.postings]
    assert a.idf.tolist() == b.idf.tolist()
    np.testing.assert_array_equal(a.day, b.day)


def test_entity_graph_extended_by_appends_equals_a_fresh_build() -> None:
    names = ["Ana", "Jonas", "Sweden", "Oslo", "LGBTQ", "Mel"]
    rng = random.Random(5)
    records = []
    for i in range(40):
        words = " and ".join(rng.sample(names, rng.randint(0, 3)))
        r = rec(f"we saw {words} today", actor_id=rng.choice(["Ana B", "Mel", None]))
        r.valid_from = None if i % 7 == 0 else f"2023-05-{1 + i % 28:02d}T10:00:00"
        records.append(r)
    for cut in (0, 1, 17, 39, 40):
        _same_graph(
            entities.extend(entities.build(records[:cut]), records), entities.build(records)
        )


def test_a_concurrent_writer_is_seen_through_the_change_log(tmp_path: Path, embedder: Any) -> None:
    """Another process's add reaches this process's cached postings (appended, not stale)."""
    path = tmp_path / "shared.db"
    with Memory(path=path, embedder=embedder) as reader, Memory(path=path, embedder=embedder) as w:
        w.add("Ana likes tea", user_id="u", infer=False)
        assert set(_bm25(reader, "tea", "u")) == {"Ana likes tea"}
        w.add("Ben likes tea too", user_id="u", infer=False)
        assert set(_bm25(reader, "tea", "u")) == {"Ana likes tea", "Ben likes tea too"}
        assert analyze("Ben likes tea too")[0] in _view(reader, "u")._keywords.vocab  # type: ignore[union-attr]


def test_view_visibility_is_the_per_record_rule() -> None:
    """The view's cached arrays answer exactly what Visibility.visible says record by record."""
    from itertools import product

    from memvault.models import SUPERSEDED
    from memvault.store.contract import Visibility

    now = "2026-06-01T12:00:00.000000+00:00"
    past, future = "2026-05-01T00:00:00.000000+00:00", "2026-07-01T00:00:00.000000+00:00"
    records = []
    for i, (state, expires) in enumerate(
        product(["active", SUPERSEDED], [None, past, now, future])
    ):
        r = rec(f"memory {i}", state=state, expiration_date=expires, at=past, actor_id=f"a{i % 2}")
        r.seq = i + 1
        records.append(r)
    view = ViewCache._build_view(Scope("alice"), records, 1)
    for superseded, as_of, expired in product([False, True], [None, now], [False, True]):
        vis = Visibility(superseded, as_of, expired)
        expected = [vis.visible(r, now) for r in records]
        assert view.visible(vis, now).tolist() == expected, vis
        view.visible(vis, now)[:] = False  # a caller's edits never reach the cached arrays
        assert view.visible(vis, now).tolist() == expected, vis
    assert view.actor_rows("a1").tolist() == [1, 3, 5, 7] and len(view.actor_rows("x")) == 0
    rows, found = view.rows_of(np.array([0, 3, 8, 9, 42]))
    assert rows[found].tolist() == [2, 7] and found.tolist() == [False, True, True, False, False]
