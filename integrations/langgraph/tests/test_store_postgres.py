"""The store's TTL tests (sweeping, refresh on read, ``omit_expired``) on the PostgreSQL backend.

Why again on PostgreSQL: expiry is compared and a TTL restarted inside the database
(``touch`` computes the new expiry in SQL), so the semantics LangGraph's ``PostgresStore``
has must hold on each backend. The tests are ``test_store.py``'s own, run here with the
``memory`` fixture opened on a fresh PostgreSQL database (tests/support/postgres.py).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import pytest

from memvault import Memory
from memvault.embedding import LocalEmbedder

_spec = importlib.util.spec_from_file_location(
    "_memvault_langgraph_store_tests", Path(__file__).with_name("test_store.py")
)
assert _spec is not None and _spec.loader is not None
_tests = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_tests)

#: test_store.py's tests of TTL behaviour, collected here as well.
TTL_TESTS = (
    "test_ttl_put_refresh_and_sweeper_thread",
    "test_expired_items_are_read_until_swept_by_default",
    "test_omit_expired_hides_expired_items_and_never_refreshes_them",
    "test_reads_refresh_ttl_unless_asked_not_to",
    "test_put_without_ttl_support_semantics",
)
for _name in TTL_TESTS:
    globals()[_name] = getattr(_tests, _name)


@pytest.fixture
def memory(pg_dsn: str, embedder: LocalEmbedder) -> Iterator[Memory]:
    config = {"vector_store": {"provider": "postgres", "config": {"dsn": pg_dsn}}}
    with Memory(config, embedder=embedder) as m:
        yield m
