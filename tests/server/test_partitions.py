"""Orders on PostgreSQL are partitioned by month: queries that touch orders read only the months
they need (the test reads their EXPLAIN), and an order dated outside the prepared partitions
still lands, then moves into a partition of its own month."""

from __future__ import annotations

import datetime as dt

import orjson
import pytest

from crm_server.accounts import add_user
from crm_server.batch import apply_batch
from crm_server.cursor import FeedCursor, encode_cursor
from crm_server.feed import pull_changes
from crm_server.scope import SYSTEM
from crm_server.seed import seed_database
from crm_server.store import open_store
from crm_server.store.probe import relations
from crm_tui.core.domain import ENTITIES

ENTITIES_ORDER, ENTITIES_CUSTOMER = ENTITIES["order"], ENTITIES["customer"]

NOW = dt.datetime(2026, 11, 25, 9, tzinfo=dt.UTC)


@pytest.fixture
def store(postgres_url):
    store = open_store(postgres_url)
    seed_database(store, customers=150, now=NOW)
    yield store
    store.close()


def order_partitions_read(store, work) -> set[str]:
    """The order partitions the statements of ``work(tx)`` read, from their query plans."""
    with store.metered() as meter, store.read() as tx:
        work(tx)
    selects = [(sql, params) for sql, params in meter.statements if "orders" in sql]
    assert selects, "the work read orders"
    found: set[str] = set()
    for plan in store.plans(selects):
        found |= {r for r in relations(plan["Plan"]) if r.startswith("orders_")}
    return found


def all_order_partitions(store) -> set[str]:
    with store.read() as tx:
        rows = tx.conn.execute("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                               " JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'orders'").fetchall()
    return {r[0] for r in rows}


def test_revenue_by_month_reads_only_the_months_asked_for(store):
    every = all_order_partitions(store)
    assert len(every) > 24, "two years of seeded orders, one partition per month"
    read = order_partitions_read(
        store, lambda tx: tx.revenue_by_month(since="2026-06-01", until="2026-09-01", territories=["dach", "france"]))
    assert read == {"orders_2026_06", "orders_2026_07", "orders_2026_08"}
    with store.read() as tx:
        months = [m.month for m in tx.revenue_by_month(since="2026-06-01", until="2026-09-01", territories=None)]
    assert set(months) == {"2026-06", "2026-07", "2026-08"}


def test_a_customers_recent_orders_read_only_recent_months(store):
    with store.read() as tx:
        cid = tx.list_records(ENTITIES_ORDER, after=None, limit=1, filters={}, territories=None)[0]["customer_id"]
    read = order_partitions_read(store, lambda tx: tx.recent_orders(cid, since="2026-10-01", limit=20))
    assert read and all(name >= "orders_2026_10" for name in read - {"orders_default"}), read
    assert len(read) < len(all_order_partitions(store)) / 2


def test_the_check_fails_when_a_query_does_not_prune(store):
    """The control: a query over orders with no date condition reads every partition, and the
    same check sees it."""
    read = order_partitions_read(
        store, lambda tx: tx.list_records(ENTITIES_ORDER, after=None, limit=5, filters={"status": "paid"},
                                          territories=None))
    assert read == all_order_partitions(store)


def test_an_order_dated_outside_the_partitions_lands_and_maintenance_gives_it_a_month(store):
    with store.read() as tx:
        customer = tx.list_records(ENTITIES_CUSTOMER, after=None, limit=1, filters={}, territories=None)[0]
    ops = [{"op_id": "old-order", "op": "create", "entity": "order", "id": "old-order",
            "fields": {"customer_id": customer["id"], "order_date": "2019-03-14", "amount": 100, "currency": "EUR",
                       "status": "delivered"}}]
    (result,) = apply_batch(store, SYSTEM.id, ops)
    assert result["status"] == "applied", result
    with store.read() as tx:
        assert tx.conn.execute("SELECT count(*) FROM orders_default").fetchone()[0] == 1
    report = store.maintain()
    assert "orders_2019_03" in report.partitions_created and report.rows_moved_from_default == 1
    with store.read() as tx:
        assert tx.conn.execute("SELECT count(*) FROM orders_default").fetchone()[0] == 0
        assert tx.get(ENTITIES_ORDER, "old-order").record["order_date"] == "2019-03-14"
        assert [r["id"] for r in tx.recent_orders(customer["id"], since="2019-01-01", limit=100)][-1] == "old-order"
    # An update that moves the order to another month moves it between partitions.
    (moved,) = apply_batch(store, SYSTEM.id, [{"op_id": "move-order", "op": "update", "entity": "order",
                                               "id": "old-order", "base_version": result["version"],
                                               "fields": {"order_date": "2026-11-02"}}])
    assert moved["status"] == "applied", moved
    with store.read() as tx:
        assert tx.conn.execute("SELECT count(*) FROM orders_2019_03").fetchone()[0] == 0
        assert tx.get(ENTITIES_ORDER, "old-order").record["order_date"] == "2026-11-02"


def test_a_feed_page_reads_its_changed_orders_from_their_months_only(store):
    """The change log carries each order's date: a feed page with three changed orders reads
    the three months they are in, not every month's partition (bench/SERVER.md, "Feed pages")."""
    admin, _ = add_user(store, "feed-admin", role="admin")
    with store.read() as tx:
        info = tx.info()
        picked = tx.conn.execute(
            "SELECT id, version, order_date FROM (SELECT DISTINCT ON (to_char(order_date, 'YYYY-MM')) id, version,"
            " order_date FROM orders WHERE order_date BETWEEN '2025-03-01' AND '2026-08-31'"
            " ORDER BY to_char(order_date, 'YYYY-MM'), id) AS m ORDER BY order_date LIMIT 3").fetchall()
    assert len(picked) == 3
    cursor = encode_cursor(FeedCursor(user=admin["id"], epoch=info.epoch, phase="feed", pos=info.head,
                                      territories=None, history=info.history), info.cursor_key)
    ops = [{"op_id": f"feed-{rid}", "op": "update", "entity": "order", "id": rid, "base_version": version,
            "fields": {"amount": 4242}} for rid, version, _ in picked]
    assert {r["status"] for r in apply_batch(store, SYSTEM.id, ops)} == {"applied"}
    with store.metered() as meter:
        page = orjson.loads(pull_changes(store, admin["id"], cursor, 100))
    rows = [row for seg in page["segments"] if seg.get("entity") == "order" for row in seg["rows"]]
    assert sorted(row[0] for row in rows) == sorted(rid for rid, _, _ in picked)
    selects = [(sql, params) for sql, params in meter.statements if '"orders"' in sql]
    assert len(selects) == 1, selects
    read: set[str] = set()
    for plan in store.plans(selects):
        read |= {r for r in relations(plan["Plan"]) if r.startswith("orders_")}
    assert read == {f"orders_{d.year}_{d.month:02d}" for _, _, d in picked}
    assert len(all_order_partitions(store)) > 24


def test_every_orders_change_row_carries_the_orders_date_after_any_write(store):
    """Seeded (COPY), created one by one and in a batch, re-dated, and moved with their customer
    to another territory: each order's upsert row in the change log carries its current date."""
    with store.read() as tx:
        cid, territory = tx.conn.execute(
            "SELECT c.id, c.territory FROM customers c WHERE EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = c.id)"
            " ORDER BY c.id LIMIT 1").fetchone()
        oid, version = tx.conn.execute("SELECT id, version FROM orders WHERE customer_id = %s ORDER BY id LIMIT 1",
                                       (cid,)).fetchone()
        cversion = tx.conn.execute("SELECT version FROM customers WHERE id = %s", (cid,)).fetchone()[0]
    new = [{"op_id": f"po-{i}", "op": "create", "entity": "order", "id": f"po-{i}",
            "fields": {"customer_id": cid, "order_date": day, "amount": 10, "currency": "EUR", "status": "paid"}}
           for i, day in enumerate(("2025-01-09", "2026-10-30", "2026-02-01"))]
    other = "france" if territory != "france" else "dach"
    for ops in (new[:1], new[1:], [
        {"op_id": "po-redate", "op": "update", "entity": "order", "id": oid, "base_version": version,
         "fields": {"order_date": "2024-12-24"}},
    ], [{"op_id": "po-move", "op": "update", "entity": "customer", "id": cid, "base_version": cversion,
         "fields": {"territory": other}}]):
        assert {r["status"] for r in apply_batch(store, SYSTEM.id, ops)} == {"applied"}, ops
    with store.read() as tx:
        wrong = tx.conn.execute(
            "SELECT o.id, o.order_date, c.part_date FROM orders o JOIN changes c ON c.entity = 'order'"
            " AND c.kind = 'upsert' AND c.record_id = o.id WHERE c.part_date IS DISTINCT FROM o.order_date").fetchall()
        dates = dict(tx.conn.execute("SELECT record_id, part_date FROM changes WHERE entity = 'order'"
                                     " AND kind = 'upsert' AND record_id IN ('po-0', 'po-1', 'po-2', %s)",
                                     (oid,)).fetchall())
    assert wrong == []
    assert dates == {"po-0": dt.date(2025, 1, 9), "po-1": dt.date(2026, 10, 30), "po-2": dt.date(2026, 2, 1),
                     oid: dt.date(2024, 12, 24)}
