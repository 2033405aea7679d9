"""What only a server store has: an unreachable database, dropped connections, several
clients, and ``memvault migrate`` between SQLite and PostgreSQL (history included)."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import pytest

from memvault import Memory
from memvault.embedding import LocalEmbedder
from memvault.errors import ConfigError, StorageError
from memvault.scope import Scope
from memvault.store.migrate import copy_store, open_location
from memvault.store.postgres import PostgresStore
from tests.store.test_conformance import ALICE, add, rec
from tests.support.postgres import PostgresServer, _free_port


def test_an_unreachable_database_is_a_clear_storage_error() -> None:
    dsn = f"postgresql://postgres@127.0.0.1:{_free_port()}/nothing"
    t = time.monotonic()
    with pytest.raises(StorageError, match=r"cannot connect to PostgreSQL at postgresql://"):
        PostgresStore(dsn, connect_timeout=2)
    assert time.monotonic() - t < 5


def test_the_password_never_shows(pg_server: PostgresServer) -> None:
    dsn = f"postgresql://postgres:s3cret@127.0.0.1:{_free_port()}/x"
    with pytest.raises(StorageError) as e:
        PostgresStore(dsn, connect_timeout=1)
    assert "s3cret" not in str(e.value)


def test_config_errors_name_the_fix(tmp_path: Path, embedder: LocalEmbedder) -> None:
    with pytest.raises(ConfigError, match="needs a DSN"):
        Memory({"vector_store": {"provider": "postgres", "config": {}}}, embedder=embedder)
    with pytest.raises(ConfigError, match="unknown postgres option"):
        Memory(
            {"vector_store": {"provider": "postgres", "config": {"dsn": "x", "tabel": "y"}}},
            embedder=embedder,
        )


def test_reads_survive_dropped_connections_and_a_restart(
    pg_server: PostgresServer, pg_dsn: str
) -> None:
    s = PostgresStore(pg_dsn, pool_size=2)
    try:
        add(s, rec("kept"))
        pg_server.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE datname = '{pg_dsn.rsplit('/', 1)[1]}' AND pid <> pg_backend_pid()"
        )
        assert [r.memory for r in s.scope_records(ALICE)] == ["kept"]
        pg_server.stop()
        with pytest.raises(StorageError):
            add(s, rec("while down"))
        pg_server.start()
        assert [r.memory for r in s.scope_records(ALICE)] == ["kept"]
        add(s, rec("after"))
        assert [r.memory for r in s.scope_records(ALICE)] == ["kept", "after"]
    finally:
        s.close()


def test_a_write_cut_off_mid_transaction_leaves_nothing(
    pg_server: PostgresServer, pg_dsn: str
) -> None:
    s = PostgresStore(pg_dsn)
    try:
        g = s.generation()
        with pytest.raises(StorageError), s.write() as tx:
            tx.insert(rec("half"))
            pid = tx.conn.execute("SELECT pg_backend_pid()").fetchone()[0]  # type: ignore[index]
            pg_server.execute(f"SELECT pg_terminate_backend({pid})")
            tx.insert(rec("other half"))
        assert s.scope_records(ALICE) == [] and s.generation() == g
    finally:
        s.close()


def test_two_stores_share_one_database_and_see_each_other(pg_dsn: str) -> None:
    a, b = PostgresStore(pg_dsn), PostgresStore(pg_dsn)
    try:
        g = b.generation()
        [r] = add(a, rec("from a"))
        assert b.get(r.id) == r
        assert b.changes_since(g) == [(r.seq, "insert", ALICE)]
    finally:
        a.close()
        b.close()


def test_schemas_keep_stores_apart_in_one_database(pg_dsn: str) -> None:
    a, b = PostgresStore(pg_dsn), PostgresStore(pg_dsn, schema_name="other")
    try:
        add(a, rec("only in a"))
        assert b.scope_records(ALICE) == []
    finally:
        a.close()
        b.close()


def _dump(m: Memory) -> dict[str, Any]:
    store = m._engine.store
    memories = {}
    for r in store.iter_all():
        d = dataclasses.asdict(r)
        d.pop("seq")
        memories[r.id] = (d, {k: v.tobytes() for k, v in store.all_vectors(r.seq).items()})
    return {
        "memories": memories,
        "order": [r.id for r in store.iter_all()],
        "history": list(store.history_rows()),
        "spaces": store.spaces(),
        "journal": list(store.journal_all()),
    }


def test_migrate_to_postgres_and_back(tmp_path: Path, pg_dsn: str, embedder: LocalEmbedder) -> None:
    src = tmp_path / "src.db"
    with Memory({"path": str(src), "embedding_mode": "sync"}, embedder=embedder) as m:
        mid = m.add("I live in Paris", user_id="alice", metadata={"k": 1})["results"][0]["id"]
        m.update(mid, "I live in Lyon")
        m.add(["likes tea", "has a cat"], user_id="bob", idempotency_key="k1")
        gone = m.add("temporary", user_id="bob")["results"][0]["id"]
        m.delete(gone)
        before = _dump(m)
        found = m.search("where does alice live", user_id="alice")["results"]
    counts = _migrate(open_location(str(src)), pg_dsn)
    assert (counts["memories"], counts["history"], counts["journal"]) == (3, 6, 1)
    config = {"vector_store": {"provider": "postgres", "config": {"dsn": pg_dsn}}}
    with Memory(config, embedder=embedder) as pg:
        assert _dump(pg) == before
        assert pg.search("where does alice live", user_id="alice")["results"] == found
        assert pg.history(gone)[-1]["event"] == "DELETE"
        replay = pg.add(["likes tea", "has a cat"], user_id="bob", idempotency_key="k1")
        assert replay.get("replayed") is True
    with pytest.raises(StorageError, match="not empty"):
        _migrate(open_location(str(src)), pg_dsn)
    back = tmp_path / "back.db"
    _migrate(open_location(pg_dsn), str(back))
    with Memory(path=back, embedder=embedder) as m2:
        assert _dump(m2) == before
        assert m2.search("where does alice live", user_id="alice")["results"] == found


def _migrate(src: Any, to: str) -> dict[str, int]:
    """What ``memvault migrate --to`` runs."""
    dst = open_location(to)
    try:
        return copy_store(src, dst)
    finally:
        src.close()
        dst.close()


def test_keyword_ranking_is_the_same_on_both_backends(
    tmp_path: Path, pg_dsn: str, embedder: LocalEmbedder
) -> None:
    texts = [f"note {i}: {w} tea and {w2} cake" for i, (w, w2) in
             enumerate([("green", "lemon"), ("black", "carrot"), ("green", "green"),
                        ("mint", "lemon"), ("oolong", "cheese")])]  # fmt: skip
    config = {"vector_store": {"provider": "postgres", "config": {"dsn": pg_dsn}}}
    out = []
    for m in (Memory(path=tmp_path / "s.db", embedder=embedder), Memory(config, embedder=embedder)):
        with m:
            m.add(texts, user_id="u", infer=False)
            m.add([f"green green {i}" for i in range(30)], user_id="noisy", infer=False)
            hits = m.search("green lemon", user_id="u", explain=True)["results"]
            out.append([(h["memory"], h["score_details"]["bm25_raw"]) for h in hits])
    assert out[0] == out[1] and out[0][0][1] > 0
    assert Scope("u")  # (scope ids only: the noisy user's rows never change u's scores)
