"""An attacker's tour: every route with another tenant's key, a narrower key, a read-only key
and forged scopes. Each attempt gets 403/404 (or an empty view of the attacker's own
tenant), and afterwards the whole store is byte-for-byte what it was."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import pytest

from memvault import Memory
from memvault.transfer import export_jsonl
from tests.service.harness import Server


@dataclass
class Victim:
    tenant: str
    owner: httpx.Client
    memory_id: str
    job_id: str


def store_digest(server: Server) -> str:
    """Every memory (every version) and every history row of the store, as exported."""
    buf = io.StringIO()
    with Memory(path=server.store) as m:
        export_jsonl(m, buf, include_vectors=False)
    lines = buf.getvalue().splitlines()
    return "\n".join(sorted(x for x in lines if '"memvault-export"' not in x))


@pytest.fixture(scope="module")
def victim(server: Server) -> Victim:
    tenant = "victim" + str(abs(hash(server.url)) % 10_000)
    owner = server.client(server.key(tenant))
    r = owner.post(
        "/memories",
        json={"messages": "Alice's door code is 4321", "user_id": "alice", "infer": False},
    )
    mid = r.json()["results"][0]["id"]
    owner.put(f"/memories/{mid}", json={"text": "Alice's door code is 9876"})
    owner.put(
        "/records",
        json={"namespace": ["secrets"], "key": "k", "value": {"pin": 1}, "user_id": "alice"},
    )
    job = owner.post(
        "/ingest", json={"rows": [{"user_id": "alice", "text": "Alice owns a boat"}]}
    ).json()
    owner.get(f"/ingest/{job['job_id']}", params={"wait": 20})
    return Victim(tenant, owner, mid, job["job_id"])


def attacks(v: Victim) -> dict[str, Callable[[httpx.Client], httpx.Response]]:
    mid, alice = v.memory_id, {"user_id": "alice"}
    forged_internal = {"user_id": f"{v.tenant}:alice"}
    keys_scope = {"user_id": "memvault-service", "agent_id": "api-keys"}
    history_line = json.dumps(
        {"type": "history", "memory_id": mid, "event": "UPDATE", "new_memory": "pwned", **alice}
    )
    return {
        "get": lambda c: c.get(f"/memories/{mid}"),
        "get+vectors": lambda c: c.get(f"/memories/{mid}", params={"include_vectors": True}),
        "update": lambda c: c.put(f"/memories/{mid}", json={"text": "pwned"}),
        "update+scope": lambda c: c.put(f"/memories/{mid}", json={"text": "pwned", **alice}),
        "delete": lambda c: c.delete(f"/memories/{mid}"),
        "delete+scope": lambda c: c.delete(f"/memories/{mid}", params=alice),
        "history": lambda c: c.get(f"/memories/{mid}/history"),
        "touch": lambda c: c.post("/memories/touch", json={"memory_ids": [mid]}),
        "list": lambda c: c.get("/memories", params=alice),
        "list-post": lambda c: c.post("/memories/list", json={**alice, "include_superseded": True}),
        "list-filters": lambda c: c.post("/memories/list", json={"filters": alice}),
        "list-internal-id": lambda c: c.post("/memories/list", json=forged_internal),
        "list-keys-scope": lambda c: c.post("/memories/list", json=keys_scope),
        "search": lambda c: c.post("/search", json={"query": "door code", **alice}),
        "search-filters-or": lambda c: c.post(
            "/search", json={"query": "door code", "filters": {"OR": [alice]}, "user_id": "mallory"}
        ),
        "count": lambda c: c.post("/memories/count", json=alice),
        "delete-all": lambda c: c.delete("/memories", params=alice),
        "delete-where": lambda c: c.post("/memories/delete", json=alice),
        "purge": lambda c: c.post("/memories/purge_expired", json=alice),
        "record-get": lambda c: c.post(
            "/records/get", json={"namespace": ["secrets"], "key": "k", **alice}
        ),
        "record-put": lambda c: c.put(
            "/records", json={"namespace": ["secrets"], "key": "k", "value": 0, **alice}
        ),
        "record-delete": lambda c: c.post(
            "/records/delete", json={"namespace": ["secrets"], "key": "k", **alice}
        ),
        "namespaces": lambda c: c.post("/records/namespaces", json=alice),
        "keys-record": lambda c: c.post("/records/namespaces", json=keys_scope),
        "add": lambda c: c.post("/memories", json={"messages": "pwned", "infer": False, **alice}),
        "export": lambda c: c.get("/export", params=alice),
        "import-history": lambda c: c.post("/import", content=history_line),
        "ingest": lambda c: c.post("/ingest", json={"rows": [{"text": "pwned", **alice}]}),
        "ingest-status": lambda c: c.get(f"/ingest/{v.job_id}"),
    }


ATTACKS = list(attacks(Victim("x", None, "m", "j")))  # type: ignore[arg-type]
#: Routes that act inside the caller's own scope: another tenant gets its own (empty) view.
OWN_VIEW = {
    "list", "list-post", "list-filters", "list-internal-id", "list-keys-scope", "search",
    "search-filters-or", "count", "delete-all", "delete-where", "purge", "record-get",
    "record-put", "record-delete", "namespaces", "keys-record", "add", "export",
    "import-history", "ingest",
}  # fmt: skip
READS = {
    "get", "get+vectors", "history", "list", "list-post", "list-filters", "list-internal-id",
    "list-keys-scope", "search", "search-filters-or", "count", "record-get", "namespaces",
    "keys-record", "export", "ingest-status",
}  # fmt: skip


def _leaks(response: httpx.Response) -> bool:
    text = response.text
    return "door code" in text or "boat" in text or '"pin"' in text


@pytest.mark.parametrize("attack", ATTACKS)
def test_another_tenant_cannot_reach_the_victim(
    server: Server, victim: Victim, attack: str
) -> None:
    token = server.key()  # a key of another tenant, unrestricted (made before the digest)
    before = store_digest(server)
    with server.client(token) as mallory:
        response = attacks(victim)[attack](mallory)
    assert not _leaks(response), response.text
    if attack in OWN_VIEW:
        assert response.status_code in (200, 202, 400, 403, 404), response.text
    else:
        assert response.status_code == 404, response.text
    if attack not in ("add", "record-put", "import-history", "ingest"):
        assert store_digest(server) == before
    else:  # wrote into the attacker's own tenant only: the victim's view is unchanged
        assert victim_view(victim) == victim_view(victim, fresh=True)


def victim_view(v: Victim, fresh: bool = False) -> str:
    lines = [
        v.owner.get(f"/memories/{v.memory_id}").text,
        v.owner.get(f"/memories/{v.memory_id}/history").text,
        v.owner.post("/memories/list", json={"user_id": "alice", "include_superseded": True}).text,
        v.owner.post(
            "/records/get", json={"namespace": ["secrets"], "key": "k", "user_id": "alice"}
        ).text,
    ]
    return "\n".join(lines)


@pytest.mark.parametrize("attack", ATTACKS)
def test_a_key_limited_to_another_user_cannot_reach_alice(
    server: Server, victim: Victim, attack: str
) -> None:
    token = server.key(victim.tenant, users=["mallory"])
    before = store_digest(server)
    with server.client(token) as narrow:
        response = attacks(victim)[attack](narrow)
    assert not _leaks(response), response.text
    if attack == "search-filters-or":  # names user mallory, its own: alice's OR branch adds nothing
        assert response.status_code == 200 and response.json()["results"] == []
    elif attack in ("import-history", "ingest-status"):
        assert response.status_code in (403, 404), response.text
    elif attack in OWN_VIEW:
        assert response.status_code == 403, response.text
    else:
        assert response.status_code == 404, response.text
    assert store_digest(server) == before


@pytest.mark.parametrize("attack", sorted(set(ATTACKS) - READS))
def test_a_read_only_key_of_the_tenant_cannot_write(
    server: Server, victim: Victim, attack: str
) -> None:
    token = server.key(victim.tenant, read_only=True)
    before = store_digest(server)
    with server.client(token) as reader:
        response = attacks(victim)[attack](reader)
    assert response.status_code == 403, response.text
    assert response.json()["error"]["type"] == "Forbidden"
    assert store_digest(server) == before


def test_a_read_only_key_cannot_make_a_search_spend_llm_tokens(
    server: Server, victim: Victim
) -> None:
    body = {"query": "door code", "user_id": "alice", "retrieval": {"expansions": 2}}
    with server.client(server.key(victim.tenant, read_only=True)) as reader:
        denied = reader.post("/search", json=body)
        allowed = reader.post("/search", json={**body, "retrieval": {"expansions": 0}})
    assert denied.status_code == 403, denied.text
    assert denied.json()["error"]["type"] == "Forbidden"
    assert "expansion" in denied.json()["error"]["message"]
    assert allowed.status_code == 200 and allowed.json()["results"]
    # The owner's key passes the check; this server has no LLM, so the engine refuses.
    owner = victim.owner.post("/search", json=body)
    assert owner.status_code == 400 and "need an LLM" in owner.json()["error"]["message"]


def test_the_owner_still_sees_everything(victim: Victim) -> None:
    got = victim.owner.get(f"/memories/{victim.memory_id}").json()
    assert got["memory"] == "Alice's door code is 9876" and got["user_id"] == "alice"
    events = [h["event"] for h in victim.owner.get(f"/memories/{victim.memory_id}/history").json()]
    assert events == ["ADD", "UPDATE"]
