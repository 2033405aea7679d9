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


def test_search_reads_its_own_writes_by_vector(store_path: Path, embedder: LocalEmbedder) -> None:
    """A search embeds its scope's queued memories first: no window where the newest is
    missing from the dense side, and other scopes' queue is left to the worker."""
    m = background(store_path, embedder)
    try:
        m._engine.indexer.close()  # no worker: only the search itself can embed
        mine = m.add("We adopted a grey cat called Miso", user_id="u", infer=False)
        m.add("Planning a cycling holiday", user_id="other", infer=False)
        hit = m.search("which pet does the family have", user_id="u", explain=True)["results"]
        assert hit[0]["id"] == mine["results"][0]["id"]
        assert hit[0]["score_details"]["semantic_similarity"] > 0.2
        assert m.stats()["pending_vectors"] == 1  # the other user's memory is still queued
        assert m.get(mine["results"][0]["id"], include_vectors=True)["vectors"]["default"]
    finally:
        m.close()


async def test_async_search_reads_its_own_writes(store_path: Path, embedder: LocalEmbedder) -> None:
    from memvault import AsyncMemory

    m = AsyncMemory({"path": str(store_path), "embedding_mode": "background"}, embedder=embedder)
    try:
        m._engine.indexer.close()
        added = await m.add("Allergic to peanuts", user_id="u", infer=False)
        hit = await m.search("food the user must avoid", user_id="u", explain=True)
        assert hit["results"][0]["id"] == added["results"][0]["id"]
        assert hit["results"][0]["score_details"]["semantic_similarity"] > 0.2
    finally:
        await m.close()


async def test_concurrent_searches_embed_a_queued_memory_once(
    store_path: Path, embedder: LocalEmbedder
) -> None:
    """Fifty searches racing on one queued memory: one embeds it, the others wait for it
    (without holding pool threads: the pool is smaller than the crowd)."""
    import asyncio

    from memvault import AsyncMemory
    from memvault.embedding import CallableEmbedder

    passages: list[str] = []

    def embed(texts: list[str]) -> list[list[float]]:
        passages.extend(t for t in texts if t.startswith("Moved"))
        return embedder.embed(texts).tolist()

    counting = CallableEmbedder(embed, 384, name=embedder.name)
    m = AsyncMemory(
        {"path": str(store_path), "embedding_mode": "background"}, embedder=counting, max_workers=4
    )
    try:
        m._engine.indexer.close()
        added = await m.add("Moved to Lisbon last spring", user_id="u", infer=False)
        results = await asyncio.gather(
            *(m.search(f"where does the user live now? {i}", user_id="u") for i in range(50))
        )
        assert all(r["results"][0]["id"] == added["results"][0]["id"] for r in results)
        assert passages == ["Moved to Lisbon last spring"]
    finally:
        await m.close()


def test_a_stale_vector_never_lands_on_edited_text(
    store_path: Path, embedder: LocalEmbedder
) -> None:
    """The worker read a queued memory, then the memory was updated before it attached the
    vector: the old text's vector is dropped, the update's own vector stays."""
    import numpy as np

    m = background(store_path, embedder)
    try:
        indexer = m._engine.indexer
        indexer.close()
        mid = m.add("I live in Berlin.", user_id="u", infer=False)["results"][0]["id"]
        read_by_worker = m._engine.store.lease_pending(10, 60.0)
        m.update(mid, "I moved to Tokyo last year.")
        indexer.attach(read_by_worker, embedder.embed([r.memory for r in read_by_worker]))
        stored = np.asarray(m.get(mid, include_vectors=True)["vectors"]["default"][0])
        want = embedder.embed(["I moved to Tokyo last year."])[0]
        assert float(stored @ want) > 0.999
        assert m.stats()["pending_vectors"] == 0
    finally:
        m.close()


SHARING_INDEXER = """
import sys, time
from pathlib import Path
from memvault import Memory
from memvault.embedding import CallableEmbedder

path, log, go = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])

def embed(texts):
    time.sleep(0.05)  # a slow model: both processes' workers overlap in time
    with log.open("a") as f:
        f.writelines(t + "\\n" for t in texts)
    return [[1.0] + [0.0] * 7 for _ in texts]

while not go.exists():
    time.sleep(0.01)
with Memory(path=path, embedder=CallableEmbedder(embed, 8, name="unit")) as m:
    deadline = time.monotonic() + 60
    while m.stats()["pending_vectors"] and time.monotonic() < deadline:
        time.sleep(0.02)
"""


def test_processes_share_the_queue_without_embedding_twice(tmp_path: Path) -> None:
    """Two processes' background indexers drain one queue: leases split the work, so no
    memory is embedded by both, and every memory gets its vector."""
    from memvault.embedding import CallableEmbedder
    from tests.support.procs import run_scripts

    path = tmp_path / "shared.db"
    unit = CallableEmbedder(lambda t: [[1.0] + [0.0] * 7 for _ in t], 8, name="unit")
    with Memory(path=str(path), embedder=unit) as m:
        m._engine.indexer.close()  # queue only
        m.add([f"queued note {i}" for i in range(160)], user_id="u", infer=False)
    go = tmp_path / "go"
    logs = [tmp_path / f"p{k}.log" for k in range(2)]
    run_scripts(
        SHARING_INDEXER,
        [(str(path), str(log), str(go)) for log in logs],
        timeout=120,
        before_wait=go.touch,
    )
    done = [set(log.read_text().split("\n")) - {""} if log.exists() else set() for log in logs]
    assert not done[0] & done[1], "a memory was embedded by both processes"
    assert done[0] | done[1] == {f"queued note {i}" for i in range(160)}
    with Memory(path=str(path), embedder=unit) as m:
        assert m.stats()["pending_vectors"] == 0 and m.stats()["vectors"] == 160


def test_a_failed_batch_is_retried_without_waiting_for_its_lease(store_path: Path) -> None:
    """The embedder fails once (e.g. a remote model hiccups): the worker logs it, gives
    the rows back and indexes them on its next pass, not a lease period later."""
    from memvault.embedding import CallableEmbedder

    calls = {"n": 0}

    def flaky(texts: list[str]) -> list[list[float]]:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("model hiccup")
        return [[1.0, 0.0, 0.0, 0.0] for _ in texts]

    with Memory(path=str(store_path), embedder=CallableEmbedder(flaky, 4, name="flaky")) as m:
        m.add(["first", "second"], user_id="u", infer=False)
        deadline = time.monotonic() + 20  # well under the 60 s lease
        while m.stats()["pending_vectors"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert m.stats()["pending_vectors"] == 0 and calls["n"] >= 2
