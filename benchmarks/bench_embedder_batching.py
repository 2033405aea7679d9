#!/usr/bin/env python3
"""Cost of memvault's LocalEmbedder per text vs batch size, on LoCoMo sessions.

    .venv/bin/python benchmarks/bench_embedder_batching.py [--repeats 3]

Why: bulk ingest (one add per session) embeds a whole session in one call, and
LocalEmbedder pads every batch to its longest text. This measures, on the real session
texts and with 1 onnxruntime thread, the process CPU time per text for:
  - one text per call (what one add per turn does),
  - one call per session with batch_size 64, 16, 8, 4 (LocalEmbedder sorts by length, then
    cuts batches of batch_size, so smaller batches pad less),
and the padding factor (token slots computed / real tokens). CPU time, not wall time, so the
other jobs on a shared machine matter little; the median over --repeats is reported.

Writes benchmarks/results/embedder_batching.json and a section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_v] = "1"
from _bench_util import (  # noqa: E402
    RESULTS,
    git_rev,
    load_harness,
    locomo_files,
    machine_facts,
    rel,
    write_doc_section,
)


def render(res: dict) -> str:
    mf, rows = res["machine"], res["rows"]
    base = rows[0]["cpu_ms_per_text"]
    L = [
        f"Measured {res['finished']} by `benchmarks/bench_embedder_batching.py` (git {res['git']}): "
        f"`LocalEmbedder` (all-MiniLM-L6-v2 int8 ONNX), {res['threads']} onnxruntime thread, the "
        f"{res['texts']} LoCoMo turns ({res['mean_tokens']:.1f} word pieces on average) in "
        f"their {res['sessions']} sessions; process CPU time per text, median of {res['repeats']} "
        f"repeats; {mf['nproc']} cores ({mf['cpu_model']}). Raw data: `{res['out_path']}`.\n",
        "| how the texts are embedded | CPU ms / text | vs one per call | padding factor |",
        "|---|---:|---:|---:|",
    ]
    for r in rows:
        L.append(
            f"| {r['config']} | {r['cpu_ms_per_text']:.2f} | {r['cpu_ms_per_text'] / base:.2f}x | "
            f"{r['pad_factor']:.2f} |"
        )
    L.append(
        "\nPadding factor = token positions computed / real tokens. Hence `LocalEmbedder`'s "
        "default batch_size=4 (texts sorted by length first): the background indexer and "
        "bulk adds hand it up to 16 texts per call, run as batches of 4 on its `workers` "
        "threads (CPU per text as in the last row; wall time about half on 2 cores)."
    )
    return "\n".join(L)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=os.path.join(RESULTS, "embedder_batching.json"))
    ap.add_argument("--no-doc", action="store_true")
    ap.add_argument(
        "--render-only",
        metavar="RESULT_JSON",
        default=None,
        help="re-render the doc section from a results file, without running",
    )
    args = ap.parse_args()
    if args.render_only:
        with open(args.render_only) as f:
            md = render(json.load(f))
        print(md)
        if not args.no_doc:
            write_doc_section("embedder_batching", "Embedder cost per text vs batch size", md)
        return

    from memvault.embedding import LocalEmbedder

    lr = load_harness()
    sessions: list[list[str]] = []
    for path in locomo_files():
        _, items, _, _ = lr.load_conversation(path, "turns")
        by: dict = {}
        for it in items:
            by.setdefault(it.metadata["session"], []).append(it.text)
        sessions += list(by.values())
    texts = [t for s in sessions for t in s]
    emb = LocalEmbedder(threads=args.threads)
    emb.load()
    emb.embed(texts[:16])
    tok = emb._tokenizer
    lengths = [[len(e.ids) for e in tok.encode_batch(s)] for s in sessions]
    real_tokens = sum(sum(ls) for ls in lengths)

    def pad_factor(bs: int) -> float:
        slots = 0
        for ls in lengths:
            srt = sorted(ls, reverse=True)
            for i in range(0, len(srt), bs):
                slots += srt[i] * len(srt[i : i + bs])
        return slots / real_tokens

    configs = [("one text per call", 1, True)] + [
        (f"one call per session, batch_size={b}", b, False) for b in (64, 16, 8, 4)
    ]
    rows = []
    for label, bs, single in configs:
        cpu_per_text = []
        wall_per_text = []
        for _ in range(args.repeats):
            emb.batch_size = bs
            c0, t0 = time.process_time(), time.perf_counter()
            if single:
                for t in texts:
                    emb.embed([t])
            else:
                for s in sessions:
                    emb.embed(s)
            cpu_per_text.append(1000 * (time.process_time() - c0) / len(texts))
            wall_per_text.append(1000 * (time.perf_counter() - t0) / len(texts))
        rows.append(
            {
                "config": label,
                "batch_size": bs,
                "single": single,
                "cpu_ms_per_text": statistics.median(cpu_per_text),
                "cpu_ms_per_text_values": cpu_per_text,
                "wall_ms_per_text": statistics.median(wall_per_text),
                "pad_factor": 1.0 if single else pad_factor(bs),
            }
        )
        print(
            f"{label:40s} cpu {rows[-1]['cpu_ms_per_text']:6.2f} ms/text  "
            f"wall {rows[-1]['wall_ms_per_text']:6.2f}  pad x{rows[-1]['pad_factor']:.2f}",
            flush=True,
        )
    mf = machine_facts()
    res = {
        "finished": time.strftime("%Y-%m-%d %H:%M %Z"),
        "git": git_rev(),
        "machine": mf,
        "threads": args.threads,
        "repeats": args.repeats,
        "texts": len(texts),
        "sessions": len(sessions),
        "mean_tokens": real_tokens / len(texts),
        "rows": rows,
        "out_path": rel(os.path.abspath(args.out)),
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(res, f, indent=1)
    md = render(res)
    print(md)
    if not args.no_doc:
        write_doc_section("embedder_batching", "Embedder cost per text vs batch size", md)


if __name__ == "__main__":
    main()
