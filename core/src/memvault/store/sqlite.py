"""The source of truth: one SQLite file (WAL) holding memories, history, FTS5 and vectors.

Why one file and one transaction per change: a memory, its history row, its
keyword-index entry and its vectors are written together, so a crash (even
``kill -9``) leaves all of them or none. Everything derived (the FTS5 index, an
external vector index such as Chroma) can be rebuilt from the ``memories`` and
``vectors`` tables — see :meth:`SQLiteStore.rebuild_fts`.

Concurrency: one connection per thread, WAL so readers never block the writer,
``BEGIN IMMEDIATE`` so concurrent writers (threads or processes) queue on the
lock instead of failing half-way, and a generous busy timeout.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import numpy as np

from memvault.errors import ConflictError, DimensionMismatchError, StorageError
from memvault.models import DEFAULT_SPACE, MemoryRecord, utcnow
from memvault.scope import Scope, scoped_key
from memvault.store import schema
from memvault.store.contract import Change, Visibility
from memvault.store.schema import NS_SEP, SCHEMA_VERSION, ns_to_path, path_to_ns
from memvault.text import fts_document, fts_scope_query, fts_scope_terms

__all__ = ["NS_SEP", "SQLiteStore", "Tx", "Visibility", "ns_to_path", "path_to_ns"]

#: Generations of change log kept for incremental cache refresh (older caches reload fully).
CHANGE_LOG_KEEP = 20_000
#: SQLite page cache per connection, KiB (SQLite's default is 2 MiB). A cold scope's rows
#: are spread over the file; with 2 MiB the b-trees' inner pages are evicted by every
#: scope's leaves and re-read (a system call each) on the next lookup. 64 MiB keeps the inner
#: pages of a million-memory store resident: measured at 1M memories, ~1.5 ms less system
#: time per cold search. Filled only as pages are read; one connection per thread.
PAGE_CACHE_KIB = 65_536

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS memories (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    memory TEXT NOT NULL,
    hash TEXT NOT NULL,
    user_id TEXT, agent_id TEXT, run_id TEXT,
    metadata TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
    role TEXT, actor_id TEXT,
    categories TEXT, importance REAL, value TEXT,
    ns_path TEXT, key TEXT,
    valid_from TEXT, valid_to TEXT, superseded_by TEXT,
    expiration_date TEXT, last_accessed_at TEXT, ttl_seconds REAL,
    state TEXT NOT NULL DEFAULT 'active'
);
CREATE INDEX IF NOT EXISTS memories_user ON memories(user_id, agent_id, run_id);
CREATE INDEX IF NOT EXISTS memories_agent ON memories(agent_id, run_id);
CREATE INDEX IF NOT EXISTS memories_run ON memories(run_id);
CREATE INDEX IF NOT EXISTS memories_hash ON memories(hash);
CREATE UNIQUE INDEX IF NOT EXISTS memories_ns_key ON memories(
    COALESCE(user_id, ''), COALESCE(agent_id, ''), COALESCE(run_id, ''), ns_path, key)
    WHERE key IS NOT NULL AND state = 'active';
CREATE INDEX IF NOT EXISTS memories_expiry ON memories(expiration_date)
    WHERE expiration_date IS NOT NULL;
CREATE TABLE IF NOT EXISTS spaces (name TEXT PRIMARY KEY, dims INTEGER NOT NULL, model TEXT);
CREATE TABLE IF NOT EXISTS vectors (
    seq INTEGER NOT NULL REFERENCES memories(seq) ON DELETE CASCADE,
    space TEXT NOT NULL,
    idx INTEGER NOT NULL DEFAULT 0,
    vec BLOB NOT NULL,
    PRIMARY KEY (seq, space, idx)
);
CREATE INDEX IF NOT EXISTS vectors_space ON vectors(space, seq);
-- terms = the analysed text, scope = one hashed token per scope id: a keyword search
-- scores only its own scope's rows (weight 0 in bm25) however many users the store holds.
CREATE VIRTUAL TABLE IF NOT EXISTS fts USING fts5(terms, scope, tokenize = 'unicode61');
CREATE TABLE IF NOT EXISTS history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    memory_id TEXT NOT NULL,
    event TEXT NOT NULL,
    old_memory TEXT, new_memory TEXT,
    old_metadata TEXT, new_metadata TEXT,
    user_id TEXT, agent_id TEXT, run_id TEXT,
    actor_id TEXT, role TEXT,
    changed_by TEXT,
    related_id TEXT,
    created_at TEXT NOT NULL,
    is_deleted INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS history_memory ON history(memory_id, id);
CREATE TABLE IF NOT EXISTS journal (
    key TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    result TEXT,
    batch_id TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS journal_state ON journal(kind, state);
CREATE TABLE IF NOT EXISTS llm_usage (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    op TEXT NOT NULL,
    model TEXT,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    cached_tokens INTEGER NOT NULL,
    calls INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS changes (
    gen INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    op TEXT NOT NULL,
    user_id TEXT, agent_id TEXT, run_id TEXT
);
CREATE INDEX IF NOT EXISTS changes_gen ON changes(gen);
-- The background-indexing queue. lease_until: an indexer (of any process) took the row
-- until then, so several processes' indexers share the queue instead of repeating work.
CREATE TABLE IF NOT EXISTS pending_vectors (seq INTEGER PRIMARY KEY, lease_until REAL);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    seq INTEGER NOT NULL,
    memory_id TEXT NOT NULL,
    op TEXT NOT NULL
);
"""

_COLUMNS = ", ".join(schema.MEMORY_NAMES)
_row_to_record = schema.decode_memory
_HIST_SEL = ", ".join(schema.HISTORY_NAMES)


def _seq_matrix(rows: Sequence[tuple[int, bytes]]) -> tuple[np.ndarray, np.ndarray]:
    """(seq, vector blob) rows -> (seqs, float32 matrix), one vector per row."""
    if not rows:
        return np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32)
    seqs = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    mat = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), -1)
    return seqs, mat


def _scope_sql(scope: Scope, alias: str = "") -> tuple[str, list[Any]]:
    a = f"{alias}." if alias else ""
    parts = [f"{a}{f} = ?" for f, _ in scope.items()]
    return " AND ".join(parts) or "1", [v for _, v in scope.items()]


_FTS_DDL = next(stmt.strip() for stmt in _SCHEMA.split(";") if "USING fts5" in stmt)


def _fill_fts(c: sqlite3.Connection) -> int:
    """(Re)build the keyword index from the memories table; returns the rows indexed."""
    c.execute("DELETE FROM fts")
    rows = c.execute("SELECT seq, memory, user_id, agent_id, run_id FROM memories").fetchall()
    c.executemany(
        "INSERT INTO fts (rowid, terms, scope) VALUES (?, ?, ?)",
        [(seq, fts_document(text), fts_scope_terms(Scope(u, a, r))) for seq, text, u, a, r in rows],
    )
    return len(rows)


def _has_schema_version(c: sqlite3.Connection) -> bool:
    """True when the ``meta`` table is memvault's (an app may have a ``meta`` of its own)."""
    try:
        return c.execute("SELECT 1 FROM meta WHERE key = 'schema_version'").fetchone() is not None
    except sqlite3.OperationalError:  # other columns: not ours
        return False


def _v2_scoped_fts(c: sqlite3.Connection) -> None:
    """v1 -> v2: the keyword index gains the ``scope`` column (rebuilt from memories)."""
    c.execute("DROP TABLE IF EXISTS fts")
    c.execute(_FTS_DDL)
    _fill_fts(c)


def _v3_queue_leases(c: sqlite3.Connection) -> None:
    """v2 -> v3: the background-indexing queue gains per-row leases."""
    columns = {r[1] for r in c.execute("PRAGMA table_info(pending_vectors)")}
    if "lease_until" not in columns:
        c.execute("ALTER TABLE pending_vectors ADD COLUMN lease_until REAL")


def _v4_scoped_journal_keys(c: sqlite3.Connection) -> None:
    """v3 -> v4: journal keys are bound to their scope (see ``memvault.scope.scoped_key``).

    The scope of a row is read from its payload (failed or submitted adds) or from the
    memories its result names; a row whose scope cannot be found keeps its old key,
    which no new call can match (a replay then applies again: never another scope's row).
    """
    rows = c.execute("SELECT key, payload, result FROM journal").fetchall()
    for key, payload, result in rows:
        scope = _journal_row_scope(c, json.loads(payload or "null"), json.loads(result or "null"))
        if scope is not None:
            c.execute("UPDATE journal SET key = ? WHERE key = ?", (scoped_key(scope, key), key))


def _journal_row_scope(c: sqlite3.Connection, payload: Any, result: Any) -> Scope | None:
    if isinstance(payload, dict):
        # LLM adds keep {"scope": ...}, batch submissions {"add": kwargs}, ingest rows kwargs.
        nested = [payload.get(k) for k in ("scope", "add") if isinstance(payload.get(k), dict)]
        ids = nested[0] if nested else payload
        found = {f: ids.get(f) for f in ("user_id", "agent_id", "run_id")}
        if any(isinstance(v, str) for v in found.values()):
            return Scope(**{f: v if isinstance(v, str) else None for f, v in found.items()})
    items = result.get("results") if isinstance(result, dict) else result
    for item in items if isinstance(items, list) else []:
        memory_id = item.get("id") if isinstance(item, dict) else None
        row = c.execute(
            "SELECT user_id, agent_id, run_id FROM memories WHERE id = ?", (memory_id,)
        ).fetchone()
        if row is not None:
            return Scope(*row)
    return None


def _v5_nothing(c: sqlite3.Connection) -> None:
    """v4 -> v5: nothing here; PostgreSQL drops its unused terms index (the version is shared)."""


#: target schema version -> the step that upgrades a store from the version before it.
_MIGRATIONS = {
    2: _v2_scoped_fts,
    3: _v3_queue_leases,
    4: _v4_scoped_journal_keys,
    5: _v5_nothing,
}


class Tx:
    """Write operations valid inside one ``SQLiteStore.write()`` transaction."""

    def __init__(self, conn: sqlite3.Connection, store: SQLiteStore) -> None:
        self.conn = conn
        self.store = store
        self.touched: list[int] = []  # seqs whose vectors changed (for external indexes)
        self.removed: list[int] = []
        #: seq -> (op, scope): what this transaction changed, for incremental cache refresh.
        #: ops: insert, update (record only), revector (vectors too), delete.
        self.changed: dict[int, tuple[str, Scope]] = {}

    def _changed(self, seq: int, op: str, scope: Scope) -> None:
        prev = self.changed.get(seq)
        if prev is not None and prev[0] in ("insert", "delete"):
            op = prev[0] if op != "delete" else "delete"
        elif prev is not None and prev[0] == "revector" and op == "update":
            op = "revector"
        self.changed[seq] = (op, scope)

    def _outbox(self, seq: int, memory_id: str, op: str) -> None:
        # Written in the same transaction as the change, so an external index that
        # misses it (crash, server down) catches up from here: see SQLiteStore.outbox().
        if self.store.outbox_enabled:
            self.conn.execute(
                "INSERT INTO outbox (seq, memory_id, op) VALUES (?, ?, ?)", (seq, memory_id, op)
            )

    def insert(self, r: MemoryRecord, vectors: dict[str, np.ndarray] | None = None) -> int:
        names = ", ".join(c.name for c in schema.INSERT_COLUMNS)
        marks = ",".join("?" * len(schema.INSERT_COLUMNS))
        try:
            cur = self.conn.execute(
                f"INSERT INTO memories ({names}) VALUES ({marks})", schema.insert_values(r)
            )
        except sqlite3.IntegrityError as e:
            raise _conflict(e) from e
        seq = int(cur.lastrowid or 0)
        r.seq = seq
        self.conn.execute(
            "INSERT INTO fts (rowid, terms, scope) VALUES (?, ?, ?)",
            (seq, fts_document(r.memory), fts_scope_terms(r.scope)),
        )
        self._put_vectors(seq, r.id, vectors)
        self._changed(seq, "insert", r.scope)
        return seq

    def insert_many(
        self,
        records: Sequence[MemoryRecord],
        vectors: Sequence[dict[str, np.ndarray] | None],
    ) -> list[int]:
        """:meth:`insert` for each record, in order (SQLite has no round trips to save)."""
        if len(records) != len(vectors):
            raise ValueError("insert_many needs one vectors entry (or None) per record")
        return [self.insert(r, v) for r, v in zip(records, vectors, strict=True)]

    def _put_vectors(self, seq: int, memory_id: str, vectors: dict[str, np.ndarray] | None) -> None:
        if not vectors:
            return
        for space, mat in vectors.items():
            mat = np.atleast_2d(np.asarray(mat, dtype=np.float32))
            self.store.check_space(
                self.conn, space, mat.shape[1], self.store.space_models.get(space)
            )
            self.conn.execute("DELETE FROM vectors WHERE seq = ? AND space = ?", (seq, space))
            self.conn.executemany(
                "INSERT INTO vectors (seq, space, idx, vec) VALUES (?, ?, ?, ?)",
                [(seq, space, i, row.tobytes()) for i, row in enumerate(mat)],
            )
        if DEFAULT_SPACE in vectors:  # indexed now (e.g. an update): off the background queue
            self.conn.execute("DELETE FROM pending_vectors WHERE seq = ?", (seq,))
        self.touched.append(seq)
        self._outbox(seq, memory_id, "upsert")

    def clear_vectors(self, r: MemoryRecord) -> None:
        """Drop every vector of a memory (it is then found by keyword only)."""
        self.conn.execute("DELETE FROM vectors WHERE seq = ?", (r.seq,))
        self._changed(r.seq, "revector", r.scope)
        self.touched.append(r.seq)
        self._outbox(r.seq, r.id, "upsert")

    def touch(self, seqs: Sequence[int], now: str) -> None:
        """Record an access: last_accessed_at = now, and a TTL restarts from now."""
        self.conn.executemany(
            "UPDATE memories SET last_accessed_at = ?, expiration_date = CASE WHEN ttl_seconds "
            "IS NULL THEN expiration_date ELSE strftime('%Y-%m-%dT%H:%M:%f000+00:00', ?, "
            "'+' || ttl_seconds || ' seconds') END WHERE seq = ?",
            [(now, now, s) for s in seqs],
        )
        for seq, scope in self.store.seq_scopes_in(self.conn, seqs).items():
            self._changed(seq, "update", scope)

    def update(
        self, r: MemoryRecord, *, text_changed: bool, vectors: dict[str, np.ndarray] | None = None
    ) -> None:
        sets = ", ".join(f"{c.name} = ?" for c in schema.UPDATE_COLUMNS)
        try:
            self.conn.execute(
                f"UPDATE memories SET {sets} WHERE seq = ?", [*schema.update_values(r), r.seq]
            )
        except sqlite3.IntegrityError as e:
            raise _conflict(e) from e
        if text_changed:
            self.conn.execute(
                "UPDATE fts SET terms = ? WHERE rowid = ?", (fts_document(r.memory), r.seq)
            )
        self._put_vectors(r.seq, r.id, vectors)
        self._changed(r.seq, "revector" if vectors else "update", r.scope)

    def delete(self, r: MemoryRecord) -> None:
        self.conn.execute("DELETE FROM vectors WHERE seq = ?", (r.seq,))
        self.conn.execute("DELETE FROM fts WHERE rowid = ?", (r.seq,))
        self.conn.execute("DELETE FROM memories WHERE seq = ?", (r.seq,))
        self.conn.execute("DELETE FROM pending_vectors WHERE seq = ?", (r.seq,))
        self.removed.append(r.seq)
        self._changed(r.seq, "delete", r.scope)
        self._outbox(r.seq, r.id, "delete")

    def usage(self, op: str, model: str | None, usage: dict[str, int]) -> None:
        """Record LLM token usage in the same transaction as the change it paid for."""
        self.conn.execute(
            "INSERT INTO llm_usage (at, op, model, prompt_tokens, completion_tokens, "
            "cached_tokens, calls) VALUES (?,?,?,?,?,?,?)",
            (
                utcnow(),
                op,
                model,
                usage.get("prompt_tokens", 0),
                usage.get("completion_tokens", 0),
                usage.get("cached_tokens", 0),
                usage.get("calls", 0),
            ),
        )

    def journal(
        self,
        key: str,
        state: str,
        *,
        result: Any = None,
        error: str | None = None,
        kind: str = "add",
        payload: Any = None,
        batch_id: str | None = None,
    ) -> None:
        """Set a journal row's state (creating it if needed) inside this transaction.

        Marking a row ``done`` in the same transaction that applies its writes is
        what makes ingest exactly-once across crashes.
        """
        now = utcnow()
        self.conn.execute(
            "INSERT INTO journal (key, kind, payload, state, attempts, error, result, batch_id, "
            "created_at, updated_at) VALUES (?,?,?,?,0,?,?,?,?,?) ON CONFLICT(key) DO UPDATE SET "
            "state=excluded.state, error=excluded.error, payload=CASE WHEN excluded.payload = "
            "'null' THEN journal.payload ELSE excluded.payload END, result=COALESCE(excluded.result, "
            "journal.result), batch_id=COALESCE(excluded.batch_id, journal.batch_id), "
            "attempts=journal.attempts + (excluded.state IN ('failed', 'done')), "
            "updated_at=excluded.updated_at",
            (
                *schema.journal_values(
                    key,
                    state,
                    kind=kind,
                    payload=payload,
                    result=result,
                    error=error,
                    batch_id=batch_id,
                ),
                now,
                now,
            ),
        )

    def defer_vectors(self, seq: int, dims: int) -> None:
        """Queue a memory for background embedding (``embedding_mode="background"``).

        The default space is registered (or checked) now, with the embedder's width and
        model, so a store refuses a mismatched embedder at the add, as with inline vectors.
        """
        self.store.check_space(
            self.conn, DEFAULT_SPACE, dims, self.store.space_models.get(DEFAULT_SPACE)
        )
        self.conn.execute("INSERT OR IGNORE INTO pending_vectors (seq) VALUES (?)", (seq,))

    def attach_vectors(self, r: MemoryRecord, vectors: dict[str, np.ndarray]) -> bool:
        """Give a queued memory its vectors (and take it off the queue) if still queued.

        Skipped if deleted, indexed by someone else (another process, an update) or edited
        meanwhile: a vector of the old text must never land on the new one.
        """
        if not self.conn.execute(
            "SELECT 1 FROM pending_vectors p JOIN memories m ON m.seq = p.seq "
            "WHERE p.seq = ? AND m.hash = ?",
            (r.seq, r.hash),
        ).fetchone():
            return False
        self._put_vectors(r.seq, r.id, vectors)  # (takes it off the queue)
        self._changed(r.seq, "revector", r.scope)
        return True

    def remove(self, r: MemoryRecord, changed_by: str | None) -> None:
        """Delete a memory and record the DELETE (its history survives it)."""
        self.delete(r)
        self.history("DELETE", memory_id=r.id, old=r, new=None, changed_by=changed_by)

    def history(
        self,
        event: str,
        *,
        memory_id: str,
        old: MemoryRecord | None,
        new: MemoryRecord | None,
        changed_by: str | None = None,
        related_id: str | None = None,
        at: str | None = None,
    ) -> None:
        row = schema.history_row(
            event,
            memory_id=memory_id,
            old=old,
            new=new,
            changed_by=changed_by,
            related_id=related_id,
            at=at or utcnow(),
        )
        self.conn.execute(
            f"INSERT INTO history ({', '.join(row)}) VALUES ({','.join('?' * len(row))})",
            list(row.values()),
        )

    def import_history(self, row: dict[str, Any], *, keep_id: bool = True) -> str:
        """Add an exported history row unless the same change is there (see the contract)."""
        dup = self.conn.execute(
            "SELECT 1 FROM history WHERE memory_id = ? AND event = ? AND created_at = ? "
            "AND old_memory IS ? AND new_memory IS ? AND changed_by IS ? LIMIT 1",
            [row.get(k) for k in schema.HISTORY_DEDUP],
        ).fetchone()
        if dup is not None:
            return "duplicate"
        hid = row.get("id") if keep_id else None
        outcome = "added"
        if (
            hid is not None
            and self.conn.execute("SELECT 1 FROM history WHERE id = ?", (hid,)).fetchone()
        ):
            hid, outcome = None, "renumbered"
        cols = [c for c in schema.HISTORY_NAMES if c in row and c != "id"]
        values = [row[c] for c in cols]
        if hid is not None:
            cols, values = ["id", *cols], [hid, *values]
        try:
            self.conn.execute(
                f"INSERT INTO history ({', '.join(cols)}) VALUES ({','.join('?' * len(cols))})",
                values,
            )
        except sqlite3.IntegrityError as e:
            raise _conflict(e) from e
        return outcome

    def import_history_many(
        self, rows: Sequence[dict[str, Any]], *, keep_id: bool = True
    ) -> list[str]:
        """:meth:`import_history` for each row, in order."""
        return [self.import_history(row, keep_id=keep_id) for row in rows]

    def restore_journal(self, row: dict[str, Any]) -> None:
        """Insert a stored journal row as it is (a store copy); an existing key is kept."""
        names = schema.JOURNAL_NAMES
        self.conn.execute(
            f"INSERT OR IGNORE INTO journal ({', '.join(names)}) "
            f"VALUES ({','.join('?' * len(names))})",
            [row[n] for n in names],
        )


def _conflict(e: sqlite3.IntegrityError) -> ConflictError:
    msg = str(e)
    if "ns_path" in msg or "ns_key" in msg:
        return ConflictError(
            "an active memory with the same namespace and key already exists in this "
            "scope (under another id)"
        )
    return ConflictError(f"cannot insert: {msg}")


class SQLiteStore:
    """The embedded store. Thread-safe; safe across processes sharing the file."""

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout_s: float = 60.0) -> None:
        self.path = Path(path).expanduser()
        self.busy_timeout_s = busy_timeout_s
        self._check_path()
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._conns_lock = threading.Lock()
        self._closed = False
        #: Set by an external vector index (Chroma) so changes are queued for it.
        self.outbox_enabled = False
        #: Model names recorded when a vector space is created (space -> embedder name).
        self.space_models: dict[str, str] = {}
        self._refuse_foreign()
        self._init_schema()

    # -- connections ---------------------------------------------------------------------------
    def _check_path(self) -> None:
        p = self.path
        try:
            is_dir = p.is_dir()
        except OSError as e:  # a name too long for the file system, a parent not searchable
            raise StorageError(f"cannot use store path {str(p)!r}: {e.strerror or e}") from e
        if is_dir:
            raise StorageError(
                f"store path {str(p)!r} is a directory; pass a file path such as "
                f"{str(p / 'memvault.db')!r}"
            )
        parent = p.parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StorageError(f"cannot create the store directory {str(parent)!r}: {e}") from e
        if p.exists() and not os.access(p, os.W_OK):
            raise StorageError(f"store file {str(p)!r} is read-only; make it writable or copy it")
        if not p.exists() and not os.access(parent, os.W_OK):
            raise StorageError(f"cannot create a store in {str(parent)!r}: directory is read-only")

    def _refuse_foreign(self) -> None:
        """Refuse an existing database that is not a memvault store, leaving it untouched.

        Why before the first real connection: that connection switches the file to WAL
        and creates memvault's tables, which would modify an application's own database
        (``Memory(path="app.db")``). The check reads through a read-only connection.
        """
        if not self.path.exists() or self.path.stat().st_size == 0:
            return  # a new store
        try:
            ro = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True)
        except sqlite3.Error as e:
            raise StorageError(f"cannot open store {str(self.path)!r}: {e}") from e
        try:
            names = {
                n for (n,) in ro.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
            ours = "meta" in names and _has_schema_version(ro)
        except sqlite3.DatabaseError as e:
            raise StorageError(f"{str(self.path)!r} is not a usable memvault store: {e}") from e
        finally:
            ro.close()
        if names and not ours:
            shown = ", ".join(sorted(names)[:5]) + (", ..." if len(names) > 5 else "")
            raise StorageError(
                f"{str(self.path)!r} is an SQLite database that is not a memvault store "
                f"(it holds tables {shown}); memvault will not add its tables to it. "
                "Pass a new file path, e.g. 'memvault.db' beside it"
            )

    def conn(self) -> sqlite3.Connection:
        """This thread's connection (opened on first use)."""
        if self._closed:
            raise StorageError("the store is closed")
        c: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if c is None:
            try:
                c = sqlite3.connect(
                    self.path,
                    timeout=self.busy_timeout_s,
                    isolation_level=None,
                    check_same_thread=False,
                )
                c.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_s * 1000)}")
                self._wal(c)
                c.execute("PRAGMA synchronous = NORMAL")
                c.execute(f"PRAGMA cache_size = -{PAGE_CACHE_KIB}")
                c.execute("PRAGMA foreign_keys = ON")
            except sqlite3.DatabaseError as e:
                raise StorageError(f"cannot open store {str(self.path)!r}: {e}") from e
            self._local.conn = c
            with self._conns_lock:
                self._conns.append(c)
        return c

    def _wal(self, c: sqlite3.Connection) -> None:
        """Switch to WAL, waiting out other processes opening the same new file.

        Changing the journal mode needs an exclusive lock and SQLite does not call the
        busy handler for it, so two processes creating one store at once would see
        "database is locked"; we retry until the busy timeout instead.
        """
        deadline = time.monotonic() + self.busy_timeout_s
        delay = 0.005
        while True:
            try:
                c.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) or time.monotonic() > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 0.2)

    def _init_schema(self) -> None:
        c = self.conn()
        try:
            with self._immediate(c):
                for stmt in _SCHEMA.split(";"):
                    if stmt.strip():
                        c.execute(stmt)
                c.execute(
                    "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)",
                    (str(SCHEMA_VERSION),),
                )
                c.execute("INSERT OR IGNORE INTO meta VALUES ('generation', '0')")
        except sqlite3.DatabaseError as e:
            raise StorageError(f"{str(self.path)!r} is not a usable memvault store: {e}") from e
        version = int(c.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise StorageError(
                f"store {str(self.path)!r} has schema v{version}, newer than this memvault "
                f"(v{SCHEMA_VERSION}); upgrade memvault"
            )
        if version < SCHEMA_VERSION:
            self._migrate(c, version)

    def _migrate(self, c: sqlite3.Connection, version: int) -> None:
        """Bring an older store up to SCHEMA_VERSION, one step per version, in one transaction.

        Why in place and atomic: a user upgrading memvault keeps their store; a crash
        mid-migration leaves the old schema (and version) intact, and the next open retries.
        """
        with self._immediate(c):
            # Re-read under the write lock: another process may have migrated meanwhile.
            version = int(
                c.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0]
            )
            for target in range(version + 1, SCHEMA_VERSION + 1):
                _MIGRATIONS[target](c)
            c.execute(
                "UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),)
            )

    @contextmanager
    def _immediate(self, c: sqlite3.Connection) -> Iterator[None]:
        try:
            c.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as e:
            raise StorageError(f"cannot write to {str(self.path)!r}: {e}") from e
        try:
            yield
        except BaseException:
            c.execute("ROLLBACK")
            raise
        else:
            c.execute("COMMIT")

    @contextmanager
    def write(self) -> Iterator[Tx]:
        """One atomic write transaction; bumps the store generation (cache invalidation)."""
        c = self.conn()
        with self._immediate(c):
            tx = Tx(c, self)
            yield tx
            c.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key='generation'")
            gen = int(c.execute("SELECT value FROM meta WHERE key='generation'").fetchone()[0])
            if tx.changed:
                c.executemany(
                    "INSERT INTO changes (gen, seq, op, user_id, agent_id, run_id) "
                    "VALUES (?,?,?,?,?,?)",
                    [
                        (gen, seq, op, sc.user_id, sc.agent_id, sc.run_id)
                        for seq, (op, sc) in tx.changed.items()
                    ],
                )
            if gen % 1000 == 0:  # the log only serves caches: keep the recent part
                c.execute("DELETE FROM changes WHERE gen < ?", (gen - CHANGE_LOG_KEEP,))
                c.execute(
                    "INSERT OR REPLACE INTO meta VALUES ('changes_floor', ?)",
                    (str(gen - CHANGE_LOG_KEEP),),
                )

    @property
    def location(self) -> str:
        return str(self.path)

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """A read transaction on this thread's connection (WAL: one consistent state)."""
        c = self.conn()
        if c.in_transaction:  # already inside one (a write): reuse it
            yield
            return
        c.execute("BEGIN")
        try:
            yield
        finally:
            c.execute("ROLLBACK")  # read-only: nothing to commit

    def close(self) -> None:
        with self._conns_lock:
            for c in self._conns:
                with suppress(sqlite3.Error):
                    c.close()
            self._conns.clear()
        self._closed = True

    # -- vector spaces ---------------------------------------------------------------------------
    def check_space(
        self, c: sqlite3.Connection, space: str, dims: int, model: str | None = None
    ) -> None:
        """Create the vector space on first use; refuse a different dimension afterwards."""
        row = c.execute("SELECT dims FROM spaces WHERE name = ?", (space,)).fetchone()
        if row is None:
            c.execute(
                "INSERT INTO spaces (name, dims, model) VALUES (?, ?, ?)", (space, dims, model)
            )
        elif int(row[0]) != dims:
            raise DimensionMismatchError(space, int(row[0]), dims)

    def space_dims(self, space: str) -> int | None:
        row = self.conn().execute("SELECT dims FROM spaces WHERE name = ?", (space,)).fetchone()
        return int(row[0]) if row else None

    def spaces(self) -> dict[str, tuple[int, str | None]]:
        rows = self.conn().execute("SELECT name, dims, model FROM spaces").fetchall()
        return {n: (int(d), m) for n, d, m in rows}

    def register_space(self, space: str, dims: int, model: str | None) -> None:
        c = self.conn()
        row = c.execute("SELECT dims, model FROM spaces WHERE name = ?", (space,)).fetchone()
        if row is not None and int(row[0]) == dims:
            return
        with self._immediate(c):
            self.check_space(c, space, dims, model)

    # -- reads -----------------------------------------------------------------------------------
    def generation(self) -> int:
        return int(
            self.conn().execute("SELECT value FROM meta WHERE key='generation'").fetchone()[0]
        )

    def changes_since(self, gen: int) -> list[Change] | None:
        """(seq, op, scope) changed after generation ``gen``; None if the log no longer
        reaches back that far (the caller then reloads in full)."""
        c = self.conn()
        floor = c.execute("SELECT value FROM meta WHERE key='changes_floor'").fetchone()
        if floor is not None and gen < int(floor[0]):
            return None
        rows = c.execute(
            "SELECT seq, op, user_id, agent_id, run_id FROM changes WHERE gen > ? ORDER BY gen",
            (gen,),
        ).fetchall()
        return [(int(seq), op, Scope(u, a, r)) for seq, op, u, a, r in rows]

    def records_by_seq(self, seqs: Sequence[int]) -> list[MemoryRecord]:
        if not seqs:
            return []
        marks = ",".join("?" * len(seqs))
        rows = (
            self.conn()
            .execute(
                f"SELECT {_COLUMNS} FROM memories WHERE seq IN ({marks}) ORDER BY seq", list(seqs)
            )
            .fetchall()
        )
        return [_row_to_record(r) for r in rows]

    def vectors_by_seq(self, space: str, seqs: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """(seqs, matrix) of the vectors of these memories in ``space``, in seq order."""
        if not seqs:
            return np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32)
        marks = ",".join("?" * len(seqs))
        rows = (
            self.conn()
            .execute(
                f"SELECT seq, vec FROM vectors WHERE space = ? AND seq IN ({marks}) "
                "ORDER BY seq, idx",
                [space, *seqs],
            )
            .fetchall()
        )
        return _seq_matrix(rows)

    @staticmethod
    def seq_scopes_in(c: sqlite3.Connection, seqs: Sequence[int]) -> dict[int, Scope]:
        if not seqs:
            return {}
        marks = ",".join("?" * len(seqs))
        rows = c.execute(
            f"SELECT seq, user_id, agent_id, run_id FROM memories WHERE seq IN ({marks})",
            list(seqs),
        ).fetchall()
        return {int(s): Scope(u, a, r) for s, u, a, r in rows}

    def lease_pending(
        self, limit: int, lease_s: float, *, exclude: Sequence[int] = (), steal: bool = False
    ) -> list[MemoryRecord]:
        """Take up to ``limit`` queued memories for ``lease_s`` seconds, oldest first.

        Rows another indexer holds an unexpired lease on are skipped unless ``steal``
        (``flush()``: the caller needs them now); ``exclude`` are rows this process is
        already embedding. Committed at once, so other processes see the lease.
        """
        c = self.conn()
        now = time.time()
        skip = ",".join(str(int(s)) for s in exclude)
        where = "1" if steal else "(lease_until IS NULL OR lease_until <= ?)"
        params: list[Any] = [] if steal else [now]
        with self._immediate(c):
            seqs = [
                int(r[0])
                for r in c.execute(
                    f"SELECT seq FROM pending_vectors WHERE {where}"
                    + (f" AND seq NOT IN ({skip})" if skip else "")
                    + " ORDER BY seq LIMIT ?",
                    [*params, limit],
                )
            ]
            c.executemany(
                "UPDATE pending_vectors SET lease_until = ? WHERE seq = ?",
                [(now + lease_s, s) for s in seqs],
            )
        return self.records_by_seq(seqs)

    def unlease(self, seqs: Sequence[int]) -> None:
        """End the leases on these queued rows (their batch failed)."""
        c = self.conn()
        with self._immediate(c):
            c.executemany(
                "UPDATE pending_vectors SET lease_until = NULL WHERE seq = ?", [(s,) for s in seqs]
            )

    def still_queued(self, records: list[MemoryRecord]) -> list[MemoryRecord]:
        """Those of ``records`` still waiting for their vectors."""
        marks = ",".join("?" * len(records))
        rows = self.conn().execute(
            f"SELECT seq FROM pending_vectors WHERE seq IN ({marks})", [r.seq for r in records]
        )
        waiting = {int(r[0]) for r in rows}
        return [r for r in records if r.seq in waiting]

    def pending_in_scope(self, scope: Scope) -> list[MemoryRecord]:
        """The scope's memories still waiting for their vectors, oldest first.

        Driven from the (usually empty) queue, so it costs nothing when all is indexed.
        """
        where, params = _scope_sql(scope, "m")
        cols = ", ".join(f"m.{c.strip()}" for c in _COLUMNS.split(","))
        rows = (
            self.conn()
            .execute(
                f"SELECT {cols} FROM pending_vectors p CROSS JOIN memories m ON m.seq = p.seq "
                f"WHERE {where} ORDER BY m.seq",
                params,
            )
            .fetchall()
        )
        return [_row_to_record(r) for r in rows]

    def pending_count(self) -> int:
        return int(self.conn().execute("SELECT COUNT(*) FROM pending_vectors").fetchone()[0])

    def get(self, memory_id: str) -> MemoryRecord | None:
        row = (
            self.conn()
            .execute(f"SELECT {_COLUMNS} FROM memories WHERE id = ?", (memory_id,))
            .fetchone()
        )
        return _row_to_record(row) if row else None

    def get_many(self, ids: Sequence[str]) -> list[MemoryRecord]:
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        rows = (
            self.conn()
            .execute(f"SELECT {_COLUMNS} FROM memories WHERE id IN ({marks})", list(ids))
            .fetchall()
        )
        return [_row_to_record(r) for r in rows]

    def scope_records(self, scope: Scope) -> list[MemoryRecord]:
        """Every stored version in ``scope`` (all states), oldest first."""
        where, params = _scope_sql(scope)
        rows = (
            self.conn()
            .execute(f"SELECT {_COLUMNS} FROM memories WHERE {where} ORDER BY seq", params)
            .fetchall()
        )
        return [_row_to_record(r) for r in rows]

    def find_active(self, scope: Scope, hash_: str, *, exact: bool = True) -> MemoryRecord | None:
        """An active memory with this hash in exactly this scope (dedup)."""
        parts = ["hash = ?", "state = 'active'"]
        params: list[Any] = [hash_]
        for f in ("user_id", "agent_id", "run_id"):
            v = getattr(scope, f)
            if v is None:
                if exact:
                    parts.append(f"{f} IS NULL")
            else:
                parts.append(f"{f} = ?")
                params.append(v)
        row = (
            self.conn()
            .execute(f"SELECT {_COLUMNS} FROM memories WHERE {' AND '.join(parts)} LIMIT 1", params)
            .fetchone()
        )
        return _row_to_record(row) if row else None

    def find_key(self, scope: Scope, namespace: Sequence[str], key: str) -> MemoryRecord | None:
        """The active memory stored under (namespace, key) in exactly this scope."""
        parts = ["ns_path = ?", "key = ?", "state = 'active'"]
        params: list[Any] = [ns_to_path(namespace), key]
        for f in ("user_id", "agent_id", "run_id"):
            v = getattr(scope, f)
            parts.append(f"{f} IS NULL" if v is None else f"{f} = ?")
            params.extend([] if v is None else [v])
        row = (
            self.conn()
            .execute(f"SELECT {_COLUMNS} FROM memories WHERE {' AND '.join(parts)}", params)
            .fetchone()
        )
        return _row_to_record(row) if row else None

    def expired(self, now: str, scope: Scope) -> list[MemoryRecord]:
        """Memories in ``scope`` (any scope if empty) whose expiration_date has passed."""
        where, params = _scope_sql(scope)
        rows = (
            self.conn()
            .execute(
                f"SELECT {_COLUMNS} FROM memories WHERE expiration_date IS NOT NULL AND "
                f"expiration_date <= ? AND {where}",
                [now, *params],
            )
            .fetchall()
        )
        return [_row_to_record(r) for r in rows]

    def scope_terms(self, scope: Scope) -> dict[int, list[str]]:
        """seq -> the stored analysed terms of every memory in ``scope``.

        The scope's hashed tokens are the FTS5 ``MATCH``, so only the scope's rows are
        read: the cost follows the scope, not the store. A hashed-token collision could
        add another scope's rows; callers keep only the seqs they know (the view's).
        """
        c = self.conn()
        if scope:
            rows = c.execute(
                "SELECT rowid, terms FROM fts WHERE fts MATCH ?",
                (f"scope : ({fts_scope_query(scope)})",),
            )
        else:
            rows = c.execute("SELECT rowid, terms FROM fts")
        return {int(seq): text.split() for seq, text in rows}

    def spaces_used(self, scope: Scope) -> dict[str, int]:
        """Vector spaces (name -> dims) holding the scope's vectors (all spaces if no scope)."""
        c = self.conn()
        if not scope:
            return {n: int(d) for n, d in c.execute("SELECT name, dims FROM spaces ORDER BY name")}
        where, params = _scope_sql(scope, "m")
        # CROSS JOIN fixes the join order: the scope's rows first (scope index), then their
        # vectors by primary key -- never every vector of the store filtered by scope.
        rows = c.execute(
            "SELECT name, dims FROM spaces WHERE name IN (SELECT DISTINCT v.space FROM memories m "
            f"CROSS JOIN vectors v ON v.seq = m.seq WHERE {where}) ORDER BY name",
            params,
        )
        return {n: int(d) for n, d in rows}

    def vector_count(self) -> int:
        """Memories that have at least one vector."""
        return int(self.conn().execute("SELECT COUNT(DISTINCT seq) FROM vectors").fetchone()[0])

    def space_seqs(self, space: str) -> list[int]:
        """Every memory with vectors in ``space``, in seq order (an external index's refill)."""
        return [
            int(s)
            for (s,) in self.conn().execute(
                "SELECT DISTINCT seq FROM vectors WHERE space = ? ORDER BY seq", (space,)
            )
        ]

    def vectors(self, space: str, scope: Scope) -> tuple[np.ndarray, np.ndarray]:
        """(seqs, matrix) of every vector in ``space`` for memories in ``scope``."""
        if not scope:
            rows = (
                self.conn()
                .execute("SELECT seq, vec FROM vectors WHERE space = ? ORDER BY seq, idx", (space,))
                .fetchall()
            )
            return _seq_matrix(rows)
        where, params = _scope_sql(scope, "m")
        # The scope's memories first (scope index), then each one's vectors by primary key:
        # SQLite's planner, left alone, walks every vector of the space and filters by scope
        # (its cost grew with the store, ~6 ms per 10k memories). CROSS JOIN fixes the order.
        rows = (
            self.conn()
            .execute(
                f"SELECT v.seq, v.vec FROM memories m CROSS JOIN vectors v "
                f"ON v.seq = m.seq AND v.space = ? WHERE {where} ORDER BY v.seq, v.idx",
                [space, *params],
            )
            .fetchall()
        )
        return _seq_matrix(rows)

    def vectors_for(self, space: str, seqs: Sequence[int]) -> dict[int, np.ndarray]:
        if not seqs:
            return {}
        marks = ",".join("?" * len(seqs))
        out: dict[int, list[np.ndarray]] = {}
        for seq, vec in self.conn().execute(
            f"SELECT seq, vec FROM vectors WHERE space = ? AND seq IN ({marks}) ORDER BY seq, idx",
            [space, *seqs],
        ):
            out.setdefault(int(seq), []).append(np.frombuffer(vec, dtype=np.float32))
        return {k: np.vstack(v) for k, v in out.items()}

    def history_rows(self, memory_id: str | None = None) -> Iterator[dict[str, Any]]:
        """Stored history rows (every column, JSON as text) in id order."""
        where, params = ("WHERE memory_id = ?", (memory_id,)) if memory_id is not None else ("", ())
        for row in (
            self.conn()
            .execute(f"SELECT {_HIST_SEL} FROM history {where} ORDER BY id", params)
            .fetchall()
        ):
            yield dict(zip(schema.HISTORY_NAMES, row, strict=True))

    def history(self, memory_id: str) -> list[dict[str, Any]]:
        return [schema.history_public(r) for r in self.history_rows(memory_id)]

    def has_history(self) -> bool:
        return self.conn().execute("SELECT 1 FROM history LIMIT 1").fetchone() is not None

    def iter_all(self) -> Iterator[MemoryRecord]:
        for row in self.conn().execute(f"SELECT {_COLUMNS} FROM memories ORDER BY seq"):
            yield _row_to_record(row)

    def all_vectors(self, seq: int) -> dict[str, np.ndarray]:
        out: dict[str, list[np.ndarray]] = {}
        for space, vec in self.conn().execute(
            "SELECT space, vec FROM vectors WHERE seq = ? ORDER BY space, idx", (seq,)
        ):
            out.setdefault(space, []).append(np.frombuffer(vec, dtype=np.float32))
        return {k: np.vstack(v) for k, v in out.items()}

    def stats(self) -> dict[str, Any]:
        c = self.conn()

        def one(sql: str) -> Any:
            return c.execute(sql).fetchone()[0]

        return {
            "path": str(self.path),
            "memories": one("SELECT COUNT(*) FROM memories"),
            "active": one("SELECT COUNT(*) FROM memories WHERE state='active'"),
            "superseded": one("SELECT COUNT(*) FROM memories WHERE state='superseded'"),
            "users": one("SELECT COUNT(DISTINCT user_id) FROM memories"),
            "history_events": one("SELECT COUNT(*) FROM history"),
            "vectors": one("SELECT COUNT(*) FROM vectors"),
            "spaces": self.spaces(),
            "size_bytes": self.path.stat().st_size if self.path.exists() else 0,
            "llm_usage": self.usage_totals(),
            "pending_vectors": self.pending_count(),
        }

    # -- journal and usage -------------------------------------------------------------------------
    def journal_get(self, key: str) -> dict[str, Any] | None:
        names = schema.JOURNAL_NAMES
        row = (
            self.conn()
            .execute(f"SELECT {', '.join(names)} FROM journal WHERE key = ?", (key,))
            .fetchone()
        )
        return schema.journal_public(dict(zip(names, row, strict=True))) if row else None

    def journal_all(self) -> Iterator[dict[str, Any]]:
        names = schema.JOURNAL_NAMES
        rows = self.conn().execute(f"SELECT {', '.join(names)} FROM journal ORDER BY key")
        for row in rows.fetchall():
            yield dict(zip(names, row, strict=True))

    def journal_rows(self, kind: str, states: Sequence[str]) -> list[dict[str, Any]]:
        marks = ",".join("?" * len(states))
        cur = self.conn().execute(
            f"SELECT key FROM journal WHERE kind = ? AND state IN ({marks}) ORDER BY created_at",
            [kind, *states],
        )
        return [r for (k,) in cur.fetchall() if (r := self.journal_get(k)) is not None]

    def journal_states(self, keys: Sequence[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        c = self.conn()
        for i in range(0, len(keys), 500):
            chunk = list(keys[i : i + 500])
            marks = ",".join("?" * len(chunk))
            out.update(
                dict(
                    c.execute(
                        f"SELECT key, state FROM journal WHERE key IN ({marks})", chunk
                    ).fetchall()
                )
            )
        return out

    def write_journal(self, key: str, state: str, **kw: Any) -> None:
        """Journal update in a transaction of its own (e.g. recording a failure)."""
        with self.write() as tx:
            tx.journal(key, state, **kw)

    def usage_totals(self) -> dict[str, int]:
        row = (
            self.conn()
            .execute(
                "SELECT COALESCE(SUM(prompt_tokens),0), COALESCE(SUM(completion_tokens),0), "
                "COALESCE(SUM(cached_tokens),0), COALESCE(SUM(calls),0) FROM llm_usage"
            )
            .fetchone()
        )
        return dict(
            zip(
                ("prompt_tokens", "completion_tokens", "cached_tokens", "calls"),
                (int(x) for x in row),
                strict=True,
            )
        )

    # -- outbox (external index sync) -------------------------------------------------------
    def outbox(self, limit: int = 1000) -> list[tuple[int, int, str, str]]:
        """Pending (outbox_id, seq, memory_id, op) changes not yet applied to the external index."""
        return [
            (int(a), int(b), c, d)
            for a, b, c, d in self.conn().execute(
                "SELECT id, seq, memory_id, op FROM outbox ORDER BY id LIMIT ?", (limit,)
            )
        ]

    def ack_outbox(self, ids: Sequence[int]) -> None:
        """Forget outbox rows once the external index has applied them."""
        if not ids:
            return
        c = self.conn()
        with self._immediate(c):
            c.executemany("DELETE FROM outbox WHERE id = ?", [(i,) for i in ids])

    def seq_scopes(self, seqs: Sequence[int]) -> dict[int, tuple[str, Scope]]:
        """(memory id, scope) of live memories by seq (for mirroring into an external index)."""
        if not seqs:
            return {}
        marks = ",".join("?" * len(seqs))
        rows = (
            self.conn()
            .execute(
                f"SELECT seq, id, user_id, agent_id, run_id FROM memories WHERE seq IN ({marks})",
                list(seqs),
            )
            .fetchall()
        )
        return {int(s): (i, Scope(u, a, r)) for s, i, u, a, r in rows}

    # -- maintenance -----------------------------------------------------------------------------
    def rebuild_keyword_index(self) -> int:
        """Recreate the keyword index from the memories table (derived data)."""
        c = self.conn()
        with self.write():
            return _fill_fts(c)

    def reset(self) -> None:
        """Delete every memory, vector, space and history row (the store file stays)."""
        with self.write() as tx:
            for table in (
                "vectors",
                "fts",
                "memories",
                "history",
                "spaces",
                "outbox",
                "journal",
                "llm_usage",
                "changes",
                "pending_vectors",
            ):
                tx.conn.execute(f"DELETE FROM {table}")
            # Every cache built before the reset must reload in full.
            tx.conn.execute(
                "INSERT OR REPLACE INTO meta SELECT 'changes_floor', "
                "CAST(value AS INTEGER) + 1 FROM meta WHERE key='generation'"
            )
