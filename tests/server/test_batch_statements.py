"""A batch of new records costs the database a fixed number of statements, not a dozen per op.

Found by `make bench-server`: order intake through ``/v1/batch`` on PostgreSQL took about fifteen
round trips per new order (op result lookup, savepoint, existence and tombstone checks, the
customer, its shared lock, two sequence numbers, the order, its status event, two change rows,
the op result, the re-read), so 20 writers got a few hundred orders a second out of it. Now a run
of creates is checked and written together; its results are exactly those of one op after the
other. Counted, never timed.
"""

from __future__ import annotations

import datetime as dt
import threading

import orjson
import psycopg

from crm_server.accounts import add_user
from crm_server.batch import apply_batch
from crm_server.scope import SYSTEM
from crm_server.store import open_store
from crm_tui.core.domain import ENTITIES
from support.roundtrips import RoundTripRelay

NOW = dt.datetime(2026, 11, 25, 9, 30, tzinfo=dt.UTC)


def _setup(store) -> None:
    ops = [{"op_id": f"t-{t}", "op": "create", "entity": "territory", "id": t, "fields": {"name": t.upper()}}
           for t in ("north", "south")]
    ops += [{"op_id": f"c-{c}", "op": "create", "entity": "customer", "id": c,
             "fields": {"name": f"Customer {c}", "territory": "north" if c != "c-south" else "south"}}
            for c in ("c-1", "c-2", "c-3", "c-south")]
    assert {r["status"] for r in apply_batch(store, SYSTEM.id, ops, now=NOW)} == {"applied"}


def _orders(prefix: str, n: int) -> list[dict]:
    return [{"op_id": f"op-{prefix}-{i}", "op": "create", "entity": "order", "id": f"{prefix}-{i}",
             "fields": {"customer_id": f"c-{1 + i % 3}", "order_date": "2026-11-25", "amount": 1000 + i,
                        "currency": "EUR", "status": "paid"}} for i in range(n)]


def _statements(store, ops: list[dict]) -> tuple[int, list[dict]]:
    with store.metered_writes() as statements:
        results = apply_batch(store, SYSTEM.id, ops, now=NOW)
    return len(statements), results


def test_a_batch_of_new_orders_takes_as_many_statements_for_200_orders_as_for_10(postgres_url):
    store = open_store(postgres_url)
    try:
        _setup(store)
        small, small_results = _statements(store, _orders("small", 10))
        large, large_results = _statements(store, _orders("large", 200))
        with store.read() as tx:
            events = tx.conn.execute("SELECT count(*) FROM order_events WHERE order_id LIKE 'large-%'"
                                     " AND kind = 'status' AND status = 'paid'").fetchone()[0]
    finally:
        store.close()
    assert [r["status"] for r in small_results + large_results] == ["applied"] * 210
    numbers = [r["record"]["number"] for r in small_results + large_results]
    assert numbers == sorted(numbers) and len(set(numbers)) == 210
    versions = [r["version"] for r in large_results]
    assert versions == sorted(versions) and len(set(versions)) == 200
    assert events == 200  # every new order has its status history
    assert large == small, (small, large)
    assert large <= 25, large


def _mixed_batch() -> list[dict]:
    def op(op_id: str, kind: str, entity: str, rid: str, fields: dict | None = None, **kw) -> dict:
        return {"op_id": op_id, "op": kind, "entity": entity, "id": rid, "fields": fields or {}, **kw}

    order = {"order_date": "2026-11-25", "amount": 5000, "currency": "EUR", "status": "paid"}
    return [
        op("m1", "create", "order", "o-1", {"customer_id": "c-1", **order}),
        op("m2", "create", "order", "o-2", {"customer_id": "c-nobody", **order}),  # no such customer
        op("m3", "create", "order", "o-3", {"customer_id": "c-1", **order, "amount": "lots"}),  # invalid
        op("m4", "create", "order", "o-4", {"customer_id": "c-south", **order}),  # not the caller's territory
        op("m5", "create", "contact", "p-1", {"customer_id": "c-2", "name": "Pat"}),
        # Refers to the contact just made: written after it.
        op("m6", "create", "activity", "a-1", {"customer_id": "c-2", "contact_id": "p-1", "kind": "call",
                                               "subject": "Hello", "occurred_at": "2026-11-25T09:00:00Z"}),
        op("m7", "create", "order", "o-1", {"customer_id": "c-1", **order}),  # the id is taken
        op("m1", "create", "order", "o-1", {"customer_id": "c-1", **order}),  # sent again: replayed
        op("m8", "create", "order", "o-5", {"customer_id": "c-3", **order}),
        op("m9", "update", "customer", "c-3", {"city": "Oslo"}, base_version=1),
        op("m10", "create", "ticket", "t-1", {"customer_id": "c-3", "subject": "Broken", "priority": "high", "status": "new"}),
        op("m10", "create", "ticket", "t-2", {"customer_id": "c-3", "subject": "Again", "priority": "low", "status": "new"}),
        op("m11", "create", "order", "o-6", {"customer_id": "c-3", **order}),
        op("m12", "create", "order", "o-6", {"customer_id": "c-3", **order}),  # twice in one run
    ]


def test_a_mixed_batch_gets_the_results_of_one_op_after_the_other(store_target, tmp_path, backend, request):
    together = open_store(store_target)
    second = str(tmp_path / "one.db") if backend == "sqlite" else request.getfixturevalue("postgres").create_database()
    one_by_one = open_store(second)
    try:
        outcomes = []
        for store, size in ((together, 100), (one_by_one, 1)):
            _setup(store)
            add_user(store, "sam", role="sales", territories=["north"], user_id="sam")
            ops = _mixed_batch()
            outcomes.append([r for k in range(0, len(ops), size)
                             for r in apply_batch(store, "sam", ops[k:k + size], now=NOW)])
    finally:
        together.close()
        one_by_one.close()
    batch, single = outcomes
    assert batch == single
    assert [r["status"] for r in batch] == ["applied", "rejected", "rejected", "rejected", "applied", "applied",
                                           "rejected", "applied", "applied", "merged", "applied", "rejected",
                                           "applied", "rejected"]
    assert batch[7]["replayed"] and batch[11]["error"]["code"] == "op_id_reused"


def test_an_order_created_by_another_writer_meanwhile_is_answered_exists(postgres_url):
    """The batch checked the new ids before another writer committed one of them: the run's
    savepoint rolls back and its ops are applied one by one, so nothing is written twice."""
    store = open_store(postgres_url)
    try:
        _setup(store)
        rival = psycopg.connect(postgres_url, autocommit=True)
        rival.execute("BEGIN")
        with rival.cursor() as cur:  # the rival's order o-late is in, not yet committed
            (rival_result,) = _rival_insert(store, cur)
        done: list[list[dict]] = []
        worker = threading.Thread(target=lambda: done.append(apply_batch(store, SYSTEM.id, _late_orders(), now=NOW)))
        worker.start()
        _wait_until_blocked(rival, postgres_url)
        rival.execute("COMMIT")
        worker.join()
        rival.close()
        with store.read() as tx:
            late = tx.conn.execute("SELECT count(*) FROM orders WHERE id = 'o-late'").fetchone()[0]
            others = tx.conn.execute("SELECT count(*) FROM orders WHERE id LIKE 'o-next-%'").fetchone()[0]
    finally:
        store.close()
    (results,) = done
    assert rival_result == "applied"
    assert [r["status"] for r in results] == ["applied", "rejected", "applied"]
    assert results[1]["error"]["code"] == "exists"
    assert (late, others) == (1, 2)


def _late_orders() -> list[dict]:
    order = {"order_date": "2026-11-25", "amount": 5000, "currency": "EUR", "status": "paid"}
    return [{"op_id": f"late-{i}", "op": "create", "entity": "order", "id": rid, "fields": {"customer_id": "c-1", **order}}
            for i, rid in enumerate(("o-next-1", "o-late", "o-next-2"))]


def _rival_insert(store, cur) -> list[str]:
    """Insert o-late through the store's own write path, on the rival's open transaction."""
    from crm_server.batch import _BatchRun
    from crm_server.store.pg_tx import PostgresWriteTx

    tx = PostgresWriteTx(cur.connection)
    run = _BatchRun(tx, SYSTEM, NOW)
    return [run.apply({"op_id": "rival", "op": "create", "entity": "order", "id": "o-late",
                       "fields": {"customer_id": "c-1", "order_date": "2026-11-25", "amount": 1, "currency": "EUR",
                                  "status": "paid"}})["status"]]


def _wait_until_blocked(rival: psycopg.Connection, url: str) -> None:
    """Until another session waits for a lock the rival holds (the batch's insert of o-late)."""
    with psycopg.connect(url, autocommit=True) as watcher:
        pid = rival.info.backend_pid
        while not watcher.execute("SELECT count(*) FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))",
                                  (pid,)).fetchone()[0]:
            watcher.execute("SELECT pg_sleep(0.05)")


def test_a_snapshot_counts_everything_in_scope_with_one_statement(store_target):
    """The first page of a snapshot counts the records in scope (its progress denominator): one
    statement for every entity and territory, not one each (each a round trip on PostgreSQL)."""
    from crm_server.feed import pull_changes

    store = open_store(store_target)
    try:
        _setup(store)
        apply_batch(store, SYSTEM.id, _orders("o", 6), now=NOW)
        add_user(store, "sam", role="sales", territories=["north", "south"], user_id="sam")
        with store.metered() as meter:
            page = orjson.loads(pull_changes(store, "sam", None, 2000))
    finally:
        store.close()
    counts = [sql for sql, _ in meter.statements if "count(*)" in sql and "LIMIT" not in sql]  # not the pages
    assert len(counts) == 1, counts
    # 2 territories, 1 user, 4 customers, 6 orders and their 6 status events.
    assert page["progress"]["total"] == 19 and page["progress"]["done"] == 19


def test_a_create_whose_entity_is_not_a_name_is_rejected_not_an_error(store_target):
    store = open_store(store_target)
    try:
        _setup(store)
        ops = [*_orders("ok", 2), {"op_id": "odd", "op": "create", "entity": ["order"], "id": "o-odd", "fields": {}}]
        results = apply_batch(store, SYSTEM.id, ops, now=NOW)
    finally:
        store.close()
    assert [r["status"] for r in results] == ["applied", "applied", "rejected"]
    assert results[2]["error"]["code"] == "invalid_op"


def _customers(store, prefix: str, n: int) -> dict[str, int]:
    """``n`` new customers in north: id -> version."""
    ops = [{"op_id": f"op-{prefix}-{i}", "op": "create", "entity": "customer", "id": f"{prefix}-{i}",
            "fields": {"name": f"Customer {prefix} {i}", "territory": "north"}} for i in range(n)]
    results = apply_batch(store, SYSTEM.id, ops, now=NOW)
    assert {r["status"] for r in results} == {"applied"}
    return {r["record"]["id"]: r["version"] for r in results}


def _edits(prefix: str, versions: dict[str, int]) -> list[dict]:
    return [{"op_id": f"edit-{prefix}-{i}", "op": "update", "entity": "customer", "id": cid, "base_version": v,
             "fields": {"phone": f"+49 30 {i:06d}"}} for i, (cid, v) in enumerate(sorted(versions.items()))]


def test_a_batch_of_edits_takes_as_many_statements_for_100_edits_as_for_10(postgres_url):
    """Found by bench/batch_write.py: a batch of customer edits (what every sync client pushes)
    cost about a dozen round trips per edit on PostgreSQL (op result, savepoint, the record's
    lock twice, a sequence number, the update, two change-log statements, the re-read, the op
    result, the release). Now a run of edits is checked and written together."""
    store = open_store(postgres_url)
    try:
        _setup(store)
        small_ids, large_ids = _customers(store, "s", 10), _customers(store, "l", 100)
        small, small_results = _statements(store, _edits("small", small_ids))
        large, large_results = _statements(store, _edits("large", large_ids))
        _, replayed = _statements(store, _edits("large", large_ids))
        with store.read() as tx:
            phones = {r["id"]: r["phone"] for r in tx.list_records(
                ENTITIES["customer"], after=None, limit=500, filters={}, territories=None) if r["id"].startswith("l-")}
    finally:
        store.close()
    assert [r["status"] for r in small_results + large_results] == ["applied"] * 110
    versions = [r["version"] for r in large_results]
    assert versions == sorted(versions) and len(set(versions)) == 100  # in op order, as one after the other
    assert all(r["version"] > large_ids[r["record"]["id"]] for r in large_results)
    assert phones == {r["record"]["id"]: r["record"]["phone"] for r in large_results}
    assert [r["replayed"] for r in replayed] == [True] * 100
    assert [r["version"] for r in replayed] == versions
    assert large == small, (small, large)
    assert large <= 8, large


def _edit_batch(v: dict[str, int]) -> list[dict]:
    def edit(op_id: str, entity: str, rid: str, fields: dict, base: int | None = None, **kw) -> dict:
        op = {"op_id": op_id, "op": "update", "entity": entity, "id": rid, "fields": fields, **kw}
        if base is not None:
            op["base_version"] = base
        return op

    return [
        edit("e1", "customer", "c-1", {"phone": "+49 1"}, v["c-1"]),
        edit("e2", "customer", "c-south", {"phone": "+49 2"}, v["c-south"]),  # not the caller's territory
        edit("e3", "customer", "c-nobody", {"phone": "+49 3"}, 1),  # no such customer
        edit("e4", "contact", "p-1", {"name": "Pat Q"}, v["p-1"]),
        edit("e5", "customer", "c-1", {"email": "one@example.com"}, v["c-1"]),  # again: after e1
        edit("e6", "ticket", "t-1", {"status": "closed"}, v["t-1"]),  # new -> closed is not a move
        edit("e7", "ticket", "t-1", {"status": "open"}, v["t-1"]),
        edit("e8", "activity", "a-1", {"contact_id": "p-1"}, v["a-1"]),  # p-1 is c-1's, a-1 is c-2's
        edit("e9", "activity", "a-1", {"contact_id": "p-2"}, v["a-1"]),
        edit("e10", "contact", "p-2", {"email": "not an address"}, v["p-2"]),  # invalid
        edit("e1", "customer", "c-1", {"phone": "+49 1"}, v["c-1"]),  # sent again: replayed
        edit("e4", "customer", "c-2", {"phone": "+49 4"}, v["c-2"]),  # op id of another op
        edit("e11", "customer", "c-2", {"phone": "+49 5"}),  # no base version
        edit("e12", "customer", "c-3", {"territory": "south"}, v["c-3"]),  # a move, not the caller's
        edit("e13", "contact", "p-3", {"name": "Gone"}, v["p-3"]),  # deleted
        edit("e14", "customer", "c-2", {"city": "Berlin"}, v["c-2"]),  # as on the server: nothing to write
        edit("e15", "customer", "c-3", {"phone": "+49 6"}, v["c-3"]),  # the server changed it since
        edit("e16", "deal", "d-1", {"stage": "won"}, v["d-1"]),  # won needs a close date
        edit("e17", "deal", "d-1", {"stage": "proposal", "amount": 500}, v["d-1"]),
        edit("e18", "order", "o-1", {"amount": 7000}, v["o-1"]),
        edit("e19", "contact", "p-1", {"title": "CEO"}, v["p-1"]),  # a record e4 changed
        edit("e20", "customer", "c-2", {"owner_id": "nobody"}, v["c-2"]),  # no such user
        edit("e21", "customer", "c-2", {"owner_id": "sam", "tags": ["vip", "b2b"]}, v["c-2"]),
        edit("e22", "order", "o-1", {"order_date": "2026-10-02"}, v["o-1"]),  # to another month's partition
    ]


def _edit_setup(store) -> dict[str, int]:
    _setup(store)
    add_user(store, "sam", role="sales", territories=["north"], user_id="sam")

    def op(op_id: str, kind: str, entity: str, rid: str, fields: dict, **kw) -> dict:
        return {"op_id": op_id, "op": kind, "entity": entity, "id": rid, "fields": fields, **kw}

    ops = [
        op("s1", "create", "contact", "p-1", {"customer_id": "c-1", "name": "Pat"}),
        op("s2", "create", "contact", "p-2", {"customer_id": "c-2", "name": "Sue"}),
        op("s3", "create", "contact", "p-3", {"customer_id": "c-2", "name": "Old"}),
        op("s4", "create", "ticket", "t-1", {"customer_id": "c-3", "subject": "Broken", "priority": "high",
                                             "status": "new"}),
        op("s5", "create", "activity", "a-1", {"customer_id": "c-2", "kind": "call", "subject": "Hello",
                                               "occurred_at": "2026-11-25T09:00:00Z"}),
        op("s6", "create", "deal", "d-1", {"customer_id": "c-1", "title": "Big", "stage": "lead"}),
        op("s7", "create", "order", "o-1", {"customer_id": "c-1", "order_date": "2026-11-25", "amount": 5000,
                                            "currency": "EUR", "status": "paid"}),
        op("s8", "update", "customer", "c-2", {"city": "Berlin"}, base_version=0),
    ]
    versions = {r["record"]["id"]: r["version"] for r in apply_batch(store, SYSTEM.id, ops, now=NOW)}
    with store.read() as tx:
        versions.update((c, tx.get(ENTITIES["customer"], c).version) for c in ("c-1", "c-2", "c-3", "c-south"))
    deleted = apply_batch(store, SYSTEM.id, [op("s9", "delete", "contact", "p-3", {}, base_version=versions["p-3"])],
                          now=NOW)
    changed = apply_batch(store, SYSTEM.id, [op("s10", "update", "customer", "c-3", {"phone": "+1 555"},
                                                base_version=versions["c-3"])], now=NOW)
    assert [deleted[0]["status"], changed[0]["status"]] == ["applied", "applied"]
    return versions


def test_a_batch_of_edits_gets_the_results_of_one_op_after_the_other(store_target, tmp_path, backend, request):
    together = open_store(store_target)
    second = str(tmp_path / "one.db") if backend == "sqlite" else request.getfixturevalue("postgres").create_database()
    one_by_one = open_store(second)
    try:
        outcomes, records = [], []
        for store, size in ((together, 100), (one_by_one, 1)):
            ops = _edit_batch(_edit_setup(store))
            outcomes.append([r for k in range(0, len(ops), size)
                             for r in apply_batch(store, "sam", ops[k:k + size], now=NOW)])
            with store.read() as tx:
                records.append([tx.get(ENTITIES[e], i) for e, i in (("customer", "c-1"), ("customer", "c-2"),
                                                                    ("customer", "c-3"), ("contact", "p-1"),
                                                                    ("activity", "a-1"), ("deal", "d-1"),
                                                                    ("order", "o-1"), ("ticket", "t-1"))])
    finally:
        together.close()
        one_by_one.close()
    batch, single = outcomes
    assert batch == single
    assert records[0] == records[1]
    assert [(r["op_id"], r["status"], (r["error"] or {}).get("code")) for r in batch] == [
        ("e1", "applied", None), ("e2", "rejected", "not_found"), ("e3", "rejected", "not_found"),
        ("e4", "applied", None), ("e5", "merged", None), ("e6", "rejected", "validation"),
        ("e7", "applied", None), ("e8", "rejected", "validation"), ("e9", "applied", None),
        ("e10", "rejected", "validation"), ("e1", "applied", None), ("e4", "rejected", "op_id_reused"),
        ("e11", "rejected", "invalid_op"), ("e12", "rejected", "scope"), ("e13", "rejected", "deleted"),
        ("e14", "applied", None), ("e15", "conflict", None), ("e16", "rejected", "validation"),
        ("e17", "applied", None), ("e18", "applied", None), ("e19", "merged", None),
        ("e20", "rejected", "not_found"), ("e21", "applied", None), ("e22", "merged", None),
    ]
    assert batch[-1]["record"]["order_date"] == "2026-10-02"
    assert batch[10]["replayed"] and batch[16]["conflicts"] == [{"field": "phone", "server": "+1 555", "client": "+49 6"}]


def test_begin_and_savepoints_take_no_round_trip_of_their_own(postgres):
    """BEGIN, SAVEPOINT and RELEASE SAVEPOINT need no answer: they go to PostgreSQL with the
    statement after them. Counted by a TCP relay in front of PostgreSQL (each time the store
    waited for an answer), which also shows that ``metered_writes`` counts round trips."""
    url = postgres.create_database()
    with RoundTripRelay(postgres.port) as relay:
        store = open_store(url.replace(f":{postgres.port}/", f":{relay.port}/"))
        try:
            _setup(store)
            relay.reset()
            with store.read() as tx:
                tx.info()
            read = relay.round_trips  # BEGIN with the statement, then ROLLBACK
            relay.reset()
            op = {"op_id": "c-new", "op": "create", "entity": "customer", "id": "c-new",
                  "fields": {"name": "New", "territory": "north"}}  # applied on its own, in a savepoint
            with store.metered_writes() as statements:
                (result,) = apply_batch(store, SYSTEM.id, [op], now=NOW)
            write = relay.round_trips
        finally:
            store.close()
    assert result["status"] == "applied"
    assert read == 2, read
    assert write == len(statements), (write, statements)
    assert not [sql for sql, _ in statements if sql.startswith(("SAVEPOINT", "RELEASE", "BEGIN"))], statements
    assert write <= 11, statements


def test_edits_sent_twice_at_once_are_applied_once_and_replayed(postgres_url):
    """A client re-sends a batch of edits while the first copy is still running (a retry through
    the balancer to another server process): the second waits for the first's locks, then finds
    the op ids taken. It answers with the first copy's results, replayed; nothing is applied twice."""
    store = open_store(postgres_url)
    try:
        _setup(store)
        ids = _customers(store, "d", 3)
        edits = _edits("dup", ids)
        rival = psycopg.connect(postgres_url, autocommit=True)
        rival.execute("BEGIN")
        with rival.cursor() as cur:  # the first copy, applied but not yet committed
            first = _rival_batch(cur, edits)
        done: list[list[dict]] = []
        worker = threading.Thread(target=lambda: done.append(apply_batch(store, SYSTEM.id, edits, now=NOW)))
        worker.start()
        _wait_until_blocked(rival, postgres_url)
        rival.execute("COMMIT")
        worker.join()
        rival.close()
        with store.read() as tx:
            versions = {c: tx.get(ENTITIES["customer"], c).version for c in ids}
    finally:
        store.close()
    (second,) = done
    assert [r["status"] for r in first] == ["applied"] * 3
    assert [r["replayed"] for r in second] == [True] * 3
    assert [r["version"] for r in second] == [r["version"] for r in first]
    assert versions == {r["record"]["id"]: r["version"] for r in first}  # edited once


def _rival_batch(cur, ops: list[dict]) -> list[dict]:
    """Apply ``ops`` through the store's own write path, on the rival's open transaction."""
    from crm_server.batch import _BatchRun
    from crm_server.store.pg_tx import PostgresWriteTx

    return _BatchRun(PostgresWriteTx(cur.connection), SYSTEM, NOW).apply_all(ops)


def test_a_new_customer_sent_twice_at_once_is_created_once_and_replayed(postgres_url):
    """The same for an op applied on its own (a new customer): the second copy waits for the
    first's insert, then answers with its result, replayed, not `exists` (which would tell the
    user their customer was refused)."""
    store = open_store(postgres_url)
    try:
        _setup(store)
        op = {"op_id": "twice", "op": "create", "entity": "customer", "id": "c-twice",
              "fields": {"name": "Twice", "territory": "north"}}
        rival = psycopg.connect(postgres_url, autocommit=True)
        rival.execute("BEGIN")
        with rival.cursor() as cur:
            first = _rival_batch(cur, [op])
        done: list[list[dict]] = []
        worker = threading.Thread(target=lambda: done.append(apply_batch(store, SYSTEM.id, [op], now=NOW)))
        worker.start()
        _wait_until_blocked(rival, postgres_url)
        rival.execute("COMMIT")
        worker.join()
        rival.close()
    finally:
        store.close()
    (second,) = done
    assert first[0]["status"] == "applied"
    assert (second[0]["status"], second[0]["replayed"], second[0]["version"]) == ("applied", True, first[0]["version"])
