"""Records the next sync must fetch again from the server, whole: a discarded rejected edit
(the server's copy comes back), or a customer whose local delete clashed and was kept (its
history, which the delete took from the replica).

The one owner of the ``refetch`` table: a set of (entity, id), oldest request first.
"""

from __future__ import annotations

from cache.store import Store
from crm_tui.core.domain import ENTITIES

CUSTOMER_HISTORY = "customer-history"  # a refetch of everything attached to a customer


class Refetch:
    def __init__(self, store: Store):
        self._store = store
        self.conn = store.conn

    def request(self, entity_name: str, record_id: str) -> None:
        """Ask the next sync to fetch this record again (``entity_name`` CUSTOMER_HISTORY: all
        that is attached to customer ``record_id``). Joins the caller's transaction."""
        with self._store.transaction():
            self.conn.execute("INSERT OR IGNORE INTO refetch(entity, record_id) VALUES (?, ?)",
                              (entity_name, record_id))

    def wanted(self) -> list[tuple[str, str]]:
        """What the next sync must fetch again, oldest request first: (entity, id), or
        (CUSTOMER_HISTORY, customer id) for everything attached to a customer."""
        rows = self.conn.execute("SELECT entity, record_id FROM refetch ORDER BY rowid").fetchall()
        return [(e, r) for e, r in rows if e in ENTITIES or e == CUSTOMER_HISTORY]

    def done(self, done: list[tuple[str, str]]) -> None:
        """Forget these requests: the sync fetched them."""
        with self._store.transaction():
            self.conn.executemany("DELETE FROM refetch WHERE entity = ? AND record_id = ?", done)
