"""Cold-path throughput and LLM cost per add, against a local fake LLM with real latency.

Measures (same run, same machine):
- ingest rows/s through the real openai client against the test suite's
  OpenAI-compatible server (run as its own process) answering after --latency-ms,
  at --concurrency, one LoCoMo turn per row (the issue's target: >= 80 rows/s at
  300 ms and concurrency 32 on 2 cores);
- LLM calls per add (target 1) and prompt tokens per add (measured by the server).

    .venv/bin/python benchmarks/bench_ingest.py [--rows 600] [--latency-ms 300] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
LOCOMO = REPO.parent / "shared" / "data" / "locomo"


def locomo_turn_rows(limit: int) -> list[dict]:
    from memvault.ingest_sources import read_rows

    rows = []
    for f in sorted(LOCOMO.glob("*.json")):
        for session in read_rows(f):
            for msg in session["messages"]:
                rows.append(
                    {
                        "user_id": session["user_id"],
                        "run_id": session["run_id"],
                        "messages": [msg],
                        "timestamp": session["timestamp"],
                    }
                )
    return rows[:limit]


def one_round(args: argparse.Namespace) -> dict:
    """One fresh store and one fresh fake server: warm-up rows, then the timed ingest."""
    children0 = resource.getrusage(resource.RUSAGE_CHILDREN)

    from memvault import Memory

    work = Path(tempfile.mkdtemp(prefix="memvault-bench-"))
    port_file = work / "port"
    script = REPO / "benchmarks" / "fake_extractor.py"
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.support.fake_openai",
            "--port-file",
            str(port_file),
            "--latency-ms",
            str(args.latency_ms),
            "--script",
            str(script),
        ],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            if port_file.exists():
                break
            time.sleep(0.05)
        base = f"http://127.0.0.1:{port_file.read_text().strip()}"
        rows = locomo_turn_rows(args.rows)
        cfg = {
            "path": str(work / "m.db"),
            "embedder": {"provider": args.embedder},
            **({"embedding_mode": args.embedding_mode} if args.embedding_mode else {}),
            "llm": {
                "provider": "openai",
                "config": {
                    "model": "gpt-4o-mini",
                    "base_url": base + "/v1",
                    "api_key": "sk-bench",
                    "max_retries": 5,
                },
            },
        }
        with Memory(cfg) as m:
            m.search("warm up", user_id="warm")  # load the embedder before timing
            # Warm-up rows (untimed, their own user): the first LLM call imports the openai
            # package and builds its response models (~2 s, once per process).
            m.ingest(
                [{**r, "user_id": f"warmup-{r['user_id']}"} for r in rows[: args.warmup_rows]],
                concurrency=args.concurrency,
            )
            warm = json.loads(urllib.request.urlopen(base + "/_fake/stats").read())
            calls0 = warm["counts"].get("chat.completions", 0)
            cpu0 = time.process_time()
            t0 = time.perf_counter()
            rep = m.ingest(rows, concurrency=args.concurrency)
            secs = time.perf_counter() - t0
            # With background indexing (the default) some facts' vectors are still queued:
            # the job is finished when they exist too.
            m.flush()
            indexed_secs = time.perf_counter() - t0
            cpu_ms_per_row = (time.process_time() - cpu0) * 1000 / max(rep.done, 1)
        stats = json.loads(urllib.request.urlopen(base + "/_fake/stats").read())
        calls = stats["counts"].get("chat.completions", 0) - calls0
        result = {
            "rows": len(rows),
            "done": rep.done,
            "failed": rep.failed,
            "seconds": round(secs, 2),
            "rows_per_second": round(rep.done / secs, 1),
            "rows_per_second_indexed": round(rep.done / indexed_secs, 1),
            "embedding_mode": m.config.embedding_mode,
            "latency_ms": args.latency_ms,
            "concurrency": args.concurrency,
            "warmup_rows": args.warmup_rows,
            "embedder": args.embedder,
            "llm_calls": calls,
            "llm_calls_per_add": round(calls / max(rep.done, 1), 3),
            "prompt_tokens_per_add": round(rep.prompt_tokens / max(rep.done, 1), 1),
            # memvault's own CPU per row (the fake LLM server runs in another process on
            # the same 2 cores and takes its share of them too).
            "memvault_cpu_ms_per_row": round(cpu_ms_per_row, 1),
            "completion_tokens_per_add": round(rep.completion_tokens / max(rep.done, 1), 1),
            "machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count()},
        }
    finally:
        server.terminate()
        server.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    result["server_cpu_s"] = round(
        children.ru_utime + children.ru_stime - children0.ru_utime - children0.ru_stime, 1
    )
    return result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=600)
    ap.add_argument("--latency-ms", type=int, default=300)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--embedder", default="local", help="embedder provider (local, fast)")
    ap.add_argument("--warmup-rows", type=int, default=32, help="untimed rows first")
    ap.add_argument("--embedding-mode", default=None, help="sync|background (default: memvault's)")
    ap.add_argument("--rounds", type=int, default=3, help="fresh store + server each; medians")
    ap.add_argument(
        "--out", default=None, help="default: benchmarks/results/ingest_<embedder>.json"
    )
    args = ap.parse_args()
    rounds = []
    for i in range(args.rounds):
        r = one_round(args)
        print(f"round {i + 1}/{args.rounds}: {r['rows_per_second']} rows/s", flush=True)
        rounds.append(r)
    result = dict(rounds[0])
    for key in (
        "seconds",
        "rows_per_second",
        "rows_per_second_indexed",
        "memvault_cpu_ms_per_row",
        "server_cpu_s",
    ):
        values = [r[key] for r in rounds]
        result[key] = statistics.median(values)
        result[f"{key}_rounds"] = values
    result["rounds"] = args.rounds
    out = Path(args.out or REPO / "benchmarks" / "results" / f"ingest_{args.embedder}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
