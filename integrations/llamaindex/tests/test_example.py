"""examples/llamaindex_agent.py: remembers across sessions, offline (in-process and as a script)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from memvault.embedding import LocalEmbedder

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:inspect")

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "examples" / "llamaindex_agent.py"


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("llamaindex_agent_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_example_recalls_a_fact_from_an_earlier_session(
    tmp_path: Path, embedder: LocalEmbedder
) -> None:
    example = load_example()
    out = await example.main(tmp_path / "sam.db", embedder=embedder)
    assert out["session_1"] == "Thanks, Sam. I will keep that in mind."
    # Session 2 had a fresh chat history: the allergy can only have come from memvault.
    assert "Hi! I'm Sam, and I'm allergic to peanuts." in out["recalled"]
    assert out["session_2"] == (
        "You told me before that you are allergic to peanuts, so: apple slices, rice crackers."
    )


def test_example_runs_as_a_script(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "MEMVAULT_HOME": str(tmp_path / "home"),
        "PYTHONPATH": str(ROOT),
        # No network: any attempt to reach OpenAI would fail fast, not hang.
        "OPENAI_API_KEY": "sk-not-a-key",
        "OPENAI_BASE_URL": "http://127.0.0.1:9",
    }
    proc = subprocess.run(
        [sys.executable, str(EXAMPLE), "--store", str(tmp_path / "sam.db")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "session 2 recalled from memvault:" in proc.stdout
    assert "  - Hi! I'm Sam, and I'm allergic to peanuts." in proc.stdout
    assert "apple slices, rice crackers" in proc.stdout
    assert (tmp_path / "sam.db").exists()
