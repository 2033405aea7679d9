"""A store's content as one digest: what "a failing call changes nothing" compares.

Why read the SQLite file rather than the API: a bad call could write a row the
API never shows (a history event, a journal entry, a queued vector, a bumped
generation counter). Hashing every table of the file catches all of them, and it
keeps working when tables are added, because it lists them from the schema.
"""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

from memvault import Memory


def store_digest(memory: Memory) -> tuple[dict[str, int], str]:
    """Row counts per table and a SHA-256 over every row of every table.

    Queued background embeddings are written first (``flush``), so the indexer
    cannot change the file between two digests.
    """
    memory.flush()
    counts: dict[str, int] = {}
    h = hashlib.sha256()
    with sqlite3.connect(f"file:{Path(memory.path)}?mode=ro", uri=True) as conn:
        tables = [
            name
            for (name,) in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' "
                "AND sql NOT LIKE 'CREATE VIRTUAL%' ORDER BY name"
            )
        ]
        for table in tables:
            rows = conn.execute(f'SELECT * FROM "{table}"').fetchall()
            counts[table] = len(rows)
            h.update(table.encode())
            for row in sorted(map(repr, rows)):
                h.update(row.encode("utf-8", "backslashreplace"))
    conn.close()
    return counts, h.hexdigest()
