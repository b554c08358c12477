"""The outbox: the queue of writes on their way to the server. The one owner of the ``outbox``
table (pulled pages read it through ``cache.pull``, to keep pending edits).

* Local writes queue ops here (``queue``), and fold later edits into an op never sent
  (``open_op``, ``rewrite_op``).
* ``next_batch`` hands the sync engine the oldest pending ops (at most one per record, so a
  later edit is always sent against the result of the earlier one) and records that they were
  sent. Ops keep their op id for ever: a re-sent op is applied once (sync-contract promise 5,
  docs/sync-contract.md).
* What the server answered is applied by ``cache.push_results``; rejected ops stay here, with
  the reason, without blocking the ops behind them (``cache.rejected`` fixes or discards them).
* ``counts``, ``record_state`` and ``unsynced_ids`` say what is unsynced, conflicts included.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from cache.conflicts import Conflicts
from cache.store import Store
from crm_tui.core.ids import new_id


@dataclass
class OutboxOp:
    seq: int
    op_id: str
    op: str
    entity: str
    record_id: str
    base_version: int | None
    fields: dict[str, Any]
    base_values: dict[str, Any]
    state: str
    sent_count: int
    error: dict[str, Any] | None
    created_at: str

    def to_wire(self) -> dict[str, Any]:
        return {
            "op_id": self.op_id, "op": self.op, "entity": self.entity, "id": self.record_id,
            "base_version": self.base_version, "fields": self.fields if self.op != "delete" else {},
        }

    @property
    def summary(self) -> str:
        if self.op == "delete":
            return f"delete {self.entity} {self.record_id}"
        names = ", ".join(sorted(self.fields)) or "-"
        return f"{self.op} {self.entity} {self.record_id}: {names}"


OP_COLUMNS = "seq, op_id, op, entity, record_id, base_version, fields, base_values, state, sent_count, error, created_at"


def op_from_row(row: tuple[Any, ...]) -> OutboxOp:
    """An ``outbox`` row (its OP_COLUMNS, in order) as an OutboxOp."""
    seq, op_id, op, ent, rid, base_version, fields, base_values, state, sent, error, created = row
    return OutboxOp(seq, op_id, op, ent, rid, base_version, json.loads(fields), json.loads(base_values),
                    state, sent, json.loads(error) if error else None, created)



class Outbox:
    def __init__(self, store: Store, conflicts: Conflicts):
        self._store = store
        self._conflicts = conflicts
        self.conn = store.conn

    # ------------------------------------------------------------------ reading

    def pending(self, limit: int = 1000) -> list[OutboxOp]:
        """Pending ops, oldest first."""
        return self._ops("state = 'pending'", limit)

    def rejected(self, limit: int = 1000) -> list[OutboxOp]:
        """Ops the server (or the client, before sending) refused, oldest first."""
        return self._ops("state = 'rejected'", limit)

    def _ops(self, where: str, limit: int) -> list[OutboxOp]:
        rows = self.conn.execute(
            f"SELECT {OP_COLUMNS} FROM outbox WHERE {where} ORDER BY seq LIMIT ?", (limit,)
        ).fetchall()
        return [op_from_row(r) for r in rows]

    def get(self, seq: int) -> OutboxOp | None:
        row = self.conn.execute(f"SELECT {OP_COLUMNS} FROM outbox WHERE seq = ?", (seq,)).fetchone()
        return op_from_row(row) if row else None

    def counts(self) -> dict[str, int]:
        """{'pending': n, 'rejected': n, 'conflicts': n}"""
        out = {"pending": 0, "rejected": 0}
        for state, n in self.conn.execute("SELECT state, count(*) FROM outbox GROUP BY state"):
            out[state] = n
        out["conflicts"] = self._conflicts.count()
        return out

    def ever_queued(self) -> bool:
        """Whether a local write was ever queued in this replica, sent since or not (the outbox's
        AUTOINCREMENT counter never goes back; a bootstrap queues nothing)."""
        row = self.conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'").fetchone()
        return bool(row and row[0])

    def record_state(self, entity_name: str, record_id: str) -> str | None:
        """'conflict', 'rejected' or 'pending' if the record has something unsynced, else None."""
        if self._conflicts.is_open(entity_name, record_id):
            return "conflict"
        row = self.conn.execute(
            "SELECT min(CASE state WHEN 'rejected' THEN 0 ELSE 1 END) FROM outbox WHERE entity = ? AND record_id = ?",
            (entity_name, record_id),
        ).fetchone()
        if row[0] is None:
            return None
        return "rejected" if row[0] == 0 else "pending"

    def unsynced_ids(self, entity_name: str) -> dict[str, str]:
        """record id -> state, for every record of the entity with something unsynced."""
        out: dict[str, str] = {}
        for rid, state in self.conn.execute(
            "SELECT record_id, state FROM outbox WHERE entity = ? ORDER BY seq", (entity_name,)
        ):
            if out.get(rid) != "rejected":
                out[rid] = state
        for rid in self._conflicts.record_ids(entity_name):
            out[rid] = "conflict"
        return out

    # ------------------------------------------------------------------ queueing (local writes)

    def queue(self, entity_name: str, record_id: str, op: str, base_version: int | None,
              fields: dict[str, Any], base_values: dict[str, Any]) -> str:
        """Append a pending op (inside the caller's transaction); returns its new op id."""
        op_id = new_id("op_")
        now = self._store.now()
        self.conn.execute(
            "INSERT INTO outbox(op_id, op, entity, record_id, base_version, fields, base_values, state,"
            " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?)",
            (op_id, op, entity_name, record_id, base_version, json.dumps(fields), json.dumps(base_values), now, now),
        )
        return op_id

    def open_op(self, entity_name: str, record_id: str) -> dict[str, Any] | None:
        """The newest pending op for the record that was never sent (so it may still change):
        {seq, op, fields, base_values, base_version, sent_count}, fields and base values as JSON."""
        cur = self.conn.execute(
            "SELECT seq, op, fields, base_values, base_version, sent_count FROM outbox "
            "WHERE entity = ? AND record_id = ? AND state = 'pending' ORDER BY seq DESC LIMIT 1",
            (entity_name, record_id),
        )
        row = cur.fetchone()
        if row is None or row[5] > 0:
            return None
        return dict(zip(("seq", "op", "fields", "base_values", "base_version", "sent_count"), row, strict=True))

    def rewrite_op(self, seq: int, fields: dict[str, Any], base_values: dict[str, Any], base_version: int | None,
                   *, op: str | None = None) -> None:
        """Change an op never sent (``open_op``): its fields, base and, given ``op``, its kind."""
        self.conn.execute(
            "UPDATE outbox SET op = coalesce(?, op), fields = ?, base_values = ?, base_version = ?, updated_at = ?"
            " WHERE seq = ?",
            (op, json.dumps(fields), json.dumps(base_values), base_version, self._store.now(), seq),
        )

    def later_edits(self, op: OutboxOp) -> list[OutboxOp]:
        """Pending update ops of ``op``'s record queued after it, oldest first."""
        rows = self.conn.execute(
            f"SELECT {OP_COLUMNS} FROM outbox WHERE entity = ? AND record_id = ? AND state = 'pending'"
            " AND op = 'update' AND seq > ? ORDER BY seq", (op.entity, op.record_id, op.seq)).fetchall()
        return [op_from_row(r) for r in rows]

    def remove(self, seq: int) -> None:
        """Drop an op (inside the caller's transaction): answered, folded away, or discarded."""
        self.conn.execute("DELETE FROM outbox WHERE seq = ?", (seq,))

    # ------------------------------------------------------------------ pushing

    def next_batch(self, limit: int, max_bytes: int = 4 * 1024 * 1024) -> list[OutboxOp]:
        """The oldest pending ops, at most one per record and about ``max_bytes`` of JSON (at
        least one op), marked as sent (in one transaction).

        An op that follows an unanswered op for the same record waits for the next batch, so
        it is always sent after the earlier op's result re-based it.
        """
        with self._store.transaction():
            rows = self.conn.execute(
                f"SELECT {OP_COLUMNS} FROM outbox WHERE state = 'pending' ORDER BY seq LIMIT ?", (limit * 4,)
            ).fetchall()
            batch: list[OutboxOp] = []
            seen: set[tuple[str, str]] = set()
            size = 0
            for row in rows:
                op = op_from_row(row)
                key = (op.entity, op.record_id)
                if key in seen:
                    continue
                seen.add(key)
                # Non-ASCII text is escaped in JSON: count it at its worst (6 bytes a character).
                op_size = 200 + 6 * len(row[6])
                if batch and size + op_size > max_bytes:
                    break
                size += op_size
                batch.append(op)
                if len(batch) >= limit:
                    break
            now = self._store.now()
            self.conn.executemany(
                "UPDATE outbox SET sent_count = sent_count + 1, last_sent_at = ? WHERE seq = ?",
                [(now, op.seq) for op in batch],
            )
        return batch

    # ------------------------------------------------------------------ rejected ops

    def reject(self, seq: int, error: dict[str, Any]) -> None:
        """Set a pending op aside as rejected, with ``error`` ({code, message, ...}): it stays
        visible, to fix or discard, and stops blocking the queue. Inside the caller's transaction."""
        self.conn.execute(
            "UPDATE outbox SET state = 'rejected', error = ?, updated_at = ? WHERE seq = ? AND state = 'pending'",
            (json.dumps(error), self._store.now(), seq),
        )

    def requeue(self, seq: int, fields: dict[str, Any], base_version: int | None) -> str:
        """Make a rejected op pending again under a new op id (the server judged the old one),
        with ``fields``; returns the new op id. Inside the caller's transaction."""
        op_id = new_id("op_")
        self.conn.execute(
            "UPDATE outbox SET op_id = ?, fields = ?, state = 'pending', sent_count = 0, error = NULL,"
            " base_version = ?, updated_at = ? WHERE seq = ?",
            (op_id, json.dumps(fields), base_version, self._store.now(), seq),
        )
        return op_id
