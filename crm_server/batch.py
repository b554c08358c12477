"""Batch writes, ``POST /v1/batch``: many ops, one result each (docs/sync-protocol.md).

The whole batch is one write transaction and every op runs in its own savepoint: a rejected op rolls back only itself. An op's result is stored in
the same savepoint as its effect, which is what makes a re-sent batch apply exactly once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from pydantic import ValidationError as ShapeError

from crm_server.errors import InvalidBody, Unauthorized
from crm_server.scope import SYSTEM, Caller, load_caller
from crm_server.store import RecordExists, RecordMissing, Store, StoredOpResult, StoredRecord, WriteTx
from crm_tui.core.domain import (
    ENTITIES,
    ID_RE,
    Entity,
    ValidationError,
    check_activity,
    check_deal_outcome,
    check_order_event,
    check_ticket_transition,
    format_datetime,
    sla_due_for,
    utcnow,
    validate_fields,
)
from crm_tui.core.ids import new_id
from crm_tui.core.protocol import BatchRequest, Op

TERRITORY = ENTITIES["territory"]
ORDER_EVENT = ENTITIES["order_event"]


class OpRejected(Exception):
    """An op the server will not apply; becomes a ``rejected`` result with this code."""

    def __init__(self, code: str, message: str, fields: Mapping[str, str] | None = None):
        super().__init__(message)
        self.code, self.message, self.fields = code, message, dict(fields or {})


class WriteThrough(Protocol):
    """Where the records really live, when this server is a gateway (crm_server/gateway/).

    Called around each op; raising OpRejected rejects the op, any other error stops the batch.
    """

    def before_op(self, raw: Any) -> None:
        """Before the op's transaction (a gateway commits its op ledger entry here)."""

    def check_and_refresh(self, tx: WriteTx, op: Op, ent: Entity) -> None:
        """In the op's transaction, before the merge logic: bring the stored record up to date."""

    def created(self, tx: WriteTx, ent: Entity, op_id: str, record: dict[str, Any]) -> None:
        """After the local insert of a create, in its savepoint."""

    def updated(self, tx: WriteTx, ent: Entity, record_id: str, changes: dict[str, Any]) -> None:
        """After the local update (only when fields changed), in its savepoint."""

    def deleting(self, tx: WriteTx, ent: Entity, record_id: str) -> None:
        """Before the local delete, in its savepoint."""


def batch_ops(doc: Any) -> list[dict[str, Any]]:
    """The ops of a ``POST /v1/batch`` body (already parsed and within crm_server.limits).

    Raises InvalidBody (422) naming what is wrong where when the body is not ``{"ops": [...]}``
    with up to MAX_BATCH_OPS objects; what is inside each op is judged later, op by op.
    """
    try:
        return BatchRequest.model_validate(doc).ops
    except ShapeError as exc:
        raise InvalidBody("the request body is not of the right shape", fields=_shape_fields(exc, "body")) from None


def apply_batch(store: Store, user_id: str, ops: Sequence[Any], *, now: dt.datetime | None = None,
                write_through: WriteThrough | None = None) -> list[dict]:
    """Apply ``ops`` in order for ``user_id`` and return one result dict per op (OpResult shape).

    A bad op never fails the batch. Raises Unauthorized if the user no longer exists or is
    inactive, and StoreError/StoreBusy if the database itself fails (then nothing was applied).
    With ``write_through`` each op runs in its own transaction (so the write lock is never held
    across more than one op's upstream calls); an error it raises stops the batch after the ops
    already applied, whose results are stored, so a re-sent batch replays them.
    """
    if write_through is None:
        # Run again from the start if the transaction lost a race with another writer
        # (PostgreSQL deadlock): nothing of the lost attempt was committed.
        def run_all(tx: WriteTx) -> list[dict]:
            run = _BatchRun(tx, _caller(tx, user_id), now or utcnow())
            return [run.apply(raw) for raw in ops]

        return store.transact(run_all)
    results: list[dict] = []
    run = None
    for raw in ops:
        write_through.before_op(raw)
        with store.write() as tx:
            if run is None:
                run = _BatchRun(tx, _caller(tx, user_id), now or utcnow(), write_through)
            run.tx = tx
            results.append(run.apply(raw))
    return results


def _caller(tx: WriteTx, user_id: str) -> Caller:
    caller = load_caller(tx, user_id)
    if caller is None:
        raise Unauthorized("this token's user no longer exists or is inactive")
    return caller


def _result(op_id: str | None, status: str, **kw: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "op_id": op_id,
        "status": status,
        "version": None,
        "record": None,
        "in_scope": True,
        "conflicts": [],
        "error": None,
        "replayed": False,
    }
    out.update(kw)
    return out


def _rejected(op_id: str | None, code: str, message: str, fields: Mapping[str, str] | None = None) -> dict:
    return _result(op_id, "rejected", error={"code": code, "message": message, "fields": dict(fields or {})})


def _shape_fields(exc: ShapeError, whole: str = "op") -> dict[str, str]:
    fields: dict[str, str] = {}
    for err in exc.errors(include_url=False, include_input=False):
        key = ".".join(str(p) for p in err.get("loc", ())) or whole
        fields.setdefault(key[:100], str(err.get("msg", "is invalid")))
    return fields


def _has_lone_surrogates(value: Any) -> bool:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(_has_lone_surrogates(k) or _has_lone_surrogates(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_lone_surrogates(v) for v in value)
    return False


class _BatchRun:
    def __init__(self, tx: WriteTx, caller: Caller, now: dt.datetime, through: WriteThrough | None = None):
        self.tx, self.caller, self.now, self.through = tx, caller, now, through
        self.stamp = format_datetime(now)
        # (entity, id, field) -> the version this batch gave the field. A client's ops on one
        # record are sequential on its side, so its own earlier op is not a server-side change.
        self.touched: dict[tuple[str, str, str], int] = {}

    def apply(self, raw: Any) -> dict[str, Any]:
        """One op's result; never raises for anything in the op itself."""
        op_id = raw.get("op_id") if isinstance(raw, dict) else None
        op_id = op_id if isinstance(op_id, str) and ID_RE.match(op_id) else None
        if _has_lone_surrogates(raw):
            # JSON can escape half a UTF-16 pair; no database or encoder can store it.
            return _rejected(op_id, "invalid_op", "text in this op is not valid Unicode (a lone surrogate)")
        try:
            op = Op.model_validate(raw)
        except ShapeError as exc:
            return _rejected(op_id, "invalid_op", "this op is malformed", _shape_fields(exc))
        ent = ENTITIES.get(op.entity)
        if ent is None:
            return _rejected(op.op_id, "invalid_op", "unknown entity", {"entity": "must be one of " + ", ".join(ENTITIES)})
        stored = self.tx.op_result(op.op_id)
        if stored is not None:
            return self._replay(op, ent, stored)
        if ent.admin_only and not self.caller.is_admin:
            return _rejected(op.op_id, "forbidden", f"only admins may change {ent.table}")
        handler = {"create": self._create, "update": self._update, "delete": self._delete}[op.op]
        try:
            if self.through is not None:
                # Outside the op's savepoint: a refreshed record stays refreshed if the op is rejected.
                self.through.check_and_refresh(self.tx, op, ent)
        except OpRejected as exc:
            return _rejected(op.op_id, exc.code, exc.message, exc.fields)
        try:
            with self.tx.savepoint():
                result = handler(op, ent)
                self.tx.save_op_result(op.op_id, self.caller.id, ent, op.id, result)
                return result
        except OpRejected as exc:
            return _rejected(op.op_id, exc.code, exc.message, exc.fields)
        except RecordMissing:  # deleted by a concurrent writer after the checks above
            return _rejected(op.op_id, "not_found", "a record this op needs no longer exists")
        except RecordExists:  # created by a concurrent writer after the checks above
            return _rejected(op.op_id, "exists", f"a {ent.label.lower()} with id {op.id} already exists")
        except ValidationError as exc:
            return _rejected(op.op_id, "validation", "some fields are invalid", exc.errors)

    # ------------------------------------------------------------------ replays

    def _replay(self, op: Op, ent: Entity, stored: StoredOpResult) -> dict[str, Any]:
        if (stored.user_id, stored.entity, stored.record_id) != (self.caller.id, ent.name, op.id):
            return _rejected(op.op_id, "op_id_reused", "this op id was already used for another op; give every op a new id")
        result = dict(stored.result, replayed=True)
        if result.get("record") is not None:
            # The stored record may have left the caller's scope since: never send it then.
            current = self.tx.get(ent, op.id)
            if current is None or not self.caller.sees(current.territory):
                result["record"], result["in_scope"] = None, False
        return result

    # ------------------------------------------------------------------ checks

    def _visible(self, ent: Entity, record_id: str) -> StoredRecord:
        """The live record, locked for this batch, if the caller may see it; otherwise OpRejected
        (deleted / not_found)."""
        current = self.tx.lock(ent, record_id)
        if current is not None and self.caller.sees(current.territory):
            return current
        if current is None:
            tomb = self.tx.tombstone(ent, record_id)
            if tomb is not None and self.caller.sees(tomb.territory):
                raise OpRejected("deleted", f"this {ent.label.lower()} was deleted on the server")
        raise OpRejected("not_found", f"no such {ent.label.lower()}")

    def _check_refs(self, ent: Entity, values: Mapping[str, Any], customer_id: str | None) -> None:
        """Every referenced record must exist and be in scope; an activity's or a task's ticket
        and deal must belong to its customer."""
        found: dict[str, StoredRecord] = {}
        for name, value in values.items():
            f = ent.by_name[name]
            if f.kind != "ref" or value is None or f.ref is None:
                continue
            target = ENTITIES[f.ref]
            ref = self.tx.get(target, value)
            if ref is None or not self.caller.sees(ref.territory):
                raise OpRejected("not_found", f"{f.label.lower()} {value} does not exist", {name: f"no such {target.name}"})
            found[name] = ref
        if ent.name in ("activity", "task", "order_event"):
            for name in ("ticket_id", "deal_id", "contact_id", "order_id"):
                if name in found and found[name].record["customer_id"] != customer_id:
                    raise ValidationError({name: "belongs to another customer"})
        if ent.name == "user" and values.get("territories"):
            missing = [t for t in values["territories"] if self.tx.get(TERRITORY, t) is None]
            if missing:
                raise OpRejected("not_found", "no such territory", {"territories": "no such territory: " + ", ".join(missing)})

    def _check_territory(self, territory: str | None) -> None:
        if not self.caller.sees(territory):
            raise OpRejected(
                "scope",
                f"territory {territory} is not one of yours",
                {"territory": "you can only put customers in your own territories"},
            )

    # ------------------------------------------------------------------ ops

    def _create(self, op: Op, ent: Entity) -> dict[str, Any]:
        if self.tx.get(ent, op.id) is not None:
            raise OpRejected("exists", f"a {ent.label.lower()} with id {op.id} already exists")
        if self.tx.tombstone(ent, op.id) is not None:
            raise OpRejected("exists", f"id {op.id} belonged to a deleted {ent.label.lower()}; ids are never reused")
        clean = validate_fields(ent, op.fields, creating=True)
        self._check_refs(ent, clean, clean.get("customer_id"))
        if ent.name == "customer":
            self._check_territory(clean["territory"])
        self._check_rules(ent, clean, clean, None)
        record: dict[str, Any] = {"id": op.id, **clean}
        if "created_at" in ent.by_name:
            record["created_at"] = record["updated_at"] = self.stamp
        if ent.name == "ticket":
            record["number"] = self.tx.next_number("ticket")
            if not record.get("sla_due"):
                record["sla_due"] = sla_due_for(record["priority"], self.now)
        elif ent.name == "order":
            record["number"] = f"SO-{self.tx.next_number('order'):08d}"
        elif ent.name in ("activity", "order_event"):
            record["author_id"] = None if self.caller is SYSTEM else self.caller.id
        self.tx.insert(ent, record)
        if self.through is not None:
            self.through.created(self.tx, ent, op.op_id, record)
        if ent.name == "order":
            self._record_status(record, record["status"])
        return self._written("applied", op, ent, [])

    def _update(self, op: Op, ent: Entity) -> dict[str, Any]:
        if op.base_version is None:
            raise OpRejected("invalid_op", "an update needs the base_version it was based on", {"base_version": "is required"})
        current = self._visible(ent, op.id)
        clean = validate_fields(ent, op.fields, creating=False)
        conflicts, changes = [], {}
        for name, value in clean.items():
            server = current.record.get(name)
            if value == server:
                continue  # changed on both sides to the same value, or not changed at all
            changed_at = current.field_versions.get(name, 0)
            if changed_at > op.base_version and self.touched.get((ent.name, op.id, name)) != changed_at:
                conflicts.append({"field": name, "server": server, "client": value})
                continue
            changes[name] = value
        self._check_refs(ent, changes, current.record.get("customer_id"))
        if ent.name == "customer" and "territory" in changes:
            self._check_territory(changes["territory"])
        if ent.name == "ticket" and "status" in changes:
            check_ticket_transition(current.record["status"], changes["status"])
        if changes or ent.name == "order_event":
            self._check_rules(ent, {**current.record, **changes}, changes, current.record)
        if changes:
            if "updated_at" in ent.by_name:
                changes["updated_at"] = self.stamp
            version = self.tx.update(ent, op.id, changes)
            if self.through is not None:
                self.through.updated(self.tx, ent, op.id, changes)
            if ent.name == "order" and "status" in changes:
                self._record_status(current.record, changes["status"])
            for name in changes:
                self.touched[(ent.name, op.id, name)] = version
        status = "conflict" if conflicts else ("merged" if current.version > op.base_version else "applied")
        return self._written(status, op, ent, conflicts)

    def _delete(self, op: Op, ent: Entity) -> dict[str, Any]:
        if op.base_version is None:
            raise OpRejected("invalid_op", "a delete needs the base_version it was based on", {"base_version": "is required"})
        current = self._visible(ent, op.id)
        changed = sorted(
            name
            for name, at in current.field_versions.items()
            if at > op.base_version
            and name in ent.by_name
            and ent.by_name[name].writable
            and self.touched.get((ent.name, op.id, name)) != at
        )
        if changed:
            # Someone edited the record since the client saw it: deleting would lose that edit unseen.
            conflicts = [{"field": n, "server": current.record.get(n), "client": None} for n in changed]
            return self._written("conflict", op, ent, conflicts)
        if ent.name == "territory" and self.tx.has_customers_in(op.id):
            raise ValidationError({"id": "this territory still has customers; move them to another territory first"})
        if ent.name == "order_event" and current.record.get("kind") == "status":
            raise ValidationError({"kind": "an order's status history is kept; it cannot be deleted"})
        if self.through is not None:
            self.through.deleting(self.tx, ent, op.id)
        if ent.name == "order":
            # Its history goes with it (each event gets its own tombstone, so replicas drop it too).
            for event in self._order_events(op.id):
                self.tx.delete(ORDER_EVENT, event["id"])
        version = self.tx.delete(ent, op.id)
        return _result(op.op_id, "applied", version=version)

    def _check_rules(self, ent: Entity, record: dict[str, Any], changes: Mapping[str, Any],
                     before: Mapping[str, Any] | None) -> None:
        """The domain's rules for a record as it would be stored (ValidationError if broken)."""
        if ent.name == "activity":
            check_activity(record)
        elif ent.name == "deal":
            check_deal_outcome(record, changes)
        elif ent.name == "order_event":
            if before is not None and before.get("kind") == "status":
                raise ValidationError({"kind": "an order's status history is recorded by the server; "
                                               "it cannot be edited"})
            order = None
            if before is None:
                stored = self.tx.get(ENTITIES["order"], record["order_id"])
                order = stored.record if stored is not None else None
            check_order_event(record, order, creating=before is None)

    def _record_status(self, order: Mapping[str, Any], status: str) -> None:
        """Append a status event to an order's history, in the op's savepoint: the history
        says when an order reached each status, whoever changed it."""
        self.tx.insert(ORDER_EVENT, {
            "id": new_id("oe_"), "customer_id": order["customer_id"], "order_id": order["id"], "kind": "status",
            "status": status, "reason": None, "author_id": None if self.caller is SYSTEM else self.caller.id,
            "occurred_at": self.stamp, "created_at": self.stamp, "updated_at": self.stamp,
        })

    def _order_events(self, order_id: str) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        after = None
        while True:
            page = self.tx.list_records(ORDER_EVENT, after=after, limit=500, filters={"order_id": order_id},
                                        territories=None)
            events += page
            if len(page) < 500:
                return events
            after = page[-1]["id"]

    def _written(self, status: str, op: Op, ent: Entity, conflicts: list[dict]) -> dict[str, Any]:
        stored = self.tx.get(ent, op.id)
        assert stored is not None  # written in this savepoint
        in_scope = self.caller.sees(stored.territory)
        return _result(
            op.op_id,
            status,
            version=stored.version,
            record=stored.record if in_scope else None,
            in_scope=in_scope,
            conflicts=conflicts,
        )
