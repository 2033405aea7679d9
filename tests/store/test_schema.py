"""The schema is described once (store/schema.py): both backends' tables must match it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from memvault.store import schema
from memvault.store.sqlite import SQLiteStore


def test_sqlite_tables_have_the_described_columns(tmp_path: Path) -> None:
    SQLiteStore(tmp_path / "s.db").close()
    c = sqlite3.connect(tmp_path / "s.db")
    cols = {t: tuple(r[1] for r in c.execute(f"PRAGMA table_info({t})")) for t in
            ("memories", "history", "journal")}  # fmt: skip
    assert cols["memories"] == schema.MEMORY_NAMES
    assert cols["history"] == schema.HISTORY_NAMES
    assert cols["journal"] == schema.JOURNAL_NAMES


def test_postgres_tables_have_the_described_columns(pg_dsn: str) -> None:
    psycopg = pytest.importorskip("psycopg")
    from memvault.store.postgres import PostgresStore

    PostgresStore(pg_dsn).close()
    with psycopg.connect(pg_dsn) as c:

        def columns(table: str) -> tuple[str, ...]:
            rows = c.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = "
                "'memvault' AND table_name = %s ORDER BY ordinal_position",
                (table,),
            )
            return tuple(r[0] for r in rows)

        assert columns("memories") == (*schema.MEMORY_NAMES, "terms")
        assert columns("history") == schema.HISTORY_NAMES
        assert columns("journal") == schema.JOURNAL_NAMES
        # The terms are read per scope (the scope's btree finds them): no index of their own.
        rows = c.execute(
            "SELECT indexname FROM pg_indexes WHERE schemaname = 'memvault' "
            "AND tablename = 'memories'"
        )
        indexes = {r[0] for r in rows}
        assert "memories_terms" not in indexes and "memories_user" in indexes
