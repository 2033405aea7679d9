"""The record model: one memory as stored, and its public (mem0-shaped) dict.

Why these fields: beyond mem0's (id, memory, hash, metadata, scope ids, times),
the adapters need somewhere to put what their frameworks carry — LangGraph's
namespace path, key and JSON value, CrewAI's categories and importance — and
supersession needs validity times. Keeping them as first-class columns lets the
core store, filter and export them, so no adapter keeps storage of its own.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from memvault.scope import Scope

ACTIVE = "active"
#: The vector space the configured embedder writes to (bring-your-own vectors use others).
DEFAULT_SPACE = "default"
SUPERSEDED = "superseded"


def utcnow() -> str:
    """Now as a fixed-width ISO-8601 UTC string (sorts lexically = chronologically)."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def to_iso(value: datetime | str | None) -> str | None:
    """Normalise a datetime / ISO string to the stored fixed-width UTC form."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def content_hash(text: str) -> str:
    """mem0-compatible MD5 of the memory text (dedup key, not a security hash)."""
    return hashlib.md5(text.encode("utf-8")).hexdigest()


@dataclass(slots=True)
class MemoryRecord:
    """A stored memory. ``seq`` orders memories by insertion (adjacency for retrieval)."""

    id: str
    memory: str
    scope: Scope
    hash: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    created_at: str = ""
    updated_at: str = ""
    role: str | None = None
    actor_id: str | None = None
    categories: list[str] = field(default_factory=list)
    importance: float | None = None
    value: Any = None
    namespace: tuple[str, ...] | None = None
    key: str | None = None
    valid_from: str | None = None
    valid_to: str | None = None
    superseded_by: str | None = None
    expiration_date: str | None = None
    last_accessed_at: str | None = None
    ttl_seconds: float | None = None
    state: str = ACTIVE
    seq: int = 0

    def filter_view(self) -> dict[str, Any]:
        """The dict the filter evaluator reads (see ``memvault.filters.lookup``)."""
        return {
            "memory": self.memory,
            "hash": self.hash,
            "actor_id": self.actor_id,
            "role": self.role,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "categories": self.categories or None,
            "importance": self.importance,
            "metadata": self.metadata,
            "value": self.value,
            "namespace": self.namespace,
            "key": self.key,
            "last_accessed_at": self.last_accessed_at,
            "valid_from": self.valid_from or self.created_at,
        }

    def to_dict(self, score: float | None = None, *, with_score: bool = False) -> dict[str, Any]:
        """The public, mem0-shaped dict (extra memvault fields only when set)."""
        out: dict[str, Any] = {
            "id": self.id,
            "memory": self.memory,
            "hash": self.hash,
            "metadata": dict(self.metadata),
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "user_id": self.scope.user_id,
            "agent_id": self.scope.agent_id,
            "run_id": self.scope.run_id,
        }
        if with_score:
            out["score"] = score
        optional = {
            "role": self.role,
            "actor_id": self.actor_id,
            "categories": self.categories or None,
            "importance": self.importance,
            "value": self.value,
            "namespace": list(self.namespace) if self.namespace is not None else None,
            "key": self.key,
            "valid_from": self.valid_from,
            "valid_to": self.valid_to,
            "superseded_by": self.superseded_by,
            "expiration_date": self.expiration_date,
            "last_accessed_at": self.last_accessed_at,
            "ttl_seconds": self.ttl_seconds,
        }
        out.update({k: v for k, v in optional.items() if v is not None})
        if self.state != ACTIVE:
            out["state"] = self.state
        return out
