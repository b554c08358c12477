"""The seed: deterministic, valid by the domain's own rules, and covering every status."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections import Counter

import pytest

from crm_server.seed import SeedError, seed_database
from crm_server.store import open_store
from crm_tui.core.domain import (
    ACTIVITY_KINDS,
    DEAL_STAGES,
    ENTITIES,
    ORDER_STATUSES,
    TICKET_PRIORITIES,
    TICKET_STATUSES,
    parse_datetime,
    validate_record,
)

NOW = dt.datetime(2026, 11, 25, 9, 0, tzinfo=dt.UTC)


def _seeded(path, customers=300, seed=1):
    store = open_store(path)
    try:
        report = seed_database(store, customers=customers, seed=seed, now=NOW)
    finally:
        store.close()
    return report


def _dump(path) -> dict[str, list[tuple]]:
    conn = sqlite3.connect(path)
    try:
        tables = [e.table for e in ENTITIES.values()] + ["changes"]
        return {t: conn.execute(f'SELECT * FROM "{t}" ORDER BY 1').fetchall() for t in tables}
    finally:
        conn.close()


def _records(path) -> dict[str, list[dict]]:
    store = open_store(path)
    try:
        with store.read() as tx:
            return {e.name: tx.list_records(e, after=None, limit=10**6, filters={}, territories=None)
                    for e in ENTITIES.values()}
    finally:
        store.close()


def test_the_same_seed_gives_the_same_rows(tmp_path):
    _seeded(tmp_path / "a.db")
    _seeded(tmp_path / "b.db")
    _seeded(tmp_path / "c.db", seed=2)
    a, b, c = _dump(tmp_path / "a.db"), _dump(tmp_path / "b.db"), _dump(tmp_path / "c.db")
    assert a == b
    assert a["customers"] != c["customers"]


def test_seeded_records_are_valid_and_realistic(tmp_path):
    report = _seeded(tmp_path / "s.db", customers=600)
    records = _records(tmp_path / "s.db")
    assert report.records == sum(len(v) for v in records.values())
    for name, rows in records.items():
        for r in rows:
            validate_record(ENTITIES[name], r)
    n = len(records["customer"])
    assert n == 600 and len(records["territory"]) == 20
    assert 1.6 < len(records["contact"]) / n < 2.4
    assert 2.5 < len(records["order"]) / n < 3.5
    assert 0.35 < len(records["ticket"]) / n < 0.65
    assert 0.2 < len(records["deal"]) / n < 0.4
    assert 1.6 < len(records["activity"]) / n < 2.7  # 2, and the first reply to most of the 0.5 tickets
    assert set(Counter(t["status"] for t in records["ticket"])) == set(TICKET_STATUSES)
    assert set(Counter(t["priority"] for t in records["ticket"])) == set(TICKET_PRIORITIES)
    assert set(Counter(d["stage"] for d in records["deal"])) == set(DEAL_STAGES)
    assert set(Counter(a["kind"] for a in records["activity"])) == set(ACTIVITY_KINDS)
    assert set(Counter(o["status"] for o in records["order"])) == set(ORDER_STATUSES)
    open_tickets = [t for t in records["ticket"] if t["status"] in ("new", "open", "pending")]
    overdue = [t for t in open_tickets if parse_datetime(t["sla_due"]) < NOW]
    assert 0 < len(overdue) < len(open_tickets), "some open tickets are overdue, not all"
    oldest = min(parse_datetime(o["order_date"] + "T00:00:00Z") for o in records["order"])
    assert (NOW - oldest).days <= 731, "orders span the last 24 months"
    assert len({t["number"] for t in records["ticket"]}) == len(records["ticket"])
    customers = {c["id"]: c for c in records["customer"]}
    assert all(customers[c["customer_id"]] for c in records["contact"])
    roles = Counter(u["role"] for u in records["user"])
    assert roles["admin"] >= 1 and roles["agent"] >= 8 and roles["sales"] >= 20


def test_server_numbers_continue_after_the_seed(tmp_path):
    from crm_server.batch import apply_batch
    from crm_server.scope import SYSTEM

    _seeded(tmp_path / "n.db", customers=50)
    store = open_store(tmp_path / "n.db")
    try:
        with store.read() as tx:
            tickets = tx.list_records(ENTITIES["ticket"], after=None, limit=10**6, filters={}, territories=None)
        (r,) = apply_batch(store, SYSTEM.id, [{"op_id": "n1", "op": "create", "entity": "ticket", "id": "new-t",
                                               "fields": {"customer_id": "cus-0000001", "subject": "S", "status": "new",
                                                          "priority": "low"}}])
    finally:
        store.close()
    assert r["record"]["number"] == max(t["number"] for t in tickets) + 1


def test_seeding_a_database_with_data_is_refused(tmp_path):
    _seeded(tmp_path / "x.db", customers=5)
    with pytest.raises(SeedError):
        _seeded(tmp_path / "x.db", customers=5)
