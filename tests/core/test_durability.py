"""Real processes: concurrent writers lose nothing; kill -9 leaves all or nothing."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from memvault import Memory
from memvault.embedding import LocalEmbedder
from tests.support.procs import run_scripts

WRITER = textwrap.dedent("""
    import sys
    from memvault import Memory
    path, who, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with Memory(path=path) as m:
        for i in range(n):
            m.add(f"{who} remembers item {i}", user_id=who)
""")

LOOPER = textwrap.dedent("""
    import sys
    from memvault import Memory
    path = sys.argv[1]
    with Memory(path=path) as m:
        i = 0
        while True:
            vec = [[float((i * 7 + j) % 11) + 1.0 for j in range(8)]]
            m.add([f"loop fact {i} a", f"loop fact {i} b"], user_id="loop", infer=False,
                  embeddings=[vec, vec], vector_space="v8")
            if i % 2 == 0:
                m.update(m.get_all(user_id="loop", top_k=1)["results"][0]["id"], f"edited {i}")
            print(i, flush=True)
            i += 1
""")


def test_concurrent_processes_lose_no_write(tmp_path: Path, embedder: LocalEmbedder) -> None:
    path = tmp_path / "shared.db"
    Memory(path=path, embedder=embedder).close()
    run_scripts(WRITER, [(str(path), f"w{k}", "15") for k in range(4)], timeout=300)
    with Memory(path=path, embedder=embedder) as m:
        for k in range(4):
            got = {r["memory"] for r in m.get_all(user_id=f"w{k}", top_k=100)["results"]}
            assert got == {f"w{k} remembers item {i}" for i in range(15)}
        assert m.stats()["history_events"] == 60
        hits = m.search("w2 remembers item 7", user_id="w2")["results"]
        assert hits[0]["memory"] == "w2 remembers item 7"


def _check_consistent(path: Path) -> int:
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        seqs = {r[0] for r in db.execute("SELECT seq FROM memories")}
        fts = {r[0] for r in db.execute("SELECT rowid FROM fts")}
        vec = {r[0] for r in db.execute("SELECT DISTINCT seq FROM vectors")}
        assert seqs == fts == vec, "memory, keyword index and vectors disagree"
        ids = {r[0] for r in db.execute("SELECT id FROM memories")}
        added = {r[0] for r in db.execute("SELECT memory_id FROM history WHERE event='ADD'")}
        assert ids == added, "a memory without its history row (or the reverse)"
        # Every UPDATE in history is reflected in the memory text, and vice versa.
        for mid, text in db.execute("SELECT id, memory FROM memories"):
            last = db.execute(
                "SELECT new_memory FROM history WHERE memory_id=? ORDER BY id DESC LIMIT 1", (mid,)
            ).fetchone()[0]
            assert last == text
        return len(ids)
    finally:
        db.close()


def test_kill_9_leaves_all_or_nothing(tmp_path: Path) -> None:
    path = tmp_path / "crash.db"
    total = 0
    for round_ in range(3):
        p = subprocess.Popen(
            [sys.executable, "-c", LOOPER, str(path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert p.stdout is not None
            for _ in range(5 + 7 * round_):  # let it get well into its write loop
                if not p.stdout.readline():
                    raise AssertionError(p.stderr.read() if p.stderr else "writer died")
            time.sleep(0.013 * (round_ + 1))  # land the kill at a different moment each round
            p.send_signal(signal.SIGKILL)
            p.wait(timeout=30)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        count = _check_consistent(path)
        assert count > total
        total = count


def test_processes_creating_one_new_store_at_once(tmp_path: Path) -> None:
    """Several processes opening a store file that does not exist yet all succeed."""
    path = tmp_path / "new.db"
    code = (
        "import sys\nfrom memvault import Memory\n"
        "from memvault.embedding import CallableEmbedder\n"
        "emb = CallableEmbedder(lambda t: [[1.0, 0.0]] * len(t), 2, name='unit')\n"
        "with Memory(path=sys.argv[1], embedder=emb) as m:\n"
        "    m.add(f'hello from {sys.argv[2]}', user_id='u')\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(path), str(k)], stderr=subprocess.PIPE)
        for k in range(6)
    ]
    try:
        for p in procs:
            _, err = p.communicate(timeout=120)
            assert p.returncode == 0, err.decode()
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    db = sqlite3.connect(path)
    try:
        assert db.execute("SELECT COUNT(*) FROM memories").fetchone()[0] == 6
    finally:
        db.close()


BACKGROUND_LOOPER = textwrap.dedent("""
    import sys
    from memvault import Memory
    with Memory(path=sys.argv[1]) as m:  # the default: background indexing
        i = 0
        while True:
            m.add([f"queued fact {i} about kites", f"queued fact {i} about boats"],
                  user_id="loop", infer=False)
            print(i, flush=True)
            i += 1
""")


def test_kill_9_with_background_indexing_loses_no_vector(
    tmp_path: Path, embedder: LocalEmbedder
) -> None:
    """Killed while adds queue and the worker embeds: every memory has its vector or its
    queue entry (never both, never neither); reopening finishes the queue."""
    path = tmp_path / "queue.db"
    for round_ in range(2):
        p = subprocess.Popen(
            [sys.executable, "-c", BACKGROUND_LOOPER, str(path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert p.stdout is not None
            for _ in range(20 + 30 * round_):
                if not p.stdout.readline():
                    raise AssertionError(p.stderr.read() if p.stderr else "writer died")
            p.send_signal(signal.SIGKILL)
            p.wait(timeout=30)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        db = sqlite3.connect(path)
        try:
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            seqs = {r[0] for r in db.execute("SELECT seq FROM memories")}
            fts = {r[0] for r in db.execute("SELECT rowid FROM fts")}
            vec = {r[0] for r in db.execute("SELECT DISTINCT seq FROM vectors")}
            queued = {r[0] for r in db.execute("SELECT seq FROM pending_vectors")}
            assert seqs == fts and seqs == vec | queued and not vec & queued
        finally:
            db.close()
    with Memory(path=path, embedder=embedder) as m:
        m.flush()
        stats = m.stats()
        assert stats["pending_vectors"] == 0 and stats["vectors"] == stats["memories"]
        hit = m.search("flying kites", user_id="loop", explain=True)["results"][0]
        assert "kites" in hit["memory"] and hit["score_details"]["semantic_similarity"] > 0.2
