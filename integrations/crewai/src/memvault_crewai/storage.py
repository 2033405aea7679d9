"""``MemvaultStorage``: memvault as the storage backend of CrewAI's unified ``Memory``.

CrewAI's ``Memory`` does its own embedding, LLM analysis, consolidation and
composite scoring; a backend only stores ``MemoryRecord``s and answers vector
searches over them (``crewai.memory.storage.backend.StorageBackend``). This
module translates each of those calls into memvault's keyed-record API and
nothing more — memvault stores, filters, ranks and counts:

* a record is ``Memory.put(namespace, key=record.id, ...)`` with CrewAI's own
  vector (``embeddings=[record.embedding]``) in the vector space
  ``f"crewai:{dims}"``, so CrewAI's embedder never mixes with memvault's;
* the hierarchical scope path ``/a/b/c`` is the namespace ``("crewai", "a", "b",
  "c")``; every record lives under ``agent_id="crewai"`` and a ``/user/{u}``
  segment also sets ``user_id=u`` (see :class:`ScopeMapping`), so a CrewAI
  user's memories are in the same memvault scope mem0-style code reads;
* a search is memvault's pure vector ranking, and the score handed back is the
  raw cosine similarity memvault reports (``score_details.semantic_similarity``),
  which is also what ``min_score`` is compared with;
* CrewAI's ``created_at`` is memvault's observation time (``put(timestamp=)``,
  read back as ``valid_from``): ``list_records`` orders by it and ``older_than``
  filters on it.

Every operation is written once as a *plan*: a generator that yields the
memvault calls it needs (``memvault.adapterkit``). ``save, asave = twins(...)``
runs one plan on ``Memory`` and on ``AsyncMemory``, so ``asave`` / ``asearch`` /
``adelete`` are natively async with no second copy of the logic.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from crewai.memory.types import MemoryRecord, ScopeInfo
from crewai.memory.utils import normalize_scope_path

from memvault import AsyncMemory, Memory, MemoryConfig, ScopeError
from memvault.adapterkit import Call, HandlesMixin, MemoryHandles, Plan, twins
from memvault.embedding.base import Embedder
from memvault.scope import check_id

__all__ = [
    "DEFAULT_AGENT_ID",
    "ROOT_LABEL",
    "MemvaultStorage",
    "MemvaultStorageFactory",
    "ScopeMapping",
    "vector_space_for",
]


#: memvault scope id every CrewAI record is stored under (configurable per storage).
DEFAULT_AGENT_ID = "crewai"
#: First namespace label of every CrewAI record: keeps them apart from other keyed records.
ROOT_LABEL = "crewai"
#: memvault's largest page (``top_k`` / ``limit`` are capped at 10,000).
_PAGE = 10_000
#: memvault's default candidate pool; raised to ``limit`` for larger searches.
_MIN_CANDIDATES = 50
#: Fusion weights for CrewAI searches: dense similarity only (CrewAI scores recency
#: and importance itself; a keyword or neighbour bonus would distort its ranking).
_VECTOR_ONLY = {"keyword_weight": 0.0, "neighbor_weight": 0.0, "actor_weight": 0.0}


def vector_space_for(dims: int) -> str:
    """The memvault vector space CrewAI vectors of ``dims`` dimensions live in."""
    return f"crewai:{dims}"


def _utc(dt: datetime) -> datetime:
    """An aware UTC datetime (CrewAI's are naive UTC: ``datetime.utcnow()``)."""
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def _iso(dt: datetime) -> str:
    """Fixed-width UTC ISO form, so stored times compare correctly as strings in filters."""
    return _utc(dt).isoformat(timespec="microseconds")


def _naive_utc(value: str) -> datetime:
    """A stored ISO time back as CrewAI wants it: naive UTC (it subtracts ``utcnow()``)."""
    dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return dt.astimezone(UTC).replace(tzinfo=None) if dt.tzinfo is not None else dt


def _has_vector(embedding: Sequence[float] | None) -> bool:
    # CrewAI's own backends store an all-zero placeholder when a record has no vector.
    return bool(embedding) and any(x != 0 for x in embedding)  # type: ignore[union-attr]


def _embedding(item: dict[str, Any]) -> list[float] | None:
    """The CrewAI vector of a memory read with ``include_vectors=True`` (None without)."""
    for space, vectors in (item.get("vectors") or {}).items():
        if vectors and space == vector_space_for(len(vectors[0])):
            return [float(x) for x in vectors[0]]
    return None


@dataclass(frozen=True, slots=True)
class ScopeMapping:
    """How a CrewAI scope path maps onto a memvault namespace and scope ids.

    * namespace: ``(root_label, *segments)``; ``/`` is ``(root_label,)``.
    * ``agent_id``: always ``agent_id`` (default ``"crewai"``).
    * ``user_id``: the segment after the first ``user_segment`` segment, e.g.
      ``/crew/support/user/alice/prefs`` -> ``user_id="alice"`` (None when the
      path has no such segment or the value is not a valid memvault id).
    * ``run_id``: likewise after ``run_segment`` (off by default).

    Why derive ids from the path: memvault isolates scopes in the store, so a
    search under ``/user/alice`` never even loads another user's records, and
    ``Memory().search(user_id="alice", agent_id="crewai")`` sees what a crew
    remembered about alice. The derivation is a function of the path only, and a
    prefix of a path derives the same ids, so a scope-prefix read always lands
    in the scope its records were written to.
    """

    agent_id: str = DEFAULT_AGENT_ID
    user_segment: str | None = "user"
    run_segment: str | None = None
    root_label: str = ROOT_LABEL

    def __post_init__(self) -> None:
        check_id(self.agent_id, "agent_id")
        if not self.root_label:
            raise ValueError("root_label must be a non-empty string")

    @staticmethod
    def normalize(path: str | None) -> str:
        """CrewAI's own normalisation: leading slash, no trailing or doubled slashes."""
        return normalize_scope_path(path or "/")

    @staticmethod
    def segments(path: str | None) -> tuple[str, ...]:
        """The labels of a scope path (``/a/b`` -> ``("a", "b")``)."""
        return tuple(p for p in ScopeMapping.normalize(path).split("/") if p)

    def namespace(self, path: str | None) -> tuple[str, ...]:
        """The memvault namespace of a scope path."""
        return (self.root_label, *self.segments(path))

    def path_of(self, namespace: Sequence[str] | None) -> str:
        """The scope path of a namespace (inverse of :meth:`namespace`)."""
        labels = list(namespace or [])[1:]
        return "/" + "/".join(labels) if labels else "/"

    def _segment_value(self, labels: tuple[str, ...], marker: str | None) -> str | None:
        if not marker or marker not in labels:
            return None
        i = labels.index(marker)
        if i + 1 >= len(labels):
            return None
        try:
            return check_id(labels[i + 1], marker)
        except ScopeError:  # e.g. whitespace: not an id; the record stays agent-scoped
            return None

    def scope_ids(self, path: str | None) -> dict[str, str | None]:
        """The memvault scope ids (``agent_id``, ``user_id``, ``run_id``) of a scope path."""
        labels = self.segments(path)
        return {
            "agent_id": self.agent_id,
            "user_id": self._segment_value(labels, self.user_segment),
            "run_id": self._segment_value(labels, self.run_segment),
        }


class MemvaultStorage(HandlesMixin):
    """A CrewAI ``StorageBackend`` backed by a memvault store.

    Use it with ``crewai.Memory(storage=MemvaultStorage(...), embedder=..., llm=...)``,
    or process-wide with ``set_memory_storage_factory(MemvaultStorageFactory(...))``.

    Args:
        path: the memvault store file (default: memvault's embedded default under
            ``$MEMVAULT_HOME``). Not together with ``memory``.
        memory: an open ``memvault.Memory`` (or ``AsyncMemory``) to use; it is not
            closed by :meth:`close`, so one store can back several storages.
        config: memvault config (dict or ``MemoryConfig``) when opening ``path``.
        embedder: memvault embedder when opening ``path``. CrewAI brings its own
            vectors, so this only matters for memvault's own APIs on the same store.
        agent_id / user_segment / run_segment: the :class:`ScopeMapping`.
        mapping: a ready :class:`ScopeMapping` (instead of the three above).
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        memory: Memory | AsyncMemory | None = None,
        config: dict[str, Any] | MemoryConfig | None = None,
        embedder: Embedder | None = None,
        agent_id: str = DEFAULT_AGENT_ID,
        user_segment: str | None = "user",
        run_segment: str | None = None,
        mapping: ScopeMapping | None = None,
    ) -> None:
        self.mapping = mapping or ScopeMapping(
            agent_id=agent_id, user_segment=user_segment, run_segment=run_segment
        )
        self._handles = MemoryHandles(memory, path=path, config=config, embedder=embedder)

    @property
    def handles(self) -> MemoryHandles:
        """The shared memvault handles (tools built from this storage reuse them)."""
        return self._handles

    @property
    def embedder(self) -> Embedder:
        """memvault's embedder for this store (``embedding_function(storage)`` reuses it)."""
        return self._handles.embedder

    # -- translation ------------------------------------------------------------------------------
    def _where(self, path: str) -> dict[str, Any]:
        """Scope ids + namespace prefix for a read under ``path``."""
        return {**self.mapping.scope_ids(path), "namespace_prefix": self.mapping.namespace(path)}

    @staticmethod
    def _filters(
        *,
        categories: Sequence[str] | None = None,
        metadata_filter: dict[str, Any] | None = None,
        record_ids: Sequence[str] | None = None,
        older_than: datetime | None = None,
    ) -> dict[str, Any] | None:
        """CrewAI's criteria as one memvault filter (AND of all; categories match any-of)."""
        parts: list[dict[str, Any]] = []
        if categories:
            parts.append({"OR": [{"categories": {"contains": c}} for c in categories]})
        if record_ids is not None:
            parts.append({"key": {"in": list(record_ids)}})
        if older_than is not None:
            parts.append({"valid_from": {"lt": _iso(older_than)}})  # put(timestamp=created_at)
        for k, v in (metadata_filter or {}).items():
            path = f"value.metadata.{k}"
            if v is None:  # CrewAI: metadata.get(k) == None also matches a missing key
                parts.append({"OR": [{path: {"eq": None}}, {"NOT": [{path: "*"}]}]})
            else:  # explicit eq: a dict value is then a value, not an operator dict
                parts.append({path: {"eq": v}})
        return {"AND": parts} if parts else None

    def _value(self, record: MemoryRecord, path: str) -> dict[str, Any]:
        """What memvault keeps besides text, vector, categories, importance and created_at."""
        return {
            "scope": path,
            "last_accessed": _iso(record.last_accessed),
            "metadata": record.metadata,
            "source": record.source,
            "private": record.private,
        }

    def _put(self, record: MemoryRecord) -> Call:
        path = self.mapping.normalize(record.scope)
        emb = record.embedding
        vector: dict[str, Any]
        if _has_vector(emb):
            assert emb is not None
            vector = {"embeddings": [list(emb)], "vector_space": vector_space_for(len(emb))}
        else:
            vector = {"index": False}  # no vector: listed and filtered, never vector-searched
        return Call(
            "put",
            kwargs={
                "namespace": self.mapping.namespace(path),
                "key": record.id,
                "value": self._value(record, path),
                "text": record.content,
                "categories": [c for c in dict.fromkeys(record.categories) if c],
                "importance": record.importance,
                "timestamp": _iso(record.created_at),  # memvault's valid_from
                **vector,
                **self.mapping.scope_ids(path),
            },
        )

    def _record(self, item: dict[str, Any]) -> MemoryRecord:
        """A memvault memory dict back as a CrewAI ``MemoryRecord``.

        ``embedding`` is the stored vector when ``item`` was read with
        ``include_vectors=True`` (memvault keeps it L2-normalised, in float32), else
        None (search results). ``last_accessed`` is the record's own until memvault
        records a touch.
        """
        v = item.get("value") if isinstance(item.get("value"), dict) else {}
        assert isinstance(v, dict)
        importance = item.get("importance")
        # memvault sets last_accessed_at = updated_at on every put and only moves it on a
        # touch: later than the write means touched since, else CrewAI's own value stands.
        accessed = item.get("last_accessed_at") or item["updated_at"]
        if accessed <= item["updated_at"] and v.get("last_accessed"):
            accessed = v["last_accessed"]
        return MemoryRecord(
            id=item["key"],
            content=item["memory"],
            scope=v.get("scope") or self.mapping.path_of(item.get("namespace")),
            categories=list(item.get("categories") or []),
            metadata=dict(v.get("metadata") or {}),
            importance=0.5 if importance is None else float(importance),
            embedding=_embedding(item),
            created_at=_naive_utc(item.get("valid_from") or item["created_at"]),
            last_accessed=_naive_utc(accessed),
            source=v.get("source"),
            private=bool(v.get("private", False)),
        )

    # -- plans ------------------------------------------------------------------------------------
    def _locate(
        self, record_ids: Sequence[str], *, vectors: bool = False
    ) -> Plan[dict[str, dict[str, Any]]]:
        """The stored memvault memories of these CrewAI record ids (id -> memory dict)."""
        found: dict[str, dict[str, Any]] = {}
        ids = [i for i in dict.fromkeys(record_ids) if isinstance(i, str) and i]
        for start in range(0, len(ids), _PAGE):
            chunk = ids[start : start + _PAGE]
            res = yield Call(
                "get_all",
                kwargs={
                    "agent_id": self.mapping.agent_id,
                    "namespace_prefix": (self.mapping.root_label,),
                    "filters": {"key": {"in": chunk}},
                    "limit": _PAGE,
                    "include_vectors": vectors,
                },
            )
            for item in res["results"]:
                found.setdefault(item["key"], item)  # newest first: keep the newest
        return found

    def _all(self, path: str) -> Plan[list[dict[str, Any]]]:
        """Every stored memory under ``path``, newest first (paged through memvault's cap)."""
        out: list[dict[str, Any]] = []
        while True:
            res = yield Call(
                "get_all", kwargs={**self._where(path), "limit": _PAGE, "offset": len(out)}
            )
            out.extend(res["results"])
            if len(res["results"]) < _PAGE:
                return out

    def _save_plan(self, records: Iterable[MemoryRecord]) -> Plan[None]:
        """Store records (an existing id is replaced, wherever its scope was)."""
        # The same id twice in one batch: the last one wins, as if saved one after the other.
        batch = list({r.id: r for r in records}.values())
        if not batch:
            return None
        existing = yield from self._locate([r.id for r in batch])
        for record in batch:
            old = existing.get(record.id)
            call = self._put(record)
            yield call
            if old is not None:
                moved = (
                    tuple(old.get("namespace") or ()) != call.kwargs["namespace"]
                    or old.get("user_id") != call.kwargs["user_id"]
                    or old.get("run_id") != call.kwargs["run_id"]
                )
                if moved:  # written first, then the old location dropped: never lost
                    yield Call(
                        "delete_key",
                        kwargs={
                            "namespace": tuple(old["namespace"]),
                            "key": record.id,
                            "agent_id": old.get("agent_id"),
                            "user_id": old.get("user_id"),
                            "run_id": old.get("run_id"),
                        },
                    )
        return None

    def _search_plan(
        self,
        query_embedding: Sequence[float],
        scope_prefix: str | None = None,
        categories: list[str] | None = None,
        metadata_filter: dict[str, Any] | None = None,
        limit: int = 10,
        min_score: float = 0.0,
    ) -> Plan[list[tuple[MemoryRecord, float]]]:
        """Records most similar to ``query_embedding``, best first, with raw cosine similarity."""
        vector = list(query_embedding)
        if limit <= 0 or not _has_vector(vector):
            return []
        path = self.mapping.normalize(scope_prefix)
        res = yield Call(
            "search",
            kwargs={
                **self._where(path),
                "vector": vector,
                "vector_space": vector_space_for(len(vector)),
                "filters": self._filters(categories=categories, metadata_filter=metadata_filter),
                "top_k": limit,
                "explain": True,
                "retrieval": {**_VECTOR_ONLY, "candidates": max(limit, _MIN_CANDIDATES)},
                "dedupe": False,  # two records with the same content are two results
            },
        )
        out: list[tuple[MemoryRecord, float]] = []
        for item in res["results"]:
            similarity = item["score_details"]["semantic_similarity"]
            if similarity is None or similarity < min_score:
                continue
            out.append((self._record(item), float(similarity)))
        return out

    def _delete_plan(
        self,
        scope_prefix: str | None = None,
        categories: list[str] | None = None,
        record_ids: list[str] | None = None,
        older_than: datetime | None = None,
        metadata_filter: dict[str, Any] | None = None,
    ) -> Plan[int]:
        """Delete records matching all given criteria; returns how many were deleted."""
        if record_ids is not None and not record_ids:
            return 0  # "delete these zero records", not "delete everything"
        path = self.mapping.normalize(scope_prefix)
        filters = self._filters(
            categories=categories,
            metadata_filter=metadata_filter,
            record_ids=record_ids,
            older_than=older_than,
        )
        # _where: scope ids + namespace prefix ("/" at least), so only this storage's
        # CrewAI records are ever deleted, in one memvault transaction.
        res = yield Call("delete_all", kwargs={**self._where(path), "filters": filters})
        return int(res["deleted"])

    def _list_scopes_plan(self, parent: str) -> Plan[list[str]]:
        path = self.mapping.normalize(parent)
        prefix = self.mapping.namespace(path)
        found = yield Call(
            "namespaces",
            kwargs={
                **self.mapping.scope_ids(path),
                "prefix": prefix,
                "max_depth": len(prefix) + 1,
                "limit": 1_000_000,
            },
        )
        n = len(prefix)
        # memvault's prefix treats "*" as a wildcard; CrewAI's "*" is a literal segment.
        children = {
            self.mapping.path_of(ns) for ns in found if len(ns) == n + 1 and tuple(ns[:n]) == prefix
        }
        return sorted(children)

    def _scope_info_plan(self, scope: str) -> Plan[ScopeInfo]:
        path = self.mapping.normalize(scope)
        items = yield from self._all(path)
        children = yield from self._list_scopes_plan(path)
        records = [self._record(i) for i in items]
        created = [r.created_at for r in records]
        return ScopeInfo(
            path=path,
            record_count=len(records),
            categories=sorted({c for r in records for c in r.categories}),
            oldest_record=min(created, default=None),
            newest_record=max(created, default=None),
            child_scopes=children,
        )

    def _list_records_plan(
        self, scope_prefix: str | None, limit: int, offset: int
    ) -> Plan[list[MemoryRecord]]:
        if limit <= 0:
            return []
        path = self.mapping.normalize(scope_prefix)
        out: list[dict[str, Any]] = []
        while len(out) < limit:
            want = min(_PAGE, limit - len(out))
            res = yield Call(
                "get_all",
                kwargs={
                    **self._where(path),
                    "limit": want,
                    "offset": offset + len(out),
                    "order_by": "valid_from",  # CrewAI's created_at, newest first
                    "include_vectors": True,
                },
            )
            out.extend(res["results"])
            if len(res["results"]) < want:
                break
        return [self._record(i) for i in out]

    def _touch_plan(self, record_ids: Sequence[str]) -> Plan[None]:
        found = yield from self._locate(record_ids)
        if found:
            yield Call("touch", kwargs={"memory_ids": [item["id"] for item in found.values()]})
        return None

    def _get_record_plan(self, record_id: str) -> Plan[MemoryRecord | None]:
        found = yield from self._locate([record_id], vectors=True)
        item = found.get(record_id)
        return None if item is None else self._record(item)

    # -- StorageBackend: each method runs a plan above on Memory (or AsyncMemory) -----------------
    save, asave = twins(_save_plan)
    search, asearch = twins(_search_plan)
    delete, adelete = twins(_delete_plan)

    def update(self, record: MemoryRecord) -> None:
        """Replace the record with ``record.id`` (moving it when its scope changed)."""
        self.handles.run(self._save_plan([record]))

    def get_record(self, record_id: str) -> MemoryRecord | None:
        """The record with this id (with its stored ``embedding``), or None."""
        return self.handles.run(self._get_record_plan(record_id))

    def list_records(
        self, scope_prefix: str | None = None, limit: int = 200, offset: int = 0
    ) -> list[MemoryRecord]:
        """Records under ``scope_prefix``, newest ``created_at`` first (with embeddings)."""
        return self.handles.run(self._list_records_plan(scope_prefix, limit, offset))

    def get_scope_info(self, scope: str) -> ScopeInfo:
        """Record count, categories, date range and child scopes of ``scope`` (subscopes included)."""
        return self.handles.run(self._scope_info_plan(scope))

    def list_scopes(self, parent: str = "/") -> list[str]:
        """The immediate child scopes of ``parent`` that hold records."""
        return self.handles.run(self._list_scopes_plan(parent))

    def list_categories(self, scope_prefix: str | None = None) -> dict[str, int]:
        """Category -> number of records under ``scope_prefix`` carrying it."""
        items = self.handles.run(self._all(self.mapping.normalize(scope_prefix)))
        counts: dict[str, int] = {}
        for item in items:
            for c in item.get("categories") or []:
                counts[c] = counts.get(c, 0) + 1
        return counts

    def count(self, scope_prefix: str | None = None) -> int:
        """Number of records under ``scope_prefix`` (subscopes included)."""
        path = self.mapping.normalize(scope_prefix)
        return int(self.memory.count(**self._where(path)))

    def reset(self, scope_prefix: str | None = None) -> None:
        """Delete every CrewAI record of this storage under ``scope_prefix`` (None: all).

        Other data in the same memvault store (other agent ids, mem0-style memories)
        is never touched.
        """
        self.delete(scope_prefix=scope_prefix)

    def touch_records(self, record_ids: list[str]) -> None:
        """Mark records as accessed now (CrewAI calls it after a recall)."""
        if record_ids:
            self.handles.run(self._touch_plan(record_ids))


class MemvaultStorageFactory:
    """A ``set_memory_storage_factory`` callable: CrewAI's default storage becomes memvault.

    ``set_memory_storage_factory(MemvaultStorageFactory(path="crew.db"))`` makes every
    ``crewai.Memory`` built with a string ``storage`` in ``specs`` (default: CrewAI's
    default ``"lancedb"``, which is what ``Crew(memory=True)`` uses) store in memvault.
    Each such ``Memory`` gets its own :class:`MemvaultStorage` over one shared
    ``memvault.Memory``, so ``Memory.close()`` on one crew never closes the store
    under another. Other specs return None (CrewAI's built-in selection).
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        memory: Memory | None = None,
        config: dict[str, Any] | MemoryConfig | None = None,
        embedder: Embedder | None = None,
        specs: Iterable[str] = ("lancedb",),
        **storage_options: Any,
    ) -> None:
        self._owned = memory is None
        self.memory: Memory = memory or Memory(config, path=path, embedder=embedder)
        self.specs = frozenset(specs)
        self._options = storage_options
        self._made: list[MemvaultStorage] = []
        self._lock = threading.Lock()

    def __call__(self, spec: str) -> MemvaultStorage | None:
        if spec not in self.specs:
            return None
        storage = MemvaultStorage(memory=self.memory, **self._options)
        with self._lock:
            self._made.append(storage)
        return storage

    def close(self) -> None:
        """Close every storage made here, then the shared store if this factory opened it."""
        with self._lock:
            made, self._made = self._made, []
        for storage in made:
            storage.close()
        if self._owned:
            self.memory.close()
