"""The fixtures ``remote_plugin`` puts in place of the suite's ``memory`` / ``amemory``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from memvault.remote import AsyncRemoteMemory, RemoteMemory
from tests.service.harness import Server, serve


@pytest.fixture(scope="session")
def remote_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with serve(tmp_path_factory.mktemp("remote-server") / "memvault.db") as s:
        yield s


@pytest.fixture
def remote_key(remote_server: Server, monkeypatch: pytest.MonkeyPatch) -> str:
    """A key of a fresh tenant; also in ``$MEMVAULT_URL`` / ``$MEMVAULT_API_KEY``, where a
    handle reopened from a serialized adapter (its ``store_path`` is the URL) finds it."""
    key = remote_server.key()
    monkeypatch.setenv("MEMVAULT_URL", remote_server.url)
    monkeypatch.setenv("MEMVAULT_API_KEY", key)
    return key


@pytest.fixture
def memory(remote_server: Server, remote_key: str) -> Iterator[RemoteMemory]:
    with RemoteMemory(remote_server.url, remote_key) as m:
        yield m


@pytest.fixture
async def amemory(remote_server: Server, remote_key: str) -> AsyncIterator[AsyncRemoteMemory]:
    m = AsyncRemoteMemory(remote_server.url, remote_key)
    try:
        yield m
    finally:
        await m.close()
