"""Storage: ALL of the server's SQL lives in this package.

``open_store(target)`` opens the embedded SQLite backend for a file path (the zero-config
default) or the PostgreSQL backend for a ``postgresql://`` URL; the rest of the server speaks
only the :class:`Store` interface.
"""

from __future__ import annotations

from pathlib import Path

from crm_server.store.base import (
    MAX_SEQ,
    BulkLoader,
    ChangeRow,
    CompactResult,
    MaintenanceReport,
    MonthRevenue,
    Position,
    ReadTx,
    RecordExists,
    RecordMissing,
    Store,
    StoreBusy,
    StoreConflict,
    StoredOpResult,
    StoredRecord,
    StoreError,
    StoreInfo,
    WriteTx,
)
from crm_server.store.gateway_state import LedgerEntry, UpstreamLink

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def is_postgres_url(target: str | Path) -> bool:
    """True when ``target`` names a PostgreSQL database rather than a SQLite file."""
    return isinstance(target, str) and target.startswith(POSTGRES_SCHEMES)


def open_store(target: str | Path) -> Store:
    """Open the CRM database at ``target``: a SQLite file path (created if missing) or a
    ``postgresql://user@host:port/dbname`` URL (the database must exist; its schema is created or
    migrated). Raises StoreError if it is unusable."""
    if is_postgres_url(target):
        from crm_server.store.pg import PostgresStore

        return PostgresStore(str(target))
    from crm_server.store.sqlite import SQLiteStore

    return SQLiteStore(target)


__all__ = [
    "MAX_SEQ",
    "BulkLoader",
    "ChangeRow",
    "CompactResult",
    "LedgerEntry",
    "MaintenanceReport",
    "MonthRevenue",
    "Position",
    "ReadTx",
    "RecordExists",
    "RecordMissing",
    "Store",
    "StoreBusy",
    "StoreConflict",
    "StoreError",
    "StoreInfo",
    "StoredOpResult",
    "StoredRecord",
    "UpstreamLink",
    "WriteTx",
    "is_postgres_url",
    "open_store",
]
