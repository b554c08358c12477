"""Order history and requests, call outcomes and closed deals, over loopback on both stores.

What an agent records (a cancellation or refund request, a call's outcome and who was on the
phone, why a deal was lost) reaches the server validated, is seen by the others through the feed,
and an order's status changes leave a history nobody can rewrite.
"""

from __future__ import annotations

import pytest

from server.helpers import MiniReplica, list_all
from support.server import ServerProcess, UserSpec, make_op


@pytest.fixture(scope="module")
def srv(tmp_path_factory, database):
    users = [UserSpec("ada", "admin"), UserSpec("alex", "agent"), UserSpec("sam", "sales", ("dach",)),
             UserSpec("nina", "sales", ("nordics",))]
    path = tmp_path_factory.mktemp("orders") / "crm.db"
    with ServerProcess(path, database=database(path), seed_customers=0, users=users) as s:
        s.batch([make_op("create", "territory", t, {"name": t.upper()}) for t in ("dach", "nordics")])
        yield s


def _order(srv, oid: str, *, status: str = "paid", customer: str | None = None) -> dict:
    cid = customer or f"c-{oid}"
    ops = [] if customer else [make_op("create", "customer", cid, {"name": f"Customer {oid}", "territory": "dach"})]
    ops.append(make_op("create", "order", oid, {"customer_id": cid, "order_date": "2026-11-20", "amount": 12_000,
                                                "currency": "EUR", "status": status}))
    results = srv.batch(ops, user="alex")
    assert all(r["status"] == "applied" for r in results), results
    return results[-1]["record"]


def _history(srv, oid: str, user: str = "alex") -> list[dict]:
    with srv.client(user) as c:
        events = list_all(c, "order_events", order_id=oid)
    return sorted(events, key=lambda e: e["version"])


def test_an_orders_status_changes_are_its_history(srv):
    order = _order(srv, "o-hist", status="pending")
    (paid,) = srv.batch([make_op("update", "order", "o-hist", {"status": "paid"}, base_version=order["version"])])
    srv.batch([make_op("update", "order", "o-hist", {"status": "shipped"}, base_version=paid["version"])])
    history = _history(srv, "o-hist")
    assert [(e["kind"], e["status"]) for e in history] == [("status", "pending"), ("status", "paid"),
                                                           ("status", "shipped")]
    assert history[0]["author_id"] == "alex" and history[1]["author_id"] == "ada"
    assert all(e["customer_id"] == "c-o-hist" and e["occurred_at"] for e in history)
    # The server's record: no client edits or deletes it, nor makes up status events.
    first = history[0]
    edit, delete, fake = srv.batch([
        make_op("update", "order_event", first["id"], {"reason": "rewrite"}, base_version=first["version"]),
        make_op("delete", "order_event", first["id"], base_version=first["version"]),
        make_op("create", "order_event", "oe-fake", {"customer_id": "c-o-hist", "order_id": "o-hist", "kind": "status",
                                                     "status": "delivered", "occurred_at": "2026-11-25T10:00:00Z"}),
    ], user="alex")
    assert [r["status"] for r in (edit, delete, fake)] == ["rejected"] * 3
    assert "kind" in edit["error"]["fields"] and "kind" in delete["error"]["fields"]
    assert fake["error"]["fields"] == {"kind": "status changes are recorded by the server; record a cancel_request "
                                               "or a refund_request"}
    assert len(_history(srv, "o-hist")) == 3


def test_an_agent_records_a_cancellation_request_with_its_reason(srv):
    _order(srv, "o-cancel", status="paid")
    (r,) = srv.batch([make_op("create", "order_event", "oe-cancel", {
        "customer_id": "c-o-cancel", "order_id": "o-cancel", "kind": "cancel_request",
        "reason": "Ordered twice by mistake", "occurred_at": "2026-11-25T10:00:00Z"})], user="alex")
    assert r["status"] == "applied", r
    assert r["record"]["author_id"] == "alex" and r["record"]["reason"] == "Ordered twice by mistake"
    # The rep of the territory sees it in the feed, with the order and its history.
    with srv.client("sam") as c:
        replica = MiniReplica()
        replica.pull(c)
    assert replica.records["order_event"]["oe-cancel"]["kind"] == "cancel_request"
    assert {e["order_id"] for e in replica.records["order_event"].values()} >= {"o-cancel"}
    # ... and a rep of another territory does not.
    with srv.client("nina") as c:
        other = MiniReplica()
        other.pull(c)
    assert not other.records["order_event"]


@pytest.mark.parametrize(("kind", "status", "message"), [
    ("cancel_request", "shipped", "a shipped order cannot be cancelled (only pending, paid ones)"),
    ("refund_request", "pending", "a pending order cannot be refunded (only paid, shipped, delivered ones)"),
    ("refund_request", "refunded", "a refunded order cannot be refunded (only paid, shipped, delivered ones)"),
])
def test_a_request_the_order_cannot_take_is_rejected_with_one_line(srv, kind, status, message):
    oid = f"o-{kind}-{status}"
    _order(srv, oid, status=status)
    (r,) = srv.batch([make_op("create", "order_event", f"oe-{oid}", {
        "customer_id": f"c-{oid}", "order_id": oid, "kind": kind, "reason": "Customer asked",
        "occurred_at": "2026-11-25T10:00:00Z"})], user="alex")
    assert r["status"] == "rejected" and r["error"]["fields"] == {"order_id": message}


def test_a_request_needs_a_reason_and_the_customers_own_order(srv):
    _order(srv, "o-mine")
    _order(srv, "o-theirs")
    no_reason, foreign = srv.batch([
        make_op("create", "order_event", "oe-no-reason", {"customer_id": "c-o-mine", "order_id": "o-mine",
                                                          "kind": "refund_request", "reason": "  ",
                                                          "occurred_at": "2026-11-25T10:00:00Z"}),
        make_op("create", "order_event", "oe-foreign", {"customer_id": "c-o-mine", "order_id": "o-theirs",
                                                        "kind": "refund_request", "reason": "Damaged",
                                                        "occurred_at": "2026-11-25T10:00:00Z"}),
    ], user="alex")
    assert no_reason["error"]["fields"] == {"reason": "say why the customer asks for it"}
    assert foreign["error"]["fields"] == {"order_id": "belongs to another customer"}


def test_deleting_an_order_deletes_its_history_on_every_replica(srv):
    order = _order(srv, "o-gone")
    with srv.client("sam") as c:
        replica = MiniReplica()
        replica.pull(c)
        assert any(e["order_id"] == "o-gone" for e in replica.records["order_event"].values())
        (r,) = srv.batch([make_op("delete", "order", "o-gone", base_version=order["version"])])
        assert r["status"] == "applied"
        replica.pull(c)
    assert not any(e["order_id"] == "o-gone" for e in replica.records["order_event"].values())
    assert _history(srv, "o-gone") == []


def test_calls_and_visits_record_outcome_duration_and_the_contact_spoken_to(srv):
    srv.batch([make_op("create", "customer", "c-call", {"name": "Callee", "territory": "dach"}),
               make_op("create", "contact", "ct-call", {"customer_id": "c-call", "name": "Petra Call"}),
               make_op("create", "customer", "c-other", {"name": "Other", "territory": "dach"}),
               make_op("create", "contact", "ct-other", {"customer_id": "c-other", "name": "Olaf Other"})])
    when = "2026-11-25T10:00:00Z"
    call, note, foreign, bad = srv.batch([
        make_op("create", "activity", "a-call", {"customer_id": "c-call", "kind": "call", "subject": "Renewal",
                                                 "outcome": "reached", "duration_min": 12, "contact_id": "ct-call",
                                                 "occurred_at": when}),
        make_op("create", "activity", "a-note", {"customer_id": "c-call", "kind": "note", "body": "x",
                                                 "outcome": "reached", "occurred_at": when}),
        make_op("create", "activity", "a-foreign", {"customer_id": "c-call", "kind": "visit", "outcome": "reached",
                                                    "contact_id": "ct-other", "occurred_at": when}),
        make_op("create", "activity", "a-bad", {"customer_id": "c-call", "kind": "call", "outcome": "maybe",
                                                "duration_min": 5000, "occurred_at": when}),
    ], user="alex")
    assert call["status"] == "applied"
    assert {k: call["record"][k] for k in ("outcome", "duration_min", "contact_id")} == {
        "outcome": "reached", "duration_min": 12, "contact_id": "ct-call"}
    assert note["error"]["fields"] == {"outcome": "only calls and visits have an outcome"}
    assert foreign["error"]["fields"] == {"contact_id": "belongs to another customer"}
    assert set(bad["error"]["fields"]) == {"outcome", "duration_min"}


def test_a_deal_marked_lost_needs_its_reason_and_close_date(srv):
    srv.batch([make_op("create", "customer", "c-deal", {"name": "Dealer", "territory": "dach"}),
               make_op("create", "deal", "d-1", {"customer_id": "c-deal", "title": "Fleet", "stage": "negotiation"})])
    deal = srv.get_record("deals", "d-1")
    bare, no_date = srv.batch([
        make_op("update", "deal", "d-1", {"stage": "lost"}, base_version=deal["version"]),
        make_op("update", "deal", "d-1", {"stage": "won"}, base_version=deal["version"]),
    ], user="sam")
    assert bare["error"]["fields"] == {"close_date": "a lost deal needs the date it closed",
                                       "lost_reason": "say why the deal was lost"}
    assert no_date["error"]["fields"] == {"close_date": "a won deal needs the date it closed"}
    (lost,) = srv.batch([make_op("update", "deal", "d-1", {"stage": "lost", "close_date": "2026-11-30",
                                                           "lost_reason": "Chose a competitor"},
                                 base_version=deal["version"])], user="sam")
    assert lost["status"] == "applied"
    assert (lost["record"]["stage"], lost["record"]["lost_reason"]) == ("lost", "Chose a competitor")
    # Edits of a deal already lost are not judged again (an amount fixed later is fine).
    (later,) = srv.batch([make_op("update", "deal", "d-1", {"amount": 100}, base_version=lost["version"])], user="sam")
    assert later["status"] == "applied"
