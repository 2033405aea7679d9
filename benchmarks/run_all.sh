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

echo "==> [1/8] mem0 venv"
bash benchmarks/setup_mem0_venv.sh

echo "==> [2/8] memvault vs mem0 2.2.1 (same embedder), $ROUNDS rounds, memvault's defaults"
$PY benchmarks/bench_vs_mem0.py --rounds "$ROUNDS"

echo "==> [3/8] the same with memvault embedding every add inline (embedding_mode=sync)"
MEMVAULT_BENCH_EMBEDDING_MODE=sync $PY benchmarks/bench_vs_mem0.py --rounds 3 \
  --out benchmarks/results/vs_mem0_sync.json --section vs_mem0_sync \
  --section-title "memvault (embedding_mode=sync) vs mem0 2.2.1"

echo "==> [3b/8] search and adds in a store shared with 30 and 90 other users"
$PY benchmarks/bench_vs_mem0.py --rounds 2 --phases raw,search --other-users 10 \
  --out benchmarks/results/vs_mem0_users_10.json --section vs_mem0_users_10 \
  --section-title "memvault vs mem0 2.2.1 in a store shared with 30 other users"
$PY benchmarks/bench_vs_mem0.py --rounds 1 --phases raw,search --other-users 30 \
  --out benchmarks/results/vs_mem0_users_30.json --section vs_mem0_users_30 \
  --section-title "memvault vs mem0 2.2.1 in a store shared with 90 other users"

echo "==> [4/8] where the time goes (cProfile + strace)"
$PY benchmarks/profile_vs_mem0.py --strace

echo "==> [5/8] embedder cost per text vs batch size"
$PY benchmarks/bench_embedder_batching.py

echo "==> [6/8] LoCoMo retrieval recall (harness)"
if [[ -n "${SKIP_BASELINES:-}" ]]; then
  $PY benchmarks/bench_locomo_recall.py --no-baselines
else
  bash benchmarks/setup_bench_venv.sh || echo "!! bench venv failed: recall baselines will be cited, not re-run"
  $PY benchmarks/bench_locomo_recall.py
fi
echo "==> [7/8] LLM prompt tokens per add vs mem0 2.2.1"
$PY benchmarks/bench_prompt_tokens.py

echo "==> [8/8] cold-path ingest throughput (local fake LLM, 300 ms, concurrency 32)"
$PY benchmarks/bench_ingest.py --rows 600 --embedder local --rounds 3
$PY benchmarks/bench_ingest.py --rows 600 --embedder fast --rounds 3 || echo "!! the fast embedder needs: pip install 'memvault[fast]'"
echo "(bench_prompt_tokens / bench_ingest write JSON only; their docs/benchmarks.md sections are edited by hand from it)"
echo "==> done: benchmarks/results/*.json, docs/benchmarks.md"
