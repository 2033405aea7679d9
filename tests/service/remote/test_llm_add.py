"""An LLM add through the server: ``memvault serve --config`` with an ``llm`` section.

The LLM is the suite's OpenAI-compatible stand-in (real HTTP, scripted answers) running in
this process; the server, a child process, calls it. Checked: extraction through the
server; a failed extraction answers 502 ``LLMError`` and the journal keeps the input in
the caller's tenant scope (``<tenant>:<user>``), so a retry lands in that tenant and no
other; an idempotency key is the caller's tenant's own (another tenant with the same user
id and the same key gets its own add, and the retry is not mistaken for it).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from memvault import Memory
from tests.service.harness import Server, serve, server_python
from tests.support.fake_openai import FakeOpenAI, Fault


def _add(server: Server, token: str, text: str, **extra: object) -> tuple[int, dict]:
    with server.client(token) as c:
        r = c.post(
            "/memories",
            json={"messages": [{"role": "user", "content": text}], "user_id": "alice", **extra},
        )
        return r.status_code, r.json()


def _memories(server: Server, token: str) -> list[str]:
    with server.client(token) as c:
        r = c.get("/memories", params={"user_id": "alice"})
        assert r.status_code == 200
        return sorted(m["memory"] for m in r.json()["results"])


def test_llm_add_and_its_retry_stay_in_the_tenant(tmp_path: Path) -> None:
    if server_python() is None:
        pytest.skip("no server venv: run 'make setup' (it builds .venv-server)")
    store = tmp_path / "llm.db"
    with FakeOpenAI() as llm:
        config = llm.memvault_config(store)  # no client retries: one failure is a failed add
        with serve(store, config=config) as s:
            acme = s.key("acme", users=["alice"])
            globex = s.key("globex", users=["alice"])

            llm.enqueue({"memories": [{"event": "ADD", "text": "Alice is vegetarian"}]})
            status, body = _add(s, acme, "I'm vegetarian")
            assert status == 200, body
            assert [m["memory"] for m in body["results"]] == ["Alice is vegetarian"]
            with s.client(acme) as c:  # no tenant prefix leaves the server
                got = c.get(f"/memories/{body['results'][0]['id']}").json()
                assert got["user_id"] == "alice"

            # The LLM fails: 502 LLMError; the input is kept in acme's journal.
            llm.enqueue(Fault.server_error())
            status, body = _add(s, acme, "My birthday is March 3", idempotency_key="turn-7")
            assert status == 502 and body["error"]["type"] == "LLMError", body
            assert "acme:" not in body["error"]["message"]

            # globex: the same user id and the same idempotency key are its own.
            llm.enqueue({"memories": [{"event": "ADD", "text": "Alice's birthday is June 1"}]})
            status, body = _add(s, globex, "My birthday is June 1", idempotency_key="turn-7")
            assert status == 200, body
            assert [m["memory"] for m in body["results"]] == ["Alice's birthday is June 1"]
            assert _memories(s, acme) == ["Alice is vegetarian"]

            # The journal row is in acme's scope, prefixed as everything the server stores.
            with Memory(config) as operator:
                pending = operator.pending()
                assert len(pending) == 1
                assert pending[0]["payload"]["scope"]["user_id"] == "acme:alice"
                calls = llm.count("chat.completions")
                # An operator's retry (memvault retry-pending) lands in acme, nowhere else.
                llm.enqueue({"memories": [{"event": "ADD", "text": "Alice's birthday is March 3"}]})
                out = operator.retry_pending()
                assert out["done"] == 1 and out["failed"] == [], out
                assert llm.count("chat.completions") == calls + 1
                assert operator.pending() == []

            assert _memories(s, acme) == ["Alice is vegetarian", "Alice's birthday is March 3"]
            assert _memories(s, globex) == ["Alice's birthday is June 1"]

            # The client retrying the same add with its key gets the stored result, no new
            # LLM call, in its own tenant.
            calls = llm.count("chat.completions")
            status, body = _add(s, acme, "My birthday is March 3", idempotency_key="turn-7")
            assert status == 200, body
            assert llm.count("chat.completions") == calls
            assert _memories(s, acme) == ["Alice is vegetarian", "Alice's birthday is March 3"]
