"""Batch writes over loopback: idempotency, merges and conflicts, workflow, references, scope."""

from __future__ import annotations

import re

import pytest

from crm_tui.core.domain import parse_datetime
from server.helpers import MiniReplica
from support.faultproxy import FaultProxy, replace_body
from support.server import ServerProcess, UserSpec, make_op


@pytest.fixture(scope="module")
def srv(tmp_path_factory, database):
    users = [UserSpec("ada", "admin"), UserSpec("alex", "agent"), UserSpec("bea", "agent"),
             UserSpec("sam", "sales", ("dach",))]
    path = tmp_path_factory.mktemp("batch") / "crm.db"
    with ServerProcess(path, database=database(path), seed_customers=10, users=users) as s:
        yield s


def _customer(srv, cid, territory="dach", **fields):
    (r,) = srv.batch([make_op("create", "customer", cid, {"name": f"Customer {cid}", "territory": territory, **fields})])
    assert r["status"] == "applied", r
    return r["record"]


def test_a_batch_sent_twice_is_applied_once(srv):
    ops = [make_op("create", "customer", "idem-1", {"name": "Once", "territory": "dach"}),
           make_op("create", "contact", "idem-1-ct", {"customer_id": "idem-1", "name": "Ona"})]
    first = srv.batch(ops, user="alex")
    with srv.client("alex") as c:
        replica = MiniReplica()
        replica.pull(c)
        again = srv.batch(ops, user="alex")
        assert [r["replayed"] for r in again] == [True, True]
        assert [{**r, "replayed": False} for r in again] == first
        before = len(replica.pages)
        replica.pull(c)
    assert all(not p["segments"] for p in replica.pages[before:]), "a replay changes nothing"
    # An update replayed does not bump the version either.
    op = make_op("update", "customer", "idem-1", {"city": "Bonn"}, base_version=first[0]["version"])
    (u1,) = srv.batch([op], user="alex")
    (u2,) = srv.batch([op], user="alex")
    assert u2["replayed"] and u2["version"] == u1["version"] == srv.get_record("customers", "idem-1")["version"]


def test_a_batch_applied_whose_answer_became_a_500_is_applied_once_when_sent_again(srv):
    # A proxy between client and server lets the write through, then loses the answer.
    op = make_op("create", "territory", "lost-answer-1", {"name": "Lost answer"})
    with FaultProxy(srv.url) as proxy, srv.client("ada", base_url=proxy.url) as c:
        proxy.add_rule(replace_body({"error": {"code": "internal", "message": "proxy failed"}}, status=500),
                       method="POST", path="/v1/batch", times=1)
        assert c.post("/v1/batch", json={"ops": [op]}).status_code == 500
        assert srv.get_record("territories", "lost-answer-1") is not None, "the effect was committed"
        (again,) = c.post("/v1/batch", json={"ops": [op]}).json()["results"]
    assert again["status"] == "applied" and again["replayed"] is True


def test_an_op_id_reused_for_another_record_or_by_another_user_is_rejected(srv):
    op = make_op("create", "customer", "reuse-1", {"name": "Reuse", "territory": "dach"})
    assert srv.batch([op], user="alex")[0]["status"] == "applied"
    other_record = {**op, "id": "reuse-2"}
    (r,) = srv.batch([other_record], user="alex")
    assert r["status"] == "rejected" and r["error"]["code"] == "op_id_reused"
    (r,) = srv.batch([op], user="bea")
    assert r["status"] == "rejected" and r["error"]["code"] == "op_id_reused"
    assert srv.get_record("customers", "reuse-2") is None


def test_edits_of_different_fields_merge(srv):
    base = _customer(srv, "merge-1")
    (a,) = srv.batch([make_op("update", "customer", "merge-1", {"phone": "+49 30 1"}, base_version=base["version"])], user="alex")
    (b,) = srv.batch([make_op("update", "customer", "merge-1", {"city": "Köln"}, base_version=base["version"])], user="bea")
    assert a["status"] == "applied"
    assert b["status"] == "merged" and b["conflicts"] == []
    assert b["record"]["phone"] == "+49 30 1" and b["record"]["city"] == "Köln"
    assert b["version"] > a["version"]


def test_edits_of_the_same_field_conflict_and_both_values_are_returned(srv):
    base = _customer(srv, "conf-1", phone="+49 1")
    srv.batch([make_op("update", "customer", "conf-1", {"phone": "+49 2"}, base_version=base["version"])], user="alex")
    (r,) = srv.batch([make_op("update", "customer", "conf-1", {"phone": "+49 3", "city": "Ulm"},
                              base_version=base["version"])], user="bea")
    assert r["status"] == "conflict"
    assert r["conflicts"] == [{"field": "phone", "server": "+49 2", "client": "+49 3"}]
    assert r["record"]["phone"] == "+49 2", "the server's value is kept"
    assert r["record"]["city"] == "Ulm", "the other fields of the op are written"


def test_the_same_value_on_both_sides_is_not_a_conflict(srv):
    base = _customer(srv, "same-1")
    srv.batch([make_op("update", "customer", "same-1", {"tier": "gold"}, base_version=base["version"])], user="alex")
    (r,) = srv.batch([make_op("update", "customer", "same-1", {"tier": "gold"}, base_version=base["version"])], user="bea")
    assert r["status"] in ("applied", "merged") and r["conflicts"] == []


def test_two_ops_of_one_batch_on_one_field_do_not_conflict_with_each_other(srv):
    base = _customer(srv, "seq-1")
    results = srv.batch([
        make_op("update", "customer", "seq-1", {"phone": "+49 5"}, base_version=base["version"]),
        make_op("update", "customer", "seq-1", {"phone": "+49 6"}, base_version=base["version"]),
    ])
    assert [r["conflicts"] for r in results] == [[], []]
    assert results[1]["record"]["phone"] == "+49 6"


def test_a_delete_of_a_record_changed_since_is_a_conflict_and_deletes_nothing(srv):
    base = _customer(srv, "del-1")
    (u,) = srv.batch([make_op("update", "customer", "del-1", {"city": "Linz"}, base_version=base["version"])], user="alex")
    (d,) = srv.batch([make_op("delete", "customer", "del-1", base_version=base["version"])], user="bea")
    assert d["status"] == "conflict"
    assert d["conflicts"] == [{"field": "city", "server": "Linz", "client": None}]
    assert srv.get_record("customers", "del-1") is not None
    (d,) = srv.batch([make_op("delete", "customer", "del-1", base_version=u["version"])], user="bea")
    assert d["status"] == "applied" and d["record"] is None
    assert srv.get_record("customers", "del-1") is None
    (r,) = srv.batch([make_op("update", "customer", "del-1", {"city": "Graz"}, base_version=u["version"])])
    assert r["status"] == "rejected" and r["error"]["code"] == "deleted"
    (r,) = srv.batch([make_op("create", "customer", "del-1", {"name": "Again", "territory": "dach"})])
    assert r["status"] == "rejected" and r["error"]["code"] == "exists"


def test_deleting_a_customer_deletes_its_records(srv):
    c = _customer(srv, "cascade-1")
    srv.batch([make_op("create", "contact", "cascade-1-ct", {"customer_id": "cascade-1", "name": "Kai"}),
               make_op("create", "deal", "cascade-1-dl", {"customer_id": "cascade-1", "title": "Big", "stage": "lead"})])
    with srv.client("alex") as client:
        replica = MiniReplica()
        replica.pull(client)
        assert "cascade-1-ct" in replica.records["contact"]
        (d,) = srv.batch([make_op("delete", "customer", "cascade-1", base_version=c["version"])])
        assert d["status"] == "applied"
        replica.pull(client)
    assert "cascade-1-ct" not in replica.records["contact"] and "cascade-1-dl" not in replica.records["deal"]
    assert srv.get_record("contacts", "cascade-1-ct") is None


def test_create_with_an_existing_id_is_rejected(srv):
    _customer(srv, "dup-1")
    (r,) = srv.batch([make_op("create", "customer", "dup-1", {"name": "Dup", "territory": "dach"})])
    assert r["status"] == "rejected" and r["error"]["code"] == "exists" and r["record"] is None


def test_server_set_fields_are_filled_and_cannot_be_sent(srv):
    _customer(srv, "srvset-1")
    results = srv.batch([
        make_op("create", "ticket", "srvset-t1", {"customer_id": "srvset-1", "subject": "A", "status": "new", "priority": "urgent"}),
        make_op("create", "ticket", "srvset-t2", {"customer_id": "srvset-1", "subject": "B", "status": "new", "priority": "low"}),
        make_op("create", "order", "srvset-o1", {"customer_id": "srvset-1", "order_date": "2026-11-01", "amount": 995,
                                                 "currency": "EUR", "status": "pending"}),
        make_op("create", "activity", "srvset-a1", {"customer_id": "srvset-1", "kind": "call", "occurred_at": "2026-11-25T10:00:00Z"}),
        make_op("create", "ticket", "srvset-t3", {"customer_id": "srvset-1", "subject": "C", "status": "new",
                                                  "priority": "low", "number": 5}),
    ], user="alex")
    t1, t2, o1, a1, t3 = results
    assert t2["record"]["number"] == t1["record"]["number"] + 1
    created = parse_datetime(t1["record"]["created_at"])
    assert (parse_datetime(t1["record"]["sla_due"]) - created).total_seconds() == 4 * 3600
    assert (parse_datetime(t2["record"]["sla_due"]) - created).total_seconds() == 72 * 3600
    assert re.fullmatch(r"SO-\d{8}", o1["record"]["number"])
    assert a1["record"]["author_id"] == srv.user_ids["alex"]
    assert t1["record"]["updated_at"] == t1["record"]["created_at"]
    assert t3["status"] == "rejected" and t3["error"]["code"] == "validation"
    assert t3["error"]["fields"] == {"number": "is set by the server"}


def test_tickets_follow_the_workflow(srv):
    _customer(srv, "flow-1")
    (t,) = srv.batch([make_op("create", "ticket", "flow-t", {"customer_id": "flow-1", "subject": "X", "status": "new",
                                                             "priority": "normal"})])
    (bad,) = srv.batch([make_op("update", "ticket", "flow-t", {"status": "closed"}, base_version=t["version"])])
    assert bad["status"] == "rejected" and bad["error"]["code"] == "validation" and "status" in bad["error"]["fields"]
    (ok,) = srv.batch([make_op("update", "ticket", "flow-t", {"status": "open"}, base_version=t["version"])])
    assert ok["status"] == "applied" and ok["record"]["status"] == "open"


def test_one_bad_op_never_blocks_the_others(srv):
    results = srv.batch([
        make_op("create", "customer", "mix-1", {"name": "Fine", "territory": "dach"}),
        make_op("create", "customer", "mix-2", {"name": "", "territory": "dach", "email": "not-an-email"}),
        {"op": "create", "entity": "customer"},
        make_op("create", "planet", "mix-3", {}),
        make_op("update", "customer", "mix-1", {"city": "Bern"}),
        make_op("create", "contact", "mix-4", {"customer_id": "no-such-customer", "name": "Nobody"}),
        make_op("create", "customer", "mix-5", {"name": "Also fine", "territory": "dach"}),
    ])
    assert [r["status"] for r in results] == ["applied", "rejected", "rejected", "rejected", "rejected", "rejected", "applied"]
    codes = [r["error"]["code"] if r["error"] else None for r in results]
    assert codes == [None, "validation", "invalid_op", "invalid_op", "invalid_op", "not_found", None]
    assert set(results[1]["error"]["fields"]) == {"name", "email"}
    assert results[2]["op_id"] is None and "op_id" in results[2]["error"]["fields"]
    assert results[4]["error"]["fields"] == {"base_version": "is required"}
    assert srv.get_record("customers", "mix-2") is None and srv.get_record("customers", "mix-5") is not None


def test_roles_and_scope_limit_what_may_be_written(srv):
    outside = _customer(srv, "scope-out", territory="france")
    inside = _customer(srv, "scope-in", territory="dach")
    results = srv.batch([
        make_op("create", "customer", "scope-new", {"name": "Elsewhere", "territory": "france"}),
        make_op("create", "contact", "scope-ct", {"customer_id": "scope-out", "name": "Hidden"}),
        make_op("update", "customer", "scope-out", {"city": "Paris"}, base_version=outside["version"]),
        make_op("update", "customer", "scope-in", {"territory": "france"}, base_version=inside["version"]),
        make_op("create", "territory", "scope-t", {"name": "Mine"}),
        make_op("create", "contact", "scope-ct2", {"customer_id": "scope-in", "name": "Visible"}),
    ], user="sam")
    codes = [r["error"]["code"] if r["error"] else r["status"] for r in results]
    assert codes == ["scope", "not_found", "not_found", "scope", "forbidden", "applied"]
    assert all(r["record"] is None for r in results[:5]), "no out-of-scope record in any result"
    (r,) = srv.batch([make_op("create", "user", "agent-made", {"name": "X", "role": "agent"})], user="alex")
    assert r["error"]["code"] == "forbidden"


def test_a_replayed_result_never_carries_a_record_that_left_the_scope(srv):
    c = _customer(srv, "replay-scope")
    op = make_op("update", "customer", "replay-scope", {"city": "Graz"}, base_version=c["version"])
    (first,) = srv.batch([op], user="sam")
    assert first["record"] is not None
    srv.batch([make_op("update", "customer", "replay-scope", {"territory": "italy"}, base_version=first["version"])])
    (again,) = srv.batch([op], user="sam")
    assert again["replayed"] and again["record"] is None and again["in_scope"] is False

