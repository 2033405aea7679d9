"""One step of benchmarks/bench_scale.py, in a process of its own.

    <python> benchmarks/_scale_worker.py build   --system S --backend B --size N --where W --out R.json
    <python> benchmarks/_scale_worker.py migrate --system memvault --backend postgres --size N \
        --where DSN --source SQLITE_FILE --out R.json
    <python> benchmarks/_scale_worker.py measure --system S --backend B --size N --where W --out R.json \
        --round K --scopes N [--profile P.pstats]

``S`` is memvault (the project's .venv python; backend sqlite or postgres, ``W`` a file path
or a DSN) or mem0 (the mem0 venv's python; ``W`` a directory holding its qdrant collection
and history file). Data: benchmarks/_scale_data.py.

build    adds every scope's memories with their vectors supplied, interleaved as a memory
         service receives them: 10 rounds, each giving every scope its next 10 memories in
         one ``add(messages, user_id=..., infer=False)`` call (memvault: ``embeddings=``;
         mem0 has no such argument, so its embedder returns the supplied vector for each
         text from a table instead of running the model). Stops cleanly at --deadline-s.
migrate  copies the SQLite store of the same size into PostgreSQL (``memvault migrate``:
         memories in order, vectors, history), the bulk path for the largest store.
measure  loads the embedder (untimed), then times opening the store (``Memory(...)``
         until it returns), then searches scopes this process has not searched before
         (cold), one query each: ``--scopes`` with the query vector supplied, ``--scopes``
         others with the query embedded by the model, then the first set again (warm).
         Reports latencies, process RSS (current and peak) and open time.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from _vs_mem0_worker import set_thread_env, summary_ms  # noqa: E402

BATCH = 10  # memories per add call (per scope per round)


def rss_mib() -> dict[str, float]:
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line.split(":")[0]] = int(line.split()[1]) / 1024.0
    return {"rss_mib": out.get("VmRSS", 0.0), "peak_rss_mib": out.get("VmHWM", 0.0)}


# -- the two systems --------------------------------------------------------------------------


def memvault_config(backend: str, where: str) -> dict[str, Any]:
    if backend == "postgres":
        return {"vector_store": {"provider": "postgres", "config": {"dsn": where}}}
    return {"path": where}


class MemvaultSide:
    def __init__(self, backend: str, where: str, embedder: Any) -> None:
        from memvault import Memory

        self.mem = Memory(memvault_config(backend, where), embedder=embedder)

    def add(self, scope: str, texts: list[str], vectors: Any) -> None:
        self.mem.add(
            [{"role": "user", "content": t} for t in texts],
            user_id=scope,
            infer=False,
            embeddings=list(vectors),
        )

    def search(self, scope: str, text: str, vector: Any) -> list[dict]:
        kw = {} if vector is None else {"vector": vector}
        return self.mem.search(text, user_id=scope, top_k=10, **kw)["results"]

    def count(self) -> int:
        return int(self.mem.stats()["memories"])

    def close(self) -> None:
        self.mem.close()


class Mem0Side:
    """mem0 2.2.1 with its default local vector store (qdrant local mode, on disk)."""

    def __init__(self, where: str, embedder: Any) -> None:
        from mem0_minilm_embedder import install

        install(embedder)
        from mem0 import Memory

        self.embedder = embedder
        os.makedirs(where, exist_ok=True)
        self.mem = Memory.from_config(
            {
                "embedder": {"provider": "huggingface", "config": {"embedding_dims": 384}},
                "vector_store": {
                    "provider": "qdrant",
                    "config": {
                        "collection_name": "scale",
                        "embedding_model_dims": 384,
                        "path": os.path.join(where, "qdrant"),
                    },
                },
                "llm": {"provider": "openai", "config": {"api_key": "sk-unused-infer-false"}},
                "history_db_path": os.path.join(where, "history.db"),
            }
        )
        assert type(self.mem.embedding_model).__name__ == "MemvaultMiniLMEmbedding"

    def add(self, scope: str, texts: list[str], vectors: Any) -> None:
        # mem0's add takes no vectors: the embedder answers from this table instead.
        self.embedder.cache = {("passage", t): v for t, v in zip(texts, vectors, strict=True)}
        try:
            self.mem.add(
                [{"role": "user", "content": t} for t in texts], user_id=scope, infer=False
            )
        finally:
            self.embedder.cache = None

    def search(self, scope: str, text: str, vector: Any) -> list[dict]:
        if vector is not None:
            self.embedder.cache = {("query", text): vector}
        try:
            return self.mem.search(text, filters={"user_id": scope}, top_k=10)["results"]
        finally:
            self.embedder.cache = None

    def count(self) -> int:
        vs = self.mem.vector_store
        return int(vs.client.count(vs.collection_name).count)

    def close(self) -> None:
        self.mem.close()


def open_side(args: argparse.Namespace, embedder: Any) -> Any:
    if args.system == "mem0":
        return Mem0Side(args.where, embedder)
    return MemvaultSide(args.backend, args.where, embedder)


def make_embedder() -> Any:
    from mem0_minilm_embedder import TimedLocalEmbedder

    return TimedLocalEmbedder(threads=1)


# -- steps --------------------------------------------------------------------------------------


def build(args: argparse.Namespace) -> dict[str, Any]:
    import _scale_data as data

    deadline = time.monotonic() + args.deadline_s
    embedder = make_embedder()
    side = open_side(args, embedder)
    scopes = data.n_scopes(args.size)
    added, complete = 0, True
    t0 = time.perf_counter()
    texts_of: dict[int, list[str]] = {}  # texts are slow to generate, vectors are not
    try:
        for rnd in range(data.PER_SCOPE // BATCH):
            lo, hi = rnd * BATCH, (rnd + 1) * BATCH
            for i in range(scopes):
                texts = texts_of.get(i) or texts_of.setdefault(i, data.scope_texts(i))
                side.add(data.scope_id(i), texts[lo:hi], data.scope_vectors(i)[lo:hi])
                added += hi - lo
                if time.monotonic() > deadline:
                    complete = False
                    break
            if not complete:
                break
        wall = time.perf_counter() - t0
        stored = side.count()
    finally:
        side.close()
    return {
        "added": added,
        "stored": stored,
        "complete": complete,
        "build_s": wall,
        "memories_per_s": added / wall if wall else 0.0,
        **rss_mib(),
    }


def migrate(args: argparse.Namespace) -> dict[str, Any]:
    """Copy the SQLite store ``--from`` into the PostgreSQL store ``--where`` (memvault migrate)."""
    from memvault.store.migrate import copy_store, open_location

    src, dst = open_location(args.source), open_location(args.where)
    try:
        t0 = time.perf_counter()
        counts = copy_store(src, dst)
        wall = time.perf_counter() - t0
        stored = int(dst.stats()["memories"])
    finally:
        src.close()
        dst.close()
    return {
        "added": counts["memories"],
        "stored": stored,
        "complete": stored == args.size,
        "build_s": wall,
        "memories_per_s": counts["memories"] / wall if wall else 0.0,
        "copied": counts,
        "via": "memvault migrate",
        **rss_mib(),
    }


def measure(args: argparse.Namespace) -> dict[str, Any]:
    import _scale_data as data

    embedder = make_embedder()
    t0 = time.perf_counter()
    embedder.load()
    embedder.embed(["warm-up: the model is loaded and run once before timing"])
    model_s = time.perf_counter() - t0
    rss_before = rss_mib()["rss_mib"]
    t0 = time.perf_counter()
    side = open_side(args, embedder)
    open_s = time.perf_counter() - t0
    rss_open = rss_mib()["rss_mib"]
    n = data.n_scopes(args.size)
    # Each round takes scopes of its own, spread over the store (a prime stride), so every
    # search hits a scope this process has not searched before.
    k = min(args.scopes, n // 2)
    stride = 7919 if n % 7919 else 7907
    order = [(args.round * 2 * k + j) * stride % n for j in range(2 * k)]
    vec_scopes, emb_scopes = order[:k], order[k:]
    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()

    cpu: dict[str, list[float]] = {}

    def run(scopes: list[int], supplied: bool, variant: int, key: str) -> tuple[list[float], int]:
        lat, found = [], 0
        cpu[key] = []
        for i in scopes:
            text, vec = data.query(i, variant)
            c, t = time.process_time(), time.perf_counter()
            res = side.search(data.scope_id(i), text, vec if supplied else None)
            lat.append(time.perf_counter() - t)
            cpu[key].append(time.process_time() - c)
            found += len(res)
        return lat, found

    out: dict[str, Any] = {"model_load_s": model_s, "open_s": open_s}
    try:
        embedder.reset_counters()
        if profiler is not None:
            profiler.enable()
        cold_vec, found_vec = run(vec_scopes, True, args.round, "cold_vector")
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(args.profile)
        emb_before = embedder.reset_counters()
        cold_emb, found_emb = run(emb_scopes, False, 100 + args.round, "cold_embed")
        emb_counters = embedder.reset_counters()
        warm_vec, _ = run(vec_scopes, True, 1000 + args.round, "warm_vector")
        out.update(
            {
                "scopes_in_store": n,
                "queries_per_mode": k,
                "cold_vector_ms": summary_ms(cold_vec),
                "cold_embed_ms": summary_ms(cold_emb),
                "warm_vector_ms": summary_ms(warm_vec),
                **{f"{k}_cpu_ms": summary_ms(v) for k, v in cpu.items()},
                "avg_results": {"cold_vector": found_vec / k, "cold_embed": found_emb / k},
                "embed_ms_per_query": 1000 * emb_counters["embed_s"] / k,
                "embed_ms_in_vector_mode": 1000 * emb_before["embed_s"] / k,
                "rss_before_open_mib": rss_before,
                "rss_after_open_mib": rss_open,
                **rss_mib(),
                "loadavg": os.getloadavg(),
            }
        )
    finally:
        side.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("step", choices=["build", "migrate", "measure"])
    ap.add_argument("--system", choices=["memvault", "mem0"], required=True)
    ap.add_argument("--backend", default="sqlite")
    ap.add_argument("--size", type=int, required=True)
    ap.add_argument("--where", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--deadline-s", type=float, default=3600.0)
    ap.add_argument("--round", type=int, default=0)
    ap.add_argument("--scopes", type=int, default=100)
    ap.add_argument("--profile", default=None)
    ap.add_argument("--source", default=None, help="migrate: the SQLite store to copy")
    args = ap.parse_args()
    set_thread_env(1)
    t0 = time.perf_counter()
    step = {"build": build, "migrate": migrate, "measure": measure}[args.step]
    result = step(args)
    result.update({"step": args.step, "system": args.system, "backend": args.backend})
    result["process_s"] = time.perf_counter() - t0
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
