"""The runnable examples are part of the product: each one runs here, offline."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_example(name: str, *args: str) -> str:
    env = {**os.environ, "COLUMNS": "120"}
    out = subprocess.run(
        [sys.executable, str(REPO / "examples" / name), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def test_demo_on_the_bundled_sample() -> None:
    out = run_example("demo.py", "--file", str(REPO / "examples/data/sample_conversation.json"))
    assert "ingested 6 sessions (11 + 11 memories)" in out
    assert "researching adoption agencies" in out  # the answer to "What did Nadia research?"
    assert "returned 0 of nadia's" in out


def test_write_path_example_offline() -> None:
    out = run_example("write_path.py")
    assert "UPDATE 'Ana lives in Lisbon'" in out
    assert "as of 2026-04-01: Ana lives in Porto" in out
    assert "SUPERSEDE  Ana lives in Porto" in out
    assert "'Do I have a pet?' -> We adopted a grey cat called Miso" in out


def test_query_expansion_example_offline() -> None:
    out = run_example("query_expansion.py")
    plain, expanded = out.split("the model's statements:")
    books = "collecting classic children's books"
    assert books not in plain  # the question's words lead elsewhere
    assert books in expanded.split("with expansion")[1]
    assert "'calls': 1" in out


def test_langgraph_restart_example_keeps_both_memories_across_processes() -> None:
    out = run_example("langgraph_restart.py")
    assert "run 1: paused, asking: 'Book the flight to Lisbon?'" in out
    assert "run 2: trip-1 is waiting at ('approve',)" in out
    assert "run 2: trip-1 -> booked Lisbon with a window seat" in out
    assert "run 2: trip-2 (a new thread) -> booked Oslo with a window seat" in out
    assert "long-term memories of alice: ['prefers a window seat']" in out


def test_retrieval_options_example_offline() -> None:
    out = run_example("retrieval_options.py")
    assert "'Where did we go hiking on 8 May, 2023?' -> We went hiking in the hills" in out
    assert "default: runs ['s1', 's1', 's1']" in out
    penalised = next(line for line in out.splitlines() if "thread_penalty=0.3" in line)
    assert "'s2'" in penalised or "'s3'" in penalised
    # `make setup` installs the e5 extra: a German memory answers an English question.
    assert "e5: 'Do I have a pet?' -> Letztes Jahr haben wir einen Hund" in out
