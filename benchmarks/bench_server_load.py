"""Load and faults for `memvault serve`: N concurrent clients mixing adds and searches.

    .venv/bin/python benchmarks/bench_server_load.py --clients 64 --seconds 20

Phase 1 (load): N clients (asyncio + httpx, one key each of one tenant, each with its own
user) for a bounded time, 3 adds : 1 search; throughput and p50/p95/p99 per operation;
errors counted; afterwards every acknowledged add is checked to be there (count per user).
Phase 2 (kill -9): the same load, the server killed with SIGKILL mid-way, restarted on the
same store; every add acknowledged before the kill must be present after the restart.
Only 127.0.0.1 is used; every loop is bounded in time; the server is stopped at the end.
Writes benchmarks/results/server_load.json. SQLite backend (PostgreSQL: not yet).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import random
import signal
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.service.harness import serve

RESULTS = Path(__file__).resolve().parent / "results" / "server_load.json"


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
) -> None:
    rng = random.Random(user)
    async with httpx.AsyncClient(
        base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as c:
        i = 0
        while time.monotonic() < stop_at:
            i += 1
            t0 = time.perf_counter()
            try:
                if rng.random() < 0.75:
                    r = await c.post(
                        "/memories",
                        json={
                            "messages": f"{user} fact {i}: likes item {rng.randint(0, 999)}",
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
    url: str, tokens: list[str], seconds: float
) -> tuple[list[str], dict[str, list[float]], list[str], float]:
    acked: list[str] = []
    lat: dict[str, list[float]] = {"add": [], "search": []}
    errors: list[str] = []
    t0 = time.monotonic()
    await asyncio.gather(
        *(
            client_loop(url, tok, f"u{i}", t0 + seconds, acked, lat, errors)
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--kill-after", type=float, default=5)
    args = ap.parse_args()
    out: dict[str, object] = {
        "clients": args.clients,
        "seconds": args.seconds,
        "backend": "sqlite",
        "machine": f"{platform.machine()}, 2 cores",
    }
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "load.db"
        with serve(store, "--limit-concurrency", "1024") as server:
            owner = server.key("load")
            tokens = [server.key("load", users=[f"u{i}"]) for i in range(args.clients)]
            acked, lat, errors, wall = asyncio.run(run_load(server.url, tokens, args.seconds))
            with httpx.Client(
                base_url=server.url, headers={"Authorization": f"Bearer {owner}"}
            ) as c:
                stored = sum(
                    c.post("/memories/count", json={"user_id": f"u{i}"}).json()["count"]
                    for i in range(args.clients)
                )
            out["load"] = {
                "requests": len(lat["add"]) + len(lat["search"]),
                "throughput_rps": round((len(lat["add"]) + len(lat["search"])) / wall, 1),
                "adds": len(lat["add"]),
                "searches": len(lat["search"]),
                "add_ms": {
                    "p50": pct(lat["add"], 50),
                    "p95": pct(lat["add"], 95),
                    "p99": pct(lat["add"], 99),
                },
                "search_ms": {
                    "p50": pct(lat["search"], 50),
                    "p95": pct(lat["search"], 95),
                    "p99": pct(lat["search"], 99),
                },
                "errors": len(errors),
                "acknowledged_adds": len(acked),
                "stored_after": stored,
                "lost_writes": len(acked) - stored,
            }
            print(json.dumps(out["load"], indent=1))

            # Phase 2: kill -9 mid-load, restart, every acknowledged add present.
            async def load_and_kill() -> tuple[list[str], list[str]]:
                acked2: list[str] = []
                lat2: dict[str, list[float]] = {"add": [], "search": []}
                errors2: list[str] = []
                t0 = time.monotonic()
                task = asyncio.gather(
                    *(
                        client_loop(
                            server.url,
                            tok,
                            f"u{i}",
                            t0 + args.kill_after + 2,
                            acked2,
                            lat2,
                            errors2,
                        )
                        for i, tok in enumerate(tokens)
                    )
                )
                await asyncio.sleep(args.kill_after)
                server.kill(signal.SIGKILL)
                await task
                return acked2, errors2

            acked2, errors2 = asyncio.run(load_and_kill())
        with serve(store) as restarted:
            missing = check_present(restarted.url, owner, acked2)
        out["kill9"] = {
            "acknowledged_before_kill": len(acked2),
            "missing_after_restart": missing,
            "client_errors_after_kill": len(errors2),
        }
        print(json.dumps(out["kill9"], indent=1))
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
