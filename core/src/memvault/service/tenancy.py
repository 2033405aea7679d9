"""Tenants inside scopes: what a key may touch, and how its tenant enters every call.

Why the tenant is part of the scope and not a filter: the engine already refuses any
call without a scope and confines each call to it, so if every scope id the service
passes down is ``"<tenant>:<id>"`` a call can only ever reach its own tenant's
memories — there is no second check to forget. Tenant names cannot contain ``:``, so
the split is unambiguous, and ids that hold no ``:`` (such as the key store's own
scope, ``keys.KEYS_SCOPE``) can never be named by any API caller. Responses carry the
caller's ids again (:meth:`Principal.strip`).

A key may also be limited to some user ids and/or agent ids, and to reads. Calls that
name a scope outside those limits are refused (403); by-id calls on a memory outside
them answer 404 (:meth:`Principal.owns`), as for another tenant's id, so ids never
leak. When a key is limited to exactly one user (or agent) id, calls that omit it
get it: this is how MCP tools act without ever taking a scope from the model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from memvault.errors import MemvaultError, ScopeError
from memvault.models import DEFAULT_SPACE
from memvault.scope import MAX_ID_LENGTH, SCOPE_FIELDS, resolve_scope

SEP = ":"
#: Result keys whose value maps vector space names to something (vectors, dimensions).
SPACE_MAPS = frozenset(("vectors", "spaces", "space_models"))
#: Tenant names: short lowercase tokens (they prefix every id, within its 256 characters).
TENANT_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")


class Forbidden(MemvaultError, PermissionError):
    """The key may not do this (read-only key, scope outside the key's limits). HTTP 403."""


def check_tenant(name: str) -> str:
    """Validate a tenant name (1-32 of ``a-z 0-9 _ -``, starting with a letter or digit)."""
    if not isinstance(name, str) or not TENANT_RE.match(name):
        raise ScopeError(
            f"tenant {name!r} is not a valid name: use 1-32 characters of a-z, 0-9, '_' or '-'"
        )
    return name


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller, as its API key describes it."""

    key_id: str
    tenant: str
    user_ids: frozenset[str] | None = None
    agent_ids: frozenset[str] | None = None
    read_only: bool = False
    #: Calls per minute this key may make (None: the server's default, if any).
    rate_limit: int | None = None

    @property
    def prefix(self) -> str:
        return self.tenant + SEP

    # -- into the engine ------------------------------------------------------------------------
    def scope(
        self,
        user_id: Any = None,
        agent_id: Any = None,
        run_id: Any = None,
        filters: dict[str, Any] | None = None,
        *,
        write: bool = False,
    ) -> tuple[dict[str, str | None], dict[str, Any] | None]:
        """The engine's scope kwargs for a call naming these ids, and the other filters.

        Raises ``Forbidden`` for a write with a read-only key or ids outside the key's
        limits, ``ScopeError`` for no scope or malformed ids (checked as the caller gave
        them, so messages name the caller's ids, never the internal ones).
        """
        if write and self.read_only:
            raise Forbidden("this API key is read-only")
        scope, rest = resolve_scope(user_id, agent_id, run_id, filters, required=False)
        ids = scope.as_dict()
        for field, allowed in (("user_id", self.user_ids), ("agent_id", self.agent_ids)):
            if allowed is None:
                continue
            if ids[field] is None and len(allowed) == 1:
                ids[field] = next(iter(allowed))
            if ids[field] is None:
                raise Forbidden(f"this API key requires {field} (one of its allowed ids)")
            if ids[field] not in allowed:
                raise Forbidden(f"this API key may not use {field} {ids[field]!r}")
        if not any(ids.values()):
            raise ScopeError(
                "no scope given: pass at least one of user_id, agent_id or run_id "
                "(as a field or inside filters)"
            )
        limit = MAX_ID_LENGTH - len(self.prefix)
        for field, value in ids.items():
            if value is not None and len(value) > limit:
                raise ScopeError(f"{field} is {len(value)} characters; the limit is {limit}")
        return {f: (self.prefix + v if v is not None else None) for f, v in ids.items()}, rest

    def owns(self, record: dict[str, Any] | None) -> bool:
        """True when this key may see ``record`` (a memory or history row, internal ids)."""
        if not record:
            return False
        ids = {f: record.get(f) for f in SCOPE_FIELDS}
        if not any(ids.values()):
            return False
        if not all(
            v is None or (isinstance(v, str) and v.startswith(self.prefix)) for v in ids.values()
        ):
            return False
        for field, allowed in (("user_id", self.user_ids), ("agent_id", self.agent_ids)):
            value = ids[field]
            if allowed is not None and (value is None or value[len(self.prefix) :] not in allowed):
                return False
        return True

    def record_scope(self, record: dict[str, Any]) -> dict[str, str | None]:
        """A record's own (internal) scope, to pass back to the engine on by-id calls."""
        return {f: record.get(f) for f in SCOPE_FIELDS}

    # -- out of the engine ----------------------------------------------------------------------
    def space(self, name: Any) -> Any:
        """A named vector space inside the tenant (the server embedder's own space is shared).

        Why: a space fixes its dimension on first use, store-wide; unprefixed, one tenant
        could claim a name with the wrong size and break another's writes.
        """
        if name is None or name == DEFAULT_SPACE or not isinstance(name, str):
            return name
        return self.prefix + name

    def strip(self, value: Any) -> Any:
        """``value`` with scope ids and vector spaces as the caller knows them (recursive)."""
        if isinstance(value, list):
            return [self.strip(v) for v in value]
        if isinstance(value, dict):
            out = {}
            for k, v in value.items():
                if k in SCOPE_FIELDS and isinstance(v, str) and v.startswith(self.prefix):
                    out[k] = v[len(self.prefix) :]
                elif k in SPACE_MAPS and isinstance(v, dict):
                    out[k] = {self._unspace(name): vec for name, vec in v.items()}
                else:
                    out[k] = self.strip(v) if isinstance(v, dict | list) else v
            return out
        return value

    def _unspace(self, name: str) -> str:
        return name[len(self.prefix) :] if name.startswith(self.prefix) else name

    def clean_message(self, message: str) -> str:
        """An engine error message without the tenant prefix of the ids it names."""
        return message.replace(self.prefix, "")
