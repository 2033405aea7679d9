#!/usr/bin/env python3
"""Where memvault and mem0 spend their time: cProfile of the bench_vs_mem0 workload.

    .venv/bin/python benchmarks/profile_vs_mem0.py [--turns-per-conv 200] [--questions 150]

Runs benchmarks/_vs_mem0_worker.py once per system with --profile (cProfile around each
phase: raw = one add per turn, search, bulk = one add per session), then attributes each
phase's time, per operation, to: the ONNX model run, tokenization, the rest of the embedder
(padding, pooling), SQLite C calls (execute / commit, which includes the disk syncs), a few
named library paths (cumulative), and the top remaining functions by own time. cProfile adds
overhead to Python-heavy code, so absolute times here are inflated; the speed figures come
from bench_vs_mem0.py, this only says where the time goes. Optionally (--strace, needs strace)
counts fsync/fdatasync calls and time per system.

Writes benchmarks/results/profile_vs_mem0.json and the "Where the time goes" section of
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import pstats
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _bench_util import RESULTS, git_rev, machine_facts, rel, write_doc_section
from bench_vs_mem0 import WORKER, Runner, build_workload, python_for

SYSTEMS = ("memvault", "mem0")
PHASES = (("raw", "items"), ("search", "queries"), ("bulk", "items"))

#: Named cumulative entries: label -> regex on "file:line(function)" (first match wins per row).
NAMED = {
    "memvault": {
        "engine add: write transaction (_write_adds)": r"memvault/engine\.py:\d+\(_write_adds\)",
        "engine add: duplicate check (_dedup)": r"memvault/engine\.py:\d+\(_dedup\)",
        "engine search: ranking body (_search)": r"memvault/search\.py:\d+\(_search\)",
        "  keyword postings (the scope's terms, once per view)": r"memvault/views\.py:\d+\(keywords\)",
        "  BM25 from the scope's postings": r"memvault/bm25\.py:\d+\(scores\)",
        "  dense brute force (numpy)": r"memvault/store/vector_index\.py:\d+\(search\)",
        "  fusion (retrieval.rank)": r"memvault/retrieval\.py:\d+\(rank\)",
        "  results to dicts": r"memvault/models\.py:\d+\(to_dict\)",
        "  scope view (cached records)": r"memvault/views\.py:\d+\(view\)",
    },
    "mem0": {
        "qdrant local insert (incl. its SQLite persist)": r"mem0/vector_stores/qdrant\.py:\d+\(insert\)",
        "  qdrant persist to SQLite (pickle + commit)": r"qdrant_client/local/persistence\.py:\d+\(persist\)",
        "history SQLite insert + commit (add_history)": r"mem0/memory/storage\.py:\d+\(add_history\)",
        "BM25 lemmatizer (lemmatize_for_bm25)": r"\(lemmatize_for_bm25\)",
        "deepcopy": r"copy\.py:\d+\(deepcopy\)",
        "qdrant local search": r"mem0/vector_stores/qdrant\.py:\d+\(search\)",
        "  payload filter (pure Python, every point)": r"qdrant_client/local/payload_filters\.py:\d+\(calculate_payload_mask\)",
        "  payload copies (_get_payload)": r"qdrant_client/local/local_collection\.py:\d+\(_get_payload\)",
        "keyword_search (no-op offline)": r"mem0/vector_stores/qdrant\.py:\d+\(keyword_search\)",
        "score_and_rank": r"\(score_and_rank\)",
        "MemoryItem / pydantic": r"pydantic/main\.py:\d+\(__init__\)",
    },
}


def key_str(k: tuple) -> str:
    file, line, func = k
    file = re.sub(r".*/site-packages/", "", file)
    file = re.sub(r".*/(core/src|benchmarks)/", r"\1/", file)
    file = re.sub(r".*/lib/python3\.\d+/", "", file)
    return f"{file}:{line}({func})"


def analyse(path: str, n_ops: int) -> dict:
    st = pstats.Stats(path)
    rows = {key_str(k): v for k, v in st.stats.items()}  # v = (cc, nc, tottime, cumtime, callers)
    total = max(v[3] for v in rows.values())

    def cum(pattern: str) -> float:
        rx = re.compile(pattern)
        # Recursive functions appear once with the outermost cumtime; take the max match.
        return max((v[3] for k, v in rows.items() if rx.search(k)), default=0.0)

    def own(pattern: str) -> float:
        rx = re.compile(pattern)
        return sum(v[2] for k, v in rows.items() if rx.search(k))

    ort = own(r"onnxruntime_pybind11_state\.run")
    tok = own(r"tokenizers\.Tokenizer")
    embed_total = cum(r"memvault/embedding/local\.py:\d+\(embed\)")
    sqlite_c = own(r"sqlite3\.(Connection|Cursor)")
    per = 1000.0 / n_ops
    out = {
        "total_ms": total * per,
        "embedder_total_ms": embed_total * per,
        "onnx_run_ms": ort * per,
        "tokenize_ms": tok * per,
        "embedder_other_ms": (embed_total - ort - tok) * per,
        "sqlite_c_calls_ms": sqlite_c * per,
        "everything_else_ms": (total - embed_total - sqlite_c) * per,
    }
    named = {}
    for system_named in NAMED.values():
        for label, pat in system_named.items():
            t = cum(pat)
            if t > 0:
                named[label] = t * per
    out["named_cumulative_ms"] = named
    skip = re.compile(
        r"onnxruntime_pybind11_state|tokenizers\.Tokenizer|sqlite3\.|"
        r"_vs_mem0_worker|process_time|perf_counter"
    )
    top = sorted(((v[2], k) for k, v in rows.items() if not skip.search(k)), reverse=True)[:10]
    out["top_own_time_ms"] = [[k, t * per] for t, k in top]
    return out


def strace_fsyncs(cmd: list[str], log: str) -> dict:
    """fsync/fdatasync counts and wall seconds in them for a whole worker run (strace -f -c -w)."""
    summary = log + ".strace"
    subprocess.run(
        ["strace", "-f", "-c", "-w", "-e", "trace=fsync,fdatasync", "-o", summary, *cmd],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=3600,
        check=False,
    )
    out = {}
    try:
        with open(summary) as f:
            for line in f:
                parts = line.split()
                if parts and parts[-1] in ("fsync", "fdatasync") and len(parts) >= 5:
                    out[parts[-1]] = {"calls": int(parts[3]), "seconds": float(parts[1])}
    except OSError:
        pass
    return out


def render(res: dict) -> str:
    L = []
    cfg = res["config"]
    L.append(
        f"Measured {res['finished']} by `benchmarks/profile_vs_mem0.py` (git {res['git']}): "
        f"cProfile around each phase of the same worker as above, one run per system, "
        f"{cfg['items']} turns ({cfg['turns_note']}), {cfg['questions']} questions, "
        f"{cfg['sessions']} sessions, 1 onnxruntime thread. cProfile inflates Python-heavy "
        "code (mem0's more than memvault's), so read the shares, not the absolute speed. "
        "cProfile sees the calling thread only: with memvault's default background "
        "indexing its raw and bulk columns show what an `add` costs the caller, and the "
        "embedding of those turns (same model, same cost per text) runs on the indexer "
        "thread — see the until-indexed figures above. "
        f"Raw data: `{rel(res['out_path'])}`.\n"
    )
    L.append(
        "Milliseconds per operation (per turn for raw and bulk ingest, per query for search):\n"
    )
    L.append("| | " + " | ".join(f"{s} {ph}" for ph, _ in PHASES for s in SYSTEMS) + " |")
    L.append("|---|" + "---:|" * (len(PHASES) * len(SYSTEMS)))
    for key, label in (
        ("total_ms", "**total**"),
        ("embedder_total_ms", "embedder (all)"),
        ("onnx_run_ms", "  ONNX model run"),
        ("tokenize_ms", "  tokenization"),
        ("embedder_other_ms", "  padding, pooling, glue"),
        ("sqlite_c_calls_ms", "SQLite C calls (incl. commits / disk syncs)"),
        ("everything_else_ms", "everything else (Python, numpy, ...)"),
    ):
        cells = []
        for ph, _ in PHASES:
            for s in SYSTEMS:
                a = res["profiles"][s].get(ph)
                cells.append(f"{a[key]:.2f}" if a else "–")
        L.append(f"| {label} | " + " | ".join(cells) + " |")
    for s in SYSTEMS:
        L.append(
            f"\n**{s}**, named paths (cumulative, ms per operation; nested rows are part of "
            "the row above):\n"
        )
        L.append("| path | " + " | ".join(ph for ph, _ in PHASES) + " |")
        L.append("|---|" + "---:|" * len(PHASES))
        labels: list[str] = []
        for ph, _ in PHASES:
            for lab in res["profiles"][s].get(ph, {}).get("named_cumulative_ms", {}):
                if lab not in labels and lab in NAMED[s]:
                    labels.append(lab)
        labels.sort(key=list(NAMED[s]).index)
        for lab in labels:
            cells = []
            for ph, _ in PHASES:
                v = res["profiles"][s].get(ph, {}).get("named_cumulative_ms", {}).get(lab)
                cells.append(f"{v:.2f}" if v is not None else "–")
            L.append(f"| {lab.replace('  ', '&nbsp;&nbsp;↳ ')} | " + " | ".join(cells) + " |")
    if res.get("fsync"):
        L.append(
            "\nDisk syncs over a whole worker run (`strace -f -c -w`, wall time inside the calls; all three phases; a separate run without cProfile):\n"
        )
        L.append("| system | fsync calls | fdatasync calls | seconds in them |")
        L.append("|---|---:|---:|---:|")
        for s in SYSTEMS:
            f = res["fsync"].get(s, {})
            L.append(
                f"| {s} | {f.get('fsync', {}).get('calls', 0)} | "
                f"{f.get('fdatasync', {}).get('calls', 0)} | "
                f"{f.get('fsync', {}).get('seconds', 0) + f.get('fdatasync', {}).get('seconds', 0):.2f} |"
            )
    return "\n".join(L)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--turns-per-conv", type=int, default=200)
    ap.add_argument("--questions", type=int, default=150)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--strace", action="store_true", help="also count fsync/fdatasync (strace)")
    ap.add_argument("--out", default=os.path.join(RESULTS, "profile_vs_mem0.json"))
    ap.add_argument("--no-doc", action="store_true")
    args = ap.parse_args()

    wl = build_workload(args.turns_per_conv, args.questions, 10, 10)
    n = {
        "raw": sum(len(c["items"]) for c in wl["convs"]),
        "search": len(wl["questions"]),
        "bulk": sum(len(c["items"]) for c in wl["convs"]),
    }
    tmp = tempfile.mkdtemp(prefix="memvault_profile_")
    runner = Runner()
    profiles: dict = {}
    fsync: dict = {}
    try:
        wl_path = os.path.join(tmp, "workload.json")
        with open(wl_path, "w") as f:
            json.dump(wl, f)
        for system in SYSTEMS:
            wd = os.path.join(tmp, system)
            pdir = os.path.join(tmp, f"{system}_pstats")
            os.makedirs(wd)
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
                os.path.join(tmp, f"{system}.json"),
                "--threads",
                str(args.threads),
                "--profile",
                pdir,
            ]
            print(f"==> profiling {system}", flush=True)
            runner.run(cmd, 3600, os.path.join(tmp, f"{system}.log"))
            profiles[system] = {
                ph: analyse(os.path.join(pdir, f"{system}_{ph}.pstats"), n[ph]) for ph, _ in PHASES
            }
            if args.strace and shutil.which("strace"):
                wd2 = os.path.join(tmp, system + "_strace")
                os.makedirs(wd2)
                cmd2 = [c if c != wd else wd2 for c in cmd[:-2]]
                cmd2[cmd2.index("--out") + 1] = os.path.join(tmp, f"{system}_strace.json")
                print(f"==> strace {system}", flush=True)
                fsync[system] = strace_fsyncs(cmd2, os.path.join(tmp, system))
    finally:
        runner.kill()
        shutil.rmtree(tmp, ignore_errors=True)
    res = {
        "finished": time.strftime("%Y-%m-%d %H:%M %Z"),
        "git": git_rev(),
        "out_path": os.path.abspath(args.out),
        "machine": machine_facts(),
        "config": {
            "items": n["raw"],
            "questions": n["search"],
            "sessions": sum(len(c["sessions"]) for c in wl["convs"]),
            "turns_note": f"first {args.turns_per_conv} of each conversation"
            if args.turns_per_conv
            else "every turn",
            "threads": args.threads,
        },
        "profiles": profiles,
        "fsync": fsync,
    }
    md = render(res)
    print(md)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(dict(res, out_path=rel(res["out_path"])), f, indent=1)
    if not args.no_doc:
        write_doc_section("vs_mem0_profile", "Where the time goes: memvault vs mem0 (cProfile)", md)
        print(f"\nwrote {rel(args.out)} and docs/benchmarks.md")


if __name__ == "__main__":
    main()
