"""The outbox: pending writes on their way to the server, and what came back for each.

* ``next_batch`` hands the sync engine the oldest pending ops (at most one per record, so a
  later edit is always sent against the result of the earlier one) and records that they were
  sent. Ops keep their op id for ever: a re-sent op is applied once (sync-contract promise 5,
  docs/sync-contract.md).
* ``apply_results`` stores each per-op result: applied and merged ops leave the outbox and the
  server's record replaces the local copy (pending fields still win); conflicts are stored with
  both values; rejected ops stay, with the reason, without blocking the ops behind them.
* Conflicts are resolved per field; rejected ops are fixed and re-sent, or discarded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cache.errors import RecordNotFound, ReplicaError
from crm_tui.domain import ENTITIES, entity, format_datetime, validate_fields
from crm_tui.ids import new_id
from crm_tui.protocol import OP_STATUSES

if TYPE_CHECKING:
    from cache.replica import Replica

CUSTOMER_HISTORY = "customer-history"  # a refetch of everything attached to a customer


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


_OP_COLS = "seq, op_id, op, entity, record_id, base_version, fields, base_values, state, sent_count, error, created_at"


def _op(row: tuple[Any, ...]) -> OutboxOp:
    seq, op_id, op, ent, rid, base_version, fields, base_values, state, sent, error, created = row
    return OutboxOp(seq, op_id, op, ent, rid, base_version, json.loads(fields), json.loads(base_values),
                    state, sent, json.loads(error) if error else None, created)


class Outbox:
    def __init__(self, replica: Replica):
        self.replica = replica
        self.conn = replica.conn

    # ------------------------------------------------------------------ reading

    def pending(self, limit: int = 1000) -> list[OutboxOp]:
        """Pending ops, oldest first."""
        rows = self.conn.execute(
            f"SELECT {_OP_COLS} FROM outbox WHERE state = 'pending' ORDER BY seq LIMIT ?", (limit,)
        ).fetchall()
        return [_op(r) for r in rows]

    def rejected(self, limit: int = 1000) -> list[OutboxOp]:
        rows = self.conn.execute(
            f"SELECT {_OP_COLS} FROM outbox WHERE state = 'rejected' ORDER BY seq LIMIT ?", (limit,)
        ).fetchall()
        return [_op(r) for r in rows]

    def get(self, seq: int) -> OutboxOp | None:
        row = self.conn.execute(f"SELECT {_OP_COLS} FROM outbox WHERE seq = ?", (seq,)).fetchone()
        return _op(row) if row else None

    def counts(self) -> dict[str, int]:
        """{'pending': n, 'rejected': n, 'conflicts': n}"""
        out = {"pending": 0, "rejected": 0}
        for state, n in self.conn.execute("SELECT state, count(*) FROM outbox GROUP BY state"):
            out[state] = n
        out["conflicts"] = self.conn.execute(
            "SELECT count(*) FROM conflicts WHERE resolved_at IS NULL").fetchone()[0]
        return out

    def ever_queued(self) -> bool:
        """Whether a local write was ever queued in this replica, sent since or not (the outbox's
        AUTOINCREMENT counter never goes back; a bootstrap queues nothing)."""
        row = self.conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'").fetchone()
        return bool(row and row[0])

    def conflicts(self, limit: int = 1000) -> list[Conflict]:
        rows = self.conn.execute(
            "SELECT id, entity, record_id, op_id, server_version, kind, fields, created_at FROM conflicts "
            "WHERE resolved_at IS NULL ORDER BY id LIMIT ?", (limit,)
        ).fetchall()
        return [Conflict(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6]), r[7]) for r in rows]

    def record_state(self, entity_name: str, record_id: str) -> str | None:
        """'conflict', 'rejected' or 'pending' if the record has something unsynced, else None."""
        if self.conn.execute(
            "SELECT 1 FROM conflicts WHERE entity = ? AND record_id = ? AND resolved_at IS NULL",
            (entity_name, record_id),
        ).fetchone():
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
        for (rid,) in self.conn.execute(
            "SELECT record_id FROM conflicts WHERE entity = ? AND resolved_at IS NULL", (entity_name,)
        ):
            out[rid] = "conflict"
        return out

    # ------------------------------------------------------------------ pushing

    def next_batch(self, limit: int, max_bytes: int = 4 * 1024 * 1024) -> list[OutboxOp]:
        """The oldest pending ops, at most one per record and about ``max_bytes`` of JSON (at
        least one op), marked as sent (in one transaction).

        An op that follows an unanswered op for the same record waits for the next batch, so
        it is always sent after the earlier op's result re-based it.
        """
        with self.replica.transaction():
            rows = self.conn.execute(
                f"SELECT {_OP_COLS} FROM outbox WHERE state = 'pending' ORDER BY seq LIMIT ?", (limit * 4,)
            ).fetchall()
            batch: list[OutboxOp] = []
            seen: set[tuple[str, str]] = set()
            size = 0
            for row in rows:
                op = _op(row)
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
            now = format_datetime(self.replica.clock())
            self.conn.executemany(
                "UPDATE outbox SET sent_count = sent_count + 1, last_sent_at = ? WHERE seq = ?",
                [(now, op.seq) for op in batch],
            )
        return batch

    def apply_results(self, ops: list[OutboxOp], results: list[dict[str, Any]]) -> PushStats:
        """Store the server's per-op results (matched by op id) in one transaction.

        A result that does not fit the protocol is ignored (its op stays pending and is re-sent);
        an op with no result stays pending.
        """
        stats = PushStats()
        by_id = {r.get("op_id"): r for r in results if isinstance(r, dict)}
        with self.replica.transaction():
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
                    self._apply_result(op, res, stats)
                except (KeyError, TypeError, ValueError, OverflowError) as exc:
                    stats.unanswered += 1
                    stats.messages.append(f"unreadable result for {op.summary}: {exc}")
        return stats

    def _apply_result(self, op: OutboxOp, res: dict[str, Any], stats: PushStats) -> None:
        ent = entity(op.entity)
        status = res["status"]
        record = res.get("record") if isinstance(res.get("record"), dict) else None
        if status == "rejected":
            error: dict[str, Any] = res["error"] if isinstance(res.get("error"), dict) else {
                "code": "rejected", "message": "rejected"}
            self.conn.execute(
                "UPDATE outbox SET state = 'rejected', error = ?, updated_at = ? WHERE seq = ?",
                (json.dumps(error), format_datetime(self.replica.clock()), op.seq),
            )
            stats.rejected += 1
            stats.messages.append(f"rejected: {op.summary}: {error.get('message', '')}")
            return
        self.conn.execute("DELETE FROM outbox WHERE seq = ?", (op.seq,))
        if status == "conflict":
            stats.conflicts += 1
            conflicts = res.get("conflicts") or []
            kind = "delete" if op.op == "delete" else "fields"
            fields = {
                c["field"]: {"mine": c.get("client"), "theirs": c.get("server"), "base": op.base_values.get(c["field"])}
                for c in conflicts if isinstance(c, dict) and isinstance(c.get("field"), str)
            }
            if kind == "fields":
                self._fold_later_edits(op, fields)
            self.conn.execute(
                "INSERT INTO conflicts(entity, record_id, op_id, server_version, kind, fields, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (op.entity, op.record_id, op.op_id, res.get("version"), kind, json.dumps(fields),
                 format_datetime(self.replica.clock())),
            )
            if kind == "delete" and op.entity == "customer":
                # The local delete took the customer's history with it; the server kept it all.
                self.request_refetch(CUSTOMER_HISTORY, op.record_id)
        elif status == "merged":
            stats.merged += 1
        else:
            stats.applied += 1
        if res.get("in_scope") is False:
            stats.left_scope += 1
            self.replica.pull.remove_records(ent, [op.record_id])
        elif (record is not None and record.get("id") == op.record_id
              and not (op.op == "delete" and status != "conflict")):
            self.replica.pull.apply_records(ent, [record])

    def _fold_later_edits(self, op: OutboxOp, fields: dict[str, dict[str, Any]]) -> None:
        """Edits of the clashing fields queued after ``op`` (made while it was on its way) are
        the user's latest wish: they become the conflict's "mine" and leave their ops, so the
        record shows mine or theirs, and only the user's choice sends a value for them."""
        later = self.conn.execute(
            "SELECT seq, fields, base_values FROM outbox WHERE entity = ? AND record_id = ? AND state = 'pending'"
            " AND op = 'update' AND seq > ? ORDER BY seq", (op.entity, op.record_id, op.seq)).fetchall()
        for seq, fields_json, base_json in later:
            edit, base = json.loads(fields_json), json.loads(base_json)
            clashing = [name for name in edit if name in fields]
            if not clashing:
                continue
            for name in clashing:
                fields[name]["mine"] = edit.pop(name)
                base.pop(name, None)
            if edit:
                self.conn.execute("UPDATE outbox SET fields = ?, base_values = ? WHERE seq = ?",
                                  (json.dumps(edit), json.dumps(base), seq))
            else:
                self.conn.execute("DELETE FROM outbox WHERE seq = ?", (seq,))

    def hold_in_conflicts(self, entity_name: str, record_id: str, changes: dict[str, Any]) -> dict[str, Any]:
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

    def reject_locally(self, op: OutboxOp, code: str, message: str) -> None:
        """Set an op aside as rejected without the server having judged it (e.g. too large to
        send): it stays visible with its reason, to fix or discard, and stops blocking the queue."""
        with self.replica.transaction():
            self.conn.execute(
                "UPDATE outbox SET state = 'rejected', error = ?, updated_at = ? WHERE seq = ? AND state = 'pending'",
                (json.dumps({"code": code, "message": message, "fields": {}}),
                 format_datetime(self.replica.clock()), op.seq),
            )

    # ------------------------------------------------------------------ conflicts

    def resolve_conflict(self, conflict_id: int, choices: dict[str, str]) -> None:
        """Settle a conflict. For field conflicts ``choices`` maps each field to 'mine' or
        'theirs' (fields left out keep 'theirs'); 'mine' queues an update against the server's
        version. For a delete conflict, ``{'record': 'delete'}`` deletes anyway, anything else
        keeps the record."""
        with self.replica.transaction():
            row = self.conn.execute(
                "SELECT entity, record_id, server_version, kind, fields FROM conflicts WHERE id = ? AND resolved_at IS NULL",
                (conflict_id,),
            ).fetchone()
            if row is None:
                raise ReplicaError(f"conflict {conflict_id} is not open")
            ent_name, rid, server_version, kind, fields_json = row
            ent = entity(ent_name)
            fields = json.loads(fields_json)
            self.conn.execute("UPDATE conflicts SET resolved_at = ? WHERE id = ?", (format_datetime(self.replica.clock()), conflict_id))
            current = self.replica.get(ent_name, rid)
            if kind == "delete":
                if choices.get("record") == "delete" and current is not None:
                    # The local copy now carries the server's version, so the delete is based on it.
                    self.replica.writes.delete(ent_name, rid)
                return
            if current is None:
                return
            kinds = {f.name: f.kind for f in ent.fields}
            mine = {f: v["mine"] for f, v in fields.items() if choices.get(f) == "mine" and f in kinds}
            theirs = {f: v["theirs"] for f, v in fields.items() if choices.get(f) != "mine" and f in kinds}
            self.replica.set_fields(ent, rid, theirs)
            if mine:
                now = format_datetime(self.replica.clock())
                base_values = {f: fields[f]["theirs"] for f in mine}
                self.conn.execute(
                    "INSERT INTO outbox(op_id, op, entity, record_id, base_version, fields, base_values, state,"
                    " created_at, updated_at) VALUES (?, 'update', ?, ?, ?, ?, ?, 'pending', ?, ?)",
                    (new_id("op_"), ent_name, rid, server_version, json.dumps(mine), json.dumps(base_values), now, now),
                )
                self.replica.set_fields(ent, rid, mine)
            self.replica.touch(ent, current)

    # ------------------------------------------------------------------ rejected ops

    def discard(self, seq: int) -> None:
        """Drop a rejected op and put the record back as the server last had it.

        The record is also queued for a refetch, so the next sync brings the server's
        current copy."""
        with self.replica.transaction():
            op = self.get(seq)
            if op is None or op.state != "rejected":
                raise ReplicaError("only a rejected op can be discarded")
            ent = entity(op.entity)
            kinds = {f.name: f.kind for f in ent.fields}
            self.conn.execute("DELETE FROM outbox WHERE seq = ?", (seq,))
            current = self.replica.get(op.entity, op.record_id)
            if op.op == "create":
                if current is not None:
                    self.conn.execute(f"DELETE FROM {ent.table} WHERE id = ?", (op.record_id,))
            elif op.op == "update" and current is not None and (current["version"] or 0) <= (op.base_version or 0):
                # Only while nothing newer was pulled: a pull since then already put the server's
                # values in the row (a rejected op holds nothing back), under their version.
                restore = {k: v for k, v in op.base_values.items() if k in kinds}
                self.replica.set_fields(ent, op.record_id, restore)
            elif op.op == "delete" and current is None and op.base_values:
                row = {k: v for k, v in op.base_values.items() if k in kinds}
                self.replica.insert_record(ent, op.record_id, row, version=op.base_values.get("version") or 0)
            self.request_refetch(op.entity, op.record_id)
            self.replica.touch(ent, current or {**op.base_values, "id": op.record_id})

    def resend(self, seq: int, fields: dict[str, Any] | None = None) -> str:
        """Queue a rejected op again under a new op id, with ``fields`` corrected if given.

        Raises ValidationError for bad values (the op stays rejected)."""
        with self.replica.transaction():
            op = self.get(seq)
            if op is None or op.state != "rejected":
                raise ReplicaError("only a rejected op can be re-sent")
            ent = entity(op.entity)
            new_fields = dict(op.fields)
            if fields:
                new_fields.update(fields)
            if op.op != "delete":
                new_fields = validate_fields(ent, new_fields, creating=op.op == "create")
            current = self.replica.get(op.entity, op.record_id)
            if op.op == "update" and current is None:
                raise RecordNotFound(op.entity, op.record_id)
            if current is not None:
                self.replica.set_fields(ent, op.record_id, new_fields)
            op_id = new_id("op_")
            now = format_datetime(self.replica.clock())
            base_version = op.base_version if op.op != "create" else None
            self.conn.execute(
                "UPDATE outbox SET op_id = ?, fields = ?, state = 'pending', sent_count = 0, error = NULL,"
                " base_version = ?, updated_at = ? WHERE seq = ?",
                (op_id, json.dumps(new_fields), base_version, now, seq),
            )
            if current is not None:
                self.replica.touch(ent, current)
            return op_id

    # ------------------------------------------------------------------ refetch

    def request_refetch(self, entity_name: str, record_id: str) -> None:
        wanted = self.replica.get_meta("refetch", []) or []
        if [entity_name, record_id] not in wanted:
            wanted.append([entity_name, record_id])
        self.replica.set_meta("refetch", wanted)

    def take_refetch(self) -> list[tuple[str, str]]:
        """What the next sync must fetch again: (entity, id), or (CUSTOMER_HISTORY, customer id)
        for everything attached to a customer."""
        wanted = self.replica.get_meta("refetch", []) or []
        return [(e, r) for e, r in wanted if e in ENTITIES or e == CUSTOMER_HISTORY]

    def done_refetch(self, done: list[tuple[str, str]]) -> None:
        with self.replica.transaction():
            wanted = self.replica.get_meta("refetch", []) or []
            left = [w for w in wanted if tuple(w) not in set(done)]
            self.replica.set_meta("refetch", left)
