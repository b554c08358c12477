"""Quarantine: records from the server that failed validation, kept with their error (for
``status`` and the Sync screen) instead of being applied. The one owner of the
``quarantine`` table."""

from __future__ import annotations

import json
from typing import Any

from cache.store import Store


class Quarantine:
    def __init__(self, store: Store):
        self._store = store
        self.conn = store.conn

    def add(self, entity_name: str, record_id: Any, error: str, raw: Any) -> None:
        """Set a record aside with why (inside the caller's transaction); long values are cut."""
        self.conn.execute(
            "INSERT INTO quarantine(entity, record_id, error, raw, seen_at) VALUES (?, ?, ?, ?, ?)",
            (entity_name, str(record_id)[:64] if record_id is not None else None, error[:2000],
             json.dumps(raw, default=str)[:20000], self._store.now()),
        )

    def count(self) -> int:
        """How many invalid records from the server were set aside."""
        return int(self.conn.execute("SELECT count(*) FROM quarantine").fetchone()[0])

    def latest(self, limit: int = 100) -> list[dict[str, Any]]:
        """The records set aside, newest first: {id, entity, record_id, error, seen_at}."""
        cur = self.conn.execute(
            "SELECT id, entity, record_id, error, seen_at FROM quarantine ORDER BY id DESC LIMIT ?", (limit,))
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
