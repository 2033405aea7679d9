"""Export and import a store (or one scope of it) as JSON Lines.

Why JSONL: one self-contained object per line streams in constant memory, diffs
and greps well, and a hand-written file of ``{"type": "memory", "memory": ...,
"user_id": ...}`` lines is a valid import (ids, hashes, times and vectors are
then generated). Why every field and every history row: an export is a backup
and an audit trail, so importing it into a fresh store must give back the same
memories (same ids, superseded versions, vectors bit for bit) and the same
history, not a re-derived approximation.

Format (version 1)::

    {"type": "memvault-export", "version": 1, "spaces": {"default": 384}, ...}
    {"type": "memory", "id": ..., "memory": ..., <every MemoryRecord field>,
     "vectors": {"default": [[0.0123, ...]]}}
    {"type": "history", "id": 7, "memory_id": ..., "event": "UPDATE", <every history column>}

Each memory line is followed by its history lines; history of memories that no
longer exist (deleted) comes last. A memory line without ``"vectors"`` is
re-embedded with the importing store's embedder; with ``"vectors"`` (even
empty) the vectors are taken as they are.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from memvault.engine import Engine
from memvault.errors import ConflictError, DimensionMismatchError, ValidationError
from memvault.inputs import clean_categories, clean_importance, clean_metadata, parse_time
from memvault.models import ACTIVE, DEFAULT_SPACE, SUPERSEDED, MemoryRecord, content_hash, utcnow
from memvault.scope import SCOPE_FIELDS, Scope, check_id, resolve_scope
from memvault.store import schema
from memvault.store.contract import Store, Tx
from memvault.store.schema import NS_SEP
from memvault.text import clean_text

if TYPE_CHECKING:
    from memvault.memory import _MemoryAPI

HEADER_TYPE = "memvault-export"
FORMAT_VERSION = 1
#: Lines per write transaction. A batch only ends before a memory line, so a memory
#: and its history lines always commit together.
BATCH_LINES = 500

#: Every MemoryRecord field, read from the dataclass so a field added to the model is
#: exported (and imported) without touching this module. ``scope`` becomes the three ids.
_RECORD_FIELDS = tuple(
    f.name for f in dataclasses.fields(MemoryRecord) if f.name not in ("scope", "seq")
)
_MEMORY_FIELDS = (
    "id",
    "memory",
    "hash",
    "user_id",
    "agent_id",
    "run_id",
    *(f for f in _RECORD_FIELDS if f not in ("id", "memory", "hash")),
)
#: History columns that get a conversion (JSON text <-> object, 0/1 <-> bool); any other
#: column of the history table is copied as is, so new columns survive too.
_HISTORY_JSON = schema.HISTORY_JSON
#: float32 -> shortest-ish decimal that reads back to the same float32 (9 significant digits).
_G9 = "{:.9g}".format
#: Keys accepted on a line besides the record's own fields. ``updated_at`` on a history
#: line is what ``Memory.history()`` returns (an alias of created_at): tolerated, ignored.
_MEMORY_KEYS = frozenset((*_MEMORY_FIELDS, "type", "vectors"))
_HEADER_KEYS = frozenset(
    ("type", "version", "spaces", "space_models", "exported_at", "scope", "memories")
)


# -- export ----------------------------------------------------------------------------------


def export_jsonl(
    memory: _MemoryAPI,
    fp: IO[str],
    *,
    user_id: str | None = None,
    agent_id: str | None = None,
    run_id: str | None = None,
    include_vectors: bool = True,
) -> int:
    """Write the store (or one scope) to ``fp`` as JSONL; returns the number of memories.

    Without a scope id the whole store is written, including the history of
    deleted memories. With scope ids only that scope's memories (every version)
    and their history are written. Everything is read from one snapshot, so a
    concurrent writer can never produce a half-updated export.
    ``include_vectors=False`` makes a smaller, embedder-neutral file: the
    importing store re-embeds every memory with its own embedder.
    """
    store = memory._engine.store
    scope, _ = resolve_scope(user_id, agent_id, run_id, required=False)
    if include_vectors:
        memory._engine.indexer.drain()  # queued vectors first: the file carries every one
    n = 0
    with store.snapshot():
        spaces = store.spaces_used(scope) if include_vectors else {}
        fp.write(
            _dumps(
                {
                    "type": HEADER_TYPE,
                    "version": FORMAT_VERSION,
                    "spaces": spaces,
                    "space_models": {
                        n: m for n, (_, m) in store.spaces().items() if n in spaces and m
                    },
                    "exported_at": utcnow(),
                    "scope": scope.as_dict() if scope else None,
                }
            )
        )
        exported: set[str] = set()
        records: Iterable[MemoryRecord] = store.scope_records(scope) if scope else store.iter_all()
        for r in records:
            fp.write(_memory_line(r, store.all_vectors(r.seq) if include_vectors else None))
            for h in _history_rows(store, r.id):
                fp.write(_dumps(h))
            exported.add(r.id)
            n += 1
        # History outlives its memory (deleted ones): export it too, scope permitting.
        for h in _history_rows(store, None):
            if h["memory_id"] in exported:
                continue
            if scope and not scope.contains(Scope(h["user_id"], h["agent_id"], h["run_id"])):
                continue
            fp.write(_dumps(h))
    return n


def _dumps(obj: dict[str, Any]) -> str:
    return json.dumps(obj, ensure_ascii=False, allow_nan=False) + "\n"


def _memory_line(r: MemoryRecord, vectors: dict[str, np.ndarray] | None) -> str:
    d: dict[str, Any] = {"type": "memory"}
    for name in _MEMORY_FIELDS:
        d[name] = getattr(r.scope, name) if name in SCOPE_FIELDS else getattr(r, name)
    if r.namespace is not None:
        d["namespace"] = list(r.namespace)
    line = json.dumps(d, ensure_ascii=False, allow_nan=False)
    if vectors is None:
        return line + "\n"
    # 9 significant digits round-trip any float32 exactly, in ~40% less space (and time)
    # than json's 17-digit doubles. Vectors are finite (checked on write), so no nan/inf.
    parts = []
    for space, mat in vectors.items():
        rows = ",".join("[" + ",".join(map(_G9, row)) + "]" for row in np.atleast_2d(mat).tolist())
        parts.append(f"{json.dumps(space, ensure_ascii=False)}: [{rows}]")
    return f'{line[:-1]}, "vectors": {{{", ".join(parts)}}}}}\n'


def _history_rows(store: Store, memory_id: str | None) -> Iterator[dict[str, Any]]:
    """History rows as export dicts (every column, in id order)."""
    for row in store.history_rows(memory_id):
        h: dict[str, Any] = {"type": "history", **row}
        for key in _HISTORY_JSON:
            h[key] = json.loads(h[key]) if h[key] else None
        h["is_deleted"] = bool(h["is_deleted"])
        yield h


# -- import ----------------------------------------------------------------------------------


@dataclass(slots=True)
class _MemoryItem:
    line: int
    record: MemoryRecord
    vectors: dict[str, np.ndarray] | None  # None: embed with the store's embedder
    generated: bool  # no id in the file: dedup by text, and write an ADD history row
    embedded: bool = False  # vectors computed by this import


@dataclass(slots=True)
class _HistoryItem:
    line: int
    row: dict[str, Any]


@dataclass(slots=True)
class _Counts:
    memories: int = 0
    skipped: int = 0
    history: int = 0
    history_skipped: int = 0
    embedded: int = 0
    keep_history_ids: bool = True
    batch: list[_MemoryItem | _HistoryItem] = field(default_factory=list)

    def as_dict(self) -> dict[str, int]:
        return {
            "memories": self.memories,
            "skipped": self.skipped,
            "history": self.history,
            "history_skipped": self.history_skipped,
            "embedded": self.embedded,
        }


def import_jsonl(memory: _MemoryAPI, fp: Iterable[str | bytes]) -> dict[str, int]:
    """Read a JSONL export (or hand-written memory lines) from ``fp`` into the store.

    Returns counts: ``memories`` inserted, ``skipped`` (id already present, or a
    line without id whose text is already active in its scope), ``history`` rows
    inserted, ``history_skipped`` (an identical row is already there) and
    ``embedded`` (memories that had no vectors in the file).

    Idempotent, so an interrupted import can simply be re-run. Lines are written
    in transactions of about ``BATCH_LINES`` lines that never split a memory from
    its history: a failure rolls back the current batch only, and never leaves
    half a memory. A bad line raises ``ValidationError`` naming its line number;
    vectors of the wrong size raise ``DimensionMismatchError``.
    """
    engine = memory._engine
    state = _Counts()
    # History ids are kept as they are when the store has none yet (a restore gives back
    # identical rows); otherwise they would collide, so new ids are assigned in file order.
    state.keep_history_ids = not engine.store.has_history()
    history_columns = schema.HISTORY_NAMES
    unit: str | None = None  # the memory id the last lines belong to (batches never split it)
    for lineno, raw in enumerate(fp, start=1):
        try:
            text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        except UnicodeDecodeError as e:
            raise ValidationError(f"line {lineno}: not valid UTF-8 ({e.reason})") from e
        if lineno == 1:
            text = text.removeprefix("\ufeff")  # a byte-order mark some editors add
        if not text.strip():
            continue
        obj = _parse_line(text, lineno)
        kind = obj.get("type")
        if kind == HEADER_TYPE:
            _check_header(engine, obj, lineno)
        elif kind == "memory":
            item = _line_error(_memory_item, obj, lineno)
            item.line = lineno
            if len(state.batch) >= BATCH_LINES:
                _flush(engine, state)
            state.batch.append(item)
            unit = item.record.id
        elif kind == "history":
            row = _line_error(_history_row, obj, lineno, history_columns)
            if len(state.batch) >= BATCH_LINES and row["memory_id"] != unit:
                _flush(engine, state)
            state.batch.append(_HistoryItem(lineno, row))
            unit = row["memory_id"]
        else:
            raise ValidationError(
                f"line {lineno}: unknown type {kind!r}; expected 'memory', 'history' or "
                f"{HEADER_TYPE!r}"
            )
    _flush(engine, state)
    return state.as_dict()


def _parse_line(text: str, lineno: int) -> dict[str, Any]:
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValidationError(f"line {lineno}: not valid JSON ({e.msg} at column {e.colno})") from e
    if not isinstance(obj, dict):
        raise ValidationError(f"line {lineno}: expected a JSON object, got {type(obj).__name__}")
    return obj


def _line_error(fn: Any, obj: dict[str, Any], lineno: int, *args: Any) -> Any:
    """Run a line parser, prefixing any validation error with the line number."""
    try:
        return fn(obj, *args)
    except ValidationError as e:
        msg = str(e)
        if msg.startswith(f"line {lineno}:"):
            raise
        raise ValidationError(f"line {lineno}: {msg}") from e


def _check_header(engine: Engine, obj: dict[str, Any], lineno: int) -> None:
    unknown = set(obj) - _HEADER_KEYS
    if unknown:
        raise ValidationError(f"line {lineno}: unknown header fields {sorted(unknown)}")
    version = obj.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ValidationError(f"line {lineno}: header version must be a positive integer")
    if version > FORMAT_VERSION:
        raise ValidationError(
            f"line {lineno}: export format v{version} is newer than this memvault reads "
            f"(v{FORMAT_VERSION}); upgrade memvault"
        )
    spaces = obj.get("spaces") or {}
    if not isinstance(spaces, dict) or not all(
        isinstance(k, str) and k and isinstance(v, int) and not isinstance(v, bool) and v > 0
        for k, v in spaces.items()
    ):
        raise ValidationError(f"line {lineno}: header spaces must map names to dimensions")
    # Refuse up front, before anything is written, a file whose vectors cannot fit.
    for name, dims in spaces.items():
        have = engine.store.space_dims(name)
        if have is not None and have != dims:
            err = DimensionMismatchError(name, have, dims)
            err.args = (f"line {lineno}: {err}",)
            raise err
    models = obj.get("space_models") or {}
    if not isinstance(models, dict):
        raise ValidationError(f"line {lineno}: header space_models must be an object")
    for name, model in models.items():  # vectors of another model would be meaningless here
        recorded = engine.store.spaces().get(name)
        if recorded is not None and recorded[1] and model and recorded[1] != model:
            raise ValidationError(
                f"line {lineno}: space {name!r} holds vectors of {recorded[1]!r} but the file's "
                f"are from {model!r}; export with --no-vectors to re-embed on import"
            )
    # Then declare them, so even a space no exported memory uses any more comes back.
    for name, dims in spaces.items():
        engine.store.register_space(name, dims, models.get(name))


def _opt_str(obj: dict[str, Any], key: str) -> str | None:
    v = obj.get(key)
    if v is not None and not isinstance(v, str):
        raise ValidationError(f"{key} must be a string or null, got {type(v).__name__}")
    return v


def _opt_id(obj: dict[str, Any], key: str) -> str | None:
    v = obj.get(key)
    return None if v is None else check_id(v, key)


def _opt_time(obj: dict[str, Any], key: str, *, end_of_day: bool = False) -> str | None:
    try:
        return parse_time(obj.get(key), end_of_day=end_of_day)
    except ValidationError as e:
        raise ValidationError(f"{key}: {e}") from e


def _memory_item(obj: dict[str, Any]) -> _MemoryItem:
    unknown = set(obj) - _MEMORY_KEYS
    if unknown:
        raise ValidationError(f"unknown memory fields {sorted(unknown)}")
    text = clean_text(obj.get("memory"), what="memory")
    scope, _ = resolve_scope(obj.get("user_id"), obj.get("agent_id"), obj.get("run_id"))
    generated = obj.get("id") is None
    now = utcnow()
    created = _opt_time(obj, "created_at") or now
    h = obj.get("hash")
    if h is not None and (not isinstance(h, str) or not h):
        raise ValidationError("hash must be a non-empty string")
    namespace = obj.get("namespace")
    if namespace is not None:
        if not isinstance(namespace, list) or not all(
            isinstance(x, str) and NS_SEP not in x for x in namespace
        ):
            raise ValidationError("namespace must be a list of strings")
        namespace = tuple(namespace)
    state = obj.get("state") or ACTIVE
    if state not in (ACTIVE, SUPERSEDED):
        raise ValidationError(f"state must be {ACTIVE!r} or {SUPERSEDED!r}, got {state!r}")
    ttl = obj.get("ttl_seconds")
    if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, int | float) or ttl <= 0):
        raise ValidationError(f"ttl_seconds must be a positive number, got {ttl!r}")
    # Fields this module does not know yet (added to MemoryRecord later): copied as they
    # are when given, so a newer model's data survives; the dataclass default otherwise.
    extra = {k: obj[k] for k in _RECORD_FIELDS if k not in _HANDLED_FIELDS and k in obj}
    if ttl is not None:
        extra["ttl_seconds"] = ttl
    record = MemoryRecord(
        id=str(uuid.uuid4()) if generated else check_id(obj["id"], "id"),
        memory=text,
        scope=scope,
        hash=h or content_hash(text),
        metadata=clean_metadata(obj.get("metadata")),
        created_at=created,
        updated_at=_opt_time(obj, "updated_at") or created,
        role=_opt_str(obj, "role"),
        actor_id=_opt_str(obj, "actor_id"),
        categories=clean_categories(obj.get("categories") or None),
        importance=clean_importance(obj.get("importance")),
        value=obj.get("value"),
        namespace=namespace,
        key=_opt_str(obj, "key"),
        valid_from=_opt_time(obj, "valid_from") or (created if generated else None),
        valid_to=_opt_time(obj, "valid_to"),
        superseded_by=_opt_id(obj, "superseded_by"),
        expiration_date=_opt_time(obj, "expiration_date", end_of_day=True),
        last_accessed_at=_opt_time(obj, "last_accessed_at"),
        state=state,
        **extra,
    )
    vectors = _vectors(obj["vectors"]) if "vectors" in obj else None
    return _MemoryItem(0, record, vectors, generated)


_HANDLED_FIELDS = frozenset(
    (
        "id",
        "memory",
        "hash",
        "metadata",
        "created_at",
        "updated_at",
        "role",
        "actor_id",
        "categories",
        "importance",
        "value",
        "namespace",
        "key",
        "valid_from",
        "valid_to",
        "superseded_by",
        "expiration_date",
        "last_accessed_at",
        "state",
        "ttl_seconds",
    )
)


def _vectors(value: Any) -> dict[str, np.ndarray]:
    """``{space: vector or [vectors]}`` -> float32 matrices, unit length.

    Exported vectors are already unit length and are kept bit for bit; hand-made
    ones are normalised (dense scoring is a dot product).
    """
    if not isinstance(value, dict):
        raise ValidationError("vectors must be an object mapping space names to vectors")
    out = {}
    for space, vecs in value.items():
        if not space:
            raise ValidationError("vector space names must be non-empty")
        try:
            mat = np.atleast_2d(np.asarray(vecs, dtype=np.float32))
        except (TypeError, ValueError) as e:
            raise ValidationError(f"vectors[{space!r}] must be numbers: {e}") from e
        if mat.ndim != 2 or mat.shape[1] == 0 or not np.isfinite(mat).all():
            raise ValidationError(
                f"vectors[{space!r}] must be a non-empty, finite vector (or list of vectors)"
            )
        norms = np.linalg.norm(mat, axis=1)
        if (norms == 0).any():
            raise ValidationError(f"vectors[{space!r}] contains a zero vector")
        off = np.abs(norms - 1) > 1e-3
        if off.any():
            mat = mat.copy()
            mat[off] /= norms[off, None]
        out[space] = mat
    return out


def _history_row(obj: dict[str, Any], columns: tuple[str, ...]) -> dict[str, Any]:
    unknown = set(obj) - {*columns, "type", "updated_at"}
    if unknown:
        raise ValidationError(f"unknown history fields {sorted(unknown)}")
    event = obj.get("event")
    if not isinstance(event, str) or not event:
        raise ValidationError("history event must be a non-empty string (ADD, UPDATE, ...)")
    hid = obj.get("id")
    if hid is not None and (not isinstance(hid, int) or isinstance(hid, bool) or hid < 1):
        raise ValidationError("history id must be a positive integer")
    row: dict[str, Any] = {
        "id": hid,
        "memory_id": check_id(obj.get("memory_id"), "memory_id"),
        "event": event,
        "old_memory": _opt_str(obj, "old_memory"),
        "new_memory": _opt_str(obj, "new_memory"),
    }
    for key in ("old_metadata", "new_metadata"):
        v = obj.get(key)
        if v is not None and not isinstance(v, dict):
            raise ValidationError(f"{key} must be an object or null")
        # The store wrote it with these same settings: re-dumping gives the same text.
        row[key] = json.dumps(v, ensure_ascii=False) if v is not None else None
    for key in ("user_id", "agent_id", "run_id"):
        row[key] = _opt_id(obj, key)
    for key in ("actor_id", "role", "changed_by", "related_id"):
        row[key] = _opt_str(obj, key)
    row["created_at"] = _opt_time(obj, "created_at") or utcnow()
    deleted = obj.get("is_deleted", event == "DELETE")
    if not isinstance(deleted, bool | int):
        raise ValidationError("is_deleted must be a boolean")
    row["is_deleted"] = int(bool(deleted))
    for col in columns:  # columns this module does not know: scalars, copied as they are
        if col not in row and col in obj:
            v = obj[col]
            if v is not None and not isinstance(v, str | int | float):
                raise ValidationError(f"history {col} must be a string, number or null")
            row[col] = v
    return row


def _flush(engine: Engine, state: _Counts) -> None:
    """Write one batch in one transaction (embedding first, outside the write lock)."""
    batch, state.batch = state.batch, []
    if not batch:
        return
    store = engine.store
    todo = [
        it
        for it in batch
        if isinstance(it, _MemoryItem) and it.vectors is None and not _present(store, it)
    ]
    if todo:
        vecs = engine.embedder.embed([it.record.memory for it in todo])
        for it, v in zip(todo, vecs, strict=True):
            it.vectors, it.embedded = {DEFAULT_SPACE: np.atleast_2d(v)}, True
    counts = _Counts(keep_history_ids=state.keep_history_ids)
    with store.write() as tx:
        for it in batch:
            try:
                if isinstance(it, _MemoryItem):
                    _write_memory(tx, store, it, counts)
                else:
                    _write_history(tx, it.row, counts)
            except DimensionMismatchError as e:
                e.args = (f"line {it.line}: {e}",)
                raise
            except ConflictError as e:  # a uniqueness rule of the store
                raise ValidationError(f"line {it.line}: {e}") from e
    engine.index.sync(tx.touched, tx.removed)
    # Counted only once committed, so the totals describe what is really in the store.
    state.memories += counts.memories
    state.skipped += counts.skipped
    state.history += counts.history
    state.history_skipped += counts.history_skipped
    state.embedded += counts.embedded
    state.keep_history_ids = counts.keep_history_ids


def _present(store: Store, it: _MemoryItem) -> bool:
    """Already in the store: same id, or (no id given) the same active text in the scope."""
    r = it.record
    if it.generated:
        return store.find_active(r.scope, r.hash) is not None
    return store.get(r.id) is not None


def _write_memory(tx: Tx, store: Store, it: _MemoryItem, counts: _Counts) -> None:
    if _present(store, it):  # re-checked inside the transaction (same connection)
        counts.skipped += 1
        return
    if it.vectors is None:  # present before the transaction, deleted since: leave it deleted
        counts.skipped += 1
        return
    tx.insert(it.record, it.vectors)
    counts.memories += 1
    counts.embedded += it.embedded
    if it.generated:
        tx.history(
            "ADD",
            memory_id=it.record.id,
            old=None,
            new=it.record,
            changed_by="import",
            at=it.record.created_at,
        )
        counts.history += 1


def _write_history(tx: Tx, row: dict[str, Any], counts: _Counts) -> None:
    outcome = tx.import_history(row, keep_id=counts.keep_history_ids)
    if outcome == "duplicate":
        counts.history_skipped += 1
        return
    if outcome == "renumbered":  # from here on, new ids in file order (keeps each memory's order)
        counts.keep_history_ids = False
    counts.history += 1
