"""The Chroma vector backend against real Chroma: embedded (PersistentClient) and a real
``chroma run`` server on 127.0.0.1, with the bundled MiniLM embedder. No storage mocks.

What must hold: SQLite stays the truth and Chroma a faithful mirror — same search results as
the exact brute-force index, scopes enforced by the Chroma ``where``, updates / deletes /
rebuilds reflected in the collection, writes surviving a server outage (queued in the
outbox, drained when it is back) and several processes sharing one store and one server.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import chromadb
import numpy as np
import pytest
from chromadb.config import Settings

from memvault import Memory
from memvault.embedding import LocalEmbedder
from memvault.errors import ConfigError
from memvault.scope import Scope
from memvault.store.chroma_index import ChromaIndex, chroma_collection_name
from tests.support.chroma_server import ChromaServer, chroma_server

FACTS = {
    "alice": [
        "I adopted a golden retriever puppy named Biscuit.",
        "My favourite food is spicy ramen from the place near the station.",
        "I work as a nurse on night shifts at the city hospital.",
        "My sister is moving to Lisbon in March.",
        "I am allergic to peanuts.",
        "I play the cello in a community orchestra on Thursdays.",
    ],
    "bob": [
        "I drive a red electric car to work every day.",
        "I am learning Japanese for a trip to Kyoto next spring.",
        "My favourite food is pepperoni pizza.",
        "I have two cats called Salt and Pepper.",
        "I run a small bakery that opens at six in the morning.",
    ],
}
QUERIES = [
    "what pets do I have",
    "what food do I like",
    "where is my family moving",
    "what is my job",
    "which language am I studying",
]


@pytest.fixture(scope="module")
def emb() -> LocalEmbedder:
    """One loaded model for the module (loading is the slow part)."""
    e = LocalEmbedder()
    e.load()
    return e


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChromaServer]:
    """One shared server for the module; tests isolate by collection_name."""
    with chroma_server(tmp_path_factory.mktemp("chroma-srv") / "data") as s:
        yield s


def _settings() -> Settings:
    return Settings(anonymized_telemetry=False)


@dataclass
class Backend:
    """How a test reaches one Chroma deployment: memvault config + a raw client."""

    kind: str
    options: dict[str, Any]
    raw: Any  # a chromadb client of our own, to look at the collections directly
    collection_name: str

    def config(self, db: Path, **extra: Any) -> dict[str, Any]:
        return {
            "path": str(db),
            "vector_store": {
                "provider": "chroma",
                "config": {**self.options, "collection_name": self.collection_name, **extra},
            },
        }

    def collection(self, space: str = "default") -> Any:
        return self.raw.get_collection(
            chroma_collection_name(self.collection_name, space), embedding_function=None
        )


@pytest.fixture(params=["embedded", "server"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    name = f"t{uuid.uuid4().hex[:10]}"
    if request.param == "embedded":
        path = tmp_path / "chroma"
        raw = chromadb.PersistentClient(path=str(path), settings=_settings())
        yield Backend("embedded", {"path": str(path)}, raw, name)
    else:
        srv: ChromaServer = request.getfixturevalue("server")
        raw = chromadb.HttpClient(host=srv.host, port=srv.port, settings=_settings())
        yield Backend("server", {"host": srv.host, "port": srv.port}, raw, name)
    raw.close()


@pytest.fixture
def open_memory(emb: LocalEmbedder) -> Iterator[Callable[..., Memory]]:
    """Memory factory whose instances are all closed at teardown."""
    opened: list[Memory] = []

    def make(config: dict[str, Any]) -> Memory:
        m = Memory(config, embedder=emb)
        opened.append(m)
        return m

    yield make
    for m in opened:
        m.close()


def _fill(m: Memory) -> dict[str, list[str]]:
    """Add FACTS; returns memory ids per user."""
    ids: dict[str, list[str]] = {}
    for user, facts in FACTS.items():
        for fact in facts:
            ids.setdefault(user, []).append(m.add(fact, user_id=user)["results"][0]["id"])
    m.flush()  # raw adds embed in the background by default: every vector in Chroma now
    return ids


def _top(m: Memory, query: str, **scope: Any) -> list[tuple[str, float]]:
    res = m.search(query, limit=5, **scope)["results"]
    return [(r["memory"], round(r["score"], 4)) for r in res]


def _chroma_ids(col: Any, **where: Any) -> set[str]:
    return set(col.get(where=where or None, include=[])["ids"])


def _store_ids(m: Memory) -> set[str]:
    return {r.id for r in m._engine.store.iter_all()}


# -- parity, scopes, updates, deletes ---------------------------------------------------------


def test_search_matches_brute_force(
    backend: Backend, tmp_path: Path, open_memory: Callable[..., Memory]
) -> None:
    chroma = open_memory(backend.config(tmp_path / "c.db"))
    exact = open_memory({"path": str(tmp_path / "e.db")})
    assert chroma.stats()["vector_index"] == "chroma"
    assert exact.stats()["vector_index"] == "sqlite"
    _fill(chroma)
    _fill(exact)
    assert backend.collection().count() == sum(map(len, FACTS.values()))
    for user in FACTS:
        for q in QUERIES:
            got, want = _top(chroma, q, user_id=user), _top(exact, q, user_id=user)
            assert [t for t, _ in got] == [t for t, _ in want], (user, q)
            assert [s for _, s in got] == pytest.approx([s for _, s in want], abs=1e-3)
    assert not chroma._engine.index._down  # answered by Chroma, not by the fallback
    # No embedding function was given to Chroma (nothing to download); cosine space.
    cfg = backend.collection().configuration_json
    assert cfg["embedding_function"] in (None, {"type": "legacy"})
    assert cfg["hnsw"]["space"] == "cosine"


def test_scope_isolation_through_where(
    backend: Backend, tmp_path: Path, open_memory: Callable[..., Memory], emb: LocalEmbedder
) -> None:
    m = open_memory(backend.config(tmp_path / "m.db"))
    ids = _fill(m)
    tagged = m.add("I keep my passport in the blue drawer.", user_id="alice", agent_id="travel")[
        "results"
    ][0]["id"]
    for user, own in ids.items():
        got = {r["id"] for r in m.search("favourite food", user_id=user, limit=50)["results"]}
        assert got and got <= set(own) | {tagged}
    got = [r["id"] for r in m.search("passport", user_id="alice", agent_id="travel")["results"]]
    assert got == [tagged]
    # The index itself (not only the engine's view) returns nothing outside the scope.
    store, index = m._engine.store, m._engine.index
    q = emb.embed(["favourite food"])[0]
    for scope, allowed in ((Scope("bob"), ids["bob"]), (Scope("alice", "travel"), [tagged])):
        seqs, scores = index.search("default", q, scope, store.generation(), 50)
        assert {store.seq_scopes(seqs.tolist())[s][0] for s in seqs.tolist()} == set(allowed)
        assert scores.dtype == np.float32 and seqs.dtype == np.int64
    assert _chroma_ids(backend.collection(), agent_id="travel") == {tagged}
    assert not index._down


def test_update_reindexes(
    backend: Backend, tmp_path: Path, open_memory: Callable[..., Memory], emb: LocalEmbedder
) -> None:
    m = open_memory(backend.config(tmp_path / "m.db"))
    _fill(m)
    mid = m.add("I live in Berlin.", user_id="alice")["results"][0]["id"]
    m.update(mid, "I moved to Tokyo last year and love the city.")
    assert m.search("which city did I move to", user_id="alice")["results"][0]["id"] == mid
    stored = backend.collection().get(ids=[mid], include=["embeddings"])["embeddings"][0]
    want = emb.embed(["I moved to Tokyo last year and love the city."])[0]
    assert float(np.dot(stored, want)) == pytest.approx(1.0, abs=1e-4)
    assert _chroma_ids(backend.collection()) == _store_ids(m)


def test_delete_and_delete_all(
    backend: Backend, tmp_path: Path, open_memory: Callable[..., Memory]
) -> None:
    m = open_memory(backend.config(tmp_path / "m.db"))
    ids = _fill(m)
    col = backend.collection()
    m.delete(ids["alice"][0])
    assert col.count() == sum(map(len, FACTS.values())) - 1
    assert ids["alice"][0] not in _chroma_ids(col)
    m.delete_all(user_id="alice")
    assert _chroma_ids(col, user_id="alice") == set()
    assert _chroma_ids(col, user_id="bob") == set(ids["bob"]) == _chroma_ids(col)
    assert m._engine.store.outbox() == []


def test_multi_vector_items_max_pool_and_shrink(
    backend: Backend, tmp_path: Path, open_memory: Callable[..., Memory]
) -> None:
    m = open_memory(backend.config(tmp_path / "m.db"))
    rng = np.random.default_rng(7)
    a, b, c = (v / np.linalg.norm(v) for v in rng.normal(size=(3, 16)).astype(np.float32))
    mid = m.add(
        "a note with two views",
        user_id="u",
        vector_space="byo",
        embeddings=[[a.tolist(), b.tolist()]],
    )["results"][0]["id"]
    m.add("another note", user_id="u", vector_space="byo", embeddings=[c.tolist()])
    col = backend.collection("byo")
    assert _chroma_ids(col) >= {f"{mid}#0", f"{mid}#1"}
    seqs, scores = m._engine.index.search("byo", b, Scope("u"), 0, 10)
    assert len(seqs) == len(set(seqs.tolist())) == 2  # one row per memory (max-pooled)
    assert float(scores.max()) == pytest.approx(1.0, abs=1e-4)
    assert m.search(vector=b.tolist(), vector_space="byo", user_id="u")["results"][0]["id"] == mid
    # Fewer vectors than before: the extra Chroma ids must go (the outbox re-reads SQLite).
    store = m._engine.store
    rec = store.get(mid)
    assert rec is not None and rec.seq is not None
    with store.write() as tx:
        tx._put_vectors(rec.seq, mid, {"byo": a[None, :]})
    m._engine.index.sync(tx.touched, tx.removed)
    assert mid in _chroma_ids(col) and f"{mid}#1" not in _chroma_ids(col)


def test_rebuild_restores_a_collection_deleted_behind_our_back(
    backend: Backend, tmp_path: Path, open_memory: Callable[..., Memory]
) -> None:
    m = open_memory(backend.config(tmp_path / "m.db"))
    _fill(m)
    before = _top(m, "what food do I like", user_id="bob")
    backend.raw.delete_collection(chroma_collection_name(backend.collection_name, "default"))
    assert _top(m, "what food do I like", user_id="bob") == before  # still right meanwhile
    assert m._engine.index.rebuild() == sum(map(len, FACTS.values()))
    assert _chroma_ids(backend.collection()) == _store_ids(m)
    assert _top(m, "what food do I like", user_id="bob") == before
    # A store reset also empties Chroma (spaces SQLite no longer knows included).
    m.reset()
    assert backend.collection_name not in {
        (c.metadata or {}).get("memvault") for c in backend.raw.list_collections()
    }


# -- outages, catch-up, several processes (server only) ---------------------------------------


def test_server_outage_writes_queue_and_search_falls_back(
    tmp_path: Path, open_memory: Callable[..., Memory], caplog: pytest.LogCaptureFixture
) -> None:
    srv = ChromaServer(tmp_path / "srv")
    try:
        srv.start()
        cfg = {
            "path": str(tmp_path / "m.db"),
            "vector_store": {"provider": "chroma", "config": {"host": srv.host, "port": srv.port}},
            # Inline vectors, so each write below queues its Chroma upsert at once.
            "embedding_mode": "sync",
        }
        m = open_memory(cfg)
        ids = _fill(m)
        truth = open_memory({"path": str(tmp_path / "m.db")})  # exact index, same SQLite file
        srv.stop()
        caplog.set_level(logging.WARNING, logger="memvault.chroma")
        # Search with an empty outbox: the query fails, brute force answers.
        assert _top(m, "what food do I like", user_id="bob") == _top(
            truth, "what food do I like", user_id="bob"
        )
        # A duplicate add writes nothing for Chroma: it must not be taken for a recovery.
        assert m.add(FACTS["bob"][2], user_id="bob")["results"][0]["event"] == "NONE"
        added = [
            m.add(f"Outage note {i}: I bought a green bicycle.", user_id="alice")["results"][0][
                "id"
            ]
            for i in range(3)
        ]
        m.update(ids["bob"][0], "I sold my car and now take the tram.")
        m.delete(ids["alice"][1])
        assert len(m._engine.store.outbox()) == 5
        for q in ("green bicycle", "how do I get to work"):
            for user in FACTS:
                assert _top(m, q, user_id=user) == _top(truth, q, user_id=user)
        # A process opening the store during the outage opens fine too.
        open_memory(cfg).add("Opened while Chroma was down.", user_id="carol")
        warnings = [
            r
            for r in caplog.records
            if r.name == "memvault.chroma" and r.levelno == logging.WARNING
        ]
        assert len(warnings) == 2, [r.getMessage() for r in warnings]  # once per index
        assert "outbox" in warnings[0].getMessage()

        srv.start()  # same port, same data directory
        m.search("bicycle", user_id="alice")  # a search finds the index behind: drains first
        assert m._engine.store.outbox() == []
        assert not m._engine.index._down
        m.add("Back online.", user_id="alice")
        raw = chromadb.HttpClient(host=srv.host, port=srv.port, settings=_settings())
        col = raw.get_collection("memvault__default", embedding_function=None)
        assert _chroma_ids(col) == _store_ids(m)
        assert set(added) <= _chroma_ids(col) and ids["alice"][1] not in _chroma_ids(col)
        assert _top(m, "how do I get to work", user_id="bob") == _top(
            truth, "how do I get to work", user_id="bob"
        )
        raw.close()
    finally:
        srv.stop()


_WORKER = textwrap.dedent("""
    import sys
    import numpy as np
    from memvault import Memory

    db, host, port, who = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    cfg = {"path": db, "vector_store": {"provider": "chroma",
                                        "config": {"host": host, "port": port}}}
    vecs = np.random.default_rng(int(who)).normal(size=(20, 32))
    with Memory(cfg) as m:  # vectors given: the embedding model is never loaded
        for i, v in enumerate(vecs):
            m.add(f"process {who} memory {i}", user_id=f"p{who}", embeddings=[v.tolist()])
""")


def test_two_processes_share_one_store_and_one_server(
    tmp_path: Path, server: ChromaServer, open_memory: Callable[..., Memory]
) -> None:
    db = tmp_path / "shared.db"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, str(db), server.host, str(server.port), who],
            stderr=subprocess.PIPE,
        )
        for who in ("1", "2")
    ]
    try:
        for p in procs:
            _, err = p.communicate(timeout=180)
            assert p.returncode == 0, err.decode()
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    m = open_memory(
        {
            "path": str(db),
            "vector_store": {
                "provider": "chroma",
                "config": {"host": server.host, "port": server.port},
            },
        }
    )
    assert m._engine.store.outbox() == []
    raw = chromadb.HttpClient(host=server.host, port=server.port, settings=_settings())
    col = raw.get_collection("memvault__default", embedding_function=None)
    assert col.count() == 40 and _chroma_ids(col) == _store_ids(m)
    for who in ("1", "2"):
        vecs = np.random.default_rng(int(who)).normal(size=(20, 32))
        for i in (0, 7, 19):
            top = m.search(vector=vecs[i].tolist(), user_id=f"p{who}", limit=1)["results"]
            assert top[0]["memory"] == f"process {who} memory {i}"
    raw.close()


# -- configuration ----------------------------------------------------------------------------


def test_mem0_config_shape_and_default_location(
    tmp_path: Path, open_memory: Callable[..., Memory]
) -> None:
    chroma_dir = tmp_path / "db"
    m = open_memory(
        {
            "path": str(tmp_path / "m.db"),
            "vector_store": {
                "provider": "chroma",
                "config": {"collection_name": "test", "path": str(chroma_dir)},
            },
        }
    )
    m.add("hello there", user_id="u")
    m.flush()
    raw = chromadb.PersistentClient(path=str(chroma_dir), settings=_settings())
    assert raw.get_collection("test__default", embedding_function=None).count() == 1
    raw.close()
    # Neither path nor host: a directory next to the SQLite file.
    n = open_memory({"path": str(tmp_path / "n.db"), "vector_store": {"provider": "chroma"}})
    n.add("hi", user_id="u")
    n.flush()
    assert (tmp_path / "n.db.chroma").is_dir()


@pytest.mark.parametrize(
    "options, message",
    [
        ({"url": "http://x"}, "unknown chroma vector_store option"),
        ({"path": "x", "host": "127.0.0.1"}, "one of path"),
        ({"port": 8000}, "port needs host"),
        ({"host": "127.0.0.1", "port": "eighty"}, "port must be an integer"),
    ],
)
def test_bad_options_are_config_errors(
    tmp_path: Path, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        Memory(
            {
                "path": str(tmp_path / "m.db"),
                "vector_store": {"provider": "chroma", "config": options},
            }
        )


def test_missing_chromadb_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from memvault.store.sqlite import SQLiteStore

    monkeypatch.setitem(sys.modules, "chromadb", None)  # what `import` sees when not installed
    store = SQLiteStore(tmp_path / "m.db")
    try:
        with pytest.raises(ConfigError, match=r"pip install 'memvault\[chroma\]'"):
            ChromaIndex(store)
    finally:
        store.close()


def test_collection_names_are_valid_and_distinct() -> None:
    names = {chroma_collection_name("memvault", s) for s in ("default", "a b", "a_b", "é", "")}
    assert len(names) == 5
    assert chroma_collection_name("memvault", "default") == "memvault__default"
    for n in names:
        assert 3 <= len(n) <= 512 and n[0].isalnum() and n[-1].isalnum()
