"""examples/crewai_crew.py: learned in one crew session, used in the next, offline."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

#: crewai 1.15 trips over its own deprecated Agent/Crew attributes (not ours to fix).
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "crewai_crew.py"


def _load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("crewai_crew_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # pydantic resolves the LLM's annotations through it
    spec.loader.exec_module(module)
    return module


def test_example_remembers_across_sessions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # In-process, so the conftest's socket guard proves the crew never leaves the machine.
    example = _load_example()
    home = tmp_path / "memvault-home"
    monkeypatch.setenv("MEMVAULT_HOME", str(home))  # restored after the test
    assert example.main(["--home", str(home)]) == 0
    out = capsys.readouterr().out
    assert "Noted: Remembered: Dana prefers a window seat on flights." in out
    assert "Booked Lisbon for Dana with a window seat" in out
    assert "crewai Memory put the preference into the task prompt: True" in out
    assert "[crew memory /user/dana/preferences]" in out
    assert "[remember tool]" in out
    assert out.rstrip().endswith("OK")

    # The memory is in the store file, for memvault's CLI as for any app.
    cli = subprocess.run(
        [
            sys.executable,
            "-c",
            "from memvault.cli import main; main()",
            "search",
            "window seat",
            "--user",
            "dana",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env={**os.environ, "MEMVAULT_HOME": str(home), "COLUMNS": "200"},
    )
    assert "Dana prefers a window seat on flights." in cli.stdout
