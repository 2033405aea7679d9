"""The storage contract, operation by operation: every backend passes this module unchanged.

Each test names one promise of :mod:`memvault.store.contract`; the ``store`` fixture runs
it on a fresh SQLite file and a fresh PostgreSQL database (tests/store/conftest.py).
"""

from __future__ import annotations

import math
import threading
import uuid
from typing import Any

import numpy as np
import pytest

from memvault.bm25 import KeywordIndex
from memvault.errors import ConflictError, DimensionMismatchError
from memvault.models import DEFAULT_SPACE, SUPERSEDED, MemoryRecord, content_hash, utcnow
from memvault.scope import Scope
from memvault.store.contract import Store
from memvault.text import analyze
from tests.store.conftest import open_store

ALICE = Scope("alice")
BOB = Scope("bob")


def rec(text: str, scope: Scope = ALICE, **kw: Any) -> MemoryRecord:
    now = kw.pop("at", None) or utcnow()
    return MemoryRecord(
        id=kw.pop("id", None) or str(uuid.uuid4()),
        memory=text,
        scope=scope,
        hash=content_hash(text),
        created_at=now,
        updated_at=now,
        **kw,
    )


def vec(*xs: float) -> np.ndarray:
    v = np.asarray(xs, dtype=np.float32)
    return v / np.linalg.norm(v)


def add(store: Store, *records: MemoryRecord, vectors: Any = None) -> list[MemoryRecord]:
    with store.write() as tx:
        for r in records:
            tx.insert(r, vectors)
            tx.history("ADD", memory_id=r.id, old=None, new=r)
    return list(records)


def keyword_index(store: Store, scope: Scope) -> tuple[list[int], KeywordIndex]:
    """The scope's BM25 postings as a search builds them (from ``scope_terms``), and their seqs."""
    terms = store.scope_terms(scope)
    seqs = sorted(terms)
    return seqs, KeywordIndex.build([terms[s] for s in seqs])


def keyword_matches(store: Store, terms: list[str], scope: Scope) -> set[int]:
    """Seqs of the scope's memories with a BM25 score for ``terms`` (a keyword match)."""
    seqs, index = keyword_index(store, scope)
    return {seqs[i] for i in np.flatnonzero(index.scores(index.idf(terms)))}


# -- records -------------------------------------------------------------------------------------
def test_insert_then_get_round_trips_every_field(store: Store) -> None:
    r = rec(
        "Ünïcode — thé 🍵",
        Scope("alice", "bot", "run-1"),
        metadata={"k": [1, "ü"], "n": None},
        role="user",
        actor_id="Alice Smith",
        categories=["food", "drink"],
        importance=0.5,
        value={"nested": {"a": 1}},
        namespace=("prefs", "food"),
        key="tea",
        valid_from="2024-01-01T00:00:00.000000+00:00",
        expiration_date="2999-01-01T00:00:00.000000+00:00",
        ttl_seconds=30.0,
    )
    [r] = add(store, r)
    assert r.seq > 0
    got = store.get(r.id)
    assert got == r
    assert store.get_many([r.id, "missing"]) == [r]
    assert store.records_by_seq([r.seq]) == [r]
    assert store.get("missing") is None
    assert store.get_many([]) == [] and store.records_by_seq([]) == []


def test_seq_follows_insertion_order(store: Store) -> None:
    rs = add(store, *(rec(f"fact {i}") for i in range(5)))
    seqs = [r.seq for r in rs]
    assert seqs == sorted(seqs) and len(set(seqs)) == 5
    assert [r.id for r in store.iter_all()] == [r.id for r in rs]


def test_scope_records_are_the_scope_and_everything_within_it(store: Store) -> None:
    a = add(store, rec("a plain"), rec("a bot", Scope("alice", "bot")), rec("b", BOB))
    assert [r.id for r in store.scope_records(ALICE)] == [a[0].id, a[1].id]
    assert [r.id for r in store.scope_records(Scope("alice", "bot"))] == [a[1].id]
    assert [r.id for r in store.scope_records(Scope(agent_id="bot"))] == [a[1].id]
    assert [r.id for r in store.scope_records(BOB)] == [a[2].id]
    assert store.scope_records(Scope("carol")) == []


def test_update_rewrites_mutable_columns_and_keeps_identity(store: Store) -> None:
    [r] = add(store, rec("I live in Paris", metadata={"v": 1}))
    r.memory, r.hash = "I live in Lyon", content_hash("I live in Lyon")
    r.metadata = {"v": 2}
    r.state = SUPERSEDED
    r.valid_to = utcnow()
    with store.write() as tx:
        tx.update(r, text_changed=True)
    got = store.get(r.id)
    assert got == r
    assert keyword_matches(store, analyze("Lyon"), ALICE) == {r.seq}
    assert keyword_matches(store, analyze("Paris"), ALICE) == set()


def test_find_active_exact_scope_or_within(store: Store) -> None:
    [r] = add(store, rec("same text", Scope("alice", "bot")))
    assert store.find_active(Scope("alice", "bot"), r.hash) == r
    assert store.find_active(ALICE, r.hash) is None  # exact: agent_id must be NULL
    assert store.find_active(ALICE, r.hash, exact=False) == r
    r.state = SUPERSEDED
    with store.write() as tx:
        tx.update(r, text_changed=False)
    assert store.find_active(Scope("alice", "bot"), r.hash) is None


def test_find_key_is_per_exact_scope(store: Store) -> None:
    [r] = add(store, rec("v", namespace=("a", "b"), key="k"))
    assert store.find_key(ALICE, ("a", "b"), "k") == r
    assert store.find_key(ALICE, ("a",), "k") is None
    assert store.find_key(Scope("alice", "bot"), ("a", "b"), "k") is None
    assert store.find_key(BOB, ("a", "b"), "k") is None


def test_delete_removes_the_memory_but_remove_keeps_its_history(store: Store) -> None:
    a, b = add(store, rec("one"), rec("two"), vectors={DEFAULT_SPACE: vec(1, 0)})
    with store.write() as tx:
        tx.remove(a, "me")
        tx.delete(b)
    assert store.get(a.id) is None and store.get(b.id) is None
    assert store.vectors(DEFAULT_SPACE, ALICE)[0].tolist() == []
    assert store.scope_terms(ALICE) == {}
    events = [(h["event"], h["changed_by"], h["is_deleted"]) for h in store.history(a.id)]
    assert events == [("ADD", None, False), ("DELETE", "me", True)]
    assert tx.removed == [a.seq, b.seq]


def test_expired_and_touch_restart_a_ttl(store: Store) -> None:
    past, future = "2000-01-01T00:00:00.000000+00:00", "2999-01-01T00:00:00.000000+00:00"
    old, _new, ttl = add(
        store,
        rec("old", expiration_date=past),
        rec("new", expiration_date=future),
        rec("ttl", expiration_date=past, ttl_seconds=60.0),
        rec("other scope", BOB, expiration_date=past),
    )[:3]
    now = utcnow()
    assert {r.id for r in store.expired(now, ALICE)} == {old.id, ttl.id}
    assert len(store.expired(now, Scope())) == 3
    with store.write() as tx:
        tx.touch([old.seq, ttl.seq], now)
    got_old, got_ttl = store.get(old.id), store.get(ttl.id)
    assert got_old is not None and got_ttl is not None
    assert got_old.last_accessed_at == now and got_old.expiration_date == past
    assert got_ttl.expiration_date is not None and got_ttl.expiration_date > now
    assert len(got_ttl.expiration_date) == len(now)  # the same fixed-width form
    assert {r.id for r in store.expired(now, ALICE)} == {old.id}


def test_seq_scopes(store: Store) -> None:
    [r] = add(store, rec("x", Scope("alice", None, "r1")))
    assert store.seq_scopes([r.seq, 10**9]) == {r.seq: (r.id, Scope("alice", None, "r1"))}


# -- keyword index -------------------------------------------------------------------------------
def test_keyword_statistics_count_only_the_scope(store: Store) -> None:
    mine = add(store, rec("green tea every morning"), rec("coffee at noon"), rec("tea tea"))
    add(store, *(rec(f"tea number {i}", BOB) for i in range(20)))
    seqs, index = keyword_index(store, ALICE)
    assert seqs == [r.seq for r in mine]
    assert index.n_docs == 3
    assert int(index.lengths.sum()) == sum(len(analyze(r.memory)) for r in mine)
    weights = index.idf(["tea"])
    assert weights == {"tea": math.log(1.0 + (3 - 2 + 0.5) / (2 + 0.5))}  # not Bob's 20 teas
    scores = dict(zip(seqs, index.scores(weights).tolist(), strict=True))
    assert scores[mine[2].seq] > scores[mine[0].seq] > 0 == scores[mine[1].seq]
    assert keyword_matches(store, ["absent"], ALICE) == set()


def test_keyword_matches_are_whole_terms_only(store: Store) -> None:
    [r] = add(store, rec("snake_case words and teapot"))
    assert store.scope_terms(ALICE) == {r.seq: analyze(r.memory)}  # not FTS5's split tokens
    assert keyword_matches(store, ["tea"], ALICE) == set()
    assert keyword_matches(store, ["snake"], ALICE) == set()
    assert keyword_matches(store, analyze("teapot snake_case"), ALICE) == {r.seq}


def test_scope_terms_are_the_analysed_texts_of_the_scope_and_follow_edits(store: Store) -> None:
    a, b, c = add(
        store, rec("Green tea every morning"), rec("coffee", Scope("alice", "bot")), rec("the")
    )
    [other] = add(store, rec("tea for Bob", BOB))
    assert store.scope_terms(ALICE) == {a.seq: analyze(a.memory), b.seq: ["coffe"], c.seq: []}
    a.memory, a.hash = "black tea at night", content_hash("black tea at night")
    with store.write() as tx:
        tx.update(a, text_changed=True)
        tx.delete(b)
    assert store.scope_terms(ALICE) == {a.seq: analyze("black tea at night"), c.seq: []}
    assert store.scope_terms(Scope()).keys() == {a.seq, c.seq, other.seq}


def test_rebuild_keyword_index(store: Store) -> None:
    a, b = add(store, rec("alpha beta"), rec("beta gamma", BOB))
    assert store.rebuild_keyword_index() == 2
    assert store.scope_terms(Scope()) == {a.seq: analyze(a.memory), b.seq: analyze(b.memory)}
    assert keyword_matches(store, ["beta"], ALICE) == {a.seq}


# -- vectors and spaces --------------------------------------------------------------------------
def test_vectors_by_scope_seq_and_memory(store: Store) -> None:
    a, b = add(store, rec("a"), rec("b"), vectors={DEFAULT_SPACE: vec(1, 0, 0)})
    with store.write() as tx:
        c = rec("c")
        tx.insert(c, {DEFAULT_SPACE: np.vstack([vec(0, 1, 0), vec(0, 0, 1)]), "img": vec(1, 1)})
        tx.insert(rec("bob's", BOB), {DEFAULT_SPACE: vec(1, 1, 1)})
    seqs, mat = store.vectors(DEFAULT_SPACE, ALICE)
    assert seqs.tolist() == [a.seq, b.seq, c.seq, c.seq]
    assert mat.dtype == np.float32 and mat.shape == (4, 3)
    np.testing.assert_allclose(mat[3], vec(0, 0, 1), rtol=1e-6)
    assert store.vectors_by_seq(DEFAULT_SPACE, [c.seq])[0].tolist() == [c.seq, c.seq]
    assert store.vectors_for(DEFAULT_SPACE, [a.seq, c.seq])[c.seq].shape == (2, 3)
    assert set(store.all_vectors(c.seq)) == {DEFAULT_SPACE, "img"}
    assert store.spaces() == {DEFAULT_SPACE: (3, None), "img": (2, None)}
    assert store.space_dims("img") == 2 and store.space_dims("none") is None
    assert store.spaces_used(BOB) == {DEFAULT_SPACE: 3}
    assert store.spaces_used(Scope()) == {DEFAULT_SPACE: 3, "img": 2}
    assert store.vector_count() == 4
    with store.write() as tx:
        tx.clear_vectors(c)
    assert store.all_vectors(c.seq) == {} and store.vector_count() == 3


def test_insert_many_is_insert_for_each_record_in_order(store: Store) -> None:
    [first] = add(store, rec("before"))
    batch = [rec("one"), rec("two", BOB), rec("three")]
    two_vectors = np.vstack([vec(1, 0, 0), vec(0, 1, 0)])
    with store.write() as tx:
        seqs = tx.insert_many(
            batch, [{DEFAULT_SPACE: vec(1, 1, 0)}, None, {DEFAULT_SPACE: two_vectors}]
        )
        assert tx.touched == [batch[0].seq, batch[2].seq]
    assert seqs == [r.seq for r in batch] and first.seq < seqs[0] < seqs[1] < seqs[2]
    assert [r.memory for r in store.scope_records(ALICE)] == ["before", "one", "three"]
    assert store.vectors(DEFAULT_SPACE, ALICE)[0].tolist() == [seqs[0], seqs[2], seqs[2]]
    assert store.all_vectors(seqs[1]) == {}
    assert store.scope_terms(ALICE) == {first.seq: [], seqs[0]: ["one"], seqs[2]: ["three"]}
    changes = store.changes_since(0)
    assert changes is not None and {(s, op) for s, op, _ in changes} >= {
        (s, "insert") for s in seqs
    }
    [after] = add(store, rec("after"))  # the store's own seqs continue after the batch
    assert after.seq > seqs[2]
    with store.write() as tx:
        assert tx.insert_many([], []) == []


def test_a_space_refuses_another_width(store: Store) -> None:
    add(store, rec("a"), vectors={DEFAULT_SPACE: vec(1, 0)})
    with pytest.raises(DimensionMismatchError), store.write() as tx:
        tx.insert(rec("b"), {DEFAULT_SPACE: vec(1, 0, 0)})
    with pytest.raises(DimensionMismatchError):
        store.register_space(DEFAULT_SPACE, 5, None)
    store.register_space("other", 7, "model-x")
    assert store.spaces()["other"] == (7, "model-x")
    assert store.get_many([]) == [] and len(store.scope_records(ALICE)) == 1


def test_two_active_memories_under_one_key_are_a_conflict(store: Store) -> None:
    add(store, rec("v1", namespace=("prefs",), key="color"))
    with pytest.raises(ConflictError), store.write() as tx:
        tx.insert(rec("v2", namespace=("prefs",), key="color"), {DEFAULT_SPACE: vec(1, 0)})
    assert [r.memory for r in store.scope_records(ALICE)] == ["v1"]
    assert store.spaces() == {}  # the failed transaction left nothing, not even its space


def test_a_scope_filter_never_returns_fewer_vectors_than_exist(store: Store) -> None:
    rng = np.random.default_rng(0)
    with store.write() as tx:
        for u in range(40):
            for i in range(15):
                tx.insert(rec(f"u{u} m{i}", Scope(f"user-{u}")), {DEFAULT_SPACE: rng.random(8)})
    for u in range(40):
        seqs, mat = store.vectors(DEFAULT_SPACE, Scope(f"user-{u}"))
        assert len(seqs) == 15 and mat.shape == (15, 8)


# -- transactions and the change log -------------------------------------------------------------
def test_every_write_bumps_the_generation_and_logs_changes(store: Store) -> None:
    g0 = store.generation()
    [r] = add(store, rec("x"))
    with store.write() as tx:
        tx.update(r, text_changed=False)
    with store.write() as tx:
        tx.remove(r, None)
    assert store.generation() == g0 + 3
    assert store.changes_since(g0) == [(r.seq, "insert", ALICE), (r.seq, "update", ALICE),
                                       (r.seq, "delete", ALICE)]  # fmt: skip
    assert store.changes_since(store.generation()) == []


def test_a_failed_transaction_leaves_nothing(store: Store) -> None:
    g0 = store.generation()
    with pytest.raises(RuntimeError), store.write() as tx:
        tx.insert(rec("doomed"), {DEFAULT_SPACE: vec(1, 0)})
        tx.journal("k", "done", result=[1])
        raise RuntimeError("boom")
    assert store.generation() == g0
    assert store.scope_records(ALICE) == [] and store.journal_get("k") is None
    assert store.spaces() == {} and store.changes_since(g0) == []
    add(store, rec("after"))  # the store is still writable
    assert len(store.scope_records(ALICE)) == 1


def test_reads_inside_a_write_see_its_own_writes(store: Store) -> None:
    with store.write() as tx:
        r = rec("pending")
        tx.insert(r)
        assert store.get(r.id) == r
        assert store.find_active(ALICE, r.hash) == r


def test_concurrent_writers_serialise_read_check_writes(store: Store) -> None:
    """Dedup (find, then insert if absent) inside write() never inserts twice."""

    def worker() -> None:
        for _ in range(5):
            with store.write() as tx:
                if store.find_active(ALICE, content_hash("only once")) is None:
                    tx.insert(rec("only once"))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(store.scope_records(ALICE)) == 1


def test_reset_empties_the_store_and_invalidates_caches(store: Store) -> None:
    add(store, rec("x"), vectors={DEFAULT_SPACE: vec(1, 0)})
    g = store.generation()
    store.reset()
    assert store.scope_records(ALICE) == [] and store.spaces() == {}
    assert not store.has_history()
    assert store.changes_since(g) is None  # a cache from before must reload
    add(store, rec("y"))
    assert len(store.scope_records(ALICE)) == 1


def test_snapshot_reads_one_state(store: Store) -> None:
    add(store, rec("before"))
    with store.snapshot():
        assert len(store.scope_records(ALICE)) == 1
        t = threading.Thread(target=add, args=(store, rec("during")))
        t.start()
        t.join()
        assert len(store.scope_records(ALICE)) == 1
    assert len(store.scope_records(ALICE)) == 2


# -- history -------------------------------------------------------------------------------------
def test_history_rows_and_import(store: Store) -> None:
    [r] = add(store, rec("x"))
    assert store.has_history()
    [row] = list(store.history_rows(r.id))
    assert row["event"] == "ADD" and row["new_metadata"] == "{}"
    assert [h["memory_id"] for h in store.history_rows()] == [r.id]
    copy = {**row, "id": row["id"] + 100}
    with store.write() as tx:
        assert tx.import_history(dict(row)) == "duplicate"
        assert tx.import_history({**copy, "event": "UPDATE"}) == "added"
        assert tx.import_history({**copy, "event": "DELETE", "id": row["id"]}) == "renumbered"
        assert tx.import_history({**copy, "event": "X", "id": 5000}, keep_id=False) == "added"
    ids = [h["id"] for h in store.history_rows(r.id)]
    assert ids[:2] == [row["id"], row["id"] + 100] and len(set(ids)) == 4
    assert 5000 not in ids
    add(store, rec("later"))  # new ids never collide with imported ones
    assert len({h["id"] for h in store.history_rows()}) == 5


def test_import_history_many_is_import_history_row_by_row(store: Store) -> None:
    [r] = add(store, rec("x"))
    [row] = list(store.history_rows(r.id))
    copy = {**row, "id": row["id"] + 100}
    rows = [
        dict(row),  # duplicate of the stored row
        {**copy, "event": "UPDATE"},  # a free id: kept
        {**copy, "event": "UPDATE"},  # duplicate of the row before it in the same batch
        {**copy, "event": "DELETE"},  # its id was just taken by the batch: renumbered
        {**copy, "event": "X", "id": row["id"] + 200},  # free: kept
    ]
    with store.write() as tx:
        got = tx.import_history_many(rows)
        assert tx.import_history_many([]) == []
    assert got == ["duplicate", "added", "duplicate", "renumbered", "added"]
    ids = [h["id"] for h in store.history_rows(r.id)]
    assert len(ids) == 4 == len(set(ids)) and {row["id"] + 100, row["id"] + 200} <= set(ids)
    add(store, rec("later"))  # new ids never collide with imported ones
    assert len({h["id"] for h in store.history_rows()}) == 5


# -- background-indexing queue -------------------------------------------------------------------
def _queue(store: Store, n: int, scope: Scope = ALICE) -> list[MemoryRecord]:
    out = []
    with store.write() as tx:
        for i in range(n):
            r = rec(f"queued {i}", scope)
            tx.defer_vectors(tx.insert(r), 2)
            out.append(r)
    return out


def test_queue_leases_are_exclusive_until_they_lapse(store: Store) -> None:
    rs = _queue(store, 5)
    _queue(store, 2, BOB)
    assert store.pending_count() == 7 and store.spaces()[DEFAULT_SPACE][0] == 2
    assert [r.id for r in store.pending_in_scope(ALICE)] == [r.id for r in rs]
    first = store.lease_pending(3, 60)
    assert [r.id for r in first] == [r.id for r in rs[:3]]
    second = store.lease_pending(10, 60, exclude=[rs[3].seq])
    assert {r.seq for r in second}.isdisjoint({r.seq for r in first} | {rs[3].seq})
    assert [r.seq for r in store.lease_pending(10, 60)] == [rs[3].seq]  # the excluded one
    assert store.lease_pending(10, 60) == []  # all leased
    assert len(store.lease_pending(10, 60, steal=True)) == 7
    store.unlease([r.seq for r in first])
    assert [r.seq for r in store.lease_pending(10, 60)] == [r.seq for r in first]
    lapsed = store.lease_pending(10, -1, steal=True)  # leases already in the past
    assert len(store.lease_pending(10, 60)) == len(lapsed)


def test_attach_vectors_only_to_the_text_that_was_queued(store: Store) -> None:
    a, b, c = _queue(store, 3)
    b.memory, b.hash = "edited", content_hash("edited")
    with store.write() as tx:
        tx.update(b, text_changed=True)
        tx.delete(c)
    with store.write() as tx:
        assert tx.attach_vectors(a, {DEFAULT_SPACE: vec(1, 0)})
        stale = store.get(b.id)
        assert stale is not None
        stale.hash = content_hash("queued 1")
        assert not tx.attach_vectors(stale, {DEFAULT_SPACE: vec(0, 1)})
        assert not tx.attach_vectors(c, {DEFAULT_SPACE: vec(0, 1)})
    assert store.still_queued([a, b, c]) == [b]
    assert store.vectors(DEFAULT_SPACE, ALICE)[0].tolist() == [a.seq]
    assert store.changes_since(0) is not None


def test_two_processes_share_the_queue_without_overlap(
    location: tuple[str, str], tmp_path: Any
) -> None:
    from tests.support.procs import run_scripts

    s = open_store(*location)
    try:
        rs = _queue(s, 60)
    finally:
        s.close()
    code = (
        "import sys, json\n"
        "from tests.store.conftest import open_store\n"
        "s = open_store(sys.argv[1], sys.argv[2])\n"
        "got = []\n"
        "while batch := s.lease_pending(3, 60):\n"
        "    got += [r.seq for r in batch]\n"
        "open(sys.argv[3], 'w').write(json.dumps(got))\n"
        "s.close()\n"
    )
    outs = [tmp_path / f"w{i}.json" for i in range(2)]
    run_scripts(code, [[*location, str(o)] for o in outs], timeout=120)
    import json

    taken = [json.loads(o.read_text()) for o in outs]
    assert sorted(taken[0] + taken[1]) == sorted(r.seq for r in rs)  # each row once


# -- journal, usage, outbox, stats ---------------------------------------------------------------
def test_journal_upserts(store: Store) -> None:
    with store.write() as tx:
        tx.journal("k1", "pending", payload={"text": "hi"}, kind="ingest")
        tx.journal("k2", "failed", error="boom", payload={"x": 1})
    store.write_journal("k1", "failed", error="e1")
    store.write_journal("k1", "done", result=[{"id": "m"}], batch_id="b1")
    j = store.journal_get("k1")
    assert j is not None
    assert (j["state"], j["attempts"], j["payload"], j["result"], j["batch_id"]) == (
        "done",
        2,
        {"text": "hi"},
        [{"id": "m"}],
        "b1",
    )
    assert [r["key"] for r in store.journal_rows("add", ["failed"])] == ["k2"]
    assert store.journal_states(["k1", "k2", "k3"]) == {"k1": "done", "k2": "failed"}
    assert store.journal_get("k3") is None


def test_journal_copies_row_by_row(store: Store) -> None:
    with store.write() as tx:
        tx.journal("a", "done", result={"r": 1}, payload=[1])
    [row] = list(store.journal_all())
    assert row["payload"] == "[1]" and row["result"] == '{"r": 1}'
    with store.write() as tx:
        tx.restore_journal({**row, "key": "b", "attempts": 7})
        tx.restore_journal({**row, "state": "failed"})  # key a exists: kept
    assert store.journal_states(["a", "b"]) == {"a": "done", "b": "done"}
    b = store.journal_get("b")
    assert b is not None and b["attempts"] == 7 and b["created_at"] == row["created_at"]


def test_usage_totals(store: Store) -> None:
    with store.write() as tx:
        tx.usage("add", "m", {"prompt_tokens": 10, "completion_tokens": 2, "calls": 1})
        tx.usage("add", None, {"prompt_tokens": 5, "cached_tokens": 4, "calls": 1})
    assert store.usage_totals() == {
        "prompt_tokens": 15,
        "completion_tokens": 2,
        "cached_tokens": 4,
        "calls": 2,
    }


def test_outbox_only_when_enabled(store: Store) -> None:
    add(store, rec("quiet"), vectors={DEFAULT_SPACE: vec(1, 0)})
    assert store.outbox() == []
    store.outbox_enabled = True
    [r] = add(store, rec("loud"), vectors={DEFAULT_SPACE: vec(1, 0)})
    with store.write() as tx:
        tx.remove(r, None)
    rows = store.outbox()
    assert [(seq, op) for _, seq, _, op in rows] == [(r.seq, "upsert"), (r.seq, "delete")]
    store.ack_outbox([rows[0][0]])
    assert [op for *_, op in store.outbox()] == ["delete"]


def test_stats(store: Store) -> None:
    add(store, rec("a"), rec("b", BOB), vectors={DEFAULT_SPACE: vec(1, 0)})
    s = store.stats()
    assert (s["memories"], s["active"], s["users"], s["history_events"], s["vectors"]) == (
        2,
        2,
        2,
        2,
        2,
    )
    assert s["spaces"] == {DEFAULT_SPACE: (2, None)} and s["pending_vectors"] == 0
    assert s["size_bytes"] > 0 and store.location in s["path"]
