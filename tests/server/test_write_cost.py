"""A create checks that its id was never used (the tombstones) with one index lookup, however long
the change log: found by `make bench-server`, where each create on a 20,000-customer SQLite
database scanned the whole log (SQLite does not see that ``kind = 'delete'`` implies the
partial index's ``kind <> 'move'``). Counted, not timed: rows examined (SQLite: VM steps)."""

from __future__ import annotations

from crm_server.batch import apply_batch
from crm_server.scope import SYSTEM
from crm_server.store import open_store
from crm_server.store.probe import probe
from crm_tui.core.domain import ENTITIES

CUSTOMER = ENTITIES["customer"]


def _grow_log(store, n: int, start: int = 0) -> None:
    ops = [{"op_id": f"g-{i}", "op": "create", "entity": "territory", "id": f"t-{i}", "fields": {"name": f"T {i}"}}
           for i in range(start, start + n)]
    for k in range(0, n, 500):
        assert {r["status"] for r in apply_batch(store, SYSTEM.id, ops[k:k + 500])} == {"applied"}


def _tombstone_cost(store) -> int:
    with probe(store) as cost, store.read() as tx:
        assert tx.tombstone(CUSTOMER, "never-used") is None
    return cost.rows_examined


def test_the_tombstone_check_of_a_create_does_not_read_the_change_log(store_target):
    store = open_store(store_target)
    try:
        _grow_log(store, 100)
        store.maintain()
        short = _tombstone_cost(store)
        _grow_log(store, 3000, start=100)
        store.maintain()
        long = _tombstone_cost(store)
    finally:
        store.close()
    assert long <= short + 5, (short, long)
