"""Batch writes, ``POST /v1/batch``: many ops, one result each (docs/sync-protocol.md).

The whole batch is one write transaction. An op applied on its own runs in its own savepoint: a
rejected op rolls back only itself. Runs of consecutive creates, and of consecutive updates of
distinct records, are checked first and written together (a few statements for the run, the
results those of one op after the other; a rejected op of a run writes nothing). An op's result
is stored in the same transaction as its effect, which is what makes a re-sent batch apply
exactly once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from pydantic import ValidationError as ShapeError

from crm_server.errors import InvalidBody, Unauthorized
from crm_server.scope import SYSTEM, Caller, load_caller
from crm_server.store import RecordExists, RecordMissing, Store, StoredOpResult, StoredRecord, WriteTx
from crm_server.store.schema import PARTITIONED
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
            return _BatchRun(tx, _caller(tx, user_id), now or utcnow()).apply_all(ops)

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


def _validated_with_refs(tx: WriteTx, run: Sequence[tuple[Any, Op, Entity]], *, creating: bool,
                        skip: Callable[[Op, Entity], bool]) -> tuple[dict[int, dict[str, Any]],
                                                                 dict[tuple[str, str], StoredRecord | None]]:
    """For a run of creates or updates: each op's validated fields by its place in the run (an op
    ``skip`` names, or whose fields fail, is left out), and every record those fields refer to,
    read with one statement per entity (None where it does not exist)."""
    cleans: dict[int, dict[str, Any]] = {}
    refs: dict[str, set[str]] = {}
    for k, (_, op, ent) in enumerate(run):
        if skip(op, ent):
            continue
        try:
            cleans[k] = clean = validate_fields(ent, op.fields, creating=creating)
        except ValidationError:
            continue
        for name, value in clean.items():
            f = ent.by_name[name]
            if f.kind == "ref" and f.ref is not None and value is not None:
                refs.setdefault(f.ref, set()).add(value)
    known: dict[tuple[str, str], StoredRecord | None] = {}
    for target, wanted in refs.items():
        found = tx.get_many(ENTITIES[target], sorted(wanted))
        known.update(((target, i), found.get(i)) for i in wanted)
    return cleans, known


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

    def apply_all(self, ops: Sequence[Any]) -> list[dict[str, Any]]:
        """The result of each op, in order. Consecutive creates of customers' records (orders,
        contacts, activities, ...) that do not depend on one another are checked and written
        together (:meth:`_create_run`): a few statements for the run instead of a dozen per op,
        with the same results as one op after the other."""
        results: list[dict[str, Any]] = []
        run: list[tuple[Any, Op, Entity]] = []
        made: set[str] = set()  # ids the run creates
        op_ids: set[str] = set()
        edits: list[tuple[Any, Op, Entity]] = []  # a run of updates (see _update_run)
        for raw in ops:
            fast = self._fast_create(raw)
            if fast is not None and run:
                op, ent = fast
                refs = {v for f in ent.fields if f.kind == "ref" and isinstance(v := op.fields.get(f.name), str)}
                if op.op_id in op_ids or op.id in made or refs & made:
                    fast = None  # depends on the run: the run goes first, then this op on its own
            edit = self._fast_update(raw) if fast is None else None
            if edit is not None and edits and self._depends(edit, edits):
                results += self._update_run(edits)  # the run goes first; this op starts the next one
                edits = []
            if edits and edit is None:
                results += self._update_run(edits)
                edits = []
            if run and fast is None:
                results += self._create_run(run)
                run, made, op_ids = [], set(), set()
            if edit is not None:
                edits.append((raw, *edit))
            elif fast is None:
                results.append(self.apply(raw))
            else:
                run.append((raw, *fast))
                made.add(fast[0].id)
                op_ids.add(fast[0].op_id)
        if run:
            results += self._create_run(run)
        if edits:
            results += self._update_run(edits)
        return results

    def _fast_create(self, raw: Any) -> tuple[Op, Entity] | None:
        """(op, entity) when ``raw`` is a well-formed create :meth:`_create_run` can take."""
        if self.through is not None or not isinstance(raw, dict):
            return None
        op_id = raw.get("op_id")
        if raw.get("op") != "create" or not isinstance(op_id, str) or not ID_RE.match(op_id) or _has_lone_surrogates(raw):
            return None
        name = raw.get("entity")
        ent = ENTITIES.get(name) if isinstance(name, str) else None
        if ent is None or ent.anchor != "customer_id" or ent.name == "order_event" or ent.admin_only:
            return None
        try:
            op = Op.model_validate(raw)
        except ShapeError:
            return None
        return op, ent

    def _create_run(self, run: Sequence[tuple[Any, Op, Entity]]) -> list[dict[str, Any]]:
        """Creates of customers' records, none of which refers to another of the run: each is
        checked as :meth:`_create` checks it (from a few statements' worth of lookups), and the
        accepted ones are written with :meth:`WriteTx.insert_many` in one savepoint. If a
        concurrent writer got in between (an id or op id taken meanwhile, a customer gone), that
        savepoint rolls back and the run's ops are applied one by one instead."""
        tx = self.tx
        stored = tx.op_results([op.op_id for _, op, _ in run])
        by_ent: dict[str, tuple[Entity, list[str]]] = {}
        for _, op, ent in run:
            by_ent.setdefault(ent.name, (ent, []))[1].append(op.id)
        known: dict[tuple[str, str], StoredRecord | None] = {}
        tombs: set[tuple[str, str]] = set()
        for name, (ent, ids) in by_ent.items():
            # From the change log's index: reading the ids from orders would look in every partition.
            states = tx.id_states(ent, ids)
            live = [i for i in ids if states.get(i) == "upsert"]
            found = tx.get_many(ent, live) if live else {}
            known.update(((name, i), found.get(i)) for i in ids)
            tombs.update((name, i) for i in ids if states.get(i) == "delete")
        # An op whose fields fail is left out here: _check_create raises it again, in its turn.
        cleans, referred = _validated_with_refs(tx, run, creating=True, skip=lambda op, _ent: op.op_id in stored)
        known.update(referred)

        def get(ent: Entity, record_id: str) -> StoredRecord | None:
            key = (ent.name, record_id)
            return known[key] if key in known else tx.get(ent, record_id)

        results: list[dict[str, Any] | None] = [None] * len(run)
        accepted: list[tuple[int, Op, Entity, dict[str, Any]]] = []
        for k, (_, op, ent) in enumerate(run):
            if op.op_id in stored:
                results[k] = self._replay(op, ent, stored[op.op_id])
                continue
            try:
                clean = self._check_create(op, ent, get, lambda e, i: (e.name, i) in tombs, cleans.get(k))
            except OpRejected as exc:
                results[k] = _rejected(op.op_id, exc.code, exc.message, exc.fields)
                continue
            except ValidationError as exc:
                results[k] = _rejected(op.op_id, "validation", "some fields are invalid", exc.errors)
                continue
            accepted.append((k, op, ent, clean))
        if accepted:
            try:
                with tx.savepoint():
                    self._write_run(accepted, results)
            except (RecordExists, RecordMissing):
                return [self.apply(raw) for raw, _, _ in run]
        return [r for r in results if r is not None]

    def _write_run(self, accepted: Sequence[tuple[int, Op, Entity, dict[str, Any]]],
                   results: list[dict[str, Any] | None]) -> None:
        tx = self.tx
        wanted = {c: sum(1 for _, _, ent, _ in accepted if ent.name == c) for c in ("ticket", "order")}
        numbers = {c: iter(tx.next_numbers(c, n)) for c, n in wanted.items() if n}
        items: list[tuple[Entity, Mapping[str, Any]]] = []
        for _, op, ent, clean in accepted:
            record = self._new_record(op, ent, clean, next(numbers[ent.name]) if ent.name in numbers else None)
            items.append((ent, record))
            if ent.name == "order":
                items.append((ORDER_EVENT, self._status_event(record, record["status"])))
        tx.insert_many(items)
        by_ent: dict[str, tuple[Entity, list[str], set[Any]]] = {}
        for _, op, ent, clean in accepted:
            ids, keys = by_ent.setdefault(ent.name, (ent, [], set()))[1:]
            ids.append(op.id)
            if ent.name in PARTITIONED:
                keys.add(clean.get(PARTITIONED[ent.name]))
        # Read back as get() reads them (the same wire values); orders only from their months' partitions.
        written = {name: tx.get_many(ent, ids, partitions=() if None in keys else sorted(keys))
                   for name, (ent, ids, keys) in by_ent.items()}
        rows = []
        for k, op, ent, _ in accepted:
            stored = written[ent.name][op.id]
            in_scope = self.caller.sees(stored.territory)
            results[k] = result = _result(op.op_id, "applied", version=stored.version,
                                          record=stored.record if in_scope else None, in_scope=in_scope)
            rows.append((op.op_id, self.caller.id, ent, op.id, result))
        tx.save_op_results(rows)

    def _fast_update(self, raw: Any) -> tuple[Op, Entity] | None:
        """(op, entity) when ``raw`` is a well-formed update :meth:`_update_run` can take: of a
        customer or a customer's record, moving nothing (no customer's territory, no order's
        status, which writes a status event), with a base version."""
        if self.through is not None or not isinstance(raw, dict):
            return None
        op_id, fields = raw.get("op_id"), raw.get("fields")
        if raw.get("op") != "update" or not isinstance(op_id, str) or not ID_RE.match(op_id) or not isinstance(fields, dict):
            return None
        name = raw.get("entity")
        ent = ENTITIES.get(name) if isinstance(name, str) else None
        if ent is None or ent.admin_only or ent.anchor not in ("self", "customer_id") or ent.name == "order_event":
            return None
        if (ent.anchor == "self" and "territory" in fields) or (ent.name == "order" and "status" in fields):
            return None
        if _has_lone_surrogates(raw):
            return None
        try:
            op = Op.model_validate(raw)
        except ShapeError:
            return None
        return (op, ent) if op.base_version is not None else None

    @staticmethod
    def _depends(edit: tuple[Op, Entity], edits: Sequence[tuple[Any, Op, Entity]]) -> bool:
        """Whether an update must see the effect of one of ``edits`` (the same op id or record,
        or a reference to a record they change): then it goes in a run after theirs."""
        op, ent = edit
        refs = {v for f in ent.fields if f.kind == "ref" and isinstance(v := op.fields.get(f.name), str)}
        return any(o.op_id == op.op_id or o.id == op.id or o.id in refs for _, o, _ in edits)

    def _update_run(self, run: Sequence[tuple[Any, Op, Entity]]) -> list[dict[str, Any]]:
        """Updates of distinct records (none referring to another of the run), each checked as
        :meth:`_update` checks it and all written with :meth:`WriteTx.update_many`: their op
        results, their records (locked: :meth:`WriteTx.lock_many`, in id order) and the records
        their new values refer to are read with a statement each, not a dozen statements per op.
        The results are those of one op after the other."""
        tx = self.tx
        stored = tx.op_results([op.op_id for _, op, _ in run])
        by_ent: dict[str, tuple[Entity, list[str]]] = {}
        for _, op, ent in run:
            if op.op_id not in stored:
                by_ent.setdefault(ent.name, (ent, []))[1].append(op.id)
        locked: dict[tuple[str, str], StoredRecord] = {}
        for name, (ent, ids) in sorted(by_ent.items()):  # a fixed order of locks
            locked.update(((name, i), r) for i, r in tx.lock_many(ent, ids).items())
        # An op whose fields fail is left out here: _plan_update raises it again, in its turn.
        cleans, known = _validated_with_refs(
            tx, run, creating=False, skip=lambda op, ent: op.op_id in stored or (ent.name, op.id) not in locked)

        def get(ent: Entity, record_id: str) -> StoredRecord | None:
            key = (ent.name, record_id)
            return known[key] if key in known else tx.get(ent, record_id)

        results: list[dict[str, Any] | None] = [None] * len(run)
        planned: list[tuple[int, Op, Entity, StoredRecord, dict[str, Any], list[dict]]] = []
        for k, (_, op, ent) in enumerate(run):
            if op.op_id in stored:
                results[k] = self._replay(op, ent, stored[op.op_id])
                continue
            try:
                current = self._seen(ent, op.id, locked.get((ent.name, op.id)))
                changes, conflicts = self._plan_update(op, ent, current, get, cleans.get(k))
            except OpRejected as exc:
                results[k] = _rejected(op.op_id, exc.code, exc.message, exc.fields)
                continue
            except ValidationError as exc:
                results[k] = _rejected(op.op_id, "validation", "some fields are invalid", exc.errors)
                continue
            planned.append((k, op, ent, current, changes, conflicts))
        if planned:
            touched = dict(self.touched)
            try:
                with tx.savepoint():
                    self._write_updates(planned, results)
            except RecordExists:
                # The same ops were applied meanwhile (the batch re-sent while its first copy ran,
                # whose locks this one waited for): one by one, they are replayed.
                self.touched = touched
                return [self.apply(raw) for raw, _, _ in run]
        return [r for r in results if r is not None]

    def _write_updates(self, planned: Sequence[tuple[int, Op, Entity, StoredRecord, dict[str, Any], list[dict]]],
                       results: list[dict[str, Any] | None]) -> None:
        tx = self.tx
        writes = [(ent, current, changes) for _, _, ent, current, changes, _ in planned if changes]
        for ent, _, changes in writes:
            if "updated_at" in ent.by_name:
                changes["updated_at"] = self.stamp
        versions = iter(tx.update_many(writes))
        by_ent: dict[str, tuple[Entity, list[str], set[Any]]] = {}
        for _, op, ent, current, changes, _ in planned:
            if not changes:
                continue
            version = next(versions)
            for name in changes:
                self.touched[(ent.name, op.id, name)] = version
            ids, keys = by_ent.setdefault(ent.name, (ent, [], set()))[1:]
            ids.append(op.id)
            if ent.name in PARTITIONED:  # the order's date as written (an edit may move it to another month)
                key = PARTITIONED[ent.name]
                keys.add(changes[key] if key in changes else current.record.get(key))
        # Read back as get() reads them, orders only from their months' partitions.
        written = {name: tx.get_many(ent, ids, partitions=() if None in keys else sorted(keys))
                   for name, (ent, ids, keys) in by_ent.items()}
        rows = []
        for k, op, ent, current, changes, conflicts in planned:
            stored = written[ent.name][op.id] if changes else current
            in_scope = self.caller.sees(stored.territory)
            results[k] = result = _result(op.op_id, self._update_status(op, current, conflicts), version=stored.version,
                                          record=stored.record if in_scope else None, in_scope=in_scope,
                                          conflicts=conflicts)
            rows.append((op.op_id, self.caller.id, ent, op.id, result))
        tx.save_op_results(rows)

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
            again = self.tx.op_result(op.op_id)
            if again is not None:  # by this very op, sent twice at once (a retry while the first ran)
                return self._replay(op, ent, again)
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
        return self._seen(ent, record_id, self.tx.lock(ent, record_id))

    def _seen(self, ent: Entity, record_id: str, current: StoredRecord | None) -> StoredRecord:
        """``current`` (the record as locked) if the caller may see it; otherwise OpRejected."""
        if current is not None and self.caller.sees(current.territory):
            return current
        if current is None:
            tomb = self.tx.tombstone(ent, record_id)
            if tomb is not None and self.caller.sees(tomb.territory):
                raise OpRejected("deleted", f"this {ent.label.lower()} was deleted on the server")
        raise OpRejected("not_found", f"no such {ent.label.lower()}")

    def _check_refs(self, ent: Entity, values: Mapping[str, Any], customer_id: str | None,
                    get: Callable[[Entity, str], StoredRecord | None] | None = None) -> None:
        """Every referenced record must exist and be in scope; an activity's or a task's ticket
        and deal must belong to its customer. ``get`` reads a record (default: the transaction's)."""
        get = get or self.tx.get
        found: dict[str, StoredRecord] = {}
        for name, value in values.items():
            f = ent.by_name[name]
            if f.kind != "ref" or value is None or f.ref is None:
                continue
            target = ENTITIES[f.ref]
            ref = get(target, value)
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

    def _check_create(self, op: Op, ent: Entity, get: Callable[[Entity, str], StoredRecord | None],
                      tombstoned: Callable[[Entity, str], bool], clean: dict[str, Any] | None = None) -> dict[str, Any]:
        """The checks of a create, in order; returns its validated fields (``clean``: already
        validated) or raises OpRejected / ValidationError. Writes nothing."""
        if get(ent, op.id) is not None:
            raise OpRejected("exists", f"a {ent.label.lower()} with id {op.id} already exists")
        if tombstoned(ent, op.id):
            raise OpRejected("exists", f"id {op.id} belonged to a deleted {ent.label.lower()}; ids are never reused")
        if clean is None:
            clean = validate_fields(ent, op.fields, creating=True)
        self._check_refs(ent, clean, clean.get("customer_id"), get)
        if ent.name == "customer":
            self._check_territory(clean["territory"])
        self._check_rules(ent, clean, clean, None)
        return clean

    def _new_record(self, op: Op, ent: Entity, clean: Mapping[str, Any], number: int | None) -> dict[str, Any]:
        """The record a checked create inserts; ``number`` is the counter's next value (tickets, orders)."""
        record: dict[str, Any] = {"id": op.id, **clean}
        if "created_at" in ent.by_name:
            record["created_at"] = record["updated_at"] = self.stamp
        if ent.name == "ticket":
            record["number"] = number
            if not record.get("sla_due"):
                record["sla_due"] = sla_due_for(record["priority"], self.now)
        elif ent.name == "order":
            record["number"] = f"SO-{number:08d}"
        elif ent.name in ("activity", "order_event"):
            record["author_id"] = None if self.caller is SYSTEM else self.caller.id
        return record

    def _create(self, op: Op, ent: Entity) -> dict[str, Any]:
        clean = self._check_create(op, ent, self.tx.get, lambda e, i: self.tx.tombstone(e, i) is not None)
        number = self.tx.next_number(ent.name) if ent.name in ("ticket", "order") else None
        record = self._new_record(op, ent, clean, number)
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
        changes, conflicts = self._plan_update(op, ent, current, self.tx.get)
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
        return self._written(self._update_status(op, current, conflicts), op, ent, conflicts)

    def _plan_update(self, op: Op, ent: Entity, current: StoredRecord, get: Callable[[Entity, str], StoredRecord | None],
                     clean: dict[str, Any] | None = None) -> tuple[dict[str, Any], list[dict]]:
        """The checks of an update of ``current`` (locked), in order: (the fields to change, the
        conflicts). ``clean``: its fields already validated; ``get`` reads referenced records.
        Raises OpRejected / ValidationError; writes nothing."""
        assert op.base_version is not None
        if clean is None:
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
        self._check_refs(ent, changes, current.record.get("customer_id"), get)
        if ent.name == "customer" and "territory" in changes:
            self._check_territory(changes["territory"])
        if ent.name == "ticket" and "status" in changes:
            check_ticket_transition(current.record["status"], changes["status"])
        if changes or ent.name == "order_event":
            self._check_rules(ent, {**current.record, **changes}, changes, current.record)
        return changes, conflicts

    @staticmethod
    def _update_status(op: Op, current: StoredRecord, conflicts: list[dict]) -> str:
        assert op.base_version is not None
        return "conflict" if conflicts else ("merged" if current.version > op.base_version else "applied")

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
        self.tx.insert(ORDER_EVENT, self._status_event(order, status))

    def _status_event(self, order: Mapping[str, Any], status: str) -> dict[str, Any]:
        return {
            "id": new_id("oe_"), "customer_id": order["customer_id"], "order_id": order["id"], "kind": "status",
            "status": status, "reason": None, "author_id": None if self.caller is SYSTEM else self.caller.id,
            "occurred_at": self.stamp, "created_at": self.stamp, "updated_at": self.stamp,
        }

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
