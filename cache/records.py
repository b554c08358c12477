"""Records as the replica stores them: one by id, counts, and a row written from wire values.

Wire values (tags as lists, booleans as bool) are encoded for their columns on the way in
and decoded on the way out (``crm_tui.core.codec``); ``_gen`` is the replica's own bookkeeping and
never leaves this module.
"""

from __future__ import annotations

from typing import Any

from cache.sqlite import sqlite3
from cache.store import Store
from crm_tui.core.codec import decode_value, encode_value
from crm_tui.core.domain import ENTITIES, Entity, entity


def decode_row(ent: Entity, row: sqlite3.Row | tuple[Any, ...], names: list[str]) -> dict[str, Any]:
    """A stored row as a wire record (tags parsed, booleans as bool)."""
    rec = dict(zip(names, row, strict=False))
    for f in ent.fields:
        if f.kind in ("tags", "bool") and rec.get(f.name) is not None:
            rec[f.name] = decode_value(f.kind, rec[f.name])
    rec.pop("_gen", None)
    return rec


class Records:
    def __init__(self, store: Store):
        self._store = store
        self.conn = store.conn

    def get(self, entity_name: str, record_id: str) -> dict[str, Any] | None:
        """One record from the replica by id, or None."""
        ent = entity(entity_name)
        cur = self.conn.execute(f"SELECT * FROM {ent.table} WHERE id = ?", (record_id,))
        row = cur.fetchone()
        if row is None:
            return None
        return decode_row(ent, row, [d[0] for d in cur.description])

    def exists(self, ent: Entity, record_id: str) -> bool:
        """Whether the replica holds this record (an indexed look-up, nothing decoded)."""
        return self.conn.execute(f"SELECT 1 FROM {ent.table} WHERE id = ?", (record_id,)).fetchone() is not None

    def count(self, entity_name: str) -> int:
        return int(self.conn.execute(f"SELECT count(*) FROM {entity(entity_name).table}").fetchone()[0])

    def counts(self) -> dict[str, int]:
        return {name: self.count(name) for name in ENTITIES}

    def insert(self, ent: Entity, record_id: str, values: dict[str, Any], *, version: int = 0) -> None:
        """Insert a new row from wire ``values`` (inside the caller's transaction), stamped with
        the current sync generation, so a replacement sync under way keeps it (``_gen``)."""
        kinds = {f.name: f.kind for f in ent.fields}
        names = ["id", *values, "version", "_gen"]
        self.conn.execute(
            f"INSERT INTO {ent.table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
            [record_id, *(encode_value(kinds[k], v) for k, v in values.items()), version, self._store.generation()])

    def set_fields(self, ent: Entity, record_id: str, values: dict[str, Any]) -> None:
        """Write wire values into a stored record's columns (inside the caller's transaction)."""
        if not values:
            return
        kinds = {f.name: f.kind for f in ent.fields}
        sets = ", ".join(f"{k} = ?" for k in values)
        self.conn.execute(f"UPDATE {ent.table} SET {sets} WHERE id = ?",
                          [*(encode_value(kinds[k], v) for k, v in values.items()), record_id])

    def delete(self, ent: Entity, record_id: str) -> None:
        """Delete one row (inside the caller's transaction); what hangs off it is the caller's."""
        self.conn.execute(f"DELETE FROM {ent.table} WHERE id = ?", (record_id,))
