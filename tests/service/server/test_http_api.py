"""Every route of the HTTP API over a real uvicorn: what it does and how it fails."""

from __future__ import annotations

import json
import re
import time

import httpx
import pytest

from tests.service.harness import Server


@pytest.fixture
def api(server: Server) -> httpx.Client:
    with server.client(server.key()) as c:
        yield c


def ok(response: httpx.Response) -> object:
    assert response.status_code < 300, response.text
    return response.json()


def error(response: httpx.Response, status: int, kind: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]["type"] == kind, body
    return str(body["error"]["message"])


def add(api: httpx.Client, text: str, **fields: object) -> str:
    body = {"messages": text, "infer": False, "user_id": "alice", **fields}
    return str(ok(api.post("/memories", json=body))["results"][0]["id"])


def test_mem0_routes_round_trip(api: httpx.Client) -> None:
    mid = add(api, "Alice drinks green tea every morning", metadata={"topic": "food"})
    add(api, "Alice lives in Lyon", metadata={"topic": "home"})
    hits = ok(api.post("/search", json={"query": "what does alice drink", "user_id": "alice"}))
    assert hits["results"][0]["id"] == mid
    assert hits["results"][0]["user_id"] == "alice"  # the caller's id, not the internal one
    filtered = ok(
        api.post(
            "/search",
            json={
                "query": "alice",
                "filters": {"user_id": "alice", "topic": "home"},
                "explain": True,
            },
        )
    )
    assert [h["memory"] for h in filtered["results"]] == ["Alice lives in Lyon"]
    assert "score_details" in filtered["results"][0]
    listed = ok(api.get("/memories", params={"user_id": "alice"}))
    assert len(listed["results"]) == 2
    got = ok(api.get(f"/memories/{mid}"))
    assert got["memory"] == "Alice drinks green tea every morning" and got["user_id"] == "alice"
    ok(api.put(f"/memories/{mid}", json={"text": "Alice drinks oolong", "metadata": {"x": 1}}))
    assert ok(api.get(f"/memories/{mid}"))["memory"] == "Alice drinks oolong"
    ok(api.delete(f"/memories/{mid}"))
    error(api.get(f"/memories/{mid}"), 404, "NotFoundError")
    events = [h["event"] for h in ok(api.get(f"/memories/{mid}/history"))]
    assert events == ["ADD", "UPDATE", "DELETE"]
    history = ok(api.get(f"/memories/{mid}/history"))
    assert {h["user_id"] for h in history} == {"alice"}
    assert ok(api.delete("/memories", params={"user_id": "alice"}))["deleted"] == 1
    assert ok(api.get("/memories", params={"user_id": "alice"}))["results"] == []


def test_as_of_list_count_and_paging(api: httpx.Client) -> None:
    first = add(api, "Bob lives in Paris", user_id="bob")
    t_mid = ok(api.get(f"/memories/{first}"))["created_at"]
    time.sleep(0.01)
    add(api, "Bob has a cat", user_id="bob")
    page = ok(api.post("/memories/list", json={"user_id": "bob", "limit": 1, "offset": 1}))
    assert [r["memory"] for r in page["results"]] == ["Bob lives in Paris"]
    assert ok(api.post("/memories/count", json={"user_id": "bob"}))["count"] == 2
    past = ok(api.post("/search", json={"query": "bob", "user_id": "bob", "as_of": t_mid}))
    assert [r["memory"] for r in past["results"]] == ["Bob lives in Paris"]
    ok(api.post("/memories/touch", json={"memory_ids": [first]}))
    assert ok(api.post("/memories/purge_expired", json={"user_id": "bob"}))["purged"] == 0
    gone = ok(
        api.post(
            "/memories/delete", json={"user_id": "bob", "filters": {"memory": "Bob has a cat"}}
        )
    )
    assert gone["deleted"] == 1


def test_keyed_records(api: httpx.Client) -> None:
    body = {
        "namespace": ["prefs", "alice"],
        "key": "k1",
        "value": {"drink": "tea"},
        "user_id": "alice",
    }
    ok(api.put("/records", json=body))
    ref = {"namespace": ["prefs", "alice"], "key": "k1", "user_id": "alice"}
    assert ok(api.post("/records/get", json=ref))["value"] == {"drink": "tea"}
    assert ok(api.post("/records/namespaces", json={"user_id": "alice"}))["namespaces"] == [
        ["prefs", "alice"]
    ]
    assert ok(api.post("/records/delete", json=ref))["deleted"] is True
    assert ok(api.post("/records/get", json=ref)) is None


def test_export_import_into_another_tenant(server: Server, api: httpx.Client) -> None:
    mid = add(api, "Carol plays the cello", user_id="carol")
    ok(api.put(f"/memories/{mid}", json={"text": "Carol plays the viola"}))
    dump = api.get("/export", params={"user_id": "carol"})
    assert dump.status_code == 200
    lines = [json.loads(x) for x in dump.text.splitlines()]
    assert lines[0]["type"] == "memvault-export" and lines[0]["scope"]["user_id"] == "carol"
    assert {x.get("user_id") for x in lines[1:]} == {"carol"}
    with server.client(server.key()) as other:
        counts = ok(other.post("/import", content=dump.text))
        assert counts["memories"] == 1
        again = ok(other.post("/import", content=dump.text))
        assert again["memories"] == 0  # the same file twice: skipped
        copy = ok(other.get("/memories", params={"user_id": "carol"}))["results"]
        assert [r["memory"] for r in copy] == ["Carol plays the viola"]
        assert copy[0]["id"] != mid  # ids are remapped into the importing tenant
        events = [h["event"] for h in ok(other.get(f"/memories/{copy[0]['id']}/history"))]
        assert events == ["ADD", "UPDATE"]


def test_ingest_job_reports_progress(api: httpx.Client) -> None:
    rows = [{"user_id": "dave", "text": f"Dave fact number {i}"} for i in range(20)]
    rows.append({"user_id": "bad id", "text": "refused"})
    job = ok(api.post("/ingest", json={"rows": rows, "concurrency": 4}))
    assert job["status"] in ("running", "done")
    status = ok(api.get(f"/ingest/{job['job_id']}", params={"wait": 20}))
    assert status["status"] == "done", status
    assert status["report"]["total"] == 21 and status["report"]["done"] == 20
    assert status["report"]["failed"] == 1
    assert ok(api.post("/memories/count", json={"user_id": "dave"}))["count"] == 20


def test_info_embed_and_openapi(server: Server, api: httpx.Client) -> None:
    info = ok(api.get("/info"))
    assert info["embedder"]["dims"] > 0 and info["key"]["read_only"] is False
    vecs = ok(api.post("/embed", json={"texts": ["hello"]}))["vectors"]
    assert len(vecs) == 1 and len(vecs[0]) == info["embedder"]["dims"]
    schema = httpx.get(f"{server.url}/openapi.json").json()
    for route in ("/memories", "/search", "/memories/{memory_id}/history", "/records", "/ingest"):
        assert route in schema["paths"]
    assert httpx.get(f"{server.url}/docs").status_code == 200


def test_structured_errors(server: Server, api: httpx.Client) -> None:
    assert "scope" in error(api.post("/search", json={"query": "x"}), 400, "ScopeError")
    error(api.post("/memories", json={"messages": "", "user_id": "a"}), 400, "ValidationError")
    msg = error(
        api.post("/search", json={"query": "x", "user_id": "a", "top_k": -1}),
        422,
        "ValidationError",
    )
    assert "top_k" in msg
    assert "bogus" in error(
        api.post("/search", json={"user_id": "a", "bogus": 1}), 422, "ValidationError"
    )
    error(
        api.post("/search", json={"query": "x", "user_id": "a", "filters": {"f": {"$nope": 1}}}),
        400,
        "FilterError",
    )
    error(api.get("/memories/not-a-memory"), 404, "NotFoundError")
    error(api.get("/nowhere"), 404, "NotFound")
    big = {"messages": "x" * (9 * 1024 * 1024), "user_id": "a"}
    error(api.post("/memories", json=big), 413, "RequestTooLarge")
    msg = error(
        api.post("/memories", json={"messages": "hi", "user_id": "x" * 300}), 400, "ScopeError"
    )
    assert not re.search(r"t[0-9a-f]{12}:", msg)  # no internal tenant prefix in messages
    with server.client(None) as anon:
        r = anon.get("/memories", params={"user_id": "a"})
        error(r, 401, "Unauthorized")
        assert r.headers["www-authenticate"].startswith("Bearer")
    with server.client("mvk_000000000000_forged") as forged:
        error(forged.get("/memories", params={"user_id": "a"}), 401, "Unauthorized")


def test_revoked_key_stops_working(server: Server) -> None:
    from memvault import Memory
    from memvault.service.keys import key_id_of, revoke_key

    token = server.key()
    with server.client(token) as c:
        ok(c.get("/memories", params={"user_id": "a"}))
        with Memory(path=server.store) as m:
            revoke_key(m, key_id_of(token) or "")
        deadline = time.monotonic() + 10
        while c.get("/memories", params={"user_id": "a"}).status_code != 401:
            assert time.monotonic() < deadline, "revoked key still accepted"
            time.sleep(0.2)
