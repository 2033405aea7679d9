"""memvault as a service: start ``memvault serve``, make tenant keys, and let an agent use it.

Runs offline in a few seconds:

    python examples/server_agent.py

1. starts ``memvault serve`` on a free 127.0.0.1 port over a temporary store (from the
   server venv, ``.venv-server``, which ``make setup`` builds; ``--server-python`` picks
   another interpreter that has ``memvault[server]``);
2. creates API keys with ``memvault keys create``: one for user alice of tenant acme,
   one for bob of the same tenant;
3. an agent, written against LangGraph's store interface (``MemvaultStore``) exactly as it
   would be against a local store, remembers what alice says and recalls it — through
   ``RemoteMemory``, over HTTP;
4. bob's key asks for alice's memories and gets a 403; alice's memory ids are 404 to him;
5. a read-only dashboard key for alice, limited to 2 calls per minute, is refused its third
   call (429, ``RateLimitError`` with the seconds to wait).

Whose memory is touched comes from the key, never from what the agent passes.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

from memvault import RateLimitError
from memvault.remote import PermissionDenied, RemoteMemory
from memvault_langgraph import MemvaultStore

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def memvault(python: str, store: Path, *args: str) -> str:
    cmd = [python, "-m", "memvault.cli", "--path", str(store), *args]
    return subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=REPO).stdout.strip()


def agent_turn(store: MemvaultStore, user: str, message: str) -> str:
    """A tiny agent: remembers statements, answers questions from memory."""
    namespace = ("memories", user)
    if message.endswith("?"):
        hits = store.search(namespace, query=message, limit=1)
        return hits[0].value["content"] if hits else "I don't know yet."
    store.put(namespace, f"m{int(time.time() * 1e6)}", {"content": message})
    return "Noted."


def main() -> None:
    default = os.environ.get("MEMVAULT_SERVER_PYTHON") or str(REPO / ".venv-server/bin/python")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server-python", default=default, help="Python with memvault[server]")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "service.db"
        alice_key = memvault(args.server_python, store, "keys", "create", "acme", "--user", "alice")
        bob_key = memvault(args.server_python, store, "keys", "create", "acme", "--user", "bob")
        dashboard_key = memvault(
            args.server_python,
            store,
            *("keys", "create", "acme", "--user", "alice", "--read-only", "--rate-limit", "2"),
        )
        port = free_port()
        server = subprocess.Popen(
            [
                args.server_python,
                "-m",
                "memvault.cli",
                "--path",
                str(store),
                "serve",
                "--port",
                str(port),
            ],
            cwd=REPO,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            print(f"server: {url} (OpenAPI docs at {url}/docs, MCP at {url}/mcp)")

            with RemoteMemory(url, alice_key) as memory, MemvaultStore(memory=memory) as store_:
                for said in (
                    "I'm vegetarian and I live in Lyon",
                    "My sister Chloe visits every June",
                    "When does Chloe visit?",
                ):
                    print(f"alice: {said}\n agent: {agent_turn(store_, 'alice', said)}")
                alice_ids = [r["id"] for r in memory.get_all(user_id="alice")["results"]]
                print(f"alice's memories on the server: {len(alice_ids)}")

            with RemoteMemory(url, bob_key) as bob:
                try:
                    bob.search("where does alice live", user_id="alice")
                except PermissionDenied as e:
                    print(f"bob asks for alice's memories: refused ({e})")
                print(f"bob reads alice's memory by id: {bob.get(alice_ids[0])}")
                print(f"bob's own memories: {bob.get_all()['results']}")

            with RemoteMemory(url, dashboard_key) as dashboard:
                try:
                    for call in range(1, 4):
                        n = dashboard.count(user_id="alice")
                        print(f"dashboard call {call}: alice has {n} memories")
                except RateLimitError as e:
                    print(f"dashboard call {call}: refused, retry in {e.retry_after:.0f} s")
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
