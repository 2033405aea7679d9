#!/usr/bin/env python3
"""Opt-in query expansion (issue 12) on LoCoMo, with the real local model: held out by design.

Each of the 383 questions of the three dev conversations is searched twice through
``Memory.search``, in the same run: with the defaults, and with
``retrieval={"expansions": N}`` — Qwen2.5-Coder-1.5B-Instruct (served by ``make llm``;
the script starts and stops its own server unless ``--base-url`` is given) writes N
statements an answer would hold, each is searched too, and the rankings are fused by
reciprocal rank. Nothing is tuned on these conversations: the prompt, N and the fusion
were fixed before the first question was scored, so every figure is a held-out one.

The turns go in as docs describe (one ``add`` per turn, speaker as ``name``, session as
``run_id``, session date as ``timestamp``, ``infer=False``), as in bench_locomo_cv.py.
Rows are appended to ``benchmarks/.work/locomo_expansion/rows.jsonl`` as they are scored,
so a stopped run resumes (``--fresh`` starts over; a changed ``memvault/expansion.py``
refuses to resume). ``--budget-minutes`` stops starting new questions after that long.

    .venv/bin/python benchmarks/bench_locomo_expansion.py [--expansions 3] [--budget-minutes 40]
    .venv/bin/python benchmarks/bench_locomo_expansion.py --render   # the doc section only
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from _bench_util import (
    RESULTS,
    WORK,
    git_rev,
    machine_facts,
    resume_rows,
    write_doc_section,
)
from bench_llm_write_path import server
from bench_locomo_cv import CATS, KS, Case, dev_conversations, ingest, recalls

from memvault import Memory

REPO = Path(__file__).resolve().parent.parent
OUT = Path(RESULTS) / "locomo_expansion.json"
ROWS = Path(WORK) / "locomo_expansion" / "rows.jsonl"
EXPANSION_SRC = REPO / "core" / "src" / "memvault" / "expansion.py"


def digest() -> str:
    return hashlib.sha256(EXPANSION_SRC.read_bytes()).hexdigest()


def summarise(rows: list[dict[str, Any]], key: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    groups = {"overall": rows} | {f"cat{c}": [r for r in rows if r["category"] == c] for c in CATS}
    for name, g in groups.items():
        out[name] = {"n": len(g)} | {
            f"R@{k}": round(float(np.mean([r[key][j] for r in g])), 3) if g else None
            for j, k in enumerate(KS)
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--expansions", type=int, default=3)
    ap.add_argument("--base-url")
    ap.add_argument("--fresh", action="store_true")
    ap.add_argument("--budget-minutes", type=float)
    ap.add_argument("--render", action="store_true")
    ap.add_argument(
        "--categories",
        type=int,
        nargs="*",
        default=sorted(CATS),
        help="score only these question categories (a first look; the doc needs all)",
    )
    args = ap.parse_args()
    if args.render:
        write_doc_section("locomo_expansion", TITLE, render(json.loads(OUT.read_text())))
        return

    done = resume_rows(
        ROWS, fresh=args.fresh, keep=lambda r: r["expansions_asked"] == args.expansions
    )
    stamp = ROWS.parent / "expansion.sha256"
    if ROWS.exists() and stamp.exists() and stamp.read_text().strip() != digest():
        sys.exit(f"{ROWS} was scored with another memvault/expansion.py; rerun with --fresh")
    stamp.write_text(digest() + "\n")

    convs, emb = dev_conversations()
    deadline = None if args.budget_minutes is None else time.monotonic() + 60 * args.budget_minutes
    with server(args.base_url) as url, tempfile.TemporaryDirectory(dir=WORK) as tmp:
        cfg = {
            "path": os.path.join(tmp, "x.db"),
            "llm": {
                "provider": "openai",
                "config": {
                    "model": "qwen",
                    "openai_base_url": url,
                    "api_key": "local",
                    "temperature": 0,
                    "max_tokens": 400,
                },
            },
        }
        with Memory(cfg, embedder=emb) as memory:
            maps = ingest(memory, convs, timestamps=True)
            emb.save()
            with ROWS.open("a") as sink:
                for scope, _items, questions, _info in convs:
                    for q in questions:
                        if q.category not in args.categories or (scope, q.question) in done:
                            continue
                        if deadline is not None and time.monotonic() > deadline:
                            print("budget reached; rerun to resume")
                            break
                        case = Case(scope, q.category, q.question, q.evidence)
                        t = time.perf_counter()
                        plain = memory.search(q.question, user_id=scope, top_k=20)["results"]
                        plain_ms = (time.perf_counter() - t) * 1000
                        before = memory.stats()["llm_usage"]
                        t = time.perf_counter()
                        res = memory.search(
                            q.question,
                            user_id=scope,
                            top_k=20,
                            retrieval={"expansions": args.expansions},
                        )
                        exp_ms = (time.perf_counter() - t) * 1000
                        after = memory.stats()["llm_usage"]
                        items = [
                            [r["metadata"]["item_id"] for r in x] for x in (plain, res["results"])
                        ]
                        row = {
                            "conv": scope,
                            "question": q.question,
                            "category": q.category,
                            "expansions_asked": args.expansions,
                            "expansions": res["expansions"],
                            "plain": recalls(items[0], case, maps[scope]),
                            "expanded": recalls(items[1], case, maps[scope]),
                            "plain_ms": round(plain_ms, 2),
                            "expanded_ms": round(exp_ms, 1),
                            "prompt_tokens": after["prompt_tokens"] - before["prompt_tokens"],
                            "completion_tokens": after["completion_tokens"]
                            - before["completion_tokens"],
                        }
                        sink.write(json.dumps(row) + "\n")
                        sink.flush()
                        done[(scope, q.question)] = row
                    else:
                        continue
                    break
    rows = [r for r in done.values() if r["category"] in args.categories]
    total = sum(1 for c in convs for q in c[2] if q.category in args.categories)
    out = {
        "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "git": git_rev(),
        "expansions": args.expansions,
        "questions_scored": len(rows),
        "questions_total": total,
        "default": summarise(rows, "plain"),
        "expanded": summarise(rows, "expanded"),
        "no_statements": sum(1 for r in rows if not r["expansions"]),
        "plain_ms_p50": round(statistics.median(r["plain_ms"] for r in rows), 2),
        "expanded_ms_p50": round(statistics.median(r["expanded_ms"] for r in rows), 1),
        "expanded_ms_p95": round(float(np.percentile([r["expanded_ms"] for r in rows], 95)), 1),
        "prompt_tokens_mean": round(statistics.mean(r["prompt_tokens"] for r in rows), 1),
        "completion_tokens_mean": round(statistics.mean(r["completion_tokens"] for r in rows), 1),
        "machine": machine_facts(),
        "examples": [{"question": r["question"], "statements": r["expansions"]} for r in rows[:3]],
    }
    print(json.dumps({k: out[k] for k in ("default", "expanded")}, indent=1))
    if sorted(args.categories) != sorted(CATS) or len(rows) < total:
        partial = OUT.with_name("locomo_expansion-partial.json")
        partial.write_text(json.dumps({**out, "categories": args.categories}, indent=1) + "\n")
        print(f"partial ({len(rows)} of {total} questions): {partial}; the doc is left as it was")
        return
    OUT.write_text(json.dumps(out, indent=1) + "\n")
    write_doc_section("locomo_expansion", TITLE, render(out))


TITLE = "LoCoMo recall with opt-in query expansion (real local model)"


def render(out: dict[str, Any]) -> str:
    lines = [
        f"Measured {out['measured']} by `benchmarks/bench_locomo_expansion.py` (memvault git "
        f"{out['git']}): {out['questions_scored']} of the {out['questions_total']} questions "
        "of LoCoMo conversations 26, 30, 41, each searched in the same run with the defaults "
        f'and with `retrieval={{"expansions": {out["expansions"]}}}` (Qwen2.5-Coder-1.5B-'
        "Instruct Q4_K_M on llama.cpp, 2 CPU cores, writes the statements; the query and each "
        "statement are searched and the rankings fused by reciprocal rank). Nothing was tuned "
        "on these conversations (prompt, N and fusion fixed before scoring): every figure is "
        "held out. Raw data: `benchmarks/results/locomo_expansion.json`.",
        "",
        "| search | category | n | R@5 | R@10 | R@20 |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for name, key in (("default", "default"), (f"+ {out['expansions']} expansions", "expanded")):
        for g, label in [("overall", "all")] + [(f"cat{c}", f"{c} {n}") for c, n in CATS.items()]:
            s = out[key][g]
            lines.append(
                f"| {name} | {label} | {s['n']} | {s['R@5']} | {s['R@10']} | {s['R@20']} |"
            )
    lines += [
        "",
        f"Latency through `Memory.search` (query embedding and the LLM call included): p50 "
        f"{out['expanded_ms_p50']} ms, p95 {out['expanded_ms_p95']} ms with expansion, against "
        f"p50 {out['plain_ms_p50']} ms without, in the same run. LLM tokens per search: "
        f"{out['prompt_tokens_mean']} prompt, {out['completion_tokens_mean']} completion. "
        f"Answers with no usable statement (the plain ranking then): {out['no_statements']}.",
        "",
        "Examples of statements the model wrote:",
        "",
    ]
    for ex in out["examples"]:
        lines.append(f"- *{ex['question']}* → " + "; ".join(f"“{s}”" for s in ex["statements"]))
    mf = out["machine"]
    lines += [
        "",
        f"Machine: {mf['nproc']} cores ({mf['cpu_model']}), Python {mf['driver_python']}.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
