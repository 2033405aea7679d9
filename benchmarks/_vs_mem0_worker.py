"""One side of benchmarks/bench_vs_mem0.py: runs in a fresh process per system and round.

    <python> benchmarks/_vs_mem0_worker.py --system {memvault,mem0} --workload W.json \
        --workdir DIR --out R.json [--threads 1] [--profile DIR]

memvault runs with the project's .venv python, mem0 with benchmarks/.work/mem0-venv's. Both
use the same embedder object type (memvault.embedding.LocalEmbedder, wrapped to add up the
time spent embedding) with the same onnxruntime thread count. Phases, in this order:

  warm-up  load the model, embed a few texts (untimed)
  raw      fresh store; one add(text, user_id=conv, infer=False, metadata=...) per turn
  search   on the raw store: a few untimed warm-up queries, then one
           search(question, top_k=10) per question, scoped to its conversation
  bulk     fresh store; one add([messages...], user_id=conv, infer=False) per session

Writes wall time, process CPU time, per-call latencies, time inside the embedder and
recall@10 (sanity check only) to --out as JSON. --profile wraps each phase in cProfile and
writes <DIR>/<system>_<phase>.pstats.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def set_thread_env(threads: int) -> None:
    """Same thread caps for both systems (numpy/BLAS, OpenMP; onnxruntime via LocalEmbedder)."""
    for var in (
        "OMP_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "MKL_NUM_THREADS",
        "NUMEXPR_NUM_THREADS",
        "VECLIB_MAXIMUM_THREADS",
    ):
        os.environ[var] = str(threads)
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    os.environ["HF_HUB_OFFLINE"] = "1"
    # mem0 reads this when the package is first imported (mem0_minilm_embedder imports it):
    # without it mem0 starts PostHog telemetry threads that retry against the closed network.
    os.environ["MEM0_TELEMETRY"] = "False"


def pct(values: list[float], p: float) -> float:
    """Linear-interpolation percentile (numpy's default), like the LoCoMo harness."""
    if not values:
        return float("nan")
    v = sorted(values)
    pos = (len(v) - 1) * p / 100.0
    lo, hi = int(pos), min(int(pos) + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


def summary_ms(seconds: list[float]) -> dict[str, float]:
    ms = [s * 1000.0 for s in seconds]
    return {
        "n": len(ms),
        "p50": pct(ms, 50),
        "p95": pct(ms, 95),
        "p99": pct(ms, 99),
        "mean": sum(ms) / len(ms) if ms else float("nan"),
        "max": max(ms) if ms else 0.0,
    }


def dir_bytes(path: str) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            with contextlib.suppress(OSError):
                total += os.path.getsize(os.path.join(root, f))
    return total


class Phase:
    """Times a phase (wall + process CPU + embedder time), optionally under cProfile."""

    def __init__(self, name: str, system: str, embedder, profile_dir: str | None) -> None:
        self.name, self.system, self.embedder, self.profile_dir = (
            name,
            system,
            embedder,
            profile_dir,
        )
        self.result: dict = {}

    def __enter__(self) -> Phase:
        self.embedder.reset_counters()
        self.prof = None
        if self.profile_dir:
            import cProfile

            self.prof = cProfile.Profile()
            self.prof.enable()
        self.cpu0 = time.process_time()
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        wall = time.perf_counter() - self.t0
        cpu = time.process_time() - self.cpu0
        if self.prof is not None:
            self.prof.disable()
            self.prof.dump_stats(
                os.path.join(self.profile_dir, f"{self.system}_{self.name}.pstats")
            )
        emb = self.embedder.reset_counters()
        self.result = {
            "wall_s": wall,
            "process_cpu_s": cpu,
            **emb,
            "non_embed_s": wall - emb["embed_s"],
            "non_embed_cpu_s": cpu - emb["embed_cpu_s"],
        }


# ------------------------------------------------------------------------------------------
# The two systems, behind the same four calls
# ------------------------------------------------------------------------------------------


class MemvaultSide:
    def __init__(self, embedder, workdir: str) -> None:
        import memvault
        from memvault import Memory

        self.Memory, self.embedder, self.workdir = Memory, embedder, workdir
        self.versions = {"memvault": memvault.__version__}
        self.mem = None

    def open(self, name: str) -> None:
        self.close()
        # memvault's defaults (background indexing); MEMVAULT_BENCH_EMBEDDING_MODE=sync
        # measures inline embedding instead.
        config: dict = {"path": os.path.join(self.workdir, name, "memvault.db")}
        if os.environ.get("MEMVAULT_BENCH_EMBEDDING_MODE"):
            config["embedding_mode"] = os.environ["MEMVAULT_BENCH_EMBEDDING_MODE"]
        self.mem = self.Memory(config, embedder=self.embedder)
        self.embedding_mode = self.mem.config.embedding_mode

    def flush(self) -> int:
        """Finish background indexing (a no-op in the default sync mode)."""
        return self.mem.flush()

    def add_one(self, text: str, scope: str, metadata: dict) -> None:
        self.mem.add(text, user_id=scope, infer=False, metadata=metadata)

    def add_list(self, messages: list[dict], scope: str) -> None:
        self.mem.add(messages, user_id=scope, infer=False)

    def search(self, query: str, scope: str, k: int) -> list[dict]:
        return self.mem.search(query, user_id=scope, top_k=k)["results"]

    def close(self) -> None:
        if self.mem is not None:
            self.mem.close()
            self.mem = None


class Mem0Side:
    def __init__(self, embedder, workdir: str) -> None:
        assert os.environ.get("MEM0_TELEMETRY") == "False"  # set before mem0 was imported
        os.environ["MEM0_DIR"] = os.path.join(workdir, "mem0_home")
        import logging

        logging.getLogger("mem0").setLevel(logging.ERROR)
        import importlib.metadata as md

        import mem0_minilm_embedder

        mem0_minilm_embedder.install(embedder)
        from mem0 import Memory

        self.Memory, self.embedder, self.workdir = Memory, embedder, workdir
        self.versions = {
            "mem0ai": md.version("mem0ai"),
            "qdrant-client": md.version("qdrant-client"),
        }
        self.mem = None

    def open(self, name: str) -> None:
        self.close()
        d = os.path.join(self.workdir, name)
        # The LoCoMo harness's Mem0Adapter config, with the embedder swapped (see
        # mem0_minilm_embedder.py): default vector store (qdrant, local mode, on disk),
        # history in SQLite, an LLM section with a dummy key that infer=False never calls.
        self.config = {
            "embedder": {"provider": "huggingface", "config": {"embedding_dims": 384}},
            "vector_store": {
                "provider": "qdrant",
                "config": {
                    "collection_name": "locomo",
                    "embedding_model_dims": 384,
                    "path": os.path.join(d, "qdrant"),
                },
            },
            "llm": {"provider": "openai", "config": {"api_key": "sk-unused-infer-false"}},
            "history_db_path": os.path.join(d, "mem0_history.db"),
        }
        self.mem = self.Memory.from_config(self.config)
        assert type(self.mem.embedding_model).__name__ == "MemvaultMiniLMEmbedding"

    def add_one(self, text: str, scope: str, metadata: dict) -> None:
        self.mem.add(text, user_id=scope, infer=False, metadata=metadata)

    def add_list(self, messages: list[dict], scope: str) -> None:
        self.mem.add(messages, user_id=scope, infer=False)

    def search(self, query: str, scope: str, k: int) -> list[dict]:
        return self.mem.search(query, filters={"user_id": scope}, top_k=k)["results"]

    def close(self) -> None:
        if self.mem is not None:
            with contextlib.suppress(Exception):
                self.mem.close()
            self.mem = None

    def describe(self) -> dict:
        out = {}
        vs = self.mem.vector_store
        out["vector_store_class"] = type(vs).__module__ + "." + type(vs).__name__
        try:
            out["bm25_keyword_search_active"] = bool(
                getattr(vs, "_has_bm25_slot", False) and vs._get_bm25_encoder() is not None
            )
        except Exception as e:
            out["bm25_keyword_search_active"] = f"unknown ({e})"
        try:
            from mem0.utils.spacy_models import get_nlp_lemma

            out["spacy_active"] = get_nlp_lemma() is not None
        except Exception as e:
            out["spacy_active"] = f"unknown ({e})"
        return out


# ------------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--system", choices=["memvault", "mem0"], required=True)
    ap.add_argument("--workload", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--phases", default="raw,search,bulk")
    ap.add_argument("--profile", default=None, help="directory for cProfile .pstats per phase")
    args = ap.parse_args()
    set_thread_env(args.threads)
    t_start = time.perf_counter()
    sys.path.insert(0, HERE)

    with open(args.workload) as f:
        wl = json.load(f)
    phases = args.phases.split(",")
    k = wl["top_k"]

    from mem0_minilm_embedder import TimedLocalEmbedder

    embedder = TimedLocalEmbedder(threads=args.threads)
    t0 = time.perf_counter()
    side = (MemvaultSide if args.system == "memvault" else Mem0Side)(embedder, args.workdir)
    import_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    embedder.load()
    embedder.embed(["warm-up: the model is loaded and run once before timing"] * 4)
    embedder.embed(["short"])
    load_s = time.perf_counter() - t0
    embedder.reset_counters()
    if args.profile:
        os.makedirs(args.profile, exist_ok=True)

    out: dict = {
        "system": args.system,
        "versions": side.versions,
        "threads": args.threads,
        "python": sys.version.split()[0],
        "import_s": import_s,
        "model_load_s": load_s,
        "loadavg_start": os.getloadavg(),
    }
    import importlib.metadata as md

    out["versions"].update({p: md.version(p) for p in ("onnxruntime", "tokenizers", "numpy")})

    if "raw" in phases or "search" in phases:
        t0 = time.perf_counter()
        side.open("raw")
        out["open_store_s"] = time.perf_counter() - t0
    if wl.get("fill_copies", 0) and ("raw" in phases or "search" in phases):
        # Other users first: fill_copies copies of every conversation under scopes of their
        # own, one add per session, embeddings cached by text (untimed set-up). The timed
        # phases below then run against a store holding many users, as a deployment does.
        embedder.cache = {}
        t0 = time.perf_counter()
        n = 0
        for j in range(wl["fill_copies"]):
            for conv in wl["convs"]:
                scope = f"{conv['scope']}~other{j}"
                for session in conv["sessions"]:
                    msgs = [{"role": "user", "content": conv["items"][i]["text"]} for i in session]
                    side.add_list(msgs, scope)
                    n += len(msgs)
        if hasattr(side, "flush"):
            side.flush()
        embedder.cache = None
        embedder.reset_counters()
        out["fill"] = {"items": n, "wall_s": time.perf_counter() - t0}
    if "raw" in phases:
        lat: list[float] = []
        cpu: list[float] = []
        n = 0
        with Phase("raw", args.system, embedder, args.profile) as ph:
            for conv in wl["convs"]:
                scope = conv["scope"]
                for it in conv["items"]:
                    c0, t0 = time.process_time(), time.perf_counter()
                    side.add_one(it["text"], scope, {"item_id": it["id"], "dia_ids": it["dia_ids"]})
                    lat.append(time.perf_counter() - t0)
                    cpu.append(time.process_time() - c0)
                    n += 1
        indexed_s = 0.0
        if hasattr(side, "flush"):  # memvault: wait until every vector exists
            t0 = time.perf_counter()
            side.flush()
            indexed_s = time.perf_counter() - t0
        out["raw"] = {
            **ph.result,
            "items": n,
            "items_per_s": n / ph.result["wall_s"],
            "indexed_items_per_s": n / (ph.result["wall_s"] + indexed_s),
            "items_per_cpu_s": n / ph.result["process_cpu_s"],
            "add_latency_ms": summary_ms(lat),
            "add_cpu_ms": summary_ms(cpu),
        }
    if "search" in phases:
        qs = wl["questions"]
        for q in qs[: wl["search_warmup"]]:  # untimed: first-query lazy init, caches
            side.search(q["question"], q["scope"], k)
        lat = []
        cpu = []
        recalls = []
        returned = []
        dia_of = {(c["scope"], it["id"]): it["dia_ids"] for c in wl["convs"] for it in c["items"]}
        with Phase("search", args.system, embedder, args.profile) as ph:
            for q in qs:
                c0, t0 = time.process_time(), time.perf_counter()
                res = side.search(q["question"], q["scope"], k)
                lat.append(time.perf_counter() - t0)
                cpu.append(time.process_time() - c0)
                returned.append(res)
        for q, res in zip(qs, returned, strict=True):
            found = set()
            for r in res[:k]:
                found.update(dia_of.get((q["scope"], (r.get("metadata") or {}).get("item_id")), []))
            ev = set(q["evidence"])
            recalls.append(len(ev & found) / len(ev))
        out["search"] = {
            **ph.result,
            "queries": len(qs),
            "latency_ms": summary_ms(lat),
            "cpu_ms": summary_ms(cpu),
            "avg_results": sum(len(r) for r in returned) / len(returned),
            f"recall@{k}": sum(recalls) / len(recalls),
        }
        if hasattr(side, "describe"):
            out["mem0_search_path"] = side.describe()
    if "raw" in phases or "search" in phases:
        side.close()
        out["raw_store_bytes"] = dir_bytes(os.path.join(args.workdir, "raw"))
    if "bulk" in phases:
        side.open("bulk")
        lat = []
        cpu = []
        n = 0
        with Phase("bulk", args.system, embedder, args.profile) as ph:
            for conv in wl["convs"]:
                scope = conv["scope"]
                for session in conv["sessions"]:
                    msgs = [
                        {
                            "role": "user",
                            "content": conv["items"][i]["text"],
                            "name": conv["items"][i]["speaker"],
                        }
                        for i in session
                    ]
                    c0, t0 = time.process_time(), time.perf_counter()
                    side.add_list(msgs, scope)
                    lat.append(time.perf_counter() - t0)
                    cpu.append(time.process_time() - c0)
                    n += len(msgs)
        indexed_s = 0.0
        if hasattr(side, "flush"):  # memvault: wait until every vector exists
            t0 = time.perf_counter()
            side.flush()
            indexed_s = time.perf_counter() - t0
        side.close()
        out["bulk"] = {
            **ph.result,
            "items": n,
            "calls": len(lat),
            "items_per_s": n / ph.result["wall_s"],
            "indexed_items_per_s": n / (ph.result["wall_s"] + indexed_s),
            "items_per_cpu_s": n / ph.result["process_cpu_s"],
            "add_latency_ms": summary_ms(lat),
            "add_cpu_ms": summary_ms(cpu),
        }
    if hasattr(side, "embedding_mode"):
        out["memvault_embedding_mode"] = side.embedding_mode
    out["loadavg_end"] = os.getloadavg()
    out["total_s"] = time.perf_counter() - t_start
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
