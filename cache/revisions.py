"""Revisions: what the hot cache compares to know, exactly, when an assembled view is stale.

Every change bumps, in its own transaction, the revision of the customer it belongs to
(``customer_rev``), the user/territory directory's (``dir_rev``), the whole replica's
(``rev``) or its epoch (everything at once). A view is stamped with what it was built from.
"""

from __future__ import annotations

from typing import Any

from cache.store import Store
from crm_tui.core.domain import Entity

_STAMP_SQL = (
    "SELECT (SELECT value FROM replica_meta WHERE key = 'replica_id'),"
    " (SELECT CAST(value AS INTEGER) FROM replica_meta WHERE key = 'epoch'),"
    " (SELECT CAST(value AS INTEGER) FROM replica_meta WHERE key = 'dir_rev'),"
)


class Revisions:
    def __init__(self, store: Store):
        self.conn = store.conn

    def touch(self, ent: Entity, record: dict[str, Any]) -> None:
        """Mark the assembled views built from ``record`` stale: its customer's, or every view
        naming users and territories (inside the changing transaction)."""
        if ent.anchor is None:
            self.bump_directory_rev()
        elif ent.anchor == "self" and record.get("id"):
            self.bump_customer_revs([record["id"]])
        elif ent.anchor == "customer_id" and record.get("customer_id"):
            self.bump_customer_revs([record["customer_id"]])

    def bump_customer_revs(self, customer_ids: set[str] | list[str]) -> None:
        """Mark these customers' assembled views stale (call inside the changing transaction)."""
        if not customer_ids:
            return
        self.conn.executemany(
            "INSERT INTO customer_rev(customer_id, rev) VALUES (?, 1) "
            "ON CONFLICT(customer_id) DO UPDATE SET rev = rev + 1",
            [(c,) for c in customer_ids if c],
        )
        self._count_up("rev")

    def bump_epoch(self) -> None:
        """Retire every assembled view at once (call inside the changing transaction)."""
        self._count_up("epoch")

    def bump_directory_rev(self) -> None:
        """Users or territories changed: every assembled view naming an owner or a territory is
        stale (call inside the changing transaction)."""
        self._count_up("dir_rev")

    def _count_up(self, key: str) -> None:
        """Add one to the counter ``key`` in replica_meta (1 if new), in the caller's transaction."""
        self.conn.execute(
            "INSERT INTO replica_meta(key, value) VALUES (?, '1') "
            "ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1", (key,))

    def customer_stamp(self, customer_id: str) -> tuple[Any, ...]:
        """What a customer's assembled views were built from: this replica file (a new one never
        inherits an old one's cache entries), its epoch, the user/territory directory, and the
        customer's own revision."""
        return tuple(self.conn.execute(
            _STAMP_SQL + " (SELECT rev FROM customer_rev WHERE customer_id = ?)", (customer_id,)
        ).fetchone())

    def replica_stamp(self) -> tuple[Any, ...]:
        """The same for views built from the whole replica (reports, the pipeline)."""
        return tuple(self.conn.execute(
            _STAMP_SQL + " (SELECT CAST(value AS INTEGER) FROM replica_meta WHERE key = 'rev')"
        ).fetchone())
