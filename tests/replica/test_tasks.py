"""Tasks in the replica: the schema step that brings them (version 3), the Today view's reads,
reminders, the agenda, and local writes of follow-ups (created, completed, reopened)."""

from __future__ import annotations

import datetime as dt

import pytest

from cache.replica import Replica
from cache.schema import SCHEMA_VERSION, drop_derived
from crm_tui.core.agenda import completion
from crm_tui.core.domain import ENTITIES, ValidationError
from support.keys import TEST_KEY
from support.records import customer_row

NOW = dt.datetime(2026, 11, 25, 9, 0, tzinfo=dt.UTC)  # a Wednesday


def page(segments, cursor="c1", has_more=False, phase="feed", progress=None):
    out = {"cursor": cursor, "has_more": has_more, "phase": phase, "segments": segments}
    if progress is not None:
        out["progress"] = progress
    return out


def upsert(entity, records):
    cols = list(ENTITIES[entity].columns)
    return {"op": "upsert", "entity": entity, "columns": cols,
            "rows": [[{"version": 1, **r}.get(c) for c in cols] for r in records]}


def task(tid, customer_id="c1", due="2026-11-25T14:00:00Z", owner="u1", status="open", **kw):
    return {"id": tid, "customer_id": customer_id, "title": f"Task {tid}", "due_at": due, "owner_id": owner,
            "status": status, **kw}


def open_replica(path):
    return Replica(path / "replica.db", path / "hot", key=TEST_KEY, clock=lambda: NOW)


@pytest.fixture
def replica(tmp_path):
    r = open_replica(tmp_path)
    r.set_meta("me", {"id": "u1", "name": "Ada", "role": "agent"})
    r.server_apply.apply_page(page([upsert("customer", [dict(zip(ENTITIES["customer"].columns, customer_row(c), strict=True))
                                                for c in ("c1", "c2")])]))
    yield r
    r.close()


def _as_version_2(tmp_path, *, complete, bulk=None):
    """A replica as crm-tui made it before tasks: no tasks table, schema version 2."""
    r = open_replica(tmp_path)
    r.server_apply.apply_page(page([upsert("customer", [dict(zip(ENTITIES["customer"].columns, customer_row("c1"),
                                                         strict=True))])]))
    r.writes.update("customer", "c1", {"city": "Bonn"})  # a pending edit that must survive
    r.set_meta("complete_entities", complete)
    if bulk is not None:
        drop_derived(r.conn)
        r.set_meta("bulk_tables", bulk)
    r.conn.execute("DROP TABLE tasks")  # and its indexes
    r.conn.execute("PRAGMA user_version = 2")
    r.close()


def _indexes(r):
    return {n for (n,) in r.conn.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'tasks'"
                                         " AND name LIKE 'ix_%'")}


def test_a_version_2_replica_gets_tasks_and_keeps_its_data_and_pending_edits(tmp_path):
    old = ["territory", "user", "customer", "contact", "ticket", "deal", "order", "activity"]
    _as_version_2(tmp_path, complete=old)
    r = open_replica(tmp_path)
    try:
        assert r.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION  # 3 brought tasks
        assert r.get("customer", "c1")["city"] == "Bonn"
        assert r.outbox.counts()["pending"] == 1
        assert {"ix_tasks_status_due", "ix_tasks_owner_due", "ix_tasks_customer"} <= _indexes(r)
        # It had every record of the older kinds, so it has every task there is: none yet, not "loading".
        assert r.get_meta("complete_entities") == [*old, "task"]
        r.server_apply.apply_page(page([upsert("task", [task("t1")])], cursor="c2"))
        assert r.tasks.counts(NOW).today == 1
    finally:
        r.close()


def test_a_replica_upgraded_mid_bootstrap_builds_the_task_indexes_with_the_others(tmp_path):
    _as_version_2(tmp_path, complete=["territory", "user"], bulk=["contacts", "activities"])
    r = open_replica(tmp_path)
    try:
        assert r.get_meta("bulk_tables") == ["tasks", "contacts", "activities"]
        assert _indexes(r) == set(), "no index upkeep row by row during a bulk load"
        assert "task" not in r.get_meta("complete_entities")
        # Reads work with the indexes down (nothing forces one).
        assert r.tasks.list() == [] and r.tasks.counts(NOW).overdue == 0
        r.server_apply.apply_page(page([upsert("task", [task("t1")])], cursor="b2", phase="snapshot", has_more=False))
        assert {"ix_tasks_status_due", "ix_tasks_owner_due"} <= _indexes(r)
        assert r.get_meta("bulk_tables") is None
    finally:
        r.close()


def test_today_lists_open_tasks_soonest_first_and_counts_each_group(replica):
    replica.server_apply.apply_page(page([upsert("task", [
        task("late", due="2026-11-23T10:00:00Z"),
        task("soon", due="2026-11-25T08:59:00Z"),
        task("today", due="2026-11-25T17:00:00Z"),
        task("tomorrow", due="2026-11-26T09:00:00Z"),
        task("week", due="2026-12-02T08:00:00Z"),
        task("later", due="2026-12-20T09:00:00Z"),
        task("theirs", due="2026-11-24T09:00:00Z", owner="u2"),
        task("done", due="2026-11-24T09:00:00Z", status="done", done_at="2026-11-25T08:00:00Z"),
    ])]))
    mine = [t["id"] for t in replica.tasks.list(owner_id="u1")]
    assert mine == ["late", "soon", "today", "tomorrow", "week", "later"]
    everyone = [t["id"] for t in replica.tasks.list()]
    assert everyone == ["late", "theirs", "soon", "today", "tomorrow", "week", "later"]
    # Paging by (due_at, id) gives the same rows as one page.
    first = replica.tasks.list(limit=3)
    rest = replica.tasks.list(after=(first[-1]["due_at"], first[-1]["id"]), limit=10)
    assert [t["id"] for t in first + rest] == everyone
    c = replica.tasks.counts(NOW, owner_id="u1")
    assert (c.overdue, c.today, c.upcoming, c.later, c.done_today) == (2, 1, 2, 1, 1)
    assert [t["id"] for t in replica.tasks.list(status="done")] == ["done"]
    agenda = replica.tasks.agenda(NOW, owner_id="u1")
    assert [t["id"] for t in agenda] == ["late", "soon", "today", "tomorrow", "week"]
    assert agenda[0]["customer_name"] == "Customer c1"


def test_reminders_are_for_tasks_that_fell_due_in_the_window_only(replica):
    replica.server_apply.apply_page(page([upsert("task", [
        task("before", due="2026-11-25T08:59:00Z"),
        task("in", due="2026-11-25T09:10:00Z"),
        task("edge", due="2026-11-25T09:15:00Z"),
        task("after", due="2026-11-25T09:16:00Z"),
        task("done", due="2026-11-25T09:05:00Z", status="done"),
        task("theirs", due="2026-11-25T09:05:00Z", owner="u2"),
    ])]))
    window = (NOW, NOW + dt.timedelta(minutes=15))
    assert [t["id"] for t in replica.tasks.falling_due(*window, owner_id="u1")] == ["in", "edge"]
    assert [t["id"] for t in replica.tasks.falling_due(*window)] == ["theirs", "in", "edge"]


def test_a_follow_up_is_queued_completed_and_reopened_as_one_create_then_an_update(replica):
    replica.server_apply.apply_page(page([upsert("ticket", [{"id": "tk1", "customer_id": "c1", "number": 7, "subject": "Late",
                                                     "status": "open", "priority": "high"}])]))
    created = replica.writes.create("task", {"customer_id": "c1", "title": "Call back", "due_at": "2026-11-26T09:00:00Z",
                                             "owner_id": "u1", "status": "open", "ticket_id": "tk1"})
    assert created["id"].startswith("tk_") and created["created_at"] == "2026-11-25T09:00:00Z"
    replica.writes.update("task", created["id"], completion(True, NOW))
    [op] = replica.outbox.next_batch(10)
    assert op.op == "create" and op.fields["status"] == "done" and op.fields["done_at"] == "2026-11-25T09:00:00Z"
    replica.results.apply([op], [{"op_id": op.op_id, "status": "applied", "version": 5,
                                         "record": {**replica.get("task", created["id"]), "version": 5}}])
    replica.writes.update("task", created["id"], completion(False, NOW))
    [reopen] = replica.outbox.next_batch(10)
    assert reopen.op == "update" and reopen.base_version == 5
    assert reopen.fields == {"status": "open", "done_at": None}
    assert replica.get("task", created["id"])["status"] == "open"


def test_a_task_about_another_customers_ticket_or_a_bad_due_time_is_refused_and_nothing_written(replica):
    replica.server_apply.apply_page(page([upsert("ticket", [{"id": "tk2", "customer_id": "c2", "number": 8, "subject": "x",
                                                     "status": "open", "priority": "low"}])]))
    with pytest.raises(ValidationError) as exc:
        replica.writes.create("task", {"customer_id": "c1", "title": "x", "due_at": "2026-11-26T09:00:00Z",
                                       "status": "open", "ticket_id": "tk2"})
    assert exc.value.errors == {"ticket_id": "belongs to another customer"}
    with pytest.raises(ValidationError) as exc:
        replica.writes.create("task", {"customer_id": "c1", "title": "x", "due_at": "friday", "status": "open"})
    assert "due_at" in exc.value.errors
    assert replica.count("task") == 0 and replica.outbox.counts()["pending"] == 0
