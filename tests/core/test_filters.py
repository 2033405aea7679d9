"""Filter semantics from one shared table, on every storage backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from memvault import FilterError, Memory
from memvault.embedding import LocalEmbedder

from .backends import BACKENDS, make_memory
from .filter_cases import BAD, CASES, SEED


@pytest.fixture(scope="module", params=BACKENDS)
def seeded(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    embedder: LocalEmbedder,
) -> Iterator[Memory]:
    path: Path = tmp_path_factory.mktemp(f"filters-{request.param}") / "m.db"
    with make_memory(request.param, path, embedder, request) as m:
        for text, meta in SEED:
            m.add(text, user_id="u", metadata=meta)
        m.add("alpha note", user_id="other", metadata=SEED[0][1])  # must never show up
        yield m


@pytest.mark.parametrize(("filters", "expected"), CASES, ids=[str(c[0]) for c in CASES])
def test_filter_table(seeded: Memory, filters: dict[str, Any], expected: set[str]) -> None:
    got_all = seeded.get_all(user_id="u", filters=filters)["results"]
    assert {r["memory"] for r in got_all} == expected
    assert all(r["user_id"] == "u" for r in got_all)
    hits = seeded.search("note", user_id="u", filters=filters, top_k=50)["results"]
    assert {r["memory"] for r in hits} == expected


@pytest.mark.parametrize(("filters", "needle"), BAD, ids=[str(c[0]) for c in BAD])
def test_bad_filters_raise_filter_error(seeded: Memory, filters: Any, needle: str) -> None:
    before = seeded.stats()["memories"]
    with pytest.raises(FilterError, match=needle):
        seeded.search("note", user_id="u", filters=filters)
    with pytest.raises(FilterError, match=needle):
        seeded.get_all(user_id="u", filters=filters)
    with pytest.raises(FilterError):
        seeded.delete_all(user_id="u", filters=filters)
    assert seeded.stats()["memories"] == before


def test_delete_all_with_filter_deletes_only_matches(seeded: Memory) -> None:
    assert seeded.delete_all(user_id="u", filters={"category": "home"})["deleted"] == 1
    assert {r["memory"] for r in seeded.get_all(user_id="u")["results"]} == {
        "alpha note",
        "gamma note",
        "delta note",
    }
