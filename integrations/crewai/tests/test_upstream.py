"""CrewAI's own storage-backend tests, run against ``MemvaultStorage``.

No upstream code is committed. The crewai sdist of the *installed* version ships
its tests; it is downloaded (``pip download --no-deps --no-binary :all:``) into
the pytest cache at test time, and the test functions are loaded from
``tests/memory/`` by file path (their ``tests`` package name would clash with
ours). Then:

* the 12 ``StorageBackend`` tests of ``test_qdrant_edge_storage.py`` plus
  ``test_touch_records`` get a fresh ``MemvaultStorage`` as their ``storage``
  argument (the module-level ``skipif(qdrant_edge missing)`` does not apply to
  functions called directly);
* a few tests that build their own storage (``Memory`` end to end, private
  records, update) run with the backend they construct rebound to memvault. The
  update test compares whole records, embedding included: ``get_record`` reads
  the stored vector back (``include_vectors=True``).

Any module-level storage test CrewAI adds in a later version fails
``test_every_upstream_storage_test_is_run`` until it is listed here.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import inspect
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from memvault import Memory
from memvault.embedding import LocalEmbedder
from memvault_crewai import MemvaultStorage
from tests.support.sdists import sdist_tests

pytestmark = pytest.mark.peer

#: The StorageBackend contract tests (they take only the ``storage`` fixture).
STORAGE_TESTS = (
    "test_save_search",
    "test_delete_count",
    "test_update_get_record",
    "test_get_record_not_found",
    "test_list_scopes_get_scope_info",
    "test_scope_prefix_filter",
    "test_category_filter",
    "test_metadata_filter",
    "test_list_records_pagination",
    "test_list_categories",
    "test_reset_full",
    "test_reset_scoped",
    "test_touch_records",
)

#: Upstream tests that cannot pass on memvault, and why (empty: none of the above).
EXPECTED_FAILURES: dict[str, str] = {}

MODULES = ("test_qdrant_edge_storage", "test_unified_memory", "test_lancedb_update")


def _crewai_tests(cache: Path) -> Path:
    """``tests/memory`` of the installed crewai's sdist (downloaded once per version)."""
    memory_dir = sdist_tests("crewai", cache) / "memory"
    assert all((memory_dir / f"{m}.py").is_file() for m in MODULES), memory_dir
    return memory_dir


def _load(path: Path) -> ModuleType:
    name = f"crewai_upstream_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def upstream(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The upstream test modules, by name."""
    cache = getattr(request.config, "cache", None)
    root = (
        Path(cache.mkdir("memvault-crewai-upstream"))
        if cache is not None
        else tmp_path_factory.mktemp("crewai-upstream")
    )
    memory_dir = _crewai_tests(root)
    return {m: _load(memory_dir / f"{m}.py") for m in MODULES}


@pytest.fixture
def make_storage(
    tmp_path: Path, embedder: LocalEmbedder
) -> Iterator[Callable[..., MemvaultStorage]]:
    """Build memvault storages where upstream builds its own; all closed after the test."""
    made: list[MemvaultStorage] = []

    def make(path: Any = None, vector_dim: int | None = None, **_: Any) -> MemvaultStorage:
        folder = Path(path) if path is not None else tmp_path / f"store{len(made)}"
        folder.mkdir(parents=True, exist_ok=True)
        storage = MemvaultStorage(path=folder / "memvault.db", embedder=embedder)
        made.append(storage)
        return storage

    yield make
    for s in made:
        s.close()


def test_every_upstream_storage_test_is_run(upstream: Any) -> None:
    module = upstream["test_qdrant_edge_storage"]
    contract = {
        name
        for name, fn in vars(module).items()
        if name.startswith("test_")
        and callable(fn)
        and list(inspect.signature(fn).parameters) == ["storage"]
    }
    assert contract == set(STORAGE_TESTS)


@pytest.mark.parametrize("name", STORAGE_TESTS)
def test_storage_backend_contract(
    name: str, upstream: Any, storage: MemvaultStorage, request: pytest.FixtureRequest
) -> None:
    if name in EXPECTED_FAILURES:
        request.applymarker(pytest.mark.xfail(reason=EXPECTED_FAILURES[name], strict=True))
    getattr(upstream["test_qdrant_edge_storage"], name)(storage)


def test_memory_end_to_end(
    upstream: Any,
    tmp_path: Path,
    make_storage: Callable[..., MemvaultStorage],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``test_memory_with_qdrant_edge``: ``crewai.Memory`` remember + recall over our backend."""
    module = upstream["test_qdrant_edge_storage"]
    monkeypatch.setattr(module, "_make_storage", make_storage)
    module.test_memory_with_qdrant_edge(tmp_path)


@pytest.mark.parametrize("depth", ["shallow", "deep"])
def test_private_record_without_source_does_not_leak(
    upstream: Any,
    tmp_path: Path,
    depth: str,
    make_storage: Callable[..., MemvaultStorage],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import crewai.memory.storage.lancedb_storage as lancedb_storage

    monkeypatch.setattr(lancedb_storage, "LanceDBStorage", make_storage)
    upstream["test_unified_memory"].test_private_record_without_source_does_not_leak(
        tmp_path / "mem", depth
    )


def test_private_record_still_visible_to_its_source(
    upstream: Any,
    tmp_path: Path,
    make_storage: Callable[..., MemvaultStorage],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import crewai.memory.storage.lancedb_storage as lancedb_storage

    monkeypatch.setattr(lancedb_storage, "LanceDBStorage", make_storage)
    upstream[
        "test_unified_memory"
    ].test_private_record_still_visible_to_its_source_and_when_included(tmp_path / "mem")


def test_update_replaces_existing_record(
    upstream: Any,
    tmp_path: Path,
    make_storage: Callable[..., MemvaultStorage],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    module = upstream["test_lancedb_update"]
    monkeypatch.setattr(module, "LanceDBStorage", make_storage)
    module.test_update_replaces_existing_record(tmp_path)


def test_upstream_memory_is_not_a_mock(memory: Memory) -> None:
    """The contract tests above run on a real store file (guards the fixture wiring)."""
    assert Path(memory.path).is_file()
