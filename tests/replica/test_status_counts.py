"""The status line's unsynced counts read only what is unsynced: the conflicts waiting for the
user have an index of their own (resolved conflicts are kept, and used to be read by every count).

Counted, never timed: the query plan names the index; the count is right."""

from __future__ import annotations

import pytest

from cache.replica import Replica
from cache.schema import SCHEMA_VERSION
from cache.sqlite import sqlite3
from crm_tui.core.domain import ENTITIES
from support.records import customer_row

RESOLVED, OPEN = 40, 3


def page(rows, cursor):
    return {"cursor": cursor, "has_more": False, "phase": "feed",
            "segments": [{"op": "upsert", "entity": "customer", "columns": list(ENTITIES["customer"].columns),
                          "rows": rows}]}


def conflict_result(op, version):
    record = dict(zip(ENTITIES["customer"].columns, customer_row(op.record_id, version=version, city="Hamburg"),
                      strict=True))
    return {"op_id": op.op_id, "status": "conflict", "version": version, "record": record,
            "conflicts": [{"field": "city", "server": "Hamburg", "client": "Munich"}]}


def fill(r: Replica) -> None:
    """RESOLVED conflicts the user resolved, OPEN still waiting, one rejected change."""
    r.set_meta("me", {"id": "u1", "name": "Ada", "role": "agent"})
    ids = [f"c{n:03d}" for n in range(RESOLVED + OPEN + 1)]
    r.server_apply.apply_page(page([customer_row(cid, version=5) for cid in ids], "1"))
    for cid in ids[:RESOLVED + OPEN]:
        r.writes.update("customer", cid, {"city": "Munich"})
    ops = r.outbox.next_batch(1000)
    r.results.apply(ops, [conflict_result(op, 20) for op in ops])
    for conflict in r.conflicts.unresolved()[:RESOLVED]:
        r.writes.resolve_conflict(conflict.id, {"city": "theirs"})
    r.writes.update("customer", ids[-1], {"city": "Bonn"})
    [op] = r.outbox.next_batch(10)
    r.results.apply([op], [{"op_id": op.op_id, "status": "rejected",
                            "error": {"code": "validation", "message": "city: no"}}])


def count_plans(r: Replica) -> tuple[list[str], dict[str, int]]:
    """The query plans of what the status line's count runs, and the count."""
    seen: list[str] = []
    r.conn.set_trace_callback(seen.append)
    try:
        counts = r.outbox.counts()
    finally:
        r.conn.set_trace_callback(None)
    plans = []
    for sql in seen:
        if "conflicts" in sql:
            plans += [row[3] for row in r.conn.execute(f"EXPLAIN QUERY PLAN {sql}")]
    return plans, counts


@pytest.fixture
def replica(tmp_path):
    r = Replica(tmp_path / "r.db", tmp_path / "hot")
    fill(r)
    yield r
    r.close()


def test_the_open_conflicts_count_reads_only_open_conflicts(replica):
    plans, counts = count_plans(replica)
    assert counts == {"pending": 0, "rejected": 1, "conflicts": OPEN}
    assert plans and all("COVERING INDEX ix_conflicts_open " in p for p in plans), plans
    # The index holds the open conflicts only: the count walks OPEN entries, not RESOLVED + OPEN.
    assert replica.conn.execute("SELECT count(*) FROM conflicts INDEXED BY ix_conflicts_open "
                                "WHERE resolved_at IS NULL").fetchone()[0] == OPEN


def test_a_records_open_conflict_and_the_list_read_only_open_conflicts(replica):
    """What the screens ask of conflicts besides the count: a record's open conflict (its mark)
    and the Conflicts list in order."""
    for sql in ("SELECT 1 FROM conflicts WHERE entity = 'customer' AND record_id = 'c001' AND resolved_at IS NULL",
                "SELECT record_id FROM conflicts WHERE entity = 'customer' AND resolved_at IS NULL",
                "SELECT id FROM conflicts WHERE resolved_at IS NULL ORDER BY id LIMIT 100"):
        plan = [row[3] for row in replica.conn.execute(f"EXPLAIN QUERY PLAN {sql}")]
        assert all("USING COVERING INDEX ix_conflicts_open" in p for p in plan), (sql, plan)


def test_a_replica_of_the_previous_schema_gets_the_open_conflicts_index(tmp_path):
    path = tmp_path / "old.db"
    r = Replica(path, tmp_path / "hot")
    fill(r)
    r.close()
    conn = sqlite3.connect(path, isolation_level=None)
    # As schema 6 left it: one index over every conflict.
    conn.execute("DROP INDEX ix_conflicts_open")
    conn.execute("DROP INDEX ix_conflicts_open_record")
    conn.execute("CREATE INDEX ix_conflicts_record ON conflicts(entity, record_id, resolved_at)")
    conn.execute("PRAGMA user_version = 6")
    conn.close()
    r = Replica(path, tmp_path / "hot")
    try:
        assert r.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        plans, counts = count_plans(r)
        assert counts["conflicts"] == OPEN
        assert plans and all("COVERING INDEX ix_conflicts_open " in p for p in plans), plans
        names = {row[0] for row in r.conn.execute("SELECT name FROM sqlite_master WHERE tbl_name = 'conflicts'")}
        assert "ix_conflicts_record" not in names
    finally:
        r.close()
