"""Fixtures for the real-model tests: one local model server per session, a store per test.

These tests are slow (a 1.5B model on CPU answers in 5-15 s), so ``make test`` leaves them
out and ``make test-llm`` / ``make test-all`` (what CI runs) runs them: they are
*deselected* unless ``MEMVAULT_LLM_TESTS=1``, never skipped — once asked for, a missing
model or a server that does not start is an error.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from memvault import Memory
from memvault.embedding import LocalEmbedder
from tests.support.local_llm import llm_settings, local_llm_server

_HERE = Path(__file__).parent


def _enabled() -> bool:
    return os.environ.get("MEMVAULT_LLM_TESTS", "") not in ("", "0", "false")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _enabled():
        return
    mine = [i for i in items if _HERE in Path(str(i.path)).parents]
    if mine:
        config.hook.pytest_deselected(items=mine)
        items[:] = [i for i in items if i not in mine]


@pytest.fixture(scope="session")
def llm_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with local_llm_server(tmp_path_factory.mktemp("llm")) as url:
        yield url


@pytest.fixture
def llm_config(llm_url: str, store_path: Path) -> dict[str, Any]:
    return {"path": str(store_path), "llm": llm_settings(llm_url)}


@pytest.fixture
def mem(llm_config: dict[str, Any], embedder: LocalEmbedder) -> Iterator[Memory]:
    with Memory(llm_config, embedder=embedder) as m:
        yield m
