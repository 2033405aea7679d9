"""Scopes: who a memory belongs to, and the rule that every operation names one.

Why strict: mem0's worst bugs were cross-tenant (#6277, #3928). A scope is the
AND of the ids given; a read or write with no scope id is refused, ids are
validated (no whitespace, bounded length), and scope ids can arrive either as
keyword arguments or inside ``filters`` — consistently on every method.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from memvault.errors import ScopeError, ValidationError
from memvault.text import check_string, shown, utf8_size

SCOPE_FIELDS = ("user_id", "agent_id", "run_id")
MAX_ID_LENGTH = 256
#: Idempotency keys are caller-chosen request ids; longer ones are refused.
MAX_KEY_LENGTH = 512
_BAD_ID = re.compile(r"\s")
#: C0 / C1 control characters (NUL included): never part of an id.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def check_id(value: Any, field: str) -> str:
    """Validate one id (scope id or memory id); ints are accepted and stringified.

    An id is 1..MAX_ID_LENGTH characters of valid Unicode with no whitespace and no
    control characters (NUL included): ids are tokens, compared and stored exactly.
    """
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ScopeError(f"{field} must be a string, got {type(value).__name__}")
    if isinstance(value, int) and value.bit_length() > 4 * MAX_ID_LENGTH:
        # str() of such an int is slow (or refused past 4,300 digits); it is too long anyway.
        raise ScopeError(f"{field} is an integer of over {MAX_ID_LENGTH} digits; use a short id")
    text = str(value)
    if not text:
        raise ScopeError(f"{field} is empty; pass a non-empty id")
    if len(text) > MAX_ID_LENGTH:
        raise ScopeError(f"{field} is {len(text)} characters; the limit is {MAX_ID_LENGTH}")
    utf8_size(text, field, error=ScopeError)
    if _BAD_ID.search(text):
        raise ScopeError(f"{field} {text!r} contains whitespace; ids may not contain spaces")
    if _CONTROL.search(text):
        raise ScopeError(
            f"{field} {shown(text)} contains a control character (such as NUL); "
            "ids may hold printable characters only"
        )
    return text


@dataclass(frozen=True, slots=True)
class Scope:
    """The AND of up to three ids; ``None`` means "any" for reads, "unset" for writes."""

    user_id: str | None = None
    agent_id: str | None = None
    run_id: str | None = None

    def items(self) -> list[tuple[str, str]]:
        """The (field, value) pairs that are set."""
        return [(f, v) for f in SCOPE_FIELDS if (v := getattr(self, f)) is not None]

    def as_dict(self) -> dict[str, str | None]:
        return {"user_id": self.user_id, "agent_id": self.agent_id, "run_id": self.run_id}

    def contains(self, record_scope: Scope) -> bool:
        """True when a record with ``record_scope`` is visible inside this scope."""
        return all(getattr(record_scope, f) == v for f, v in self.items())

    def __bool__(self) -> bool:
        return any(v is not None for v in (self.user_id, self.agent_id, self.run_id))


def resolve_scope(
    user_id: Any = None,
    agent_id: Any = None,
    run_id: Any = None,
    filters: dict[str, Any] | None = None,
    *,
    required: bool = True,
) -> tuple[Scope, dict[str, Any] | None]:
    """Merge scope ids given as kwargs and inside ``filters``.

    Returns the scope and the remaining (non-scope) filters. A scope id given
    both ways must agree; a scope value inside ``filters`` must be a plain id
    (operators on scope fields would widen the scope, so they are refused).
    """
    given = {"user_id": user_id, "agent_id": agent_id, "run_id": run_id}
    rest: dict[str, Any] | None = None
    if filters is not None:
        if not isinstance(filters, dict):
            raise ScopeError(f"filters must be a dict, got {type(filters).__name__}")
        rest = {}
        for key, value in filters.items():
            if key in SCOPE_FIELDS:
                if isinstance(value, dict | list):
                    raise ScopeError(
                        f"filters[{key!r}] must be a plain id; scope fields take no operators"
                    )
                if given[key] is not None and str(given[key]) != str(value):
                    raise ScopeError(
                        f"{key} given twice with different values ({given[key]!r} and {value!r})"
                    )
                given[key] = value
            else:
                rest[key] = value
    checked = {k: (check_id(v, k) if v is not None else None) for k, v in given.items()}
    scope = Scope(**checked)
    if required and not scope:
        raise ScopeError(
            "no scope given: pass at least one of user_id, agent_id or run_id "
            "(as a keyword argument or inside filters)"
        )
    return scope, (rest or None)


def scoped_key(scope: Scope, key: str) -> str:
    """An idempotency key as the journal stores it: bound to the scope it was used in.

    Why: keys are chosen by callers (request ids such as ``req-1``), so two tenants can
    pick the same one; unscoped, the second caller's add would be answered with the
    first caller's memory. Bound to the scope, a key is unique within its scope only.
    Applying it twice gives the same key (a journal row's key can be passed back, as
    ``retry_pending`` does), and a prefix naming another scope stays inside the caller's.
    """
    digest = hashlib.sha256(json.dumps(scope.as_dict(), sort_keys=True).encode()).hexdigest()
    prefix = f"scope:{digest[:32]}:"
    return key if key.startswith(prefix) else prefix + key


def check_key(key: object) -> str:
    """Validate an idempotency key (a non-empty string of bounded length)."""
    if not isinstance(key, str) or not key:
        raise ValidationError("idempotency_key must be a non-empty string")
    if len(key) > MAX_KEY_LENGTH:
        raise ValidationError(
            f"idempotency_key is {len(key)} characters; the limit is {MAX_KEY_LENGTH}"
        )
    check_string(key, "idempotency_key")  # valid Unicode, no NUL: the journal stores it
    return key
