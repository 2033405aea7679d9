"""Load and faults for `memvault serve`: N concurrent clients mixing adds and searches.

    .venv/bin/python benchmarks/bench_server_load.py --clients 64 --seconds 20

Phase 1 (load): N clients (asyncio + httpx, one key each of one tenant, each with its own
user) for a bounded time, 3 adds : 1 search; throughput and p50/p95/p99 per operation;
errors counted; afterwards every acknowledged add is checked to be there (count per user).
Phase 2 (kill -9): the same load, the server killed with SIGKILL mid-way, restarted on the
same store; every add acknowledged before the kill must be present after the restart.
Only 127.0.0.1 is used; every loop is bounded in time; the server is stopped at the end.
``--backend postgres`` runs the same over an embedded PostgreSQL (tests/support/postgres.py)
with two server processes on one database (client i talks to server i % 2); phase 2 kills
the first with SIGKILL, the second keeps serving, a new process is started on the database,
and every add acknowledged by either is checked through it.
Writes benchmarks/results/server_load.json (server_load_postgres.json).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import signal
import ssl
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.service.harness import serve

RESULTS = Path(__file__).resolve().parent / "results" / "server_load.json"
#: One TLS context for every client (unused on http://, but httpx builds one per client
#: otherwise: ~40 ms of CPU each, 64 of them stalled the clients' loop for seconds at the
#: start of each phase on a loaded 2-core machine).
_SSL = ssl.create_default_context()
#: Share of adds among the requests (the rest are searches); --add-share.
ADD_SHARE = 0.75
RESULTS_PG = Path(__file__).resolve().parent / "results" / "server_load_postgres.json"


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return round(values[min(len(values) - 1, int(p / 100 * len(values)))] * 1000, 2)


async def client_loop(
    url: str,
    token: str,
    user: str,
    stop_at: float,
    acked: list[str],
    lat: dict[str, list[float]],
    errors: list[str],
    phase: str = "load",
) -> None:
    rng = random.Random(user)
    async with httpx.AsyncClient(
        base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30, verify=_SSL
    ) as c:
        i = 0
        while time.monotonic() < stop_at and i < 100_000:
            i += 1
            t0 = time.perf_counter()
            try:
                if rng.random() < ADD_SHARE:
                    r = await c.post(
                        "/memories",
                        json={
                            "messages": f"{user} {phase} fact {i}: likes item {rng.randint(0, 999)}",
                            "user_id": user,
                            "infer": False,
                        },
                    )
                    kind = "add"
                else:
                    r = await c.post(
                        "/search",
                        json={"query": f"what does {user} like", "user_id": user, "top_k": 5},
                    )
                    kind = "search"
            except httpx.TransportError as e:
                errors.append(type(e).__name__)
                await asyncio.sleep(0.05)
                continue
            lat[kind].append(time.perf_counter() - t0)
            if r.status_code >= 400:
                errors.append(f"{kind} {r.status_code}")
            elif kind == "add":
                acked.extend(x["id"] for x in r.json()["results"])


async def run_load(
    urls: list[str], tokens: list[str], seconds: float
) -> tuple[list[str], dict[str, list[float]], list[str], float]:
    """Client i talks to server i % len(urls) (the load spread over every process)."""
    acked: list[str] = []
    lat: dict[str, list[float]] = {"add": [], "search": []}
    errors: list[str] = []
    t0 = time.monotonic()
    await asyncio.gather(
        *(
            client_loop(urls[i % len(urls)], tok, f"u{i}", t0 + seconds, acked, lat, errors)
            for i, tok in enumerate(tokens)
        )
    )
    return acked, lat, errors, time.monotonic() - t0


def check_present(url: str, owner: str, ids: list[str]) -> int:
    missing = 0
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {owner}"}, timeout=60) as c:
        for mid in ids:
            if c.get(f"/memories/{mid}").status_code != 200:
                missing += 1
    return missing


def summary(
    lat: dict[str, list[float]], errors: list[str], acked: list[str], wall: float, stored: int
) -> dict[str, object]:
    n = len(lat["add"]) + len(lat["search"])
    return {
        "requests": n,
        "throughput_rps": round(n / wall, 1),
        "adds": len(lat["add"]),
        "searches": len(lat["search"]),
        "add_ms": {p: pct(lat["add"], int(p[1:])) for p in ("p50", "p95", "p99")},
        "search_ms": {p: pct(lat["search"], int(p[1:])) for p in ("p50", "p95", "p99")},
        "errors": len(errors),
        "error_kinds": sorted(set(errors))[:10],
        "acknowledged_adds": len(acked),
        "stored_after": stored,
        "lost_writes": len(acked) - stored,
    }


def stored_count(url: str, owner: str, clients: int) -> int:
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {owner}"}, timeout=60) as c:
        return sum(
            c.post("/memories/count", json={"user_id": f"u{i}"}).json()["count"]
            for i in range(clients)
        )


def bench(
    args: argparse.Namespace, tmp: Path, config: dict[str, Any] | None, n_servers: int
) -> dict[str, object]:
    """Phase 1 (load) and phase 2 (kill -9 of the first server mid-load, restart, check)."""
    out: dict[str, object] = {}
    store = Path(tmp) / "load.db"
    serve_args = ("--limit-concurrency", "1024", *args.serve_arg)
    with contextlib.ExitStack() as stack:
        servers = [
            stack.enter_context(serve(Path(tmp) / f"s{k}" / "load.db", *serve_args, config=config))
            if config
            else stack.enter_context(serve(store, *serve_args))
            for k in range(n_servers)
        ]
        urls = [s.url for s in servers]
        owner = servers[0].key("load")
        tokens = [servers[0].key("load", users=[f"u{i}"]) for i in range(args.clients)]
        acked, lat, errors, wall = asyncio.run(run_load(urls, tokens, args.seconds))
        stored = stored_count(urls[-1], owner, args.clients)
        out["load"] = summary(lat, errors, acked, wall, stored)
        print(json.dumps(out["load"], indent=1), flush=True)

        # Phase 2: kill -9 the first server mid-load; restart it on the same store; every
        # add acknowledged by any server (before or after the kill) must be present.
        async def load_and_kill() -> tuple[list[str], list[list[str]], list[int]]:
            acked2: list[str] = []
            lat2 = [{"add": [], "search": []} for _ in urls]  # per server
            errors2: list[list[str]] = [[] for _ in urls]
            t0 = time.monotonic()
            task = asyncio.gather(
                *(
                    client_loop(
                        urls[i % len(urls)],
                        tok,
                        f"u{i}",
                        t0 + args.kill_after + 2,
                        acked2,
                        lat2[i % len(urls)],
                        errors2[i % len(urls)],
                        "kill",  # new texts: not deduplicated against phase 1's
                    )
                    for i, tok in enumerate(tokens)
                )
            )
            await asyncio.sleep(args.kill_after)
            servers[0].kill(signal.SIGKILL)
            await task
            return acked2, errors2, [len(x["add"]) + len(x["search"]) for x in lat2]

        acked2, errors2, answered = asyncio.run(load_and_kill())
        if config:  # the others keep serving; a new process on the same database
            restarted = stack.enter_context(
                serve(Path(tmp) / "restart" / "load.db", *serve_args, config=config)
            )
        else:
            stack.close()
            restarted = stack.enter_context(serve(store))
        out["kill9"] = {
            "killed_after_s": args.kill_after,
            "acknowledged_adds_in_phase": len(acked2),
            "missing_after_restart": check_present(restarted.url, owner, acked2),
            "acknowledged_total": len(set(acked) | set(acked2)),
            "stored_after_restart": stored_count(restarted.url, owner, args.clients),
            "client_errors_killed_server": len(errors2[0]),
            "client_errors_other_servers": sum(len(e) for e in errors2[1:]),
            "requests_answered_per_server": answered,
        }
        print(json.dumps(out["kill9"], indent=1), flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--kill-after", type=float, default=5)
    ap.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--servers", type=int, default=None, help="default: 1 (sqlite), 2 (postgres)")
    ap.add_argument("--serve-arg", action="append", default=[], help="extra `serve` argument")
    ap.add_argument("--add-share", type=float, default=ADD_SHARE)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    globals()["ADD_SHARE"] = args.add_share
    n_servers = args.servers or (2 if args.backend == "postgres" else 1)
    out: dict[str, object] = {
        "clients": args.clients,
        "seconds": args.seconds,
        "backend": args.backend,
        "servers": n_servers,
        "serve_args": args.serve_arg,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
    }
    with tempfile.TemporaryDirectory() as tmp:
        if args.backend == "postgres":
            from tests.support.postgres import postgres_server

            with postgres_server() as pg:
                dsn = pg.new_database()
                config = {"vector_store": {"provider": "postgres", "config": {"dsn": dsn}}}
                out.update(bench(args, Path(tmp), config, n_servers))
        else:
            out.update(bench(args, Path(tmp), None, n_servers))
    target = args.out or (RESULTS if args.backend == "sqlite" else RESULTS_PG)
    target.parent.mkdir(exist_ok=True)
    target.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
