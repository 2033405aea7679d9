"""A pytest plugin that runs an adapter's own tests against a memvault server.

``MEMVAULT_REMOTE_TESTS=1 pytest -p tests.service.remote_plugin integrations/langgraph/tests/test_store.py``
starts one ``memvault serve`` (from the server venv) and replaces the suite's ``memory``
/ ``amemory`` fixtures (a local store per test) with ``RemoteMemory`` /
``AsyncRemoteMemory`` on a key of a fresh tenant per test: the adapter's tests then run,
unchanged, over HTTP. Tests that open a local store of their own still do.

Why a plugin registered at session start: fixtures registered after the root
``conftest.py`` override its fixtures of the same name, so no conftest has to know.
"""

from __future__ import annotations

import os

import pytest

#: Tests that check a local store's own mechanics (its file, its threads), not the adapter's
#: behaviour through the API; they keep running locally in the main run.
LOCAL_ONLY: dict[str, str] = {}


@pytest.hookimpl(trylast=True)  # after the fixture manager exists, so these are parsed last
def pytest_sessionstart(session: pytest.Session) -> None:
    if os.environ.get("MEMVAULT_REMOTE_TESTS") == "1":
        from tests.service import remote_fixtures

        session.config.pluginmanager.register(remote_fixtures, "memvault-remote-fixtures")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        reason = LOCAL_ONLY.get(
            item.originalname if isinstance(item, pytest.Function) else item.name
        )
        if reason:
            item.add_marker(pytest.mark.skip(reason=f"local store only: {reason}"))
