"""Schema migrations: a store written by an older memvault opens, upgraded in place."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from memvault import Memory
from memvault.embedding import LocalEmbedder
from memvault.errors import StorageError
from memvault.store.sqlite import SCHEMA_VERSION


def _downgrade_to_v1(path: Path) -> None:
    """Rewrite a current store into the v1 layout: a keyword index without the scope column."""
    db = sqlite3.connect(path)
    with db:
        rows = db.execute("SELECT rowid, terms FROM fts").fetchall()
        db.execute("DROP TABLE fts")
        db.execute("CREATE VIRTUAL TABLE fts USING fts5(terms, tokenize = 'unicode61')")
        db.executemany("INSERT INTO fts (rowid, terms) VALUES (?, ?)", rows)
        queued = db.execute("SELECT seq FROM pending_vectors").fetchall()
        db.execute("DROP TABLE pending_vectors")
        db.execute("CREATE TABLE pending_vectors (seq INTEGER PRIMARY KEY)")
        db.executemany("INSERT INTO pending_vectors (seq) VALUES (?)", queued)
        db.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    db.close()


def _fts_columns(path: Path) -> list[str]:
    db = sqlite3.connect(path)
    try:
        return [r[1] for r in db.execute("PRAGMA table_info(fts)")]
    finally:
        db.close()


def test_v1_store_is_upgraded_and_keyword_search_stays_scoped(
    tmp_path: Path, embedder: LocalEmbedder
) -> None:
    path = tmp_path / "old.db"
    with Memory(path=path, embedder=embedder) as m:
        mine = m.add("Ordered the zanzibar blend again", user_id="ana", infer=False)
        m.add("The zanzibar trip is booked", user_id="ben", infer=False)
        m.flush()
        m._engine.indexer.close()
        m.add("Likes green tea", user_id="ana", infer=False)  # still queued at the upgrade
    _downgrade_to_v1(path)
    assert _fts_columns(path) == ["terms"]

    with Memory(path=path, embedder=embedder) as m:
        hits = m.search("zanzibar", user_id="ana", explain=True)["results"]
        # The keyword index was rebuilt: the rare word scores by BM25, only in ana's scope.
        assert hits[0]["id"] == mine["results"][0]["id"]
        assert hits[0]["score_details"]["bm25_raw"] > 0
        assert all(h["user_id"] == "ana" for h in hits)
        assert m.history(hits[0]["id"])[0]["event"] == "ADD"
    assert _fts_columns(path) == ["terms", "scope"]
    with Memory(path=path, embedder=embedder) as m:  # the queued memory survived: indexed
        m.flush()
        assert m.stats()["pending_vectors"] == 0 and m.stats()["vectors"] == 3
    db = sqlite3.connect(path)
    version = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0]
    db.close()
    assert int(version) == SCHEMA_VERSION


def test_store_from_a_newer_memvault_is_refused_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    with Memory(path=path) as m:
        m.add("kept as it is", user_id="u", infer=False)
    db = sqlite3.connect(path)
    with db:
        db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (SCHEMA_VERSION + 1,))
    db.close()
    with pytest.raises(StorageError, match="newer than this memvault"):
        Memory(path=path)
    db = sqlite3.connect(path)
    assert db.execute("SELECT memory FROM memories").fetchall() == [("kept as it is",)]
    db.close()


def test_keyword_scores_ignore_other_scopes_sharing_the_word(
    tmp_path: Path, embedder: LocalEmbedder
) -> None:
    """Many users share a word: each scope's BM25 sees its own rows, ranked alike."""
    with Memory(path=tmp_path / "m.db", embedder=embedder) as m:
        for i in range(30):
            m.add(f"user {i} mentioned the marathon", user_id=f"u{i}", infer=False)
        target = m.add("Training for the marathon in April", user_id="me", infer=False)
        m.add("Bought new running shoes", user_id="me", infer=False)
        m.add("marathon", agent_id="coach", infer=False)
        hits = m.search("marathon", user_id="me", explain=True)["results"]
        assert hits[0]["id"] == target["results"][0]["id"]
        assert {h["user_id"] for h in hits} == {"me"}
        keyword_hits = [h for h in hits if h["score_details"]["bm25_raw"] > 0]
        assert len(keyword_hits) == 1
        # A scope of several ids matches only rows holding all of them.
        m.add("marathon pacing plan", user_id="me", agent_id="coach", infer=False)
        both = m.search("marathon", user_id="me", agent_id="coach", explain=True)["results"]
        assert [h["memory"] for h in both] == ["marathon pacing plan"]


def test_v4_store_is_stamped_v5_unchanged(tmp_path: Path, embedder: LocalEmbedder) -> None:
    """v5 changed only the PostgreSQL schema: a v4 SQLite file just gets the new stamp."""
    path = tmp_path / "v4.db"
    with Memory(path=path, embedder=embedder) as m:
        kept = m.add("Booked the kayak tour for Tuesday", user_id="ana", infer=False)
    db = sqlite3.connect(path)
    with db:
        db.execute("UPDATE meta SET value = '4' WHERE key = 'schema_version'")
    db.close()
    with Memory(path=path, embedder=embedder) as m:
        hits = m.search("kayak", user_id="ana", explain=True)["results"]
        assert hits[0]["id"] == kept["results"][0]["id"]
        assert hits[0]["score_details"]["bm25_raw"] > 0
    db = sqlite3.connect(path)
    assert db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() == (
        str(SCHEMA_VERSION),
    )
    db.close()


def test_v4_postgres_store_drops_the_terms_index_and_keeps_the_terms(
    pg_dsn: str, embedder: LocalEmbedder
) -> None:
    """v4 -> v5 on PostgreSQL: the GIN index on the terms and ``n_terms`` go, nothing else."""
    psycopg = pytest.importorskip("psycopg")
    config = {"vector_store": {"provider": "postgres", "config": {"dsn": pg_dsn}}}
    with Memory(config, embedder=embedder) as m:
        texts = ["Booked the kayak tour for Tuesday", "Likes green tea"]
        tour, tea = (r["id"] for r in m.add(texts, user_id="ana", infer=False)["results"])
        m.add("The kayak is red", user_id="ben", infer=False)
    with psycopg.connect(pg_dsn, autocommit=True) as c:  # the v4 layout, as v4 created it
        c.execute("ALTER TABLE memvault.memories ADD COLUMN n_terms integer NOT NULL DEFAULT 0")
        c.execute("UPDATE memvault.memories SET n_terms = cardinality(terms)")
        c.execute("CREATE INDEX memories_terms ON memvault.memories USING gin (terms)")
        c.execute("UPDATE memvault.meta SET value = '4' WHERE key = 'schema_version'")
        before = dict(c.execute("SELECT id, terms FROM memvault.memories").fetchall())

    with Memory(config, embedder=embedder) as m:
        hits = m.search("kayak", user_id="ana", explain=True)["results"]
        assert hits[0]["id"] == tour and hits[0]["score_details"]["bm25_raw"] > 0
        assert all(h["user_id"] == "ana" for h in hits)
        # Writes no longer name n_terms: an add and a text update work on the migrated table.
        paddle = m.add("Renting a kayak paddle", user_id="ana", infer=False)["results"][0]["id"]
        m.update(tea, "Likes kayak trips and green tea")
        hits = m.search("kayak", user_id="ana", explain=True)["results"]
        keyword = {h["id"] for h in hits if h["score_details"]["bm25_raw"] > 0}
        assert keyword == {tour, tea, paddle}

    with psycopg.connect(pg_dsn) as c:
        rows = c.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = 'memvault' AND table_name = 'memories'"
        )
        columns = {r[0] for r in rows}
        assert "n_terms" not in columns and "terms" in columns
        rows = c.execute("SELECT indexname FROM pg_indexes WHERE schemaname = 'memvault'")
        assert "memories_terms" not in {r[0] for r in rows}
        after = dict(c.execute("SELECT id, terms FROM memvault.memories").fetchall())
        del before[tea]  # re-analysed by the update, checked below
        assert {k: after[k] for k in before} == before
        assert after[tea] == ["like", "kayak", "trip", "green", "tea"]
        version = c.execute("SELECT value FROM memvault.meta WHERE key = 'schema_version'")
        assert version.fetchone() == (str(SCHEMA_VERSION),)
