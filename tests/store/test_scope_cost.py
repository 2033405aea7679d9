"""A scope's reads cost what the scope holds, not what the store holds (SQLite).

Why: with 200k memories over 2,000 users a cold search read far more than its scope (the
vectors of the whole store, filtered by scope; issue 10). SQLite counts the virtual-machine
instructions a statement runs (``set_progress_handler``), a deterministic measure of the
work: the same scope's reads must cost about the same in a store 20x larger.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from memvault.models import DEFAULT_SPACE
from memvault.scope import Scope
from memvault.store.sqlite import SQLiteStore
from tests.store.test_conformance import rec

MINE = Scope("mine")


def _fill(store: SQLiteStore, others: int, rng: np.random.Generator) -> None:
    """Our 20 memories interleaved with ``others`` memories of 100 other users."""
    with store.write() as tx:
        for i in range(others):
            if i % max(1, others // 20) == 0:
                tx.insert(rec(f"my cat likes fish {i}", MINE), {DEFAULT_SPACE: rng.random(8)})
            tx.insert(
                rec(f"the cat likes fish {i}", Scope(f"u{i % 100}")), {DEFAULT_SPACE: rng.random(8)}
            )


def _steps(store: SQLiteStore, fn) -> int:  # type: ignore[no-untyped-def]
    count = [0]

    def tick() -> int:
        count[0] += 1
        return 0

    c = store.conn()
    c.set_progress_handler(tick, 1)
    try:
        fn()
    finally:
        c.set_progress_handler(None, 1)
    return count[0]


def _costs(tmp_path: Path, others: int) -> dict[str, int]:
    store = SQLiteStore(tmp_path / f"store-{others}.db")
    try:
        _fill(store, others, np.random.default_rng(0))
        assert len(store.scope_records(MINE)) == 20
        return {
            "vectors": _steps(store, lambda: store.vectors(DEFAULT_SPACE, MINE)),
            "records": _steps(store, lambda: store.scope_records(MINE)),
            "terms": _steps(store, lambda: store.scope_terms(MINE)),
            "spaces_used": _steps(store, lambda: store.spaces_used(MINE)),
        }
    finally:
        store.close()


def test_scope_reads_do_not_grow_with_the_store(tmp_path: Path) -> None:
    small, large = _costs(tmp_path, 400), _costs(tmp_path, 8000)
    for what in small:
        assert large[what] <= 1.5 * small[what] + 50, (what, small[what], large[what])
