"""``RemoteMemory`` / ``AsyncRemoteMemory``: the library's API and errors, over HTTP."""

from __future__ import annotations

import numpy as np
import pytest

from memvault import AsyncMemory, Memory, NotFoundError, RateLimitError, ScopeError
from memvault.remote import AsyncRemoteMemory, PermissionDenied, RemoteMemory, RemoteUnsupported
from tests.service.harness import Server


def test_remote_memory_is_a_memory_with_the_same_api(server: Server) -> None:
    with RemoteMemory(server.url, server.key()) as m:
        assert isinstance(m, Memory)
        first = m.add("Alice drinks green tea", user_id="alice", infer=False)["results"][0]
        m.add("Alice lives in Lyon", user_id="alice", metadata={"topic": "home"}, infer=False)
        hits = m.search("what does alice drink", user_id="alice")["results"]
        assert hits[0]["id"] == first["id"] and hits[0]["user_id"] == "alice"
        assert [
            r["memory"]
            for r in m.search("alice", filters={"user_id": "alice", "topic": "home"})["results"]
        ] == ["Alice lives in Lyon"]
        assert m.count(user_id="alice") == 2
        assert len(m.get_all(user_id="alice", limit=1)["results"]) == 1
        assert m.get(first["id"])["memory"] == "Alice drinks green tea"
        assert m.get(first["id"], user_id="bob") is None  # outside the given scope: missing
        m.update(first["id"], "Alice drinks oolong")
        assert [h["event"] for h in m.history(first["id"])] == ["ADD", "UPDATE"]
        with pytest.raises(NotFoundError):
            m.delete(first["id"], user_id="bob")
        m.delete(first["id"])
        assert m.get(first["id"]) is None
        assert m.delete_all(user_id="alice")["deleted"] == 1
        # keyed records
        m.put(("prefs", "alice"), "k", {"drink": "tea"}, user_id="alice")
        assert m.get_key(("prefs", "alice"), "k", user_id="alice")["value"] == {"drink": "tea"}
        assert m.namespaces(user_id="alice") == [("prefs", "alice")]
        assert m.delete_key(("prefs", "alice"), "k", user_id="alice") is True
        # the server's embedder
        vec = m.embedder.embed(["hello"])
        assert vec.shape == (1, m.embedder.dims) and vec.dtype == np.float32
        # typed errors come back as the library's classes
        with pytest.raises(ScopeError):
            m.search("x")
        with pytest.raises(NotFoundError):
            m.update("no-such-id", "x")
        with pytest.raises(RemoteUnsupported):
            m.reset()


def test_another_tenants_memory_is_missing(server: Server) -> None:
    with RemoteMemory(server.url, server.key()) as a, RemoteMemory(server.url, server.key()) as b:
        mid = a.add("secret", user_id="alice", infer=False)["results"][0]["id"]
        assert b.get(mid) is None
        assert b.history(mid) == []
        assert b.get_all(user_id="alice")["results"] == []
        with pytest.raises(NotFoundError):
            b.delete(mid)
        assert a.get(mid)["memory"] == "secret"


def test_key_limits_raise_permission_denied(server: Server) -> None:
    tenant = "rm" + server.key().split("_")[1][:8]
    with RemoteMemory(server.url, server.key(tenant, users=["alice"], read_only=True)) as m:
        assert m.get_all()["results"] == []  # the key's one user fills the scope
        with pytest.raises(PermissionDenied):
            m.add("x", user_id="alice", infer=False)
        with pytest.raises(PermissionDenied):
            m.get_all(user_id="bob")
    with RemoteMemory(server.url, "mvk_000000000000_bad") as m, pytest.raises(PermissionDenied):
        m.get_all(user_id="alice")


def test_ingest_runs_as_a_server_job(server: Server) -> None:
    with RemoteMemory(server.url, server.key()) as m:
        report = m.ingest([{"user_id": "dan", "text": f"fact {i}"} for i in range(10)])
        assert report.done == 10 and report.failed == 0
        assert m.count(user_id="dan") == 10


async def test_async_remote_memory(server: Server) -> None:
    m = AsyncRemoteMemory(server.url, server.key())
    try:
        assert isinstance(m, AsyncMemory)
        mid = (await m.add("Bob has a cat", user_id="bob", infer=False))["results"][0]["id"]
        assert (await m.search("pets", user_id="bob"))["results"][0]["id"] == mid
        assert (await m.get(mid))["memory"] == "Bob has a cat"
        sync = m.as_sync()
        assert sync.get(mid)["memory"] == "Bob has a cat"
        sync.close()
        assert m.embedder.dims > 0
    finally:
        await m.close()


def test_a_rate_limited_key_gets_rate_limit_error_with_the_wait(server: Server) -> None:
    with RemoteMemory(server.url, server.key(rate_limit=2)) as m:
        with pytest.raises(RateLimitError) as refused:
            for _ in range(5):  # the client itself may spend a call (its embedder's /info)
                m.count(user_id="alice")
        assert 0 < refused.value.retry_after <= 30
        assert "2 calls per minute" in str(refused.value)


async def test_async_remote_raises_rate_limit_error_too(server: Server) -> None:
    async with AsyncRemoteMemory(server.url, server.key(rate_limit=1)) as m:
        await m.count(user_id="alice")
        with pytest.raises(RateLimitError) as refused:
            await m.count(user_id="alice")
        assert 0 < refused.value.retry_after <= 60
