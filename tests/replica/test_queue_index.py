"""The active ticket queue is read from one covering index: its count, a `/` filter's count and
any block of it never visit the tickets' rows (EXPLAIN QUERY PLAN says so), and a replica of the
previous schema gets that index when it is opened."""

from __future__ import annotations

import sqlite3

from cache.replica import Replica
from cache.schema import MIGRATIONS, SCHEMA_VERSION, drop_derived
from crm_tui.core.domain import ENTITIES
from support.records import customer_row

ACTIVE = ("new", "open", "pending")


def page(segments, cursor="c1"):
    return {"cursor": cursor, "has_more": False, "phase": "feed", "segments": segments}


def upsert(entity, rows):
    return {"op": "upsert", "entity": entity, "columns": list(ENTITIES[entity].columns), "rows": rows}


def ticket(n: int, status: str, subject: str, **rec) -> list:
    ent = ENTITIES["ticket"]
    base = dict.fromkeys(ent.columns)
    base.update(id=f"t{n:04d}", customer_id="c1", number=1000 + n, subject=subject, status=status, priority="normal",
                team="billing" if n % 2 else "support", sla_due=f"2026-12-{1 + n % 28:02d}T09:00:00Z", version=1)
    base.update(rec)
    return [base[c] for c in ent.columns]


def fill(r: Replica) -> None:
    rows = [ticket(n, ("new", "open", "pending", "solved", "closed")[n % 5],
                   "Request for a refund" if n % 7 == 0 else "Delivery is late") for n in range(300)]
    r.server_apply.apply_page(page([upsert("customer", [customer_row("c1")]), upsert("ticket", rows)]))


def plan(conn, sql: str, params) -> list[str]:
    return [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params)]


def traced(conn, fn):
    """The statements ``fn`` runs on ``conn``, and its result."""
    seen: list[str] = []
    conn.set_trace_callback(seen.append)
    try:
        result = fn()
    finally:
        conn.set_trace_callback(None)
    return seen, result


def queue_plans(r: Replica, text: str, statuses: tuple[str, ...] = ACTIVE) -> list[str]:
    """The query plans of what the queue runs for a `/` filter ``text``: its count, its first
    block and its last block (walked from the end)."""
    window = r.lists.ticket_queue("all", statuses=statuses)
    statements, total = traced(r.conn, lambda: window.count(text))
    statements += traced(r.conn, lambda: window.rowids(0, 100, text, total=total))[0]
    statements += traced(r.conn, lambda: window.rowids(max(0, total - 100), 100, text, total=total))[0]
    plans = []
    for sql in statements:
        if sql.lstrip().upper().startswith("SELECT"):
            plans += plan(r.conn, sql, ())
    return plans


def test_the_active_queue_and_its_filter_are_read_from_the_covering_index(tmp_path):
    r = Replica(tmp_path / "r.db", tmp_path / "hot")
    try:
        fill(r)
        window = r.lists.ticket_queue("all")
        active = [n for n in range(300) if ("new", "open", "pending", "solved", "closed")[n % 5] in ACTIVE]
        assert window.count() == len(active)
        refunds = [n for n in active if n % 7 == 0]
        assert window.count("refund") == len(refunds)
        assert {row["subject"] for row in window.rows(0, 100, "refund")} == {"Request for a refund"}
        # A ticket number is still found by its digits, anywhere in the queue.
        assert [row["number"] for row in window.rows(0, 10, "1297")] == [1297]
        for text in ("", "refund", "1297"):
            plans = queue_plans(r, text)
            assert plans, text
            on_tickets = [p for p in plans if p.startswith(("SCAN tickets", "SEARCH tickets"))]
            # Every walk of the queue is over its index alone: no table rows are read, and the
            # table is never scanned.
            assert on_tickets and all("COVERING INDEX ix_tickets_active_sla" in p for p in on_tickets), (text, plans)
    finally:
        r.close()


def test_every_ticket_whatever_its_status_is_walked_in_order_from_an_index(tmp_path):
    """The queue with the status filter "any" (every ticket: 500k at 1M customers): `G`, a block
    and a `/` filter walk an index in SLA order; nothing sorts the whole table per block (with a
    status IN (...) of all five, each block sorted every ticket: `/` took over 30 s at 1M)."""
    every = ("new", "open", "pending", "solved", "closed")
    r = Replica(tmp_path / "r.db", tmp_path / "hot")
    try:
        fill(r)
        window = r.lists.ticket_queue("all", statuses=every)
        assert window.count() == 300
        first = window.rows(0, 5)
        last = window.rows(295, 5, total=300)
        ordered = sorted(r.conn.execute("SELECT sla_due, id FROM tickets").fetchall())
        assert [(row["sla_due"], row["id"]) for row in first] == ordered[:5]
        assert [(row["sla_due"], row["id"]) for row in last] == ordered[-5:]
        assert window.count("refund") == len([n for n in range(300) if n % 7 == 0])
        for text in ("", "refund"):
            plans = queue_plans(r, text, every)
            assert plans, text
            assert not [p for p in plans if "TEMP B-TREE" in p], (text, plans)
            on_tickets = [p for p in plans if p.startswith(("SCAN tickets", "SEARCH tickets"))]
            assert on_tickets and all("INDEX ix_tickets_sla" in p for p in on_tickets), (text, plans)
    finally:
        r.close()


def test_a_block_of_the_queue_brings_the_names_it_shows_in_one_statement(tmp_path):
    r = Replica(tmp_path / "r.db", tmp_path / "hot")
    try:
        fill(r)
        r.conn.execute("INSERT INTO users (id, name, version, _gen) VALUES ('u1', 'Grace Hopper', 1, 0)")
        r.conn.execute("UPDATE tickets SET assignee_id = 'u1' WHERE id = 't0001'")
        window = r.lists.ticket_queue("all")
        statements, rows = traced(r.conn, lambda: window.rows(0, 100))
        assert len(statements) == 2  # the block's row ids, then its rows with the names
        by_id = {row["id"]: row for row in rows}
        assert by_id["t0001"]["assignee_name"] == "Grace Hopper"
        assert {row["customer_name"] for row in rows} == {r.get("customer", "c1")["name"]}
    finally:
        r.close()


def test_a_replica_of_the_previous_schema_gets_the_covering_queue_index(tmp_path):
    path = tmp_path / "old.db"
    r = Replica(path, tmp_path / "hot")
    fill(r)
    r.close()
    conn = sqlite3.connect(path, isolation_level=None)
    # As the previous release left it: the active queue's index held only (sla_due, id).
    conn.execute("DROP INDEX ix_tickets_active_sla")
    conn.execute("CREATE INDEX ix_tickets_active_sla ON tickets(sla_due, id) "
                 "WHERE status IN ('new', 'open', 'pending')")
    conn.execute("PRAGMA user_version = 5")
    conn.close()
    assert 6 in MIGRATIONS
    r = Replica(path, tmp_path / "hot")
    try:
        assert r.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        columns = [row[2] for row in r.conn.execute("PRAGMA index_info(ix_tickets_active_sla)")]
        assert columns[:2] == ["sla_due", "id"] and {"status", "subject", "team", "number"} <= set(columns)
        assert all("COVERING INDEX ix_tickets_active_sla" in p for p in queue_plans(r, "refund")
                   if p.startswith(("SCAN tickets", "SEARCH tickets")))
        assert r.lists.ticket_queue("all").count("refund") == len(
            [n for n in range(300) if n % 7 == 0 and n % 5 < 3])
    finally:
        r.close()


def test_the_queue_reads_while_a_bootstrap_has_dropped_its_indexes(tmp_path):
    """A bootstrap drops the derived indexes while it bulk-loads; the queue (every view, counted,
    walked, filtered) still answers from the table instead of naming an index that is not there
    (the app died with 'no such index: ix_tickets_active_assignee' when 2 was pressed)."""
    r = Replica(tmp_path / "r.db", tmp_path / "hot")
    try:
        fill(r)
        drop_derived(r.conn)
        r.set_meta("bulk_tables", ["tickets"])
        active = [n for n in range(300) if n % 5 < 3]
        for view in ("all", "mine", "unassigned", "team"):
            window = r.lists.ticket_queue(view, user_id="u1", team="billing")
            total = window.count()
            assert window.count("refund") <= total
            assert len(window.rows(max(total - 5, 0), 5)) == min(total, 5)
        window = r.lists.ticket_queue("all")
        assert window.count() == len(active)
        assert [row["number"] for row in window.rows(len(active) - 1, 1)]
        assert r.reads.ticket_queue("unassigned")
    finally:
        r.close()


def test_a_replica_of_schema_7_gets_the_every_ticket_index(tmp_path):
    path = tmp_path / "old.db"
    r = Replica(path, tmp_path / "hot")
    fill(r)
    r.close()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("DROP INDEX ix_tickets_sla")  # as schema 7 left it
    conn.execute("PRAGMA user_version = 7")
    conn.close()
    assert 8 in MIGRATIONS
    r = Replica(path, tmp_path / "hot")
    try:
        assert r.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert [row[2] for row in r.conn.execute("PRAGMA index_info(ix_tickets_sla)")] == ["sla_due", "id"]
        every = ("new", "open", "pending", "solved", "closed")
        assert not [p for p in queue_plans(r, "", every) if "TEMP B-TREE" in p]
    finally:
        r.close()
