"""examples/server_agent.py runs offline: server, keys, an agent over RemoteMemory, refusals
(another user's key, a rate-limited key)."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.service.harness import REPO, Server


def test_server_agent_example(server: Server) -> None:  # the fixture ensures a server venv
    out = subprocess.run(
        [sys.executable, str(REPO / "examples/server_agent.py")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "agent: My sister Chloe visits every June" in out.stdout
    assert "alice's memories on the server: 2" in out.stdout
    assert "bob asks for alice's memories: refused" in out.stdout
    assert "bob reads alice's memory by id: None" in out.stdout
    assert "dashboard call 2: alice has 2 memories" in out.stdout
    assert re.search(r"dashboard call 3: refused, retry in (29|30) s", out.stdout)
