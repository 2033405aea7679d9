"""The MCP server through the ``mcp`` SDK's own client, over streamable HTTP and stdio.

The scope of every tool call comes from the key: no tool takes a user id, a memory of
another user (or tenant) is "not found", and a connection without a valid key is refused.
"""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from memvault.service.mcp import TOOLS
from tests.service.harness import REPO, Server

Connect = Callable[[str], AbstractAsyncContextManager[Client]]


def http_connect(server: Server) -> Connect:
    @asynccontextmanager
    async def connect(token: str) -> AsyncIterator[Client]:
        http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=60)
        async with http, Client(streamable_http_client(f"{server.url}/mcp", http_client=http)) as c:
            yield c

    return connect


def stdio_connect(server: Server) -> Connect:
    @asynccontextmanager
    async def connect(token: str) -> AsyncIterator[Client]:
        params = StdioServerParameters(
            command=sys.executable,
            args=["-m", "memvault.cli", "--path", str(server.store), "mcp"],
            env={"MEMVAULT_API_KEY": token},
            cwd=REPO,
        )
        async with Client(params) as c:
            yield c

    return connect


@pytest.fixture(params=["http", "stdio"])
def connect(request: pytest.FixtureRequest, server: Server) -> Connect:
    return http_connect(server) if request.param == "http" else stdio_connect(server)


async def call(client: Client, tool: str, **args: Any) -> Any:
    result = await client.call_tool(tool, args)
    assert not result.is_error, result.content
    if result.structured_content is not None:
        return result.structured_content
    return json.loads(result.content[0].text)


async def call_error(client: Client, tool: str, **args: Any) -> str:
    result = await client.call_tool(tool, args)
    assert result.is_error
    return str(result.content[0].text)


async def test_tools_act_in_the_keys_scope(server: Server, connect: Connect) -> None:
    tenant = "mcp" + server.key().split("_")[1][:8]
    alice = server.key(tenant, users=["alice"])
    async with connect(alice) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert set(TOOLS) <= set(tools)
        for tool in tools.values():  # the model can never name a scope
            props = set(tool.input_schema.get("properties", {}))
            assert not props & {"user_id", "agent_id", "run_id", "filters"}, tool.name
        added = await call(client, "add_memory", text="I am allergic to peanuts")
        mid = added["results"][0]["id"]
        hits = await call(client, "search_memories", query="what allergies", limit=5)
        assert hits["results"][0]["id"] == mid
        assert [r["id"] for r in (await call(client, "list_memories"))["results"]] == [mid]
        assert (await call(client, "get_memory", memory_id=mid))[
            "memory"
        ] == "I am allergic to peanuts"
        await call(
            client, "update_memory", memory_id=mid, text="I am allergic to peanuts and shellfish"
        )
        history = await call(client, "memory_history", memory_id=mid)
        assert [h["event"] for h in history["history"]] == ["ADD", "UPDATE"]
    # Through HTTP the owner of the tenant sees it in alice's scope, with the caller's ids.
    with server.client(server.key(tenant)) as owner:
        got = owner.get(f"/memories/{mid}").json()
        assert got["user_id"] == "alice" and "shellfish" in got["memory"]
    # Another user of the same tenant, and another tenant, cannot see or change it.
    for other in (server.key(tenant, users=["bob"]), server.key(users=["alice"])):
        async with connect(other) as client:
            assert (await call(client, "list_memories"))["results"] == []
            assert (await call(client, "search_memories", query="allergic"))["results"] == []
            for tool, args in (
                ("get_memory", {}),
                ("update_memory", {"text": "pwned"}),
                ("delete_memory", {}),
                ("memory_history", {}),
            ):
                assert "NotFoundError" in await call_error(client, tool, memory_id=mid, **args)
    async with connect(alice) as client:
        await call(client, "delete_memory", memory_id=mid)
        assert (await call(client, "list_memories"))["results"] == []


async def test_a_read_only_key_reads_only(server: Server, connect: Connect) -> None:
    tenant = "ro" + server.key().split("_")[1][:8]
    with server.client(server.key(tenant)) as owner:
        owner.post("/memories", json={"messages": "likes jazz", "user_id": "carol", "infer": False})
    async with connect(server.key(tenant, users=["carol"], read_only=True)) as client:
        assert [r["memory"] for r in (await call(client, "list_memories"))["results"]] == [
            "likes jazz"
        ]
        assert "read-only" in await call_error(client, "add_memory", text="x")


async def test_http_without_a_valid_key_is_refused(server: Server) -> None:
    for headers in ({}, {"Authorization": "Bearer mvk_000000000000_nope"}):
        r = httpx.post(
            f"{server.url}/mcp",
            headers={**headers, "Accept": "application/json, text/event-stream"},
            json={"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}},
        )
        assert r.status_code == 401
        assert r.headers["www-authenticate"].startswith("Bearer")


async def test_a_tenant_wide_key_cannot_serve_stdio(server: Server) -> None:
    import subprocess

    proc = subprocess.run(
        [sys.executable, "-m", "memvault.cli", "--path", str(server.store), "mcp"],
        env={"MEMVAULT_API_KEY": server.key(), "PATH": ""},
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        cwd=REPO,
    )
    assert proc.returncode == 1 and "limited to a user" in proc.stderr
