"""Conflicts: edits the server could not apply because someone changed the same fields (or
deleted the record) meanwhile. Each keeps, per field, "mine", "theirs" and the base both
started from, until the user chooses (``LocalWrites.resolve_conflict``).

The one owner of the ``conflicts`` table.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from cache.errors import ReplicaError
from cache.store import Store


@dataclass
class Conflict:
    id: int
    entity: str
    record_id: str
    op_id: str | None
    server_version: int | None
    kind: str  # "fields" or "delete"
    fields: dict[str, dict[str, Any]]  # field -> {"mine", "theirs", "base"}
    created_at: str


CONFLICT_COLUMNS = "id, entity, record_id, op_id, server_version, kind, fields, created_at"


def conflict_from_row(row: tuple[Any, ...]) -> Conflict:
    """A ``conflicts`` row (its CONFLICT_COLUMNS, in order) as a Conflict."""
    cid, ent, rid, op_id, server_version, kind, fields, created = row
    return Conflict(cid, ent, rid, op_id, server_version, kind, json.loads(fields), created)


class Conflicts:
    def __init__(self, store: Store):
        self._store = store
        self.conn = store.conn

    def unresolved(self, limit: int = 1000) -> list[Conflict]:
        """Conflicts waiting for the user's choice, oldest first."""
        rows = self.conn.execute(
            f"SELECT {CONFLICT_COLUMNS} FROM conflicts WHERE resolved_at IS NULL ORDER BY id LIMIT ?", (limit,)
        ).fetchall()
        return [conflict_from_row(r) for r in rows]

    def count(self) -> int:
        """How many conflicts wait for the user."""
        return int(self.conn.execute("SELECT count(*) FROM conflicts WHERE resolved_at IS NULL").fetchone()[0])

    def is_open(self, entity_name: str, record_id: str) -> bool:
        """Whether the record has a conflict waiting for the user."""
        return self.conn.execute(
            "SELECT 1 FROM conflicts WHERE entity = ? AND record_id = ? AND resolved_at IS NULL",
            (entity_name, record_id),
        ).fetchone() is not None

    def record_ids(self, entity_name: str) -> list[str]:
        """Ids of the entity's records with a conflict waiting for the user."""
        return [rid for (rid,) in self.conn.execute(
            "SELECT record_id FROM conflicts WHERE entity = ? AND resolved_at IS NULL", (entity_name,))]

    def add(self, entity_name: str, record_id: str, op_id: str, server_version: int | None, kind: str,
            fields: dict[str, dict[str, Any]]) -> None:
        """Store a conflict the server reported for op ``op_id`` (inside the caller's transaction)."""
        self.conn.execute(
            "INSERT INTO conflicts(entity, record_id, op_id, server_version, kind, fields, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (entity_name, record_id, op_id, server_version, kind, json.dumps(fields), self._store.now()),
        )

    def hold(self, entity_name: str, record_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """A local edit of fields under an open conflict changes that conflict's "mine" (what
        the user sees stays mine or theirs; the user's choice sends it). Returns the changes
        that are not held there, to be queued as usual. Call inside the edit's transaction."""
        rest = dict(changes)
        for conflict_id, fields_json in self.conn.execute(
            "SELECT id, fields FROM conflicts WHERE entity = ? AND record_id = ? AND resolved_at IS NULL"
            " AND kind = 'fields' ORDER BY id", (entity_name, record_id)).fetchall():
            fields = json.loads(fields_json)
            held = [name for name in changes if name in fields]
            if not held:
                continue
            for name in held:
                fields[name]["mine"] = changes[name]
                rest.pop(name, None)
            self.conn.execute("UPDATE conflicts SET fields = ? WHERE id = ?", (json.dumps(fields), conflict_id))
        return rest

    def settle(self, conflict_id: int) -> Conflict:
        """Mark an open conflict resolved (inside the caller's transaction) and return it, for
        the caller to carry out the user's choice. Raises ReplicaError if it is not open."""
        row = self.conn.execute(
            f"SELECT {CONFLICT_COLUMNS} FROM conflicts WHERE id = ? AND resolved_at IS NULL", (conflict_id,),
        ).fetchone()
        if row is None:
            raise ReplicaError(f"conflict {conflict_id} is not open")
        self.conn.execute("UPDATE conflicts SET resolved_at = ? WHERE id = ?", (self._store.now(), conflict_id))
        return conflict_from_row(row)
