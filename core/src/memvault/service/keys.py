"""API keys: each belongs to a tenant, may be limited to user / agent ids and to reads.

Storage: a key is a memvault keyed record (``put(("api-keys",), key_id, ...)``) in an
internal scope, ``KEYS_SCOPE``. Why there and not in a file beside the store: every
server process on one store (or, later, one PostgreSQL database) reads the same
records with no extra file to share, lock or back up, and a revoked key is seen by
all of them. No API caller can name that scope: every id a caller gives becomes
``"<tenant>:<id>"`` (see ``tenancy``), and these ids hold no ``:``.

What is stored: the SHA-256 of the whole token, never the token. A token reads
``mvk_<key id>_<secret>``: the key id (public, shown by ``memvault keys list``) finds
the record in one lookup, the secret (32 random bytes) is what proves possession; the
hash is compared in constant time. The token is printed once, at creation.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import secrets
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from memvault.errors import NotFoundError, ValidationError
from memvault.models import utcnow
from memvault.scope import check_id
from memvault.service.ratelimit import check_rate_limit
from memvault.service.tenancy import Principal, check_tenant

if TYPE_CHECKING:
    from memvault.memory import AsyncMemory, Memory

TOKEN_PREFIX = "mvk"
KEYS_SCOPE = {"user_id": "memvault-service", "agent_id": "api-keys"}
KEYS_NAMESPACE = ("api-keys",)
#: How long a verified key is trusted before it is read again (so a revocation made by
#: another process takes effect within this many seconds).
CACHE_SECONDS = 2.0


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def key_id_of(token: str) -> str | None:
    """The key id inside a token, or None when the token is not shaped like ours."""
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX or not parts[1].isalnum() or len(parts[1]) > 32:
        return None
    return parts[1]


def principal_of(key_id: str, value: Any) -> Principal | None:
    """The principal a stored key record describes (None when revoked or malformed)."""
    if not isinstance(value, dict) or value.get("revoked"):
        return None
    users, agents = value.get("user_ids"), value.get("agent_ids")
    return Principal(
        key_id=key_id,
        tenant=value["tenant"],
        user_ids=frozenset(users) if users is not None else None,
        agent_ids=frozenset(agents) if agents is not None else None,
        read_only=bool(value.get("read_only")),
        rate_limit=value.get("rate_limit"),
    )


def _ids(values: Iterable[str] | None, field: str) -> list[str] | None:
    if values is None:
        return None
    out = sorted({check_id(v, field) for v in values})
    return out or None


def create_key(
    memory: Memory,
    tenant: str,
    *,
    user_ids: Iterable[str] | None = None,
    agent_ids: Iterable[str] | None = None,
    read_only: bool = False,
    name: str | None = None,
    rate_limit: int | None = None,
) -> tuple[str, dict[str, Any]]:
    """Create a key; returns ``(token, description)``. The token is not stored anywhere.

    ``rate_limit``: calls per minute the key may make in each server process (see
    ``ratelimit``); None leaves it to the server's default.
    """
    check_tenant(tenant)
    rate_limit = check_rate_limit(rate_limit)
    key_id = secrets.token_hex(6)
    token = f"{TOKEN_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
    value = {
        "tenant": tenant,
        "hash": token_hash(token),
        "user_ids": _ids(user_ids, "user_id"),
        "agent_ids": _ids(agent_ids, "agent_id"),
        "read_only": bool(read_only),
        "rate_limit": rate_limit,
        "name": name,
        "created_at": utcnow(),
        "revoked": False,
    }
    memory.put(KEYS_NAMESPACE, key_id, value, index=False, **KEYS_SCOPE, changed_by="memvault keys")
    return token, describe(key_id, value)


def describe(key_id: str, value: dict[str, Any]) -> dict[str, Any]:
    """A key as ``memvault keys list`` shows it (never its hash)."""
    return {"key_id": key_id, **{k: v for k, v in value.items() if k != "hash"}}


def list_keys(memory: Memory, tenant: str | None = None) -> list[dict[str, Any]]:
    records = memory.get_all(**KEYS_SCOPE, namespace_prefix=KEYS_NAMESPACE, top_k=100_000)
    out = [describe(r["key"], r["value"]) for r in records["results"]]
    out = [k for k in out if tenant is None or k["tenant"] == tenant]
    return sorted(out, key=lambda k: (k["tenant"], k["created_at"]))


def revoke_key(memory: Memory, key_id: str) -> dict[str, Any]:
    """Mark a key revoked (the record stays, for the audit trail)."""
    record = _key_record(memory, key_id)
    value = {**record["value"], "revoked": True, "revoked_at": utcnow()}
    memory.put(KEYS_NAMESPACE, key_id, value, index=False, **KEYS_SCOPE, changed_by="memvault keys")
    return describe(key_id, value)


def set_rate_limit(memory: Memory, key_id: str, rate_limit: int | None) -> dict[str, Any]:
    """Change a key's own rate limit (None: the server's default) without a new token.

    Why not revoke and re-create: the token lives in the agents' deployments; raising a
    tenant's limit must not mean rotating it. Servers read the change within
    ``CACHE_SECONDS``; the key then starts a full bucket at its new limit (``ratelimit``).
    """
    rate_limit = check_rate_limit(rate_limit)
    record = _key_record(memory, key_id)
    value = {**record["value"], "rate_limit": rate_limit}
    memory.put(KEYS_NAMESPACE, key_id, value, index=False, **KEYS_SCOPE, changed_by="memvault keys")
    return describe(key_id, value)


def _key_record(memory: Memory, key_id: str) -> dict[str, Any]:
    if not isinstance(key_id, str) or not key_id.isalnum():
        raise ValidationError(f"{key_id!r} is not a key id")
    record = memory.get_key(KEYS_NAMESPACE, key_id, **KEYS_SCOPE)
    if record is None:
        raise NotFoundError(f"no API key {key_id!r}")
    return record


class KeyVerifier:
    """Checks bearer tokens against the stored keys, with a short cache (see CACHE_SECONDS).

    A cached answer is trusted for ``cache_seconds`` at most, so a revocation made by any
    process is seen within that time. A key in use is re-read in the background once its
    answer is past ``refresh_after`` of that time: a busy key's requests never wait for
    the store (a server's storage pool is shared with searches and model runs).
    """

    def __init__(
        self, memory: AsyncMemory, cache_seconds: float = CACHE_SECONDS, refresh_after: float = 0.5
    ) -> None:
        self._memory = memory
        self._cache_seconds = cache_seconds
        self._refresh_seconds = cache_seconds * refresh_after
        self._cache: dict[str, tuple[float, Principal | None]] = {}
        self._refreshing: dict[str, asyncio.Task[Any]] = {}

    async def verify(self, token: str | None) -> Principal | None:
        """The principal of a valid, unrevoked token; None otherwise."""
        if not token or len(token) > 256:
            return None
        key_id = key_id_of(token)
        if key_id is None:
            return None
        digest = token_hash(token)
        now = time.monotonic()
        hit = self._cache.get(digest)
        if hit is not None and hit[0] > now:
            read_at = hit[0] - self._cache_seconds
            if now - read_at > self._refresh_seconds and digest not in self._refreshing:
                task = asyncio.create_task(self._refresh(key_id, digest))
                self._refreshing[digest] = task
                task.add_done_callback(lambda _t: self._refreshing.pop(digest, None))
            return hit[1]
        return await self._read(key_id, digest)

    async def _refresh(self, key_id: str, digest: str) -> None:
        # A failed re-read changes nothing: the entry expires on time, and the request
        # after that reads the store itself (and reports its error).
        with contextlib.suppress(Exception):
            await self._read(key_id, digest)

    async def _read(self, key_id: str, digest: str) -> Principal | None:
        read_at = time.monotonic()
        record = await self._memory.get_key(KEYS_NAMESPACE, key_id, **KEYS_SCOPE)
        principal = None
        if record is not None and isinstance(record.get("value"), dict):
            stored = record["value"].get("hash", "")
            if hmac.compare_digest(str(stored), digest):
                principal = principal_of(key_id, record["value"])
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[digest] = (read_at + self._cache_seconds, principal)
        return principal
