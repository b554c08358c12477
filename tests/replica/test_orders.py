"""Order history, order requests, call outcomes, closed deals and the unassigned queue, on a real
replica fed server-shaped pages: what the order detail, the forms and the queue read and write."""

from __future__ import annotations

import json
import sqlite3

import pytest
from sqlite_utils import Database

from cache.replica import Replica
from cache.schema import MIGRATIONS, SCHEMA_VERSION, _create_v1, _split_search_triggers_v2
from crm_tui.core.domain import ENTITIES, ValidationError
from support.keys import TEST_KEY
from support.records import customer_row


def page(segments, cursor="c1", has_more=False, phase="feed", progress=None):
    out = {"cursor": cursor, "has_more": has_more, "phase": phase, "segments": segments}
    if progress is not None:
        out["progress"] = progress
    return out


def upsert(entity, rows):
    return {"op": "upsert", "entity": entity, "columns": list(ENTITIES[entity].columns), "rows": rows}


def row(entity, **rec):
    ent = ENTITIES[entity]
    base = dict.fromkeys(ent.columns)
    base["version"] = 1
    base.update(rec)
    return [base[c] for c in ent.columns]


def order(oid, cid="c1", number="SO-00010042", status="paid"):
    return row("order", id=oid, customer_id=cid, number=number, order_date="2026-11-20", amount=12_000,
               currency="EUR", status=status)


def ticket(tid, cid="c1", subject="Question", description=None, assignee=None, status="open", n=1):
    return row("ticket", id=tid, customer_id=cid, number=n, subject=subject, description=description, status=status,
               priority="normal", assignee_id=assignee, team="support-l1", sla_due=f"2026-11-2{n}T10:00:00Z",
               created_at=f"2026-11-0{n}T10:00:00Z")


def event(eid, oid="o1", kind="status", status=None, reason=None, at="2026-11-20T10:00:00Z", cid="c1"):
    return row("order_event", id=eid, customer_id=cid, order_id=oid, kind=kind, status=status, reason=reason,
               occurred_at=at)


@pytest.fixture
def replica(tmp_path):
    r = Replica(tmp_path / "replica.db", tmp_path / "hot", key=TEST_KEY)
    r.set_meta("me", {"id": "u1", "name": "Ada", "role": "agent", "team": "support-l1"})
    r.server_apply.apply_page(page([upsert("customer", [customer_row("c1"), customer_row("c2")]),
                            upsert("order", [order("o1"), order("o2", number="SO-00000007", status="shipped"),
                                             order("o3", cid="c2", number="SO-00000008")])]))
    yield r
    r.close()


def test_an_orders_history_is_read_oldest_first(replica):
    replica.server_apply.apply_page(page([upsert("order_event", [
        event("e3", status="paid", at="2026-11-21T09:00:00Z"),
        event("e1", status="pending", at="2026-11-20T09:00:00Z"),
        event("e2", kind="refund_request", reason="Arrived damaged", at="2026-11-22T09:00:00Z"),
        event("x1", oid="o2", status="shipped"),
    ])], cursor="c2"))
    history = replica.reads.order_history("o1")
    assert [(e["id"], e["kind"], e["status"]) for e in history] == [
        ("e1", "status", "pending"), ("e3", "status", "paid"), ("e2", "refund_request", None)]


@pytest.mark.parametrize("text", [
    "Where is SO-00010042?", "order so-10042 never arrived", "Re: SO10042", "about order 10042", "so00010042 late"])
def test_tickets_that_mention_an_order_are_found_as_people_write_the_number(replica, text):
    replica.server_apply.apply_page(page([upsert("ticket", [
        ticket("t1", description=text, n=1),
        ticket("t2", subject="SO-00010042 for someone else", cid="c2", n=2),
        ticket("t3", subject="Invoice address", description="SO-00100420 is another order", n=3),
    ])], cursor="c2"))
    assert [t["id"] for t in replica.reads.tickets_mentioning("c1", "SO-00010042")] == ["t1"]


def test_mentions_are_found_through_the_word_index_never_a_scan_of_tickets(replica):
    replica.server_apply.apply_page(page([upsert("ticket", [ticket("t1", subject="SO-00010042 late")])], cursor="c2"))
    replica.writes.update("ticket", "t1", {"subject": "Late delivery", "description": "It was SO-00000007"})
    assert replica.reads.tickets_mentioning("c1", "SO-00010042") == []
    assert [t["id"] for t in replica.reads.tickets_mentioning("c1", "SO-00000007")] == ["t1"]
    plan = " | ".join(r[3] for r in replica.conn.execute(
        "EXPLAIN QUERY PLAN SELECT * FROM tickets WHERE rowid IN (SELECT rowid FROM tickets_fts WHERE tickets_fts"
        " MATCH '\"7\"') AND customer_id = 'c1' ORDER BY created_at DESC, id DESC LIMIT 50"))
    assert "VIRTUAL TABLE INDEX" in plan and "SCAN tickets " not in f"{plan} ", plan


def test_an_agent_records_a_cancellation_request_that_is_queued_for_the_server(replica):
    saved = replica.writes.create("order_event", {"customer_id": "c1", "order_id": "o1", "kind": "cancel_request",
                                                  "reason": "Ordered twice", "occurred_at": "2026-11-25T10:00:00Z"})
    assert saved["author_id"] == "u1" and saved["kind"] == "cancel_request"
    (op,) = replica.conn.execute("SELECT op, entity, fields FROM outbox WHERE record_id = ?", (saved["id"],)).fetchall()
    assert op[:2] == ("create", "order_event") and json.loads(op[2])["reason"] == "Ordered twice"
    assert [e["id"] for e in replica.reads.order_history("o1")] == [saved["id"]]


@pytest.mark.parametrize(("fields", "errors"), [
    ({"order_id": "o2", "kind": "cancel_request", "reason": "Too late"},
     {"order_id": "a shipped order cannot be cancelled (only pending, paid ones)"}),
    ({"order_id": "o1", "kind": "refund_request", "reason": " "}, {"reason": "say why the customer asks for it"}),
    ({"order_id": "o3", "kind": "refund_request", "reason": "Damaged"}, {"order_id": "belongs to another customer"}),
    ({"order_id": "o1", "kind": "status", "status": "cancelled"},
     {"kind": "status changes are recorded by the server; record a cancel_request or a refund_request"}),
])
def test_a_request_the_server_would_reject_is_refused_locally_and_nothing_is_queued(replica, fields, errors):
    with pytest.raises(ValidationError) as exc:
        replica.writes.create("order_event", {"customer_id": "c1", "occurred_at": "2026-11-25T10:00:00Z", **fields})
    assert exc.value.errors == errors
    assert replica.conn.execute("SELECT count(*) FROM outbox").fetchone()[0] == 0


def test_the_status_history_cannot_be_edited_or_deleted_locally(replica):
    replica.server_apply.apply_page(page([upsert("order_event", [event("e1", status="paid")])], cursor="c2"))
    with pytest.raises(ValidationError):
        replica.writes.update("order_event", "e1", {"reason": "rewrite"})
    with pytest.raises(ValidationError):
        replica.writes.delete("order_event", "e1")
    assert replica.conn.execute("SELECT count(*) FROM outbox").fetchone()[0] == 0


def test_call_outcomes_and_closed_deals_follow_the_servers_rules(replica):
    replica.server_apply.apply_page(page([upsert("contact", [row("contact", id="k1", customer_id="c1", name="Kim")]),
                                  upsert("deal", [row("deal", id="d1", customer_id="c1", title="Fleet",
                                                      stage="negotiation")])], cursor="c2"))
    call = replica.writes.create("activity", {"customer_id": "c1", "kind": "call", "outcome": "reached",
                                              "duration_min": 15, "contact_id": "k1",
                                              "occurred_at": "2026-11-25T10:00:00Z"})
    assert (call["outcome"], call["duration_min"], call["contact_id"]) == ("reached", 15, "k1")
    with pytest.raises(ValidationError) as exc:
        replica.writes.create("activity", {"customer_id": "c1", "kind": "note", "body": "x", "duration_min": 3,
                                           "occurred_at": "2026-11-25T10:00:00Z"})
    assert exc.value.errors == {"duration_min": "only calls and visits have a duration"}
    with pytest.raises(ValidationError) as exc:
        replica.writes.update("deal", "d1", {"stage": "lost", "close_date": "2026-11-30"})
    assert exc.value.errors == {"lost_reason": "say why the deal was lost"}
    lost = replica.writes.update("deal", "d1", {"stage": "lost", "close_date": "2026-11-30", "lost_reason": "Price"})
    assert (lost["stage"], lost["lost_reason"]) == ("lost", "Price")


def test_the_unassigned_view_lists_active_tickets_nobody_has(replica):
    replica.server_apply.apply_page(page([upsert("ticket", [
        ticket("t1", assignee=None, n=1), ticket("t2", assignee="u1", n=2), ticket("t3", assignee="u2", n=3),
        ticket("t4", assignee=None, status="solved", n=4)])], cursor="c2"))
    reads = replica.reads
    assert [t["id"] for t in reads.ticket_queue("unassigned")] == ["t1"]
    assert reads.ticket_queue_count("unassigned") == 1
    assert [t["id"] for t in reads.ticket_queue("team", team="support-l1")] == ["t1", "t2", "t3"]
    assert [t["id"] for t in reads.ticket_queue("mine", user_id="u1")] == ["t2"]


def test_a_bootstrap_builds_the_tickets_word_index_when_tickets_are_complete(tmp_path):
    r = Replica(tmp_path / "boot.db", tmp_path / "hot", key=TEST_KEY)
    try:
        progress = {"entity": "ticket", "done": 3, "total": 6, "complete": ["territory", "user", "customer"]}
        r.server_apply.apply_page(page([upsert("customer", [customer_row("c1")]),
                                upsert("ticket", [ticket("t1", description="SO-00010042 missing")])],
                               cursor="s1", has_more=True, phase="snapshot", progress=progress))
        assert r.reads.tickets_mentioning("c1", "SO-00010042") == [], "not yet indexed, and no error"
        r.server_apply.apply_page(page([upsert("order", [order("o1")]), upsert("order_event", [event("e1", status="paid")])],
                               cursor="f1", phase="feed"))
        assert [t["id"] for t in r.reads.tickets_mentioning("c1", "SO-00010042")] == ["t1"]
        assert [e["id"] for e in r.reads.order_history("o1")] == ["e1"]
    finally:
        r.close()


def test_a_replica_of_schema_3_gets_order_history_outcomes_and_the_ticket_index(tmp_path):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    db = Database(conn)
    _create_v1(db)
    _split_search_triggers_v2(db)
    # As schema 3 (tasks) made it: none of what version 4 (order history, outcomes) adds.
    MIGRATIONS[3](db)  # schema 3's own step (tasks)
    conn.execute("DROP INDEX IF EXISTS ix_order_events_order")
    conn.execute("DROP TABLE IF EXISTS order_events")
    conn.execute("ALTER TABLE deals DROP COLUMN lost_reason")
    for name in ("outcome", "duration_min", "contact_id"):
        conn.execute(f"ALTER TABLE activities DROP COLUMN {name}")
    conn.execute("INSERT INTO customers (id, name, territory, version, _gen) VALUES ('c1', 'Old', 't1', 1, 0)")
    conn.execute("INSERT INTO tickets (id, customer_id, subject, status, priority, version, _gen)"
                 " VALUES ('t1', 'c1', 'Where is SO-00000005?', 'open', 'low', 1, 0)")
    conn.execute("PRAGMA user_version = 3")
    conn.close()
    r = Replica(path, tmp_path / "hot")
    try:
        assert r.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert [t["id"] for t in r.reads.tickets_mentioning("c1", "SO-00000005")] == ["t1"], "old tickets indexed"
        r.server_apply.apply_page(page([upsert("order_event", [event("e1", oid="o9", status="paid")]),
                                upsert("deal", [row("deal", id="d1", customer_id="c1", title="T", stage="lost",
                                                    lost_reason="Price")])]))
        assert r.reads.order_history("o9")[0]["status"] == "paid"
        assert r.get("deal", "d1")["lost_reason"] == "Price"
        indexes = {n for (n,) in r.conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert "ix_order_events_order" in indexes
    finally:
        r.close()
