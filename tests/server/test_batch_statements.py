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
