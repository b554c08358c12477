"""Tasks on the server, both stores: created and completed through batches, scoped by their
customer's territory, merged or in conflict like every record, and in the seeded data."""

from __future__ import annotations

import pytest

from server.helpers import MiniReplica, list_all, truth
from support.server import ServerProcess, UserSpec, make_op


@pytest.fixture(scope="module")
def srv(tmp_path_factory, database):
    users = [UserSpec("ada", "admin"), UserSpec("alex", "agent"), UserSpec("bea", "agent"),
             UserSpec("sam", "sales", ("dach",)), UserSpec("rita", "sales", ("france",))]
    path = tmp_path_factory.mktemp("tasks") / "crm.db"
    with ServerProcess(path, database=database(path), seed_customers=40, users=users) as s:
        yield s


def _customer(srv, cid: str, territory: str = "dach") -> None:
    (r,) = srv.batch([
        make_op("create", "customer", cid, {"name": f"Customer {cid}", "territory": territory}),
    ])
    assert r["status"] == "applied", r


def _task(cid: str, tid: str, **fields) -> dict:
    return make_op("create", "task", tid, {"customer_id": cid, "title": "Call back", "status": "open",
                                           "due_at": "2026-12-01T09:00:00Z", **fields})


def test_a_task_is_created_completed_and_reopened(srv):
    _customer(srv, "tk-c1")
    (created,) = srv.batch([_task("tk-c1", "tk-1", owner_id=srv.user_ids["alex"], notes="Ask about the invoice")],
                           user="alex")
    assert created["status"] == "applied", created
    assert created["record"]["due_at"] == "2026-12-01T09:00:00Z" and created["record"]["created_at"]
    (done,) = srv.batch([make_op("update", "task", "tk-1", {"status": "done", "done_at": "2026-11-30T10:00:00Z"},
                                 base_version=created["version"])], user="alex")
    assert done["status"] == "applied" and done["record"]["status"] == "done"
    (reopened,) = srv.batch([make_op("update", "task", "tk-1", {"status": "open", "done_at": None},
                                     base_version=done["version"])], user="bea")
    assert reopened["status"] == "applied"
    assert srv.get_record("tasks", "tk-1")["status"] == "open"
    assert srv.get_record("tasks", "tk-1")["done_at"] is None


def test_a_bad_due_time_or_status_is_rejected_with_the_field_named(srv):
    _customer(srv, "tk-c2")
    bad_due, bad_status, no_title = srv.batch([
        _task("tk-c2", "tk-bad-1", due_at="next week"),
        _task("tk-c2", "tk-bad-2", status="maybe"),
        _task("tk-c2", "tk-bad-3", title=""),
    ])
    assert bad_due["status"] == "rejected" and "due_at" in bad_due["error"]["fields"]
    assert bad_status["status"] == "rejected" and "open, done" in bad_status["error"]["fields"]["status"]
    assert no_title["status"] == "rejected" and no_title["error"]["fields"]["title"] == "is required"
    assert srv.get_record("tasks", "tk-bad-1") is None


def test_a_task_about_another_customers_ticket_or_deal_is_rejected(srv):
    _customer(srv, "tk-c3")
    _customer(srv, "tk-c4")
    results = srv.batch([
        make_op("create", "ticket", "tk-c4-ti", {"customer_id": "tk-c4", "subject": "Broken", "status": "new",
                                                 "priority": "high"}),
        make_op("create", "deal", "tk-c4-de", {"customer_id": "tk-c4", "title": "Renewal", "stage": "lead"}),
        _task("tk-c3", "tk-x1", ticket_id="tk-c4-ti"),
        _task("tk-c3", "tk-x2", deal_id="tk-c4-de"),
        _task("tk-c4", "tk-x3", ticket_id="tk-c4-ti", deal_id="tk-c4-de"),
    ])
    assert [r["status"] for r in results] == ["applied", "applied", "rejected", "rejected", "applied"], results
    assert results[2]["error"]["fields"] == {"ticket_id": "belongs to another customer"}
    assert results[3]["error"]["fields"] == {"deal_id": "belongs to another customer"}


def test_the_same_field_edited_on_both_sides_is_a_conflict_and_different_fields_merge(srv):
    _customer(srv, "tk-c5")
    (base,) = srv.batch([_task("tk-c5", "tk-5")])
    (a,) = srv.batch([make_op("update", "task", "tk-5", {"due_at": "2026-12-02T09:00:00Z"},
                              base_version=base["version"])], user="alex")
    (b,) = srv.batch([make_op("update", "task", "tk-5", {"title": "Call back about the quote"},
                              base_version=base["version"])], user="bea")
    assert a["status"] == "applied" and b["status"] == "merged"
    assert b["record"]["due_at"] == "2026-12-02T09:00:00Z" and b["record"]["title"] == "Call back about the quote"
    (c,) = srv.batch([make_op("update", "task", "tk-5", {"due_at": "2026-12-05T09:00:00Z"},
                              base_version=base["version"])], user="bea")
    assert c["status"] == "conflict"
    assert c["conflicts"] == [{"field": "due_at", "server": "2026-12-02T09:00:00Z", "client": "2026-12-05T09:00:00Z"}]
    assert srv.get_record("tasks", "tk-5")["due_at"] == "2026-12-02T09:00:00Z", "the server's value stays"


def test_a_rep_sees_only_tasks_of_customers_in_their_territory_and_they_follow_the_customer(srv):
    _customer(srv, "tk-dach", "dach")
    _customer(srv, "tk-fr", "france")
    assert [r["status"] for r in srv.batch([_task("tk-dach", "tk-d1"), _task("tk-fr", "tk-f1")])] == ["applied"] * 2
    sam, rita = MiniReplica(), MiniReplica()
    with srv.client("sam") as s, srv.client("rita") as r, srv.client("ada") as admin:
        sam.pull(s)
        rita.pull(r)
        assert "tk-d1" in sam.records["task"] and "tk-f1" not in sam.records["task"]
        assert "tk-f1" in rita.records["task"] and "tk-d1" not in rita.records["task"]
        assert s.get("/v1/tasks/tk-f1").status_code == 404
        assert {t["id"] for t in list_all(s, "tasks")} == set(sam.records["task"])
        # A rep cannot hang a task on a customer they cannot see.
        (r_out,) = srv.batch([_task("tk-fr", "tk-sam-on-fr")], user="sam")
        assert r_out["status"] == "rejected" and r_out["error"]["code"] == "not_found"
        # The customer moves to France: its task leaves Sam's replica and reaches Rita's.
        version = admin.get("/v1/customers/tk-dach").json()["version"]
        (moved,) = srv.batch([make_op("update", "customer", "tk-dach", {"territory": "france"}, base_version=version)])
        assert moved["status"] == "applied"
        sam.pull(s)
        rita.pull(r)
        assert "tk-d1" not in sam.records["task"] and "tk-d1" in rita.records["task"]
        assert sam.records == truth(admin, {"dach"})
        assert rita.records == truth(admin, {"france"})


def test_a_deleted_task_leaves_every_replica(srv):
    _customer(srv, "tk-c6")
    (t,) = srv.batch([_task("tk-c6", "tk-6")])
    replica = MiniReplica()
    with srv.client("sam") as c:
        replica.pull(c)
        assert "tk-6" in replica.records["task"]
        (gone,) = srv.batch([make_op("delete", "task", "tk-6", base_version=t["version"])])
        assert gone["status"] == "applied"
        replica.pull(c)
    assert "tk-6" not in replica.records["task"]


def test_the_seed_has_tasks_overdue_upcoming_and_done_linked_to_their_own_customers_records(srv):
    with srv.client("ada") as c:
        tasks = list_all(c, "tasks")
        seeded = [t for t in tasks if t["id"].startswith("tsk-")]
        assert {t["status"] for t in seeded} == {"open", "done"}
        assert any(t["ticket_id"] for t in seeded) and any(t["deal_id"] for t in seeded)
        for t in seeded:
            if t["ticket_id"]:
                assert c.get(f"/v1/tickets/{t['ticket_id']}").json()["customer_id"] == t["customer_id"]
            if t["status"] == "done":
                assert t["done_at"] is not None
            else:
                assert t["done_at"] is None
