"""Rejected ops: edits the server refused (or the client could not send), kept in the outbox
with the reason until the user fixes and re-sends them, or discards them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cache.errors import RecordNotFound, ReplicaError
from cache.outbox import Outbox, OutboxOp
from cache.records import Records
from cache.refetch import Refetch
from cache.revisions import Revisions
from cache.store import Store
from crm_tui.core.domain import entity, validate_fields


@dataclass(frozen=True, eq=False)
class RejectedOps:
    """Handed the parts fixing or discarding an op changes: the queue, the record, refetches."""

    _store: Store
    _records: Records
    _revisions: Revisions
    _outbox: Outbox
    _refetch: Refetch

    def reject_locally(self, op: OutboxOp, code: str, message: str) -> None:
        """Set an op aside as rejected without the server having judged it (e.g. too large to
        send): it stays visible with its reason, to fix or discard, and stops blocking the queue."""
        with self._store.transaction():
            self._outbox.reject(op.seq, {"code": code, "message": message, "fields": {}})

    def _rejected(self, seq: int, action: str) -> OutboxOp:
        op = self._outbox.get(seq)
        if op is None or op.state != "rejected":
            raise ReplicaError(f"only a rejected op can be {action}")
        return op

    def discard(self, seq: int) -> None:
        """Drop a rejected op and put the record back as the server last had it.

        The record is also queued for a refetch, so the next sync brings the server's
        current copy."""
        with self._store.transaction():
            op = self._rejected(seq, "discarded")
            ent = entity(op.entity)
            kinds = {f.name: f.kind for f in ent.fields}
            self._outbox.remove(seq)
            current = self._records.get(op.entity, op.record_id)
            if op.op == "create":
                if current is not None:
                    self._records.delete(ent, op.record_id)
            elif op.op == "update" and current is not None and (current["version"] or 0) <= (op.base_version or 0):
                # Only while nothing newer was pulled: a pull since then already put the server's
                # values in the row (a rejected op holds nothing back), under their version.
                restore = {k: v for k, v in op.base_values.items() if k in kinds}
                self._records.set_fields(ent, op.record_id, restore)
            elif op.op == "delete" and current is None and op.base_values:
                row = {k: v for k, v in op.base_values.items() if k in kinds}
                self._records.insert(ent, op.record_id, row, version=op.base_values.get("version") or 0)
            self._refetch.request(op.entity, op.record_id)
            self._revisions.touch(ent, current or {**op.base_values, "id": op.record_id})

    def resend(self, seq: int, fields: dict[str, Any] | None = None) -> str:
        """Queue a rejected op again under a new op id, with ``fields`` corrected if given.

        Raises ValidationError for bad values (the op stays rejected)."""
        with self._store.transaction():
            op = self._rejected(seq, "re-sent")
            ent = entity(op.entity)
            new_fields = dict(op.fields)
            if fields:
                new_fields.update(fields)
            if op.op != "delete":
                new_fields = validate_fields(ent, new_fields, creating=op.op == "create")
            current = self._records.get(op.entity, op.record_id)
            if op.op == "update" and current is None:
                raise RecordNotFound(op.entity, op.record_id)
            if current is not None:
                self._records.set_fields(ent, op.record_id, new_fields)
            op_id = self._outbox.requeue(seq, new_fields, op.base_version if op.op != "create" else None)
            if current is not None:
                self._revisions.touch(ent, current)
            return op_id
