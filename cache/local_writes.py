"""Local writes: what a user saves lands in the replica and the outbox in one durable transaction.

Sync-contract promise 4 (docs/sync-contract.md): when ``create``/``update``/``delete`` return, the change and the op that
will carry it to the server are both on disk (the replica commits with synchronous=FULL). Several
edits of one record before a push coalesce into one op with the earliest base version; an op that
was ever sent is never changed again (its op id may already be applied), so later edits queue
a new op behind it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cache.conflicts import Conflicts
from cache.errors import RecordNotFound
from cache.outbox import Outbox
from cache.records import Records
from cache.revisions import Revisions
from cache.sqlite import sqlite3
from cache.store import Store
from crm_tui.core.domain import (
    CUSTOMER_CHILDREN,
    Entity,
    ValidationError,
    check_activity,
    check_deal_outcome,
    check_order_event,
    check_ticket_transition,
    entity,
    reopened_deal_clears,
    sla_due_for,
    validate_fields,
)
from crm_tui.core.ids import new_id

ID_PREFIX = {
    "customer": "cu_", "contact": "co_", "order": "or_", "ticket": "ti_", "deal": "de_",
    "activity": "ac_", "user": "us_", "territory": "te_", "task": "tk_", "order_event": "oe_",
}


@dataclass(eq=False)
class LocalWrites:
    """Saves, deletes and conflict resolutions made here, each with its outbox op.

    ``_me_record`` answers who the signed-in user is (activities and order events are authored
    by them)."""

    _store: Store
    _records: Records
    _revisions: Revisions
    _outbox: Outbox
    _conflicts: Conflicts
    _me_record: Callable[[], dict[str, Any] | None]
    conn: sqlite3.Connection = field(init=False)

    def __post_init__(self) -> None:
        self.conn = self._store.conn

    # ------------------------------------------------------------------ public

    def check(self, entity_name: str, fields: dict[str, Any], *, record_id: str | None = None) -> dict[str, Any]:
        """Validate a save without writing anything (no lock taken): ``record_id`` None for a
        create. Returns the clean fields; raises ValidationError or RecordNotFound as the save
        itself would."""
        ent = entity(entity_name)
        clean = validate_fields(ent, fields, creating=record_id is None)
        self._check_refs(ent, clean)
        if record_id is not None:
            current = self._records.get(ent.name, record_id)
            if current is None:
                raise RecordNotFound(ent.name, record_id)
            if ent.name == "ticket" and "status" in clean:
                check_ticket_transition(current["status"], clean["status"])
            self._check_rules(ent, {**current, **clean}, clean, current)
        else:
            self._check_rules(ent, clean, clean, None)
        return clean

    @staticmethod
    def new_record_id(entity_name: str) -> str:
        """A fresh client-side id for a record about to be created."""
        return new_id(ID_PREFIX.get(entity(entity_name).name, ""))

    def create(self, entity_name: str, fields: dict[str, Any], *, record_id: str | None = None) -> dict[str, Any]:
        """Create a record locally and queue its create op; returns the stored record.

        Raises ValidationError (field -> message) for bad values or a reference to a record
        the replica does not hold.
        """
        ent = entity(entity_name)
        clean = validate_fields(ent, fields, creating=True)
        self._check_refs(ent, clean)
        self._check_rules(ent, clean, clean, None)
        now = self._store.now()
        rid = record_id or self.new_record_id(ent.name)
        record: dict[str, Any] = {f.name: None for f in ent.fields}
        record.update(clean)
        if "created_at" in ent.by_name:
            record["created_at"] = record["updated_at"] = now
        if ent.name in ("activity", "order_event"):
            record["author_id"] = self._me()
        if ent.name == "ticket" and not record.get("sla_due"):
            record["sla_due"] = sla_due_for(record["priority"], self._store.clock())
        with self._store.transaction():
            if self._records.exists(ent, rid):
                raise ValidationError({"id": f"a {ent.name} with this id already exists"})
            self._write_row(ent, rid, record, version=0, insert=True)
            self._outbox.queue(ent.name, rid, "create", None, clean, {})
            self._revisions.touch(ent, {**record, "id": rid})
        return self._records.get(ent.name, rid)  # type: ignore[return-value]

    def update(self, entity_name: str, record_id: str, fields: dict[str, Any]) -> dict[str, Any]:
        """Change fields of a record locally and queue (or coalesce into) its update op.

        Returns the stored record. Raises RecordNotFound, or ValidationError for bad values,
        server-set or immutable fields, or a ticket status move the workflow forbids.
        """
        ent = entity(entity_name)
        clean = validate_fields(ent, fields, creating=False)
        with self._store.transaction():
            current = self._records.get(ent.name, record_id)
            if current is None:
                raise RecordNotFound(ent.name, record_id)
            if ent.name == "ticket" and "status" in clean:
                check_ticket_transition(current["status"], clean["status"])
            self._check_refs(ent, clean)
            changes = {k: v for k, v in clean.items() if current.get(k) != v}
            if ent.name == "deal":
                changes.update(reopened_deal_clears(current, changes))
            if not changes:
                return current
            self._check_rules(ent, {**current, **changes}, changes, current)
            if "updated_at" in ent.by_name:
                changes_to_store = {**changes, "updated_at": self._store.now()}
            else:
                changes_to_store = changes
            # Fields under an open conflict change its "mine"; only the rest is queued.
            changes_to_queue = self._conflicts.hold(ent.name, record_id, changes)
            self._queue_update(ent.name, record_id, current, changes_to_queue)
            self._write_row(ent, record_id, changes_to_store)
            self._revisions.touch(ent, current)
            return self._records.get(ent.name, record_id)  # type: ignore[return-value]

    def _queue_update(self, entity_name: str, record_id: str, current: dict[str, Any], changes: dict[str, Any]) -> None:
        """Queue ``changes`` of a stored record: into its unsent op, or as a new update op."""
        if not changes:
            return
        open_op = self._outbox.open_op(entity_name, record_id)
        if open_op is not None and open_op["op"] == "create":
            merged = {**json.loads(open_op["fields"]), **changes}
            self._outbox.rewrite_op(open_op["seq"], merged, json.loads(open_op["base_values"]), open_op["base_version"])
        elif open_op is not None and open_op["op"] == "update":
            self._coalesce(entity_name, record_id, open_op, current, changes)
        else:
            self._outbox.queue(entity_name, record_id, "update", current["version"], changes,
                        {k: current.get(k) for k in changes})

    def delete(self, entity_name: str, record_id: str) -> None:
        """Delete a record locally (a customer with everything attached) and queue the delete.

        A record created here and never sent just disappears, with nothing to send.
        """
        ent = entity(entity_name)
        with self._store.transaction():
            current = self._records.get(ent.name, record_id)
            if current is None:
                raise RecordNotFound(ent.name, record_id)
            if ent.name == "order_event" and current.get("kind") == "status":
                raise ValidationError({"kind": "an order's status history is kept; it cannot be deleted"})
            open_op = self._outbox.open_op(ent.name, record_id)
            if open_op is not None and open_op["op"] == "create":
                self._outbox.remove(open_op["seq"])
            elif open_op is not None and open_op["op"] == "update":
                before = {**current, **json.loads(open_op["base_values"])}
                self._outbox.rewrite_op(open_op["seq"], {}, before, open_op["base_version"], op="delete")
            else:
                self._outbox.queue(ent.name, record_id, "delete", current["version"], {}, current)
            if ent.name == "order":  # its history goes with it on the server too
                self.conn.execute("DELETE FROM order_events WHERE order_id = ?", (record_id,))
            if ent.name == "customer":
                # The children go from the replica with it. Their queued edits stay and are sent
                # first: if the delete turns out to clash and the user keeps the customer, those
                # edits were not in vain (and the children come back by a refetch).
                for child in CUSTOMER_CHILDREN:
                    self.conn.execute(f"DELETE FROM {child.table} WHERE customer_id = ?", (record_id,))
            self._records.delete(ent, record_id)
            self._revisions.touch(ent, current)

    def resolve_conflict(self, conflict_id: int, choices: dict[str, str]) -> None:
        """Settle a conflict. For field conflicts ``choices`` maps each field to 'mine' or
        'theirs' (fields left out keep 'theirs'); 'mine' queues an update against the server's
        version. For a delete conflict, ``{'record': 'delete'}`` deletes anyway, anything else
        keeps the record. Raises ReplicaError if the conflict is not open."""
        with self._store.transaction():
            conflict = self._conflicts.settle(conflict_id)
            ent, rid, fields = entity(conflict.entity), conflict.record_id, conflict.fields
            current = self._records.get(ent.name, rid)
            if conflict.kind == "delete":
                if choices.get("record") == "delete" and current is not None:
                    # The local copy now carries the server's version, so the delete is based on it.
                    self.delete(ent.name, rid)
                return
            if current is None:
                return
            kinds = {f.name: f.kind for f in ent.fields}
            mine = {f: v["mine"] for f, v in fields.items() if choices.get(f) == "mine" and f in kinds}
            theirs = {f: v["theirs"] for f, v in fields.items() if choices.get(f) != "mine" and f in kinds}
            self._records.set_fields(ent, rid, theirs)
            if mine:
                base_values = {f: fields[f]["theirs"] for f in mine}
                self._outbox.queue(ent.name, rid, "update", conflict.server_version, mine, base_values)
                self._records.set_fields(ent, rid, mine)
            self._revisions.touch(ent, current)

    # ------------------------------------------------------------------ internals

    def _coalesce(self, entity_name: str, record_id: str, open_op: dict[str, Any], current: dict[str, Any],
                  changes: dict[str, Any]) -> None:
        """Fold an edit into the record's unsent update op.

        While the op is based on the version the row shows, the edit simply merges (and an edit
        back to the original value cancels that field). Once a pull has brought a newer version
        the op could not be re-based on (the server changed a field it changes), the op keeps
        its older base: an edit of one of its fields stays in it, explicitly, even back to the
        old value, so the server still reports the clash; an edit of other fields, made
        looking at the newer version, goes into a new op based on that version."""
        op_fields = json.loads(open_op["fields"])
        base_values = json.loads(open_op["base_values"])
        stale = (open_op["base_version"] or 0) < (current["version"] or 0)
        if stale:
            same = {k: v for k, v in changes.items() if k in op_fields}
            other = {k: v for k, v in changes.items() if k not in op_fields}
            if same:
                self._outbox.rewrite_op(open_op["seq"], {**op_fields, **same}, base_values, open_op["base_version"])
            if other:
                self._outbox.queue(entity_name, record_id, "update", current["version"], other,
                            {k: current.get(k) for k in other})
            return
        for k, v in changes.items():
            if k not in base_values:
                base_values[k] = current.get(k)
            op_fields[k] = v
        # An edit back to the value it was based on is no edit at all.
        for k in [k for k in op_fields if op_fields[k] == base_values.get(k)]:
            del op_fields[k]
            del base_values[k]
        if op_fields:
            self._outbox.rewrite_op(open_op["seq"], op_fields, base_values, open_op["base_version"])
        else:
            self._outbox.remove(open_op["seq"])

    def _me(self) -> str | None:
        me = self._me_record()
        return me.get("id") if me else None

    def _check_refs(self, ent: Entity, clean: dict[str, Any]) -> None:
        errors: dict[str, str] = {}
        for f in ent.fields:
            if f.kind != "ref" or f.ref is None or clean.get(f.name) is None or f.ref in ("user", "territory"):
                continue
            target = entity(f.ref)
            owner_col = "customer_id" if target.anchor == "customer_id" else "NULL"
            row = self.conn.execute(f"SELECT {owner_col} FROM {target.table} WHERE id = ?", (clean[f.name],)).fetchone()
            if row is None:
                errors[f.name] = f"no such {target.name} in the local replica"
            elif (ent.name in ("activity", "task") and f.name in ("ticket_id", "deal_id")
                  and clean.get("customer_id") is not None and row[0] != clean["customer_id"]):
                # The server refuses it too: a follow-up is about one of its own customer's records.
                errors[f.name] = "belongs to another customer"
        if errors:
            raise ValidationError(errors)

    def _check_rules(self, ent: Entity, record: dict[str, Any], changes: dict[str, Any],
                     before: dict[str, Any] | None) -> None:
        """The domain rules the server applies to a record as it would be stored (the same
        functions): only calls and visits have outcomes, closing a deal needs its date (and a
        lost one its reason), order requests need a reason and an order that can take them."""
        if ent.name == "activity":
            check_activity(record)
        elif ent.name == "deal":
            check_deal_outcome(record, changes)
        elif ent.name == "order_event":
            if before is not None and before.get("kind") == "status":
                raise ValidationError({"kind": "an order's status history is recorded by the server; "
                                               "it cannot be edited"})
            order = self._records.get("order", record["order_id"]) if before is None and record.get("order_id") else None
            check_order_event(record, order, creating=before is None)

    def _write_row(self, ent: Entity, record_id: str, values: dict[str, Any], *, version: int = 0, insert: bool = False) -> None:
        if insert:
            self._records.insert(ent, record_id, values, version=version)
            return
        self._records.set_fields(ent, record_id, values)
