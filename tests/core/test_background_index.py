"""embedding_mode="background": raw adds return before their vector, nothing is lost."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from memvault import Memory
from memvault.embedding import LocalEmbedder


def background(path: Path, embedder: LocalEmbedder) -> Memory:
    return Memory({"path": str(path), "embedding_mode": "background"}, embedder=embedder)


def test_adds_are_searchable_at_once_and_gain_vectors(
    store_path: Path, embedder: LocalEmbedder
) -> None:
    with background(store_path, embedder) as m:
        ids = [
            r["id"]
            for r in m.add(
                ["My sister Ana lives in Porto", "We adopted a grey cat called Miso"],
                user_id="u",
                infer=False,
            )["results"]
        ]
        # Keyword search works immediately, vectors or not.
        assert m.search("Porto", user_id="u")["results"][0]["id"] == ids[0]
        m.flush()  # (the worker may already have done it; flush makes it certain)
        assert m.stats()["pending_vectors"] == 0
        hit = m.search("which pet does the family have", user_id="u", explain=True)["results"]
        assert hit[0]["id"] == ids[1]
        assert hit[0]["score_details"]["semantic_similarity"] > 0.2
        assert m.get(ids[1], include_vectors=True)["vectors"]["default"]  # type: ignore[index]


def test_the_worker_indexes_without_flush(store_path: Path, embedder: LocalEmbedder) -> None:
    with background(store_path, embedder) as m:
        m.add([f"note {i} about gardening" for i in range(30)], user_id="u", infer=False)
        deadline = time.monotonic() + 60
        while m.stats()["pending_vectors"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert m.stats()["pending_vectors"] == 0
        assert m.stats()["vectors"] == 30


def test_queued_work_survives_close_and_is_finished_on_reopen(
    store_path: Path, embedder: LocalEmbedder
) -> None:
    m = background(store_path, embedder)
    m._engine.indexer.close()  # the worker is gone: nothing drains (as if the process died)
    m.add([f"fact {i} about rivers" for i in range(5)], user_id="u", infer=False)
    m.close()
    db = sqlite3.connect(store_path)
    assert db.execute("SELECT COUNT(*) FROM pending_vectors").fetchone()[0] == 5
    db.close()
    with background(store_path, embedder) as again:
        assert again.flush() + again.stats()["vectors"] >= 5
        assert again.stats()["pending_vectors"] == 0
    with Memory(path=store_path, embedder=embedder) as sync:  # and a sync store reads it all
        assert len(sync.search("rivers", user_id="u")["results"]) == 5


def test_deleting_a_queued_memory_drops_its_queue_entry(
    store_path: Path, embedder: LocalEmbedder
) -> None:
    m = background(store_path, embedder)
    try:
        m._engine.indexer.close()
        mid = m.add("temporary", user_id="u", infer=False)["results"][0]["id"]
        m.delete(mid)
        assert m.stats()["pending_vectors"] == 0
        assert m.flush() == 0
    finally:
        m.close()
