"""langgraph-prebuilt's agent / ToolNode tests that inject a store, on ``PeerStore``.

Every upstream test function in ``test_react_agent.py`` and ``test_tool_node.py``
that builds an ``InMemoryStore`` is re-exported, with ``InMemoryStore`` rebound
to ``memvault_peer.PeerStore``. Run with ``--noconftest``: the upstream
conftest imports Postgres drivers; none of these tests need its fixtures.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator

import pytest
import tests.test_react_agent as R
import tests.test_tool_node as N
from memvault_peer import PeerStore, close_all, export

R.InMemoryStore = N.InMemoryStore = PeerStore


@pytest.fixture(autouse=True)
def _close_stores() -> Iterator[None]:
    yield
    close_all()


for _tag, _module in (("react", R), ("toolnode", N)):
    for _name, _fn in inspect.getmembers(_module, inspect.isfunction):
        if (
            _name.startswith("test_")
            and _fn.__module__ == _module.__name__
            and "InMemoryStore(" in inspect.getsource(_fn)
        ):
            export(globals(), f"test_{_tag}__{_name[len('test_') :]}", _fn)
