"""Storage backends behind one contract (:mod:`memvault.store.contract`).

:func:`open_store` is the one place a backend is chosen from the configuration.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from memvault.config import MemoryConfig
    from memvault.store.contract import Store


def open_store(config: MemoryConfig, path: Any = None) -> Store:
    """The configured store: PostgreSQL for provider ``postgres``, else the SQLite file."""
    pg = config.postgres_options()
    if pg is not None:
        from memvault.store.postgres import PostgresStore

        return PostgresStore(**pg)
    from memvault.store.sqlite import SQLiteStore

    return SQLiteStore(config.store_path(path))  # type: ignore[return-value]
