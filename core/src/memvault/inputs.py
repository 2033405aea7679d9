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
from memvault.models import DEFAULT_SPACE, to_iso
from memvault.text import MAX_TEXT_BYTES, check_name, check_string, clean_text, shown

#: Metadata keys that would shadow a scope field; refused so metadata can never widen a scope.
RESERVED_METADATA_KEYS = frozenset({"user_id", "agent_id", "run_id"})
#: Largest metadata accepted, as UTF-8 JSON: the same cap as a memory's text. Metadata
#: rides along with every read of the memory; bulk data belongs elsewhere.
MAX_METADATA_BYTES = MAX_TEXT_BYTES
#: Largest keyed-record value (``put``), as UTF-8 JSON: a structured document, not indexed.
MAX_VALUE_BYTES = 1024 * 1024
#: Deepest nesting of dicts / lists accepted in metadata, values and filters.
MAX_DEPTH = 32
#: Longest TTL accepted (1,000 years): longer ones overflow the calendar.
MAX_TTL_SECONDS = 1000 * 365.25 * 86400


@dataclass(slots=True)
class Message:
    """One incoming message, normalised."""

    role: str
    content: str
    name: str | None = None
    timestamp: str | None = None

    @property
    def speaker(self) -> str:
        """Who said it, as prompts and stored quotes name them: the name, else the role."""
        return self.name or self.role


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
        role = check_name(m.get("role", "user"), f"messages[{i}]['role']", empty_ok=True)
        name = m.get("name")
        if name is not None:
            name = check_name(name, f"messages[{i}]['name']", empty_ok=True)
        ts = m.get("timestamp") or m.get("created_at")
        out.append(
            Message(
                role,
                clean_text(content, what=f"messages[{i}]['content']"),
                name,
                parse_time(ts),
            )
        )
    return out


def parse_time(value: Any, *, end_of_day: bool = False) -> str | None:
    """datetime / date / ISO string / epoch seconds -> stored ISO form (None passes).

    Any time outside years 1..9999 UTC (epoch -1e20, ``date.max`` + a day, a
    ``datetime.max`` west of UTC) is a ``ValidationError``, never an ``OverflowError``.
    """
    if value is None:
        return None
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return to_iso(datetime.fromtimestamp(float(value), tz=UTC))
        if isinstance(value, date) and not isinstance(value, datetime):
            day = datetime(value.year, value.month, value.day, tzinfo=UTC)
            return to_iso(day + timedelta(days=1) if end_of_day else day)
        if isinstance(value, str) and len(value) == 10 and end_of_day:
            d = date.fromisoformat(value)
            return to_iso(datetime(d.year, d.month, d.day, tzinfo=UTC) + timedelta(days=1))
        if isinstance(value, datetime | str):
            return to_iso(value)
    except (OverflowError, OSError) as e:  # OSError: the platform's time_t range
        raise ValidationError(
            f"{shown(value)} is out of range as a date/time; dates must fall within years "
            "1 to 9999 (UTC)"
        ) from e
    except ValueError as e:
        raise ValidationError(f"cannot read {shown(value)} as a date/time: {e}") from e
    raise ValidationError(f"expected a datetime, date or ISO string, got {type(value).__name__}")


def check_tree(
    value: Any,
    what: str,
    *,
    error: type[ValidationError] = ValidationError,
    max_bytes: int | None = None,
    nul_ok: bool = False,
) -> None:
    """Walk a JSON-like value without recursion (metadata, keyed values, filter operands).

    Refuses, with ``error`` naming the path: nesting deeper than MAX_DEPTH (which
    would otherwise end in a ``RecursionError`` in ``json`` or the filter compiler),
    non-string dict keys, and keys or strings that hold NUL or are not valid Unicode.
    With ``max_bytes`` it stops as soon as the strings alone exceed it, so a huge
    value costs one pass, not a serialisation.
    ``nul_ok`` lets strings hold NUL (filter operands: compared, never kept).
    """
    stack: list[tuple[Any, tuple[Any, ...]]] = [(value, ())]
    budget = max_bytes
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            size = check_string(item, _where(what, path), error=error, nul_ok=nul_ok)
            if budget is not None:
                budget -= size
                if budget < 0:
                    raise error(f"{what} is over the limit of {max_bytes} bytes (as JSON)")
            continue
        if not isinstance(item, dict | list | tuple | set | frozenset):
            continue
        if len(path) >= MAX_DEPTH:
            raise error(
                f"{what} is nested more than {MAX_DEPTH} levels deep (at {_where(what, path)});"
                " flatten it"
            )
        if isinstance(item, dict):
            for k, v in item.items():
                if not isinstance(k, str):
                    raise error(
                        f"{_where(what, path)} has a non-string key {shown(k)}; keys must be strings"
                    )
                check_name(k, f"a key of {_where(what, path)}", error=error, empty_ok=True)
                stack.append((v, (*path, k)))
        else:
            stack.extend((v, (*path, i)) for i, v in enumerate(item))


def _where(what: str, path: tuple[Any, ...]) -> str:
    """``metadata['a'][0]``: the place in a nested value an error is about."""
    return what + "".join(f"[{shown(p, 40)}]" for p in path)


def to_json(value: Any, what: str, max_bytes: int) -> str:
    """``value`` as JSON, refusing non-JSON values and more than ``max_bytes`` of UTF-8.

    Call ``check_tree`` first: it bounds the depth, so ``json`` cannot recurse too far.
    """
    try:
        text = json.dumps(value, allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError) as e:  # ValueError: NaN, an int past 4,300 digits
        raise ValidationError(f"{what} must be JSON-serialisable: {e}") from e
    size = len(text.encode("utf-8"))
    if size > max_bytes:
        raise ValidationError(
            f"{what} is {size} bytes as JSON; the limit is {max_bytes} bytes — store bulk "
            "data elsewhere and keep a reference"
        )
    return text


def clean_metadata(metadata: Any) -> dict[str, Any]:
    """Metadata: a JSON dict, at most MAX_DEPTH deep and MAX_METADATA_BYTES as JSON.

    Keys are strings at every level, none of them a scope field; no string in it
    (key or value) holds NUL or a lone surrogate.
    """
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise ValidationError(f"metadata must be a dict, got {type(metadata).__name__}")
    check_tree(metadata, "metadata", max_bytes=MAX_METADATA_BYTES)
    bad = RESERVED_METADATA_KEYS.intersection(metadata)
    if bad:
        raise ValidationError(
            f"metadata may not contain scope fields {sorted(bad)}; pass them as arguments"
        )
    to_json(metadata, "metadata", MAX_METADATA_BYTES)
    return dict(metadata)


def clean_value(value: Any) -> str:
    """A keyed record's value -> its JSON (at most MAX_DEPTH deep, MAX_VALUE_BYTES)."""
    check_tree(value, "value", max_bytes=MAX_VALUE_BYTES)
    return to_json(value, "value", MAX_VALUE_BYTES)


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
    """A namespace is a non-empty tuple of names (\\x1f separates labels when stored)."""
    if isinstance(namespace, str) or not isinstance(namespace, Sequence) or not namespace:
        raise ValidationError("namespace must be a non-empty tuple of strings")
    for label in namespace:
        if isinstance(label, str) and "\x1f" in label:
            raise ValidationError(f"namespace label {shown(label)} contains \\x1f; remove it")
        check_name(label, "a namespace label")
    return tuple(namespace)


def check_key(key: Any) -> str:
    """A keyed record's key: a name (non-empty, valid Unicode, no NUL)."""
    return check_name(key, "key")


def check_space(vector_space: Any) -> str:
    """A vector space name (None = the configured embedder's space)."""
    return DEFAULT_SPACE if vector_space is None else check_name(vector_space, "vector_space")


def check_changed_by(changed_by: Any) -> str | None:
    """Who made a change, as recorded in the history (None = not recorded)."""
    return None if changed_by is None else check_name(changed_by, "changed_by")


def clean_categories(categories: Sequence[str] | None) -> list[str]:
    if categories is None:
        return []
    if isinstance(categories, str) or not all(isinstance(c, str) and c for c in categories):
        raise ValidationError("categories must be a list of non-empty strings")
    return list(dict.fromkeys(check_name(c, "a category") for c in categories))


def clean_ttl(ttl_seconds: Any) -> float | None:
    """A TTL: a positive, finite number of seconds up to MAX_TTL_SECONDS (None = none)."""
    if ttl_seconds is None:
        return None
    if (
        isinstance(ttl_seconds, bool)
        or not isinstance(ttl_seconds, int | float)
        or not 0 < ttl_seconds <= MAX_TTL_SECONDS
    ):
        raise ValidationError(
            f"ttl must be a positive number of seconds up to {MAX_TTL_SECONDS:.0f} "
            f"(1,000 years), got {shown(ttl_seconds)}"
        )
    return ttl_seconds


def clean_importance(importance: float | None) -> float | None:
    if importance is None:
        return None
    if not isinstance(importance, int | float) or not 0 <= importance <= 1:
        raise ValidationError(f"importance must be a number in [0, 1], got {importance!r}")
    return float(importance)
