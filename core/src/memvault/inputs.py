"""Input normalisation: every argument a caller can pass, validated into one shape.

Why one module: the same rules (what a message is, what a date is, which metadata
keys are refused, what a vector or namespace looks like) apply to ``add``, ``put``,
ingest rows and imports alike, and each bad value must fail with the same typed,
actionable error before anything is written.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np

from memvault.errors import ValidationError
from memvault.models import to_iso
from memvault.text import clean_text

#: Metadata keys that would shadow a scope field; refused so metadata can never widen a scope.
RESERVED_METADATA_KEYS = frozenset({"user_id", "agent_id", "run_id"})


@dataclass(slots=True)
class Message:
    """One incoming message, normalised."""

    role: str
    content: str
    name: str | None = None
    timestamp: str | None = None


def parse_messages(messages: Any) -> list[Message]:
    """Accept a str, a message dict, or a list of either (mem0's shapes)."""
    if isinstance(messages, str | bytes):
        return [Message("user", clean_text(messages, what="messages"))]
    if isinstance(messages, dict):
        messages = [messages]
    if not isinstance(messages, list | tuple) or not messages:
        raise ValidationError(
            "messages must be a non-empty str, a {'role', 'content'} dict, or a list of them"
        )
    out = []
    for i, m in enumerate(messages):
        if isinstance(m, str | bytes):
            out.append(Message("user", clean_text(m, what=f"messages[{i}]")))
            continue
        if not isinstance(m, dict):
            raise ValidationError(f"messages[{i}] must be a dict or str, got {type(m).__name__}")
        content = m.get("content")
        if isinstance(content, list):  # OpenAI content parts: keep the text ones
            content = "\n".join(
                p.get("text", "")
                for p in content
                if isinstance(p, dict) and p.get("type") in ("text", None)
            )
        role = m.get("role", "user")
        if not isinstance(role, str):
            raise ValidationError(f"messages[{i}]['role'] must be a string")
        name = m.get("name")
        ts = m.get("timestamp") or m.get("created_at")
        out.append(
            Message(
                role,
                clean_text(content, what=f"messages[{i}]['content']"),
                str(name) if name is not None else None,
                parse_time(ts),
            )
        )
    return out


def parse_time(value: Any, *, end_of_day: bool = False) -> str | None:
    """datetime / date / ISO string / epoch seconds -> stored ISO form (None passes)."""
    if value is None:
        return None
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return to_iso(datetime.fromtimestamp(float(value), tz=UTC))
        if isinstance(value, date) and not isinstance(value, datetime):
            value = datetime(value.year, value.month, value.day, tzinfo=UTC)
            return to_iso(value + timedelta(days=1) if end_of_day else value)
        if isinstance(value, str) and len(value) == 10 and end_of_day:
            d = date.fromisoformat(value)
            return to_iso(datetime(d.year, d.month, d.day, tzinfo=UTC) + timedelta(days=1))
        if isinstance(value, datetime | str):
            return to_iso(value)
    except ValueError as e:
        raise ValidationError(f"cannot read {value!r} as a date/time: {e}") from e
    raise ValidationError(f"expected a datetime, date or ISO string, got {type(value).__name__}")


def clean_metadata(metadata: Any) -> dict[str, Any]:
    """Metadata must be a JSON-serialisable dict that does not touch scope fields."""
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise ValidationError(f"metadata must be a dict, got {type(metadata).__name__}")
    bad = RESERVED_METADATA_KEYS.intersection(metadata)
    if bad:
        raise ValidationError(
            f"metadata may not contain scope fields {sorted(bad)}; pass them as arguments"
        )
    try:
        json.dumps(metadata, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise ValidationError(f"metadata must be JSON-serialisable: {e}") from e
    if not all(isinstance(k, str) for k in metadata):
        raise ValidationError("metadata keys must be strings")
    return dict(metadata)


def as_vectors(value: Any, what: str) -> np.ndarray:
    """One vector or a list of vectors -> 2-D float32, L2-normalised, finite."""
    try:
        mat = np.atleast_2d(np.asarray(value, dtype=np.float32))
    except (TypeError, ValueError) as e:
        raise ValidationError(f"{what} must be a list of numbers (or of vectors): {e}") from e
    if mat.ndim != 2 or mat.shape[1] == 0 or not np.isfinite(mat).all():
        raise ValidationError(f"{what} must be a non-empty, finite vector (or list of vectors)")
    norms = np.linalg.norm(mat, axis=1, keepdims=True)
    if (norms == 0).any():
        raise ValidationError(f"{what} contains a zero vector")
    return mat / norms


def check_namespace(namespace: Any) -> tuple[str, ...]:
    """A namespace is a non-empty tuple of non-empty labels (no control separators)."""
    if isinstance(namespace, str) or not isinstance(namespace, Sequence) or not namespace:
        raise ValidationError("namespace must be a non-empty tuple of strings")
    for label in namespace:
        if not isinstance(label, str) or not label or "\x1f" in label or "\x00" in label:
            raise ValidationError(f"namespace labels must be non-empty strings, got {label!r}")
    return tuple(namespace)


def check_key(key: Any) -> str:
    if not isinstance(key, str) or not key:
        raise ValidationError(f"key must be a non-empty string, got {key!r}")
    return key


def clean_categories(categories: Sequence[str] | None) -> list[str]:
    if categories is None:
        return []
    if isinstance(categories, str) or not all(isinstance(c, str) and c for c in categories):
        raise ValidationError("categories must be a list of non-empty strings")
    return list(dict.fromkeys(categories))


def clean_importance(importance: float | None) -> float | None:
    if importance is None:
        return None
    if not isinstance(importance, int | float) or not 0 <= importance <= 1:
        raise ValidationError(f"importance must be a number in [0, 1], got {importance!r}")
    return float(importance)
