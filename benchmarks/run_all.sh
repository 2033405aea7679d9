#!/usr/bin/env bash
# Run every memvault benchmark and refresh benchmarks/results/ and docs/benchmarks.md.
#
#   bash benchmarks/run_all.sh              # from anywhere; about 45-60 min on 2 busy cores
#   ROUNDS=3 bash benchmarks/run_all.sh     # fewer rounds of the mem0 comparison (default 5)
#   SKIP_BASELINES=1 bash benchmarks/run_all.sh   # recall: memvault only, cite the README baselines
#
# Needs: the project's .venv (make setup) and ../shared (the LoCoMo harness and data).
# Creates benchmarks/.work/mem0-venv and benchmarks/.work/bench-venv if missing (gitignored).
# Every script starts its own child processes and stops them when it ends or is interrupted.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=.venv/bin/python
[[ -x $PY ]] || { echo "!! no .venv: run 'make setup' first" >&2; exit 1; }
ROUNDS="${ROUNDS:-5}"

echo "==> [1/6] mem0 venv"
bash benchmarks/setup_mem0_venv.sh

echo "==> [2/6] memvault vs mem0 2.2.1 (same embedder), $ROUNDS rounds, stores on the default temp dir"
$PY benchmarks/bench_vs_mem0.py --rounds "$ROUNDS"

if [[ -d /dev/shm && -w /dev/shm ]]; then
  echo "==> [3/6] the same with stores on tmpfs (/dev/shm): disk syncs cost nothing there"
  $PY benchmarks/bench_vs_mem0.py --rounds 3 --store-dir /dev/shm \
    --out benchmarks/results/vs_mem0_tmpfs.json --section vs_mem0_tmpfs \
    --section-title "memvault vs mem0 2.2.1, stores on tmpfs (no disk-sync cost)"
fi

echo "==> [4/6] where the time goes (cProfile + strace)"
$PY benchmarks/profile_vs_mem0.py --strace

echo "==> [5/6] embedder cost per text vs batch size"
$PY benchmarks/bench_embedder_batching.py

echo "==> [6/6] LoCoMo retrieval recall (harness)"
if [[ -n "${SKIP_BASELINES:-}" ]]; then
  $PY benchmarks/bench_locomo_recall.py --no-baselines
else
  bash benchmarks/setup_bench_venv.sh || echo "!! bench venv failed: recall baselines will be cited, not re-run"
  $PY benchmarks/bench_locomo_recall.py
fi
echo "==> [7/8] LLM prompt tokens per add vs mem0 2.2.1"
$PY benchmarks/bench_prompt_tokens.py

echo "==> [8/8] cold-path ingest throughput (local fake LLM, 300 ms, concurrency 32)"
$PY benchmarks/bench_ingest.py --rows 600 --embedder local
$PY benchmarks/bench_ingest.py --rows 600 --embedder fast || echo "!! the fast embedder needs: pip install 'memvault[fast]'"
echo "(bench_prompt_tokens / bench_ingest write JSON only; their docs/benchmarks.md sections are edited by hand from it)"
echo "==> done: benchmarks/results/*.json, docs/benchmarks.md"
