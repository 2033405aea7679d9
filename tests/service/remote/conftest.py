"""A server for the remote-client tests, started from the server venv (``make setup``)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.service.harness import Server, serve, server_python


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    if server_python() is None:
        message = "no server venv: run 'make setup' (it builds .venv-server)"
        if os.environ.get("MEMVAULT_SERVER_PYTHON"):  # make test says there is one: fail loudly
            pytest.fail(message)
        pytest.skip(message)
    with serve(tmp_path_factory.mktemp("server") / "memvault.db") as s:
        yield s
