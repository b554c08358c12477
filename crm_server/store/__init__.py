"""Storage: ALL of the server's SQL lives in this package.

``open_store(path)`` gives the embedded SQLite backend; the rest of the server speaks only the
:class:`Store` interface, so a PostgreSQL backend can be added without protocol changes.
"""

from __future__ import annotations

from pathlib import Path

from crm_server.store.base import (
    BulkLoader,
    ChangeRow,
    CompactResult,
    FeedMeta,
    ReadTx,
    Store,
    StoreBusy,
    StoredOpResult,
    StoredRecord,
    StoreError,
    WriteTx,
)
from crm_server.store.gateway_state import LedgerEntry, UpstreamLink


def open_store(path: str | Path) -> Store:
    """Open (creating if missing) the CRM database at ``path``. Raises StoreError if unusable."""
    from crm_server.store.sqlite import SQLiteStore

    return SQLiteStore(path)


__all__ = [
    "BulkLoader",
    "ChangeRow",
    "CompactResult",
    "FeedMeta",
    "LedgerEntry",
    "ReadTx",
    "Store",
    "StoreBusy",
    "StoreError",
    "StoredOpResult",
    "StoredRecord",
    "UpstreamLink",
    "WriteTx",
    "open_store",
]
