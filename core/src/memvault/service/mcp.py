"""The MCP server: memory tools for any agent, over streamable HTTP (in the app) or stdio.

Why no tool takes a ``user_id``: a tool's arguments are written by the model, and the
model reads text an attacker may control (a web page, an email). Whose memory a tool
touches must come from something the model cannot write: the API key that
authenticated the connection (the bearer token over HTTP; ``--key`` /
``MEMVAULT_API_KEY`` for stdio). Such a key names its tenant and is limited to one
user id (and/or one agent id), which every tool call uses; by-id tools answer "not
found" for a memory outside it. A tenant-wide key cannot be used here.

Built on the ``mcp`` SDK 2.x (``MCPServer``); imported only by the server extra.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from memvault.errors import MemvaultError
from memvault.memory import AsyncMemory
from memvault.service.keys import KeyVerifier
from memvault.service.ratelimit import RateLimiter
from memvault.service.tenancy import Principal
from memvault.service.tenant import TenantMemory

INSTRUCTIONS = (
    "Long-term memory for this user. Search before answering questions about the user's "
    "preferences, facts or history; add durable facts the user tells you. Memories belong "
    "to the user of the key this connection was opened with."
)
TOOLS = (
    "add_memory",
    "search_memories",
    "list_memories",
    "get_memory",
    "update_memory",
    "delete_memory",
    "memory_history",
)


class MemvaultTokenVerifier:
    """The SDK's ``TokenVerifier``: a bearer token is valid when it is a live memvault key."""

    def __init__(self, verifier: KeyVerifier) -> None:
        self.verifier = verifier

    async def verify_token(self, token: str) -> AccessToken | None:
        principal = await self.verifier.verify(token)
        if principal is None:
            return None
        return AccessToken(
            token=token, client_id=principal.key_id, scopes=["memory"], subject=principal.key_id
        )


def _brief(record: dict[str, Any]) -> dict[str, Any]:
    keep = ("id", "memory", "score", "created_at", "updated_at", "metadata", "categories")
    return {k: record[k] for k in keep if record.get(k) is not None}


def build_mcp(
    memory: Callable[[], AsyncMemory],
    principal: Callable[[], Awaitable[Principal]],
    *,
    http: KeyVerifier | None = None,
    base_url: str = "http://127.0.0.1:8000",
    limiter: RateLimiter | None = None,
) -> MCPServer:
    """The MCP server; ``principal()`` says who is calling (from the token, or fixed for stdio).

    ``http``: the key verifier, for streamable HTTP (bearer-token auth); None for stdio.
    ``limiter``: the per-key rate limits every tool call pays into (the HTTP API's own
    limiter in the app, so a key's calls count once whichever way they come).
    """
    limiter = limiter if limiter is not None else RateLimiter()
    auth: dict[str, Any] = {}
    if http is not None:
        auth = {
            "token_verifier": MemvaultTokenVerifier(http),
            "auth": AuthSettings(
                issuer_url=base_url,
                resource_server_url=f"{base_url}/mcp",
                required_scopes=["memory"],
                # Our tokens are memvault keys, valid for this server's store only; the
                # verifier checks them itself (there is no audience to compare).
                validate_token_resource=False,
            ),
        }
    server = MCPServer("memvault", instructions=INSTRUCTIONS, log_level="WARNING", **auth)

    async def tenant() -> TenantMemory:
        return TenantMemory(memory(), await principal())

    async def call(op: Callable[[TenantMemory], Awaitable[Any]]) -> Any:
        t = await tenant()
        try:
            limiter.acquire(t.principal)
            return await op(t)
        except MemvaultError as e:  # a message for the model, without internal ids
            raise ToolError(f"{type(e).__name__}: {t.principal.clean_message(str(e))}") from e

    @server.tool()
    async def add_memory(text: str, metadata: dict[str, Any] | None = None) -> dict[str, Any]:
        """Remember something about the user (facts are extracted if an LLM is configured)."""
        res = await call(lambda t: t.add(text, {}, metadata=metadata))
        return {"results": res["results"]}

    @server.tool()
    async def search_memories(query: str, limit: int = 10) -> dict[str, Any]:
        """Find the user's memories most relevant to a query, best first."""
        limit = max(1, min(int(limit), 100))
        res = await call(lambda t: t.search(query, {}, top_k=limit))
        return {"results": [_brief(r) for r in res["results"]]}

    @server.tool()
    async def list_memories(limit: int = 50) -> dict[str, Any]:
        """The user's memories, newest first."""
        limit = max(1, min(int(limit), 1000))
        res = await call(lambda t: t.get_all({}, top_k=limit))
        return {"results": [_brief(r) for r in res["results"]]}

    @server.tool()
    async def get_memory(memory_id: str) -> dict[str, Any]:
        """One memory by id."""
        return _brief(await call(lambda t: t.get(memory_id)))

    @server.tool()
    async def update_memory(memory_id: str, text: str) -> dict[str, Any]:
        """Replace a memory's text (the old text stays in its history)."""
        return await call(lambda t: t.update(memory_id, text=text, changed_by="mcp"))

    @server.tool()
    async def delete_memory(memory_id: str) -> dict[str, Any]:
        """Delete a memory (its history stays)."""
        return await call(lambda t: t.delete(memory_id, changed_by="mcp"))

    @server.tool()
    async def memory_history(memory_id: str) -> dict[str, Any]:
        """Every change of a memory, oldest first."""
        rows = await call(lambda t: t.history(memory_id))
        keep = ("event", "old_memory", "new_memory", "changed_by", "created_at")
        return {"history": [{k: r.get(k) for k in keep} for r in rows]}

    return server


def http_principal(verifier: KeyVerifier) -> Callable[[], Awaitable[Principal]]:
    """The caller of the current MCP request, from its (already verified) bearer token."""

    async def principal() -> Principal:
        token = get_access_token()
        found = await verifier.verify(token.token) if token is not None else None
        if found is None:  # revoked since the connection was opened
            raise ToolError("the API key of this connection is no longer valid")
        return found

    return principal


async def run_stdio(memory: AsyncMemory, token: str) -> None:
    """Serve MCP on stdin/stdout for the key ``token`` (checked once, at start)."""
    verifier = KeyVerifier(memory)
    fixed = await verifier.verify(token)
    if fixed is None:
        raise MemvaultError("the API key is unknown or revoked")
    try:
        fixed.scope()
    except MemvaultError as e:
        raise MemvaultError(
            f"this key cannot be used for MCP ({e}); create one limited to a user: "
            "memvault keys create TENANT --user USER_ID"
        ) from e

    async def principal() -> Principal:
        return await verifier.verify(token) or _revoked()

    await build_mcp(lambda: memory, principal).run_stdio_async()


def _revoked() -> Principal:
    raise ToolError("the API key of this connection is no longer valid")
