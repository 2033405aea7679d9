"""A pytest plugin that runs an adapter's own tests against a memvault server.

``MEMVAULT_REMOTE_TESTS=1 pytest -p tests.service.remote_plugin integrations/langgraph/tests/test_store.py``
(``make test`` runs it over the LangGraph store, LlamaIndex memory and CrewAI storage/tools
tests) starts one ``memvault serve`` (from the server venv) and replaces the suite's ``memory``
/ ``amemory`` fixtures (a local store per test) with ``RemoteMemory`` /
``AsyncRemoteMemory`` on a key of a fresh tenant per test: the adapter's tests then run,
unchanged, over HTTP. Tests that open a local store of their own still do.

Why a plugin registered at session start: fixtures registered after the root
``conftest.py`` override its fixtures of the same name, so no conftest has to know.
"""

from __future__ import annotations

import os

import pytest

#: Tests that check a local store's own mechanics (its file, its threads, its loaded model),
#: not the adapter's behaviour through the API; they keep running locally in the main run.
LOCAL_ONLY: dict[str, str] = {
    # LlamaIndex: the twin's embedder *is* the session's LocalEmbedder fixture (one loaded
    # model); a remote handle's embedder is the server's (twins share one RemoteEmbedder).
    "test_a_sync_handle_gets_an_async_twin_over_the_same_store": "compares with this process's loaded model",
    "test_block_constructors": "compares with this process's loaded model",
    # CrewAI: reads the vector spaces from Memory.stats(), a whole-store call no tenant key may make.
    "test_each_dimension_is_its_own_vector_space": "reads stats(), which a server does not offer",
}


@pytest.hookimpl(trylast=True)  # after the fixture manager exists, so these are parsed last
def pytest_sessionstart(session: pytest.Session) -> None:
    if os.environ.get("MEMVAULT_REMOTE_TESTS") == "1":
        from tests.service import remote_fixtures

        session.config.pluginmanager.register(remote_fixtures, "memvault-remote-fixtures")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leave out (deselect, not skip) the few tests that only make sense on a local store:
    they already ran in the main run; this run re-runs the rest against a server."""
    keep, dropped = [], []
    for item in items:
        reason = LOCAL_ONLY.get(
            item.originalname if isinstance(item, pytest.Function) else item.name
        )
        (dropped if reason else keep).append(item)
        if reason:
            print(f"remote run leaves out {item.nodeid}: local store only ({reason})")
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep
