"""LangGraph's own checkpointer tests, pointed at ``MemvaultSaver``.

The upstream modules (extracted from the PyPI sdists of langgraph-checkpoint and
langgraph-checkpoint-sqlite at test time) build their savers with
``SqliteSaver.from_conn_string``, ``AsyncSqliteSaver.from_conn_string`` and
``InMemorySaver(...)``, resolved at call time; rebinding those names runs their
bodies against memvault. With ``MEMVAULT_PEER_STORE=reference`` nothing is
rebound (the upstream savers themselves). Tests of SQLite or InMemorySaver
internals (SQL predicates, query plans, ``saver.blobs``) are not re-exported.

The official conformance suite (langgraph-checkpoint-conformance, installed) runs
here too, one test per capability: ``MemvaultSaver`` in memvault mode,
``InMemorySaver`` as the reference.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import tests.test_aiosqlite as A
import tests.test_delta_parent_walk as W
import tests.test_get_delta_channel_history as D
import tests.test_memory as M
import tests.test_sqlite as S
from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.capabilities import Capability
from langgraph.checkpoint.memory import InMemorySaver
from memvault_peer import MODE, embedder, export, scratch

from memvault_langgraph.checkpoint import MemvaultSaver

_OPEN: list[MemvaultSaver] = []


class PeerSaver(MemvaultSaver):
    """``MemvaultSaver`` on a fresh store file, built the way the upstream tests build savers."""

    def __init__(self, *, serde: Any = None) -> None:
        path = os.path.join(tempfile.mkdtemp(dir=scratch()), "threads.db")
        super().__init__(path=path, embedder=embedder(), serde=serde)
        _OPEN.append(self)

    def setup(self) -> None:
        """SqliteSaver's migration step: nothing to do (memvault migrates on open)."""


class SqliteSaverShim:
    """Stands in for ``SqliteSaver`` (``from_conn_string`` gives a fresh ``MemvaultSaver``)."""

    @staticmethod
    @contextlib.contextmanager
    def from_conn_string(conn_string: str) -> Iterator[MemvaultSaver]:
        saver = PeerSaver()
        try:
            yield saver
        finally:
            saver.close()


class AsyncSqliteSaverShim:
    """Stands in for ``AsyncSqliteSaver``."""

    @staticmethod
    @contextlib.asynccontextmanager
    async def from_conn_string(conn_string: str) -> AsyncIterator[MemvaultSaver]:
        saver = PeerSaver()
        try:
            yield saver
        finally:
            await saver.aclose()


if MODE == "memvault":
    S.SqliteSaver = SqliteSaverShim
    W.SqliteSaver = D.SqliteSaver = SqliteSaverShim
    A.AsyncSqliteSaver = W.AsyncSqliteSaver = D.AsyncSqliteSaver = AsyncSqliteSaverShim
    M.InMemorySaver = PeerSaver


@pytest.fixture(autouse=True)
def _close_savers() -> Iterator[None]:
    yield
    while _OPEN:
        _OPEN.pop().close()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# langgraph-checkpoint-sqlite: tests/test_sqlite.py, minus SqliteSaver's SQL helpers
# (search_where / _metadata_predicate) and its sync-only design (test_informative_async_errors).
class TestSqliteSaver(S.TestSqliteSaver):
    test_search_where = None
    test_metadata_predicate = None
    test_metadata_predicate_sql_injection_prevention = None
    test_informative_async_errors = None


# langgraph-checkpoint-sqlite: tests/test_aiosqlite.py
TestAsyncSqliteSaver = A.TestAsyncSqliteSaver

# langgraph-checkpoint: tests/test_memory.py (InMemorySaver's public behaviour)
TestMemorySaver = M.TestMemorySaver
for _name in (
    "test_memory_saver",
    "test_memory_saver_warns_on_unregistered_msgpack",
    "test_memory_saver_allowlist_silences_warning",
    "test_memory_saver_strict_blocks_unregistered",
    "test_memory_saver_with_allowlist_proxy_isolated",
):
    export(globals(), "test_memory__" + _name[len("test_") :], getattr(M, _name))
_reset_warned_types = M._reset_warned_types

# langgraph-checkpoint-sqlite: real StateGraphs with DeltaChannel, and the parent walk
for _module, _prefix in ((D, "test_delta_history__"), (W, "test_parent_walk__")):
    for _name in dir(_module):
        if (
            _name.startswith("test_")
            and _name != "test_walk_step_looks_up_the_parent_by_primary_key"
        ):
            export(globals(), _prefix + _name[len("test_") :], getattr(_module, _name))


# langgraph-checkpoint-conformance: every capability, one test each
@checkpointer_test(name="MemvaultSaver" if MODE == "memvault" else "InMemorySaver")
async def _conformance_saver() -> AsyncIterator[Any]:
    if MODE == "memvault":
        saver = PeerSaver()
        yield saver
        await saver.aclose()
    else:
        yield InMemorySaver()


@pytest.mark.parametrize("capability", [c.value for c in Capability])
async def test_conformance(capability: str) -> None:
    report = await validate(_conformance_saver, capabilities={capability})
    result = report.results[capability]
    if result.passed is None:
        pytest.skip(f"{capability}: not implemented by this saver")
    assert result.passed, "\n".join(result.failures or [])
