"""A Chroma mirror of the store's vectors, for ANN search beyond one process.

Why a mirror and not a second source of truth: SQLite keeps every vector, so
Chroma only ever holds derived data. Each change is queued in SQLite's
``outbox`` in the same transaction as the change, and this index applies the
queue *after* commit (and on open, to catch up after a crash or an outage).
Applying re-reads the current state from SQLite, so it is idempotent and order
does not matter. When Chroma is unreachable, writes still succeed (they stay
queued) and searches fall back to exact brute force over SQLite.

Layout: one collection per vector space, ``f"{collection_name}__{space}"``;
ids are memory ids (``f"{memory_id}#{i}"`` when a memory has several vectors);
metadata is ``{"seq", and the set user_id / agent_id / run_id}``. Collections
are created with ``embedding_function=None`` and we always pass embeddings, so
Chroma never loads or downloads a model of its own.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import numpy as np

from memvault.errors import ConfigError, StorageError
from memvault.scope import Scope
from memvault.store.sqlite import SQLiteStore
from memvault.store.vector_index import BruteForceIndex, Scores, Seqs, max_pool

try:  # cross-process mutual exclusion of outbox drains (POSIX); in-process lock elsewhere
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger("memvault.chroma")

#: Memories per Chroma round-trip when draining / rebuilding (well under Chroma's max batch).
BATCH = 500
_VALID_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9._-]{1,510}[a-zA-Z0-9]")
_OPTIONS = (
    "path",
    "host",
    "port",
    "collection_name",
    "ssl",
    "headers",
    "client",
    "api_key",
    "tenant",
    "database",
)


def chroma_collection_name(base: str, space: str) -> str:
    """``f"{base}__{space}"`` made valid for Chroma (3-512 of [a-zA-Z0-9._-], alnum ends).

    A name that had to be changed gets a hash of the original, so two spaces that
    sanitise alike (``"a b"`` and ``"a_b"``) never share a collection.
    """
    raw = f"{base}__{space}"
    if _VALID_NAME.fullmatch(raw):
        return raw
    clean = re.sub(r"[^a-zA-Z0-9._-]", "_", raw)[:480].strip("._-") or "memvault"
    return f"{clean}-{hashlib.sha1(raw.encode()).hexdigest()[:12]}"


def _where(scope: Scope) -> dict[str, Any] | None:
    """The scope as a Chroma ``where``: the AND of the set fields (``None`` = everything)."""
    parts = [{f: v} for f, v in scope.items()]
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else {"$and": parts}


def _empty() -> tuple[Seqs, Scores]:
    return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)


class ChromaIndex:
    """Dense search in Chroma (embedded or server), mirrored from SQLite via the outbox."""

    name = "chroma"

    def __init__(
        self,
        store: SQLiteStore,
        *,
        path: str | None = None,
        host: str | None = None,
        port: int | str | None = None,
        collection_name: str = "memvault",
        ssl: bool = False,
        headers: dict[str, str] | None = None,
        client: Any = None,
        api_key: str | None = None,
        tenant: str | None = None,
        database: str | None = None,
        **unknown: Any,
    ) -> None:
        if unknown:
            raise ConfigError(
                f"unknown chroma vector_store option(s) {sorted(unknown)}; "
                f"accepted: {', '.join(_OPTIONS)}"
            )
        if sum(x is not None for x in (path, host, client)) > 1:
            raise ConfigError("chroma: give one of path (embedded), host (server) or client")
        if port is not None and host is None:
            raise ConfigError("chroma: port needs host (e.g. host='127.0.0.1', port=8000)")
        if not isinstance(collection_name, str) or not collection_name:
            raise ConfigError("chroma: collection_name must be a non-empty string")
        try:
            self._port = int(port) if port is not None else 8000
        except (TypeError, ValueError) as e:
            raise ConfigError(f"chroma: port must be an integer, got {port!r}") from e
        try:
            import chromadb
        except ImportError as e:
            raise ConfigError(
                "the chroma vector store needs chromadb: pip install 'memvault[chroma]'"
            ) from e
        self._chromadb = chromadb
        self.store = store
        self.collection_name = collection_name
        self._path = Path(path).expanduser() if path else Path(f"{store.path}.chroma")
        self._cloud = bool(api_key) and path is None and host is None  # mem0's Chroma Cloud form
        self._host, self._ssl, self._api_key = host, bool(ssl), api_key
        self._headers = dict(headers or {})
        self._tenant_db = {k: v for k, v in (("tenant", tenant), ("database", database)) if v}
        self._client = client
        self._owns_client = client is None
        self._collections: dict[str, Any] = {}
        self._lock = threading.RLock()
        self._depth = 0
        self._lock_file = open(f"{store.path}.chroma.lock", "ab") if fcntl else None  # noqa: SIM115
        self._down = False
        self._exact = BruteForceIndex(store)  # the fallback while Chroma is unreachable
        store.outbox_enabled = True
        self._drain()  # catch up on changes committed while no index was applying them

    # -- connection ----------------------------------------------------------------------------
    def _connect(self) -> Any:
        """The client, created on first use (a server that is down must not block opening)."""
        if self._client is not None:
            return self._client
        from chromadb.config import Settings

        settings = Settings(anonymized_telemetry=False)  # one per client: HttpClient mutates it
        cd = self._chromadb
        if self._host is not None:
            headers = dict(self._headers)
            if self._api_key:
                headers.setdefault("x-chroma-token", self._api_key)
            client = cd.HttpClient(
                host=self._host,
                port=self._port,
                ssl=self._ssl,
                headers=headers or None,
                settings=settings,
                **self._tenant_db,
            )
            self._bound_timeout(client)
        elif self._cloud:
            client = cd.CloudClient(api_key=self._api_key, settings=settings, **self._tenant_db)
            self._bound_timeout(client)
        else:
            self._path.mkdir(parents=True, exist_ok=True)
            client = cd.PersistentClient(path=str(self._path), settings=settings, **self._tenant_db)
        self._client = client
        return client

    @staticmethod
    def _bound_timeout(client: Any) -> None:
        """chromadb's HTTP session has no timeout: a host that stops answering (rather than
        refusing) would hang every write forever. Bound it (private attribute, best effort)."""
        import httpx

        session = getattr(getattr(client, "_server", None), "_session", None)
        if isinstance(session, httpx.Client):
            session.timeout = httpx.Timeout(60.0, connect=5.0)

    def _failed(self, exc: Exception) -> None:
        """Log the first failure of an outage; forget collections (re-fetched when back)."""
        self._collections.clear()
        if not self._down:
            self._down = True
            log.warning(
                "Chroma index unavailable (%s: %s); writes stay queued in the SQLite "
                "outbox and searches use exact brute force until it is back",
                type(exc).__name__,
                exc,
            )

    def _recovered(self) -> None:
        if self._down:
            self._down = False
            log.warning("Chroma index reachable again; the outbox has been applied")

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        """One drain / fill at a time across threads and processes sharing the store.

        Why: a drain reads SQLite then writes Chroma; two interleaved drains could
        let an older read land after a newer one and leave Chroma stale.
        """
        with self._lock:
            self._depth += 1
            try:
                if self._depth == 1 and self._lock_file is not None:
                    fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_EX)
                yield
            finally:
                if self._depth == 1 and self._lock_file is not None:
                    fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_UN)
                self._depth -= 1

    def _collection(self, space: str) -> Any:
        """The space's collection; created, and filled from SQLite if found empty."""
        col = self._collections.get(space)
        if col is not None:
            return col
        with self._exclusive():
            col = self._connect().get_or_create_collection(
                chroma_collection_name(self.collection_name, space),
                embedding_function=None,
                configuration={"hnsw": {"space": "cosine"}},
                metadata={"memvault": self.collection_name},
            )
            if col.count() == 0:  # new, wiped or deleted behind our back: SQLite has it all
                self._fill(col, space)
            self._collections[space] = col
        return col

    # -- writing to Chroma ---------------------------------------------------------------------
    def _records(
        self, space: str, seqs: Sequence[int]
    ) -> tuple[list[str], list[np.ndarray], list[dict[str, Any]]]:
        """Chroma ids, vectors and metadata of the live memories among ``seqs``."""
        live = self.store.seq_scopes(seqs)
        ids: list[str] = []
        vecs: list[np.ndarray] = []
        metas: list[dict[str, Any]] = []
        for seq, mat in self.store.vectors_for(space, list(live)).items():
            mid, scope = live[seq]
            meta = {"seq": seq, **dict(scope.items())}
            for i, row in enumerate(mat):
                ids.append(mid if len(mat) == 1 else f"{mid}#{i}")
                vecs.append(row)
                metas.append(meta)
        return ids, vecs, metas

    def _upsert(self, col: Any, space: str, seqs: Sequence[int]) -> set[str]:
        ids, vecs, metas = self._records(space, seqs)
        for i in range(0, len(ids), 2 * BATCH):
            col.upsert(
                ids=ids[i : i + 2 * BATCH],
                embeddings=np.vstack(vecs[i : i + 2 * BATCH]),
                metadatas=metas[i : i + 2 * BATCH],
            )
        return set(ids)

    def _fill(self, col: Any, space: str) -> None:
        # Only seqs are listed here; vectors are read a batch at a time.
        seqs = self.store.space_seqs(space)
        for i in range(0, len(seqs), BATCH):
            self._upsert(col, space, seqs[i : i + BATCH])

    def _apply(self, seqs: list[int]) -> None:
        """Make Chroma match SQLite for these memories, in every space."""
        for space in self.store.spaces():
            col = self._collection(space)
            old = col.get(where={"seq": {"$in": seqs}}, include=[])["ids"]
            stale = set(old) - self._upsert(col, space, seqs)  # deleted, or fewer vectors now
            if stale:
                col.delete(ids=sorted(stale))

    def _drain(self) -> bool:
        """Apply and acknowledge the whole outbox; False (and nothing raised) if Chroma failed."""
        applied = False
        try:
            with self._exclusive():
                while rows := self.store.outbox(BATCH):
                    self._apply(sorted({seq for _, seq, _, _ in rows}))
                    self.store.ack_outbox([oid for oid, _, _, _ in rows])
                    applied = True
        except Exception as e:  # writes are committed in SQLite; never fail them here
            self._failed(e)
            return False
        if applied:  # only a real round-trip proves Chroma is back
            self._recovered()
        return True

    # -- VectorIndex ---------------------------------------------------------------------------
    def sync(self, touched: list[int], removed: list[int]) -> None:
        """Drain the outbox (the truth, which may also hold other processes' changes)."""
        self._drain()

    def search(
        self, space: str, query: np.ndarray, scope: Scope, generation: int, limit: int | None
    ) -> tuple[Seqs, Scores]:
        if self.store.space_dims(space) is None:
            return _empty()
        if self.store.outbox(1) and not self._drain():  # behind and cannot catch up
            return self._exact.search(space, query, scope, generation, limit)
        try:
            col = self._collection(space)
            n = limit if limit is not None else col.count()
            if n <= 0:
                return _empty()
            res = col.query(
                query_embeddings=[np.asarray(query, dtype=np.float32)],
                n_results=n,
                where=_where(scope),
                include=["metadatas", "distances"],
            )
        except Exception as e:
            self._failed(e)
            return self._exact.search(space, query, scope, generation, limit)
        self._recovered()
        metas, dists = res["metadatas"][0], res["distances"][0]
        if not metas:
            return _empty()
        seqs = np.fromiter((m["seq"] for m in metas), dtype=np.int64, count=len(metas))
        scores = (1.0 - np.asarray(dists, dtype=np.float32)).astype(np.float32)
        order = np.argsort(seqs, kind="stable")
        return max_pool(seqs[order], scores[order])

    def rebuild(self) -> int:
        """Drop every collection of this store and refill them from SQLite (no re-embedding).

        Also removes collections of spaces SQLite no longer has (after ``reset``).
        Raises ``StorageError`` if Chroma cannot be reached: this is an explicit repair.
        """
        try:
            with self._exclusive():
                client = self._connect()
                for c in client.list_collections():
                    if (c.metadata or {}).get("memvault") == self.collection_name:
                        client.delete_collection(c.name)
                self._collections.clear()
                pending = [r[0] for r in self.store.outbox(10**9)]  # covered by the fill below
                for space in self.store.spaces():
                    self._collection(space)  # created empty, hence filled from SQLite
                self.store.ack_outbox(pending)
        except Exception as e:
            self._failed(e)
            raise StorageError(
                f"cannot rebuild the Chroma index (SQLite is unaffected; run "
                f"rebuild() again when Chroma is reachable): {e}"
            ) from e
        self._recovered()
        self._exact.rebuild()
        return self.store.vector_count()

    def close(self) -> None:
        with self._lock:
            if self._owns_client and self._client is not None:
                with suppress(Exception):
                    self._client.close()
            self._client = None
            self._collections.clear()
            if self._lock_file is not None:
                self._lock_file.close()
                self._lock_file = None
            self._exact.close()
