"""The stored tables described once; every backend derives its columns from here.

Why one description: the memory row used to be spelled by hand in four places (the
DDL, the INSERT, the UPDATE and the row decoder), so a new column meant four edits
that had to agree. Here each column says its name, its type, whether an update may
change it, and how a :class:`MemoryRecord` field becomes a stored value and back.
Backends build their INSERT / UPDATE / SELECT lists and their row decoding from these
tuples, PostgreSQL its DDL too; the SQLite DDL is checked against them by a test.

Adding a column: one entry here, plus one numbered migration step per backend
(``SCHEMA_VERSION`` is shared, so a store's version means the same on both).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from memvault.models import MemoryRecord
from memvault.scope import Scope

#: The schema version both backends are at (SQLite v2: scoped FTS, v3: queue leases,
#: v4: journal keys bound to their scope; v5: PostgreSQL drops the GIN index on the
#: terms and ``n_terms``, nothing on SQLite). A store newer than this is refused.
SCHEMA_VERSION = 5
#: Separator terminating each namespace label in ``ns_path`` (prefix-friendly, never typed).
NS_SEP = "\x1f"


def ns_to_path(namespace: Sequence[str] | None) -> str | None:
    """A namespace tuple as stored: labels joined and terminated by NS_SEP (prefix-friendly)."""
    if namespace is None:
        return None
    return "".join(f"{label}{NS_SEP}" for label in namespace)


def path_to_ns(path: str | None) -> tuple[str, ...] | None:
    if path is None:
        return None
    return tuple(path.split(NS_SEP)[:-1])


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class Column:
    """One stored column.

    ``type`` is portable (text, integer, real); ``get`` reads the stored value off a record,
    ``put`` turns a stored value back into the record field ``field`` (None: not a field).
    """

    name: str
    type: str
    not_null: bool = False
    default: str | None = None
    mutable: bool = True
    get: Callable[[MemoryRecord], Any] | None = None
    field: str | None = None
    put: Callable[[Any], Any] | None = None


def _attr(name: str) -> Callable[[MemoryRecord], Any]:
    return lambda r: getattr(r, name)


def _scope(name: str) -> Callable[[MemoryRecord], Any]:
    return lambda r: getattr(r.scope, name)


def _col(name: str, type_: str = "text", **kw: Any) -> Column:
    """A column that is the record field of the same name (unless told otherwise)."""
    kw.setdefault("get", _attr(name))
    kw.setdefault("field", name)
    return Column(name, type_, **kw)


#: The memories table, in stored order. ``seq`` (insertion order) is assigned by the store.
MEMORY_COLUMNS: tuple[Column, ...] = (
    Column("seq", "integer", not_null=True, mutable=False, field="seq"),
    _col("id", not_null=True, mutable=False),
    _col("memory", not_null=True),
    _col("hash", not_null=True),
    Column("user_id", "text", mutable=False, get=_scope("user_id")),
    Column("agent_id", "text", mutable=False, get=_scope("agent_id")),
    Column("run_id", "text", mutable=False, get=_scope("run_id")),
    _col(
        "metadata",
        not_null=True,
        default="'{}'",
        get=lambda r: _dumps(r.metadata),
        put=json.loads,
    ),
    _col("created_at", not_null=True, mutable=False),
    _col("updated_at", not_null=True),
    _col("role"),
    _col("actor_id"),
    _col(
        "categories",
        get=lambda r: json.dumps(r.categories) if r.categories else None,
        put=lambda v: json.loads(v) if v else [],
    ),
    _col("importance", "real"),
    _col(
        "value",
        get=lambda r: _dumps(r.value) if r.value is not None else None,
        put=lambda v: json.loads(v) if v is not None else None,
    ),
    Column(
        "ns_path",
        "text",
        mutable=False,
        get=lambda r: ns_to_path(r.namespace),
        field="namespace",
        put=path_to_ns,
    ),
    _col("key", mutable=False),
    _col("valid_from"),
    _col("valid_to"),
    _col("superseded_by"),
    _col("expiration_date"),
    _col("last_accessed_at"),
    _col("ttl_seconds", "real"),
    _col("state", not_null=True, default="'active'"),
)
MEMORY_NAMES = tuple(c.name for c in MEMORY_COLUMNS)
#: Written by an insert (``seq`` is the store's), and by an update.
INSERT_COLUMNS = tuple(c for c in MEMORY_COLUMNS if c.get is not None)
UPDATE_COLUMNS = tuple(c for c in INSERT_COLUMNS if c.mutable)


def insert_values(r: MemoryRecord) -> list[Any]:
    """The record's values in ``INSERT_COLUMNS`` order."""
    return [c.get(r) for c in INSERT_COLUMNS]  # type: ignore[misc]


def update_values(r: MemoryRecord) -> list[Any]:
    """The record's values in ``UPDATE_COLUMNS`` order."""
    return [c.get(r) for c in UPDATE_COLUMNS]  # type: ignore[misc]


#: How decode_memory reads a row, worked out once: (position, field) of plain columns,
#: (position, field, put) of converted ones, and the scope columns' positions.
_PLAIN = tuple(
    (i, c.field) for i, c in enumerate(MEMORY_COLUMNS) if c.field is not None and c.put is None
)
_CONVERTED = tuple(
    (i, c.field, c.put)
    for i, c in enumerate(MEMORY_COLUMNS)
    if c.field is not None and c.put is not None
)
_SCOPE_AT = tuple(
    next(i for i, c in enumerate(MEMORY_COLUMNS) if c.name == f)
    for f in ("user_id", "agent_id", "run_id")
)
_EMPTY_JSON = "{}"


def decode_memory(row: Sequence[Any]) -> MemoryRecord:
    """A row selected as ``MEMORY_NAMES`` (in that order) as a record.

    Runs for every record of a scope a search reads cold, so the column plan is
    precomputed and the usual empty metadata skips the JSON parser.
    """
    if len(row) != len(MEMORY_COLUMNS):
        raise ValueError(f"a memory row has {len(MEMORY_COLUMNS)} columns, got {len(row)}")
    fields = {f: row[i] for i, f in _PLAIN}
    for i, f, put in _CONVERTED:
        v = row[i]
        fields[f] = {} if v == _EMPTY_JSON and f == "metadata" else put(v)
    u, a, r = _SCOPE_AT
    return MemoryRecord(scope=Scope(row[u], row[a], row[r]), **fields)


#: The audit history: one row per change, kept after its memory is gone.
HISTORY_COLUMNS: tuple[Column, ...] = (
    Column("id", "integer", not_null=True),
    Column("memory_id", "text", not_null=True),
    Column("event", "text", not_null=True),
    Column("old_memory", "text"),
    Column("new_memory", "text"),
    Column("old_metadata", "text"),
    Column("new_metadata", "text"),
    Column("user_id", "text"),
    Column("agent_id", "text"),
    Column("run_id", "text"),
    Column("actor_id", "text"),
    Column("role", "text"),
    Column("changed_by", "text"),
    Column("related_id", "text"),
    Column("created_at", "text", not_null=True),
    Column("is_deleted", "integer", not_null=True, default="0"),
)
HISTORY_NAMES = tuple(c.name for c in HISTORY_COLUMNS)
#: What makes two history rows the same change (an import skips such duplicates).
HISTORY_DEDUP = ("memory_id", "event", "created_at", "old_memory", "new_memory", "changed_by")
#: History columns holding JSON text (decoded for callers).
HISTORY_JSON = ("old_metadata", "new_metadata")


def history_row(
    event: str,
    *,
    memory_id: str,
    old: MemoryRecord | None,
    new: MemoryRecord | None,
    changed_by: str | None,
    related_id: str | None,
    at: str,
) -> dict[str, Any]:
    """The stored history row of one change (without ``id``, which the store assigns)."""
    ref = new or old
    assert ref is not None
    return {
        "memory_id": memory_id,
        "event": event,
        "old_memory": old.memory if old else None,
        "new_memory": new.memory if new else None,
        "old_metadata": _dumps(old.metadata) if old else None,
        "new_metadata": _dumps(new.metadata) if new else None,
        "user_id": ref.scope.user_id,
        "agent_id": ref.scope.agent_id,
        "run_id": ref.scope.run_id,
        "actor_id": ref.actor_id,
        "role": ref.role,
        "changed_by": changed_by,
        "related_id": related_id,
        "created_at": at,
        "is_deleted": 1 if event == "DELETE" else 0,
    }


def history_public(row: dict[str, Any]) -> dict[str, Any]:
    """A stored history row as ``Memory.history()`` returns it (mem0's shape)."""
    out = dict(row)
    for k in HISTORY_JSON:
        out[k] = json.loads(out[k]) if out[k] else None
    out["updated_at"] = out["created_at"]
    out["is_deleted"] = bool(out["is_deleted"])
    return out


#: The ingest / idempotency journal.
JOURNAL_NAMES = (
    "key",
    "kind",
    "payload",
    "state",
    "attempts",
    "error",
    "result",
    "batch_id",
    "created_at",
    "updated_at",
)


def journal_public(row: dict[str, Any]) -> dict[str, Any]:
    """A stored journal row with its JSON columns decoded."""
    out = dict(row)
    out["payload"] = json.loads(out["payload"])
    out["result"] = json.loads(out["result"]) if out["result"] else None
    return out


def journal_values(
    key: str,
    state: str,
    *,
    kind: str,
    payload: Any,
    result: Any,
    error: str | None,
    batch_id: str | None,
) -> tuple[Any, ...]:
    """(key, kind, payload, state, error, result, batch_id) as stored."""
    return (
        key,
        kind,
        json.dumps(payload, ensure_ascii=False, default=str),
        state,
        error,
        json.dumps(result, ensure_ascii=False) if result is not None else None,
        batch_id,
    )


USAGE_FIELDS = ("prompt_tokens", "completion_tokens", "cached_tokens", "calls")
