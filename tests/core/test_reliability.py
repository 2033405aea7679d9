"""Release blockers of the reliability review: nothing leaks, nothing aborts, nothing foreign
is touched.

- an idempotency key is unique within its scope, on every path that reads the journal;
- a plain script that never calls ``close()`` exits 0, every time;
- an existing SQLite database that is not a memvault store is refused, byte for byte intact.
"""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from memvault import AsyncMemory, LLMError, Memory, StorageError, ValidationError
from memvault.embedding import LocalEmbedder
from memvault.scope import Scope, scoped_key
from memvault.store.sqlite import SCHEMA_VERSION
from tests.support.fake_openai import FakeOpenAI

# -- 1. idempotency keys are scoped -------------------------------------------------------------


def test_same_key_in_another_scope_is_a_new_add(memory: Memory) -> None:
    alice = memory.add(
        "Alice's secret: the vault code is 4711", user_id="alice", idempotency_key="req-1"
    )
    bob = memory.add("Bob likes tea", user_id="bob", idempotency_key="req-1")
    assert "replayed" not in bob
    assert bob["results"][0]["memory"] == "Bob likes tea"
    assert bob["results"][0]["id"] != alice["results"][0]["id"]
    assert [r["memory"] for r in memory.get_all(user_id="bob")["results"]] == ["Bob likes tea"]
    # Within a scope the key still replays, and a scope's key never names another scope.
    again = memory.add("Bob likes tea", user_id="bob", idempotency_key="req-1")
    assert again["replayed"] is True and again["results"] == bob["results"]
    agent = memory.add("Bob likes tea", user_id="bob", agent_id="a", idempotency_key="req-1")
    assert "replayed" not in agent


def test_a_key_naming_another_scope_stays_in_the_callers_scope(memory: Memory) -> None:
    memory.add("Alice's note", user_id="alice", idempotency_key="req-1")
    forged = scoped_key(Scope(user_id="alice"), "req-1")  # what the journal holds for alice
    out = memory.add("Mallory's note", user_id="mallory", idempotency_key=forged)
    assert "replayed" not in out
    assert out["results"][0]["memory"] == "Mallory's note"


def test_idempotency_keys_are_bounded(memory: Memory) -> None:
    with pytest.raises(ValidationError, match="limit"):
        memory.add("x", user_id="u", idempotency_key="k" * 10_000)
    with pytest.raises(ValidationError, match="non-empty string"):
        memory.add("x", user_id="u", idempotency_key=7)  # type: ignore[arg-type]
    assert memory.get_all(user_id="u")["results"] == []


@pytest.fixture
def llm_memory(store_path: Path, embedder: LocalEmbedder) -> Iterator[tuple[Memory, FakeOpenAI]]:
    with FakeOpenAI() as srv, Memory(srv.memvault_config(store_path), embedder=embedder) as m:
        yield m, srv


def test_llm_add_keys_are_scoped(llm_memory: tuple[Memory, FakeOpenAI]) -> None:
    mem, srv = llm_memory
    srv.enqueue({"memories": [{"event": "ADD", "text": "Alice is allergic to peanuts"}]})
    srv.enqueue({"memories": [{"event": "ADD", "text": "Bob lives in Porto"}]})
    mem.add("I'm allergic to peanuts", user_id="alice", idempotency_key="turn-1")
    bob = mem.add("I live in Porto", user_id="bob", idempotency_key="turn-1")
    assert srv.count("chat.completions") == 2
    assert "replayed" not in bob
    assert [r["memory"] for r in mem.get_all(user_id="bob")["results"]] == ["Bob lives in Porto"]


def test_failed_llm_add_keeps_a_scoped_key_that_retry_reuses(
    llm_memory: tuple[Memory, FakeOpenAI],
) -> None:
    mem, srv = llm_memory
    srv.enqueue("this is not JSON at all")
    with pytest.raises(LLMError):
        mem.add("I moved to Lisbon", user_id="carol", idempotency_key="turn-9")
    [row] = mem.pending()
    assert row["key"] == scoped_key(Scope(user_id="carol"), "turn-9")
    srv.enqueue({"memories": [{"event": "ADD", "text": "Carol lives in Lisbon"}]})
    assert mem.retry_pending()["done"] == 1
    assert mem.pending() == []
    # The retried row answers a replay of the caller's own key.
    again = mem.add("I moved to Lisbon", user_id="carol", idempotency_key="turn-9")
    assert again["replayed"] is True
    assert srv.count("chat.completions") == 2


def test_ingest_of_equal_rows_for_two_users_keeps_both_and_resumes(memory: Memory) -> None:
    rows = [
        {"user_id": user, "messages": [{"role": "user", "content": "I run marathons"}]}
        for user in ("ana", "ben")
    ]
    first = memory.ingest(rows)
    assert (first.done, first.skipped) == (2, 0)
    second = memory.ingest(rows)
    assert (second.done, second.skipped) == (0, 2)
    for user in ("ana", "ben"):
        assert len(memory.get_all(user_id=user)["results"]) == 1


def test_v3_journal_keys_are_rescoped_by_the_upgrade(
    tmp_path: Path, embedder: LocalEmbedder
) -> None:
    path = tmp_path / "v3.db"
    with Memory(path=path, embedder=embedder) as m:
        first = m.add("Alice's note", user_id="alice", idempotency_key="req-1")
    db = sqlite3.connect(path)
    with db:  # the v3 layout: the caller's key as it was given
        db.execute("UPDATE journal SET key = 'req-1'")
        db.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
    db.close()
    with Memory(path=path, embedder=embedder) as m:
        replay = m.add("Alice's note", user_id="alice", idempotency_key="req-1")
        assert replay["replayed"] is True and replay["results"] == first["results"]
        bob = m.add("Bob's note", user_id="bob", idempotency_key="req-1")
        assert "replayed" not in bob
    db = sqlite3.connect(path)
    assert db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() == (
        str(SCHEMA_VERSION),
    )
    db.close()


# -- 2. a plain script exits 0 ------------------------------------------------------------------

_PRELUDE = """
import asyncio, sys
from memvault import AsyncMemory, Memory
path = sys.argv[1]
"""

EXIT_SCRIPTS = {
    # Hundreds of raw adds: the background indexer is embedding when the script ends.
    "sync-adds": """
m = Memory(path=path)
for i in range(300):
    m.add(f"fact number {i} about gardening and tea", user_id="u", infer=False)
""",
    # The same through AsyncMemory inside asyncio.run, never closed.
    "async-adds": """
async def main():
    m = AsyncMemory(path=path)
    await asyncio.gather(*(m.add(f"note {i} on the trip", user_id="u", infer=False) for i in range(200)))
asyncio.run(main())
""",
    # Searches embed their scope's queue while other scopes' adds keep the worker busy.
    "search-while-indexing": """
m = Memory(path=path)
for i in range(150):
    m.add(f"user a fact {i}", user_id="a", infer=False)
    m.add(f"user b fact {i}", user_id="b", infer=False)
m.search("fact", user_id="a")
for i in range(150):
    m.add(f"late fact {i}", user_id="c", infer=False)
""",
    # Handles dropped without close(): collected mid-work, then the interpreter exits.
    "dropped-handles": """
def work(n):
    m = Memory(path=path)
    for i in range(100):
        m.add(f"handle {n} fact {i}", user_id=f"u{n}", infer=False)
for n in range(3):
    work(n)
m = Memory(path=path)
m.as_async()
for i in range(100):
    m.add(f"last fact {i}", user_id="z", infer=False)
""",
}


@pytest.mark.parametrize("variant", sorted(EXIT_SCRIPTS))
def test_a_script_that_never_closes_exits_0_every_time(tmp_path: Path, variant: str) -> None:
    code = _PRELUDE + textwrap.dedent(EXIT_SCRIPTS[variant])
    runs = 6  # before the fix most runs of "sync-adds" aborted (SIGABRT, rc 134)

    def run(i: int) -> subprocess.CompletedProcess[str]:
        path = tmp_path / f"run{i}.db"
        return subprocess.run(
            [sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120
        )

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(run, range(runs)))
    codes = [r.returncode for r in results]
    assert codes == [0] * runs, [r.stderr[-2000:] for r in results if r.returncode]
    # Nothing lost: every memory is in the store, with its vector or still queued.
    with Memory(path=tmp_path / "run0.db") as m:
        stats = m.stats()
        assert stats["memories"] >= 200
        assert stats["vectors"] + stats["pending_vectors"] == stats["memories"]


# -- 3. a foreign SQLite file is refused untouched ---------------------------------------------


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _app_db(path: Path, **tables: list[tuple[Any, ...]]) -> None:
    db = sqlite3.connect(path)
    with db:
        for name, rows in tables.items():
            db.execute(f"CREATE TABLE {name} (a, b)")
            db.executemany(f"INSERT INTO {name} VALUES (?, ?)", rows)
    db.close()


@pytest.mark.parametrize(
    "tables",
    [
        {"users": [(1, "ada")], "orders": [(1, 9.5)]},
        {"meta": [("key", "value")]},  # an app's own table named like memvault's
    ],
)
def test_foreign_sqlite_database_is_refused_and_untouched(
    tmp_path: Path, tables: dict[str, list[tuple[Any, ...]]]
) -> None:
    path = tmp_path / "app.db"
    _app_db(path, **tables)
    before = _digest(path)
    with pytest.raises(StorageError, match="not a memvault store") as info:
        Memory(path=path)
    assert sorted(tables)[0] in str(info.value)
    assert _digest(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.db"]  # no -wal / -shm either


def test_non_database_file_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("my shopping list\n" * 100)
    with pytest.raises(StorageError, match="not a usable memvault store"):
        Memory(path=path)
    assert path.read_text() == "my shopping list\n" * 100


async def test_empty_file_and_own_store_still_open(tmp_path: Path, embedder: LocalEmbedder) -> None:
    empty = tmp_path / "empty.db"
    empty.touch()  # e.g. made by tempfile: a new store
    with Memory(path=empty, embedder=embedder) as m:
        m.add("hello", user_id="u", infer=False)
    m2 = AsyncMemory(path=empty, embedder=embedder)
    try:
        assert len((await m2.get_all(user_id="u"))["results"]) == 1
    finally:
        await m2.close()
