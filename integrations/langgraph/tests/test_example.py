"""examples/langgraph_agent.py: learned in one thread, used in another, visible in the CLI."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

from memvault.embedding import LocalEmbedder

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "langgraph_agent.py"


def _load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("langgraph_agent_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # pydantic resolves the model's annotations through it
    spec.loader.exec_module(module)
    return module


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from memvault.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env={**os.environ, "COLUMNS": "200"},
    )


def test_example_learns_in_one_thread_and_uses_it_in_another(
    tmp_path: Path, embedder: LocalEmbedder
) -> None:
    out = _load_example().run(tmp_path / "demo.db", embedder=embedder)
    assert out["thread1"] == "Noted: green tea rather than coffee."
    # thread 2 starts empty (question + answer only): the preference came from memvault
    assert out["thread2_messages"] == 2
    assert "green tea" in out["thread2"] and "I don't know" not in out["thread2"]
    assert "Alice prefers green tea over coffee" in out["memories"]


def test_example_script_and_cli(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    run = subprocess.run(
        [sys.executable, str(EXAMPLE), "--path", str(db)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    assert "thread t2 > From what I remember" in run.stdout
    found = json.loads(
        _cli(
            "--path", str(db), "--json", "search", "what does alice drink", "--user", "alice"
        ).stdout
    )
    results = found["results"] if isinstance(found, dict) else found
    assert results[0]["memory"] == "Alice prefers green tea over coffee"
    assert results[0]["agent_id"] is None  # written by the remember tool: alice's own scope
