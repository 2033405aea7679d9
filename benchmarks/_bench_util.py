"""Helpers shared by the benchmark scripts: repo paths, the LoCoMo loader, stats, doc sections."""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH_DIR)
#: ../shared next to the repo (the harness and the data); override with MEMVAULT_SHARED.
SHARED = os.environ.get("MEMVAULT_SHARED") or os.path.join(ROOT, "..", "shared")
HARNESS = os.path.join(SHARED, "bench", "locomo_retrieval.py")
LOCOMO_DIR = os.path.join(SHARED, "data", "locomo")
WORK = os.path.join(BENCH_DIR, ".work")
RESULTS = os.path.join(BENCH_DIR, "results")
DOC = os.path.join(ROOT, "docs", "benchmarks.md")
MEM0_PYTHON = os.path.join(WORK, "mem0-venv", "bin", "python")
BENCH_PYTHON = os.path.join(WORK, "bench-venv", "bin", "python")


def rel(path: str) -> str:
    """A path relative to the repo root, for anything written to committed files."""
    return os.path.relpath(path, ROOT)


def load_harness() -> ModuleType:
    """Import ../shared/bench/locomo_retrieval.py by path (it is not a package)."""
    if "locomo_retrieval" in sys.modules:
        return sys.modules["locomo_retrieval"]
    if not os.path.isfile(HARNESS):
        raise SystemExit(f"LoCoMo harness not found at {rel(HARNESS)} (set MEMVAULT_SHARED)")
    spec = importlib.util.spec_from_file_location("locomo_retrieval", HARNESS)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules["locomo_retrieval"] = mod
    spec.loader.exec_module(mod)
    return mod


def locomo_files() -> list[str]:
    files = sorted(
        os.path.join(LOCOMO_DIR, f) for f in os.listdir(LOCOMO_DIR) if f.endswith(".json")
    )
    if not files:
        raise SystemExit(f"no LoCoMo conversations in {rel(LOCOMO_DIR)}")
    return files


def resume_rows(
    path: Path, *, fresh: bool, keep: Callable[[dict[str, Any]], bool]
) -> dict[tuple[str, str], dict[str, Any]]:
    """The rows a resumable LoCoMo run already scored (``rows.jsonl``, one JSON per line),
    by (conversation, question); ``fresh`` deletes them first. ``keep`` picks the rows made
    with the same settings."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if fresh and path.exists():
        path.unlink()
    done: dict[tuple[str, str], dict[str, Any]] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            row = json.loads(line)
            if keep(row):
                done[(row["conv"], row["question"])] = row
    return done


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def spread(xs: list[float]) -> dict[str, float]:
    """Median, min, max and (max-min)/median of repeated measurements."""
    if not xs:
        return {"median": float("nan"), "min": float("nan"), "max": float("nan"), "n": 0}
    m = statistics.median(xs)
    return {
        "median": m,
        "min": min(xs),
        "max": max(xs),
        "n": len(xs),
        "range_pct": 100.0 * (max(xs) - min(xs)) / m if m else float("nan"),
        "values": xs,
    }


def machine_facts() -> dict[str, Any]:
    cpu_model = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu_model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        # GNU nproc honours OMP_NUM_THREADS, which benchmarks set to pin threads: drop it.
        env = {
            k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_THREAD_LIMIT")
        }
        nproc = int(
            subprocess.run(["nproc"], capture_output=True, text=True, env=env).stdout.strip()
        )
    except (OSError, ValueError):
        nproc = os.cpu_count() or 0
    mem_gib = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal"):
                    mem_gib = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return {
        "nproc": nproc,
        "cpu_model": cpu_model,
        "mem_gib": mem_gib,
        "platform": platform.platform(),
        "driver_python": sys.version.split()[0],
    }


def git_rev() -> str:
    try:
        out = subprocess.run(
            ["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        dirty = subprocess.run(
            ["git", "-C", ROOT, "status", "--porcelain", "--", "core"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        return out.stdout.strip() + ("+dirty(core)" if dirty else "")
    except OSError:
        return "unknown"


DOC_HEADER = """# Benchmarks

Every figure here is written by a script in `benchmarks/` (see `benchmarks/README.md`).
Speed claims are ratios against a baseline measured in the same run on the same machine.
"""


def write_doc_section(key: str, title: str, body: str, order: list[str] | None = None) -> None:
    """Replace (or append) the section between <!-- key:begin --> and <!-- key:end -->.

    Text outside the markers is left alone, so sections written by different scripts
    (and hand-written notes) live side by side.
    """
    begin, end = f"<!-- {key}:begin -->", f"<!-- {key}:end -->"
    block = f"{begin}\n## {title}\n\n{body.rstrip()}\n{end}"
    if os.path.exists(DOC):
        with open(DOC) as f:
            text = f.read()
    else:
        text = DOC_HEADER
    if begin in text and end in text:
        pre, rest = text.split(begin, 1)
        _, post = rest.split(end, 1)
        text = pre + block + post
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    os.makedirs(os.path.dirname(DOC), exist_ok=True)
    with open(DOC, "w") as f:
        f.write(text if text.endswith("\n") else text + "\n")
