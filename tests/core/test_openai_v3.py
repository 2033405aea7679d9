"""The core's LLM and embedding clients also work with openai 3.x.

The workspace venv holds openai 2.x (CrewAI needs <3). This test installs the
newest openai 3 wheel into a private directory (network: PyPI only), puts it first
on sys.path of a subprocess, and runs a real LLM add, an ingest, a streamed add and
ingest cut by ``stop_repeats`` (openai 3 wraps stream errors differently) and a remote
embedder against the local fake server.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.support.fake_openai import FakeOpenAI, Reply

REPO = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent("""
    import json, sys
    import openai
    assert openai.__version__.startswith("3."), openai.__version__
    from memvault import Memory
    base, path = sys.argv[1], sys.argv[2]
    llm = {"provider": "openai", "config": {"model": "gpt-4o-mini", "base_url": base,
           "api_key": "sk-test", "max_retries": 2}}
    emb = {"provider": "openai", "config": {"model": "text-embedding-3-small", "base_url": base,
           "api_key": "sk-test", "dims": 32}}
    with Memory({"path": path, "llm": llm, "embedder": emb}) as m:
        r = m.add("I live in Oslo", user_id="u", timestamp="2024-01-01")
        rep = m.ingest([{"user_id": "v", "text": "I like skiing"}], concurrency=2)
        llm["config"]["api"] = "responses"
    with Memory({"path": path, "llm": llm, "embedder": emb}) as m:
        r2 = m.add("I have a dog", user_id="w")
        hits = m.search("where does the user live", user_id="u")["results"]
        llm["config"].update(api="chat", stop_repeats=True)
    with Memory({"path": path, "llm": llm, "embedder": emb}) as m:
        r3 = m.add("I have a parrot", user_id="x")
        rep3 = m.ingest([{"user_id": "y", "text": "I have a parrot"}])
    print(json.dumps({"version": openai.__version__, "add": r, "ingest": rep.done,
                      "responses": r2["results"], "top": hits[0]["memory"],
                      "looped": r3, "looped_ingest": rep3.estimated_llm_calls}))
""")


@pytest.fixture(scope="module")
def openai3(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("openai3")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--target",
            str(target),
            "openai>=3,<4",
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return target


def test_llm_and_embedder_with_openai_3(openai3: Path, tmp_path: Path) -> None:
    def facts(req: dict) -> dict | Reply:
        text = req["messages"][-1]["content"] if "messages" in req else req["input"]
        said = text.split("NEW MESSAGES:\n", 1)[1].split(": ", 1)[1]
        if "parrot" in said:  # a looping answer: streamed and cut (stop_repeats)
            return Reply.looping(["User has a parrot"], stream_delay=0.001)
        return {"memories": [{"event": "ADD", "text": "User: " + said}]}

    with FakeOpenAI(chat_handler=facts, responses_handler=facts, embedding_dim=32) as srv:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(openai3), str(REPO)])}
        out = subprocess.run(
            [sys.executable, "-c", SCRIPT, srv.base_url, str(tmp_path / "m.db")],
            capture_output=True,
            text=True,
            timeout=300,
            env=env,
            cwd=REPO,
        )
        assert out.returncode == 0, out.stderr[-3000:]
        res = json.loads(out.stdout.strip().splitlines()[-1])
        assert res["version"].startswith("3.")
        assert res["add"]["results"][0]["memory"] == "User: I live in Oslo"
        assert res["add"]["usage"]["calls"] == 1 and res["ingest"] == 1
        assert res["responses"][0]["memory"] == "User: I have a dog"
        assert res["top"] == "User: I live in Oslo"
        assert srv.count("responses") == 1 and srv.count("embeddings") >= 3
        looped = res["looped"]["results"]
        assert [x["memory"] for x in looped if x["event"] == "ADD"] == ["User has a parrot"]
        assert res["looped"]["usage"]["estimated_calls"] == 1 and res["looped_ingest"] == 1
        assert len(srv.streams) == 2
        assert all(s.done.wait(5) and s.closed_early for s in srv.streams)
