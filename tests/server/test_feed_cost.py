"""A sales rep's feed reads their territory, not the organisation's change log: an incremental
pull costs the same whether the other territories wrote a little or twenty times as much.
Counted, not timed (crm_server/store/probe.py): statements and rows examined."""

from __future__ import annotations

import datetime as dt

import orjson

from crm_server.accounts import add_user
from crm_server.batch import apply_batch
from crm_server.feed import pull_changes
from crm_server.scope import SYSTEM
from crm_server.seed import seed_database
from crm_server.store import open_store
from crm_server.store.probe import Cost, probe
from crm_tui.core.domain import ENTITIES

NOW = dt.datetime(2026, 11, 25, 9, tzinfo=dt.UTC)
REP_WRITES = 30
CUSTOMER = ENTITIES["customer"]


def _bootstrap(store, user_id: str) -> str:
    cursor = None
    while True:
        page = orjson.loads(pull_changes(store, user_id, cursor, 5000))
        cursor = page["cursor"]
        if not page["has_more"]:
            return cursor


def _creates(prefix: str, territory: str, n: int) -> list[dict]:
    return [{"op_id": f"{prefix}-{i}", "op": "create", "entity": "customer", "id": f"{prefix}-{i}",
             "fields": {"name": f"Co {i}", "territory": territory}} for i in range(n)]


def _write_elsewhere(store, n: int) -> None:
    """``n`` new activities of customers outside dach: the log grows by ``n`` rows, the customer
    table the rep's records come from does not change."""
    with store.read() as tx:
        others = [c["id"] for c in tx.list_records(CUSTOMER, after=None, limit=10_000, filters={}, territories=None)
                  if c["territory"] != "dach"]
    ops = [{"op_id": f"far-{i}", "op": "create", "entity": "activity", "id": f"far-{i}",
            "fields": {"customer_id": others[i % len(others)], "kind": "note", "occurred_at": "2026-11-24T10:00:00Z"}}
           for i in range(n)]
    for start in range(0, n, 500):
        assert {r["status"] for r in apply_batch(store, SYSTEM.id, ops[start:start + 500])} == {"applied"}


def pull_costs(target: str, other_writes_per_rep_write: int) -> tuple[Cost, Cost, int]:
    """(a rep's incremental pull, an agent's incremental pull, records the rep got) after
    REP_WRITES writes in the rep's territory and that many times more in other territories."""
    store = open_store(target)
    try:
        seed_database(store, customers=60, now=NOW)
        rep, _ = add_user(store, "Rita Rep", role="sales", territories=["dach"])
        agent, _ = add_user(store, "Alex Agent", role="agent")
        apply_batch(store, SYSTEM.id, _creates("near", "dach", REP_WRITES))
        rep_cursor, agent_cursor = _bootstrap(store, rep["id"]), _bootstrap(store, agent["id"])
        _write_elsewhere(store, REP_WRITES * other_writes_per_rep_write)
        with store.read() as tx:
            mine = [(c["id"], c["version"]) for c in tx.list_records(CUSTOMER, after="near", limit=REP_WRITES,
                                                                      filters={}, territories=["dach"])]
        apply_batch(store, SYSTEM.id, [{"op_id": f"near-u-{cid}", "op": "update", "entity": "customer", "id": cid,
                                        "base_version": v, "fields": {"city": "Wien"}} for cid, v in mine])
        store.maintain()  # what the server does every hour: the planner's statistics are current
        with probe(store) as rep_cost:
            page = orjson.loads(pull_changes(store, rep["id"], rep_cursor, 2000))
        with probe(store) as agent_cost:
            pull_changes(store, agent["id"], agent_cursor, 2000)
        got = sum(len(s.get("rows", ())) for s in page["segments"] if s["op"] == "upsert")
        assert not page["has_more"]
        return rep_cost, agent_cost, got
    finally:
        store.close()


def test_a_reps_pull_costs_the_same_however_much_other_territories_write(store_target, tmp_path, backend, request):
    quiet = pull_costs(store_target, 1)
    busy_target = str(tmp_path / "busy.db") if backend == "sqlite" else request.getfixturevalue("postgres").create_database()
    busy = pull_costs(busy_target, 20)
    (rep_quiet, agent_quiet, got_quiet), (rep_busy, agent_busy, got_busy) = quiet, busy
    assert got_quiet == got_busy == REP_WRITES, "the rep receives exactly their territory's changes"
    assert rep_busy.statements == rep_quiet.statements
    assert rep_busy.rows_examined <= rep_quiet.rows_examined * 1.05, rep_quiet.explain() + "\n--\n" + rep_busy.explain()
    # The control: the same meter sees an agent's pull grow with the whole organisation's writes.
    # (On SQLite a row read costs several VM steps, so the difference is at least the row count.)
    assert agent_busy.rows_examined - agent_quiet.rows_examined >= REP_WRITES * 19, (agent_quiet, agent_busy)
