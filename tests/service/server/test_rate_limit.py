"""Per-key rate limits: the bucket itself, then over real uvicorn (HTTP and MCP).

A key with ``rate_limit=N`` makes at most N calls per minute (a full bucket, refilled at
N/60 per second); past it the HTTP API answers 429 with ``Retry-After`` and MCP tools
return an error, and the refused call does nothing. Other keys are not affected.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memvault import NotFoundError, RateLimitError, ValidationError
from memvault.service.keys import create_key, key_id_of, set_rate_limit
from memvault.service.ratelimit import MAX_RATE_LIMIT, RateLimiter, check_rate_limit
from memvault.service.tenancy import Principal
from tests.service.harness import REPO, Server, serve
from tests.service.server.test_mcp import call, call_error, http_connect, stdio_connect


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def key(key_id: str = "k1", rate_limit: int | None = None) -> Principal:
    return Principal(key_id=key_id, tenant="t", rate_limit=rate_limit)


# -- the bucket -------------------------------------------------------------------------------
def test_a_key_spends_its_minute_then_waits_for_the_refill() -> None:
    clock = Clock()
    limiter = RateLimiter(clock=clock)
    k = key(rate_limit=3)
    for _ in range(3):
        limiter.acquire(k)
    with pytest.raises(RateLimitError) as refused:
        limiter.acquire(k)
    assert refused.value.retry_after == pytest.approx(20.0)  # one call per 20 s
    assert "3 calls per minute" in str(refused.value)
    clock.now += 19.0
    with pytest.raises(RateLimitError) as again:
        limiter.acquire(k)
    assert again.value.retry_after == pytest.approx(1.0)
    clock.now += 1.0
    limiter.acquire(k)
    with pytest.raises(RateLimitError):
        limiter.acquire(k)
    clock.now += 3600  # an idle key refills to its limit, not beyond
    for _ in range(3):
        limiter.acquire(k)
    with pytest.raises(RateLimitError):
        limiter.acquire(k)


def test_keys_have_their_own_buckets_and_the_default_applies_to_keys_without_a_limit() -> None:
    clock = Clock()
    limiter = RateLimiter(2, clock=clock)
    a, b, own = key("a"), key("b"), key("own", rate_limit=5)
    assert limiter.limit_of(a) == 2 and limiter.limit_of(own) == 5
    for _ in range(2):
        limiter.acquire(a)
    with pytest.raises(RateLimitError):
        limiter.acquire(a)
    limiter.acquire(b)  # another key is untouched
    for _ in range(5):
        limiter.acquire(own)
    with pytest.raises(RateLimitError):
        limiter.acquire(own)
    unlimited = RateLimiter(clock=clock)
    for _ in range(10_000):
        unlimited.acquire(a)


def test_a_changed_limit_starts_a_full_bucket() -> None:
    clock = Clock()
    limiter = RateLimiter(clock=clock)
    for _ in range(2):
        limiter.acquire(key(rate_limit=2))
    with pytest.raises(RateLimitError):
        limiter.acquire(key(rate_limit=2))
    for _ in range(5):  # raised to 5: unblocked at once, with the new burst
        limiter.acquire(key(rate_limit=5))
    with pytest.raises(RateLimitError):
        limiter.acquire(key(rate_limit=5))
    limiter.acquire(key(rate_limit=1))  # lowered to 1: a full bucket of one
    with pytest.raises(RateLimitError) as refused:
        limiter.acquire(key(rate_limit=1))
    assert refused.value.retry_after == pytest.approx(60.0)


@settings(max_examples=200, deadline=None)
@given(
    limit=st.integers(1, 120),
    steps=st.lists(st.floats(0, 30, allow_nan=False), min_size=1, max_size=300),
)
def test_no_key_ever_gets_more_than_its_burst_plus_the_refill(
    limit: int, steps: list[float]
) -> None:
    clock = Clock()
    limiter = RateLimiter(clock=clock)
    k = key(rate_limit=limit)
    start, granted = clock.now, 0
    for dt in steps:
        clock.now += dt
        try:
            limiter.acquire(k)
            granted += 1
        except RateLimitError as e:
            assert e.retry_after is not None and 0 < e.retry_after <= 60 / limit + 1e-9
        assert granted <= limit + (clock.now - start) * limit / 60 + 1e-6


@pytest.mark.parametrize("bad", [0, -1, MAX_RATE_LIMIT + 1, 1.5, "5", True])
def test_a_bad_limit_is_a_typed_error(bad: object, server: Server) -> None:
    with pytest.raises(ValidationError):
        check_rate_limit(bad)
    with pytest.raises(ValidationError), server.open_memory() as m:
        create_key(m, "badlimit", rate_limit=bad)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        RateLimiter(bad)  # type: ignore[arg-type]


# -- over HTTP --------------------------------------------------------------------------------
def test_http_answers_429_with_retry_after_and_the_refused_call_does_nothing(
    server: Server,
) -> None:
    tenant = "rl" + server.key().split("_")[1][:8]
    limited = server.key(tenant, rate_limit=3)
    with server.client(limited) as c, server.client(server.key()) as other:
        assert c.get("/info").json()["key"]["rate_limit"] == 3  # 1
        add = {"messages": "Alice likes tea", "user_id": "alice", "infer": False}
        assert c.post("/memories", json=add).status_code == 200  # 2
        assert c.get("/memories", params={"user_id": "alice"}).status_code == 200  # 3
        refused = c.post("/memories", json={**add, "messages": "Alice likes coffee"})
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) >= 1
        err = refused.json()["error"]
        assert err["type"] == "RateLimitError" and 0 < err["retry_after"] <= 20
        for _ in range(3):  # every route counts, reads too
            assert c.get("/memories", params={"user_id": "alice"}).status_code == 429
        for _ in range(5):  # another key is not slowed down by this one
            assert other.get("/memories", params={"user_id": "alice"}).status_code == 200
    with server.open_memory() as m:  # the refused add wrote nothing
        stored = m.get_all(user_id=f"{tenant}:alice")["results"]
        assert [r["memory"] for r in stored] == ["Alice likes tea"]


def test_a_bad_key_is_401_not_429(server: Server) -> None:
    with server.client("mvk_nosuchkey_xxxxxxxx") as c:
        for _ in range(3):
            assert c.get("/info").status_code == 401


async def test_mcp_tool_calls_pay_into_the_same_bucket(server: Server) -> None:
    tenant = "rl" + server.key().split("_")[1][:8]
    alice = server.key(tenant, users=["alice"], rate_limit=3)
    with server.client(alice) as c:
        assert c.get("/info").status_code == 200  # 1 of 3, over HTTP
    async with http_connect(server)(alice) as client:
        await client.list_tools()  # protocol messages are not tool calls: free
        await call(client, "add_memory", text="Alice likes tea")  # 2
        await call(client, "search_memories", query="tea")  # 3
        message = await call_error(client, "list_memories")
        assert "RateLimitError: this API key may make 3 calls per minute" in message
    with server.client(alice) as c:
        assert c.get("/info").status_code == 429


async def test_stdio_mcp_applies_the_keys_own_limit(server: Server) -> None:
    tenant = "rl" + server.key().split("_")[1][:8]
    alice = server.key(tenant, users=["alice"], rate_limit=1)
    async with stdio_connect(server)(alice) as client:
        await call(client, "add_memory", text="Alice likes tea")
        assert "RateLimitError" in await call_error(client, "search_memories", query="tea")


def test_the_servers_default_limits_keys_without_their_own(tmp_path: Path) -> None:
    with serve(tmp_path / "memvault.db", "--rate-limit", "2") as s:
        plain, own = s.key(), s.key(rate_limit=100)
        with s.client(plain) as c:
            assert c.get("/info").json()["key"]["rate_limit"] == 2
            assert c.get("/info").status_code == 200
            assert c.get("/info").status_code == 429
        with s.client(own) as c:
            codes = [c.get("/info").status_code for _ in range(10)]
            assert codes == [200] * 10 and c.get("/info").json()["key"]["rate_limit"] == 100


def test_serve_refuses_a_bad_default(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "memvault.cli", "--path", str(tmp_path / "m.db"), "serve"]
    out = subprocess.run(
        [*command, "--rate-limit", "0"], capture_output=True, text=True, cwd=REPO, timeout=60
    )
    assert out.returncode == 2 and "--rate-limit" in out.stderr


def test_keys_cli_sets_and_lists_a_keys_limit(tmp_path: Path) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "memvault.cli", "--path", str(tmp_path / "m.db"), *args]
        return subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=60)

    made = cli("keys", "create", "acme", "--user", "alice", "--rate-limit", "5", "--json")
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["rate_limit"] == 5
    assert cli("keys", "create", "acme", "--rate-limit", "0").returncode == 2
    listed = cli("keys", "list", "--json")
    assert [k["rate_limit"] for k in json.loads(listed.stdout)] == [5]
    assert "rate=5/min" in cli("keys", "list").stdout


def test_a_keys_limit_changes_on_a_running_server_without_a_new_token(server: Server) -> None:
    token = server.key(rate_limit=2)
    with server.client(token) as c:
        assert c.get("/info").status_code == 200
        assert c.get("/info").status_code == 200
        assert c.get("/info").status_code == 429
        with server.open_memory() as m:
            assert set_rate_limit(m, key_id_of(token) or "", 600)["rate_limit"] == 600
        deadline = time.monotonic() + 10
        while True:  # the verified-key cache: at most 2 s
            answer = c.get("/info")
            if answer.status_code == 200 and answer.json()["key"]["rate_limit"] == 600:
                break
            assert time.monotonic() < deadline, answer.text
            time.sleep(0.2)
        assert [c.get("/info").status_code for _ in range(20)] == [200] * 20
    with server.open_memory() as m, pytest.raises(NotFoundError):
        set_rate_limit(m, "nosuchkey", 5)


def test_keys_limit_cli(tmp_path: Path) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "memvault.cli", "--path", str(tmp_path / "m.db"), *args]
        return subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=60)

    made = json.loads(cli("keys", "create", "acme", "--rate-limit", "5", "--json").stdout)
    changed = cli("keys", "limit", made["token"], "7", "--json")  # a token names its key too
    assert changed.returncode == 0, changed.stderr
    assert json.loads(changed.stdout)["rate_limit"] == 7
    cleared = cli("keys", "limit", made["key_id"])
    assert "the server's default" in cleared.stdout
    assert json.loads(cli("keys", "list", "--json").stdout)[0]["rate_limit"] is None
    assert cli("keys", "limit", made["key_id"], "0").returncode == 2
    missing = cli("keys", "limit", "nosuchkey", "5")
    assert missing.returncode == 1 and "no API key 'nosuchkey'" in missing.stderr
