"""Applying what the server answered for each pushed op (``POST /v1/batch``).

Applied and merged ops leave the outbox and the server's record replaces the local copy
(pending fields still win, as in a pull); a conflict leaves the outbox for the ``conflicts``
table with both values; a rejected op stays in the outbox with the reason, without blocking
the ops behind it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cache.conflicts import Conflicts
from cache.outbox import Outbox, OutboxOp
from cache.pull import ServerApply
from cache.refetch import CUSTOMER_HISTORY, Refetch
from cache.store import Store
from crm_tui.core.domain import entity
from crm_tui.core.protocol import OP_STATUSES


@dataclass
class PushStats:
    applied: int = 0
    merged: int = 0
    conflicts: int = 0
    rejected: int = 0
    left_scope: int = 0
    unanswered: int = 0
    messages: list[str] = field(default_factory=list)

    @property
    def done(self) -> int:
        return self.applied + self.merged + self.conflicts + self.rejected


@dataclass(frozen=True, eq=False)
class PushResults:
    """Handed the parts a result changes: the queue, conflicts, refetches, the records."""

    _store: Store
    _outbox: Outbox
    _conflicts: Conflicts
    _refetch: Refetch
    _server: ServerApply

    def apply(self, ops: list[OutboxOp], results: list[dict[str, Any]]) -> PushStats:
        """Store the server's per-op results (matched by op id) in one transaction.

        A result that does not fit the protocol is ignored (its op stays pending and is re-sent);
        an op with no result stays pending.
        """
        stats = PushStats()
        by_id = {r.get("op_id"): r for r in results if isinstance(r, dict)}
        with self._store.transaction():
            for op in ops:
                res = by_id.get(op.op_id)
                if res is None or res.get("status") not in OP_STATUSES:
                    stats.unanswered += 1
                    continue
                version = res.get("version")
                if version is not None and (isinstance(version, bool) or not isinstance(version, int)
                                            or not 0 <= version <= 2**53):
                    stats.unanswered += 1
                    stats.messages.append(f"unreadable result for {op.summary}: version {str(version)[:30]}")
                    continue
                try:
                    self._apply_one(op, res, stats)
                except (KeyError, TypeError, ValueError, OverflowError) as exc:
                    stats.unanswered += 1
                    stats.messages.append(f"unreadable result for {op.summary}: {exc}")
        return stats

    def _apply_one(self, op: OutboxOp, res: dict[str, Any], stats: PushStats) -> None:
        ent = entity(op.entity)
        status = res["status"]
        record = res.get("record") if isinstance(res.get("record"), dict) else None
        if status == "rejected":
            error: dict[str, Any] = res["error"] if isinstance(res.get("error"), dict) else {
                "code": "rejected", "message": "rejected"}
            self._outbox.reject(op.seq, error)
            stats.rejected += 1
            stats.messages.append(f"rejected: {op.summary}: {error.get('message', '')}")
            return
        self._outbox.remove(op.seq)
        if status == "conflict":
            stats.conflicts += 1
            self._store_conflict(op, res)
        elif status == "merged":
            stats.merged += 1
        else:
            stats.applied += 1
        if res.get("in_scope") is False:
            stats.left_scope += 1
            self._server.remove_records(ent, [op.record_id])
        elif (record is not None and record.get("id") == op.record_id
              and not (op.op == "delete" and status != "conflict")):
            self._server.apply_records(ent, [record])

    def _store_conflict(self, op: OutboxOp, res: dict[str, Any]) -> None:
        conflicts = res.get("conflicts") or []
        kind = "delete" if op.op == "delete" else "fields"
        fields = {
            c["field"]: {"mine": c.get("client"), "theirs": c.get("server"), "base": op.base_values.get(c["field"])}
            for c in conflicts if isinstance(c, dict) and isinstance(c.get("field"), str)
        }
        if kind == "fields":
            self._fold_later_edits(op, fields)
        self._conflicts.add(op.entity, op.record_id, op.op_id, res.get("version"), kind, fields)
        if kind == "delete" and op.entity == "customer":
            # The local delete took the customer's history with it; the server kept it all.
            self._refetch.request(CUSTOMER_HISTORY, op.record_id)

    def _fold_later_edits(self, op: OutboxOp, fields: dict[str, dict[str, Any]]) -> None:
        """Edits of the clashing fields queued after ``op`` (made while it was on its way) are
        the user's latest wish: they become the conflict's "mine" and leave their ops, so the
        record shows mine or theirs, and only the user's choice sends a value for them."""
        for later in self._outbox.later_edits(op):
            edit, base = later.fields, later.base_values
            clashing = [name for name in edit if name in fields]
            if not clashing:
                continue
            for name in clashing:
                fields[name]["mine"] = edit.pop(name)
                base.pop(name, None)
            if edit:
                self._outbox.rewrite_op(later.seq, edit, base, later.base_version)
            else:
                self._outbox.remove(later.seq)
