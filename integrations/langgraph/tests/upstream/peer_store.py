"""LangGraph's own store tests, pointed at ``memvault_peer.PeerStore``.

The upstream modules (``tests/test_store.py`` etc., extracted from the PyPI
sdists at test time) resolve ``InMemoryStore``, ``SqliteStore``,
``create_vector_store`` and the ``store`` fixture at call time, so rebinding
them here runs their bodies against our store. Only tests that exercise a
store through its public API are re-exported; tests of SQLite internals
(migrations, GLOB escaping, query plans) and of LangGraph's own helpers are not.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import tests.test_async_store as A
import tests.test_inmem_store as M
import tests.test_store as S
import tests.test_ttl as T
from memvault_peer import AsyncSqliteShim, PeerStore, SqliteShim, close_all, export


def _index(embeddings: Any, fields: list[str] | None) -> dict[str, Any]:
    # SqliteStore reads "text_fields"; the IndexConfig key every other store reads is "fields".
    return {"dims": embeddings.dims, "embed": embeddings, **({"fields": fields} if fields else {})}


@contextlib.contextmanager
def _vector_store(
    embeddings: Any,
    text_fields: list[str] | None = None,
    distance_type: str = "cosine",
    conn_type: str = "memory",
) -> Iterator[Any]:
    yield PeerStore(index=_index(embeddings, text_fields))


@contextlib.asynccontextmanager
async def _async_vector_store(
    embeddings: Any, conn_string: str = ":memory:", text_fields: list[str] | None = None
) -> AsyncIterator[Any]:
    yield PeerStore(index=_index(embeddings, text_fields))


S.create_vector_store = _vector_store
A.create_vector_store = _async_vector_store
S.SqliteStore = SqliteShim
M.InMemoryStore = PeerStore
T.SqliteStore = SqliteShim
T.AsyncSqliteStore = AsyncSqliteShim


# The upstream fixtures the re-exported tests ask for.
fake_embeddings = S.fake_embeddings
conn_string = A.conn_string
temp_db_file = T.temp_db_file


@pytest.fixture
def store() -> Iterator[Any]:
    yield PeerStore()


@pytest.fixture(autouse=True)
def _close_stores() -> Iterator[None]:
    yield
    close_all()


# langgraph-checkpoint-sqlite: tests/test_store.py (sync)
SQLITE_SYNC = [
    "test_batch_order",
    "test_batch_get_ops",
    "test_batch_put_ops",
    "test_batch_search_ops",
    "test_batch_list_namespaces_ops",
    "test_vector_store_initialization",
    "test_vector_insert_with_auto_embedding",
    "test_vector_update_with_embedding",
    "test_vector_search_with_filters",
    "test_vector_search_pagination",
    "test_vector_search_edge_cases",
    "test_embed_with_path",
    "test_embed_with_path_operation_config",
    "test_scores",
    "test_basic_store_operations",
    "test_list_namespaces_operations",
    "test_search_items",
    "test_sql_injection_vulnerability",
    "test_sql_injection_filter_values",
    "test_numeric_filter_safety",
    "test_boolean_filter_safety",
    "test_filter_keys_with_hyphens_and_digits",
    "test_non_ascii",
    "test_search_namespace_segment_boundary",
    "test_search_namespace_wildcard_chars_are_literal",
    "test_search_namespace_is_case_sensitive",
    "test_list_namespaces_segment_boundary",
    "test_search_empty_prefix_is_unconstrained",
    "test_namespace_labels_with_trailing_newline",
    "test_list_namespaces_metacharacter_labels",
    "test_batch_rejects_invalid_namespace_labels",
    "test_batch_allows_empty_search_prefix_and_listing_wildcards",
]
# langgraph-checkpoint-sqlite: tests/test_async_store.py
SQLITE_ASYNC = [
    "test_large_batches_async",
    "test_abatch_order",
    "test_batch_get_ops",
    "test_batch_put_ops",
    "test_batch_search_ops",
    "test_batch_list_namespaces_ops",
    "test_vector_store_initialization",
    "test_vector_insert_with_auto_embedding",
    "test_vector_update_with_embedding",
    "test_vector_search_with_filters",
    "test_vector_search_pagination",
    "test_vector_search_edge_cases",
    "test_embed_with_path",
    "test_basic_store_ops",
    "test_list_namespaces",
    "test_search_items",
    "test_async_namespace_segment_boundary",
    "test_abatch_rejects_invalid_namespace_labels",
    "test_invalid_namespace_only_fails_its_own_call",
    "test_sync_methods_reject_invalid_namespace_labels",
]
# langgraph-checkpoint: tests/test_store.py (InMemoryStore's own tests)
CORE = [
    "test_list_namespaces_basic",
    "test_list_namespaces_with_wildcards",
    "test_list_namespaces_pagination",
    "test_list_namespaces_max_depth",
    "test_list_namespaces_no_conditions",
    "test_search_pages_match_full_listing",
    "test_vector_search_scores_every_item",
    "test_list_namespaces_empty_store",
    "test_cannot_put_empty_namespace",
    "test_rejects_invalid_namespace_labels",
    "test_async_rejects_invalid_namespace_labels",
    "test_search_and_listing_keep_empty_prefixes_and_wildcards",
    "test_async_search_and_listing_keep_empty_prefixes_and_wildcards",
    "test_vector_store_initialization",
    "test_vector_insert_with_auto_embedding",
    "test_async_vector_insert_with_auto_embedding",
    "test_vector_update_with_embedding",
    "test_async_vector_update_with_embedding",
    "test_vector_search_with_filters",
    "test_async_vector_search_with_filters",
    "test_async_batched_vector_search_concurrent",
    "test_vector_search_pagination",
    "test_async_vector_search_pagination",
    "test_embed_with_path",
    "test_non_ascii",
]
# langgraph-checkpoint-sqlite: tests/test_ttl.py (InMemoryStore has no TTL: memvault only)
TTL = [
    "test_ttl_basic",
    "test_ttl_refresh",
    "test_ttl_sweeper",
    "test_ttl_custom_value",
    "test_ttl_override_default",
    "test_search_with_ttl",
    "test_async_ttl_basic",
    "test_async_ttl_refresh",
    "test_async_ttl_sweeper",
    "test_async_search_with_ttl",
    "test_async_asearch_refresh_ttl",
]

for _prefix, _module, _names in (
    ("test_sqlite__", S, SQLITE_SYNC),
    ("test_asqlite__", A, SQLITE_ASYNC),
    ("test_core__", M, CORE),
    ("test_ttl__", T, TTL),
):
    for _name in _names:
        export(globals(), _prefix + _name[len("test_") :], getattr(_module, _name))

# The SqliteStore class-based basics (they build their store with SqliteStore.from_conn_string).
TestSqliteBasics = S.TestSqliteStore
