"""Order history and requests, call outcomes and closed deals, both ways through the real server:
what an agent records offline reaches the server; what changes on the server reaches the replica;
a clash is shown with both values; a request the server refuses is kept with its reason."""

from __future__ import annotations

from server.helpers import list_all

from support.client import ClientReplica, assert_replica_matches_server
from support.records import admin_update
from support.server import make_op

WHEN = "2026-11-25T10:00:00Z"


def _paid_order(client: ClientReplica) -> dict:
    """An order just paid for, on the replica: the seed's newest order set to paid on the server
    (a small seed spread over two years may have none paid today), then synced."""
    with client.replica() as r:
        oid = r.conn.execute("SELECT id FROM orders WHERE status IN ('pending', 'paid', 'delivered')"
                             " ORDER BY order_date DESC, id LIMIT 1").fetchone()[0]
        status = r.get("order", oid)["status"]
    if status != "paid":
        admin_update(client.server, "order", oid, {"status": "paid"})
        assert client.sync().ok
    with client.replica() as r:
        return r.get("order", oid)


def test_seeded_history_and_the_tickets_that_mention_an_order_arrive_with_the_snapshot(seeded_server, tmp_path):
    server = seeded_server
    client = ClientReplica(tmp_path / "c", server, "alex")
    assert client.sync().ok
    assert_replica_matches_server(client, server)
    with server.client("ada") as c:
        events = list_all(c, "order_events")
        tickets = list_all(c, "tickets")
    assert {e["kind"] for e in events} >= {"status"}, "the seed gives recent orders their history"
    mentioning = [t for t in tickets if "About order SO-" in (t["description"] or "")]
    assert mentioning, "the seed has tickets that mention an order"
    ticket = mentioning[0]
    number = ticket["description"].rsplit("About order ", 1)[1].rstrip(".")
    with client.replica() as r:
        found = r.reads.tickets_mentioning(ticket["customer_id"], number)
    assert ticket["id"] in {t["id"] for t in found}


def test_a_request_recorded_offline_reaches_the_server_and_status_changes_come_back_as_history(server, tmp_path):
    client = ClientReplica(tmp_path / "c", server, "alex")
    assert client.sync().ok
    order = _paid_order(client)
    with client.replica() as r:
        request = r.writes.create("order_event", {"customer_id": order["customer_id"], "order_id": order["id"],
                                                  "kind": "cancel_request", "reason": "Ordered twice",
                                                  "occurred_at": WHEN})
    assert client.sync(url="http://127.0.0.1:9").ok is False  # offline: nothing lost, nothing sent
    assert server.get_record("order_events", request["id"]) is None
    assert client.sync().ok
    stored = server.get_record("order_events", request["id"])
    assert (stored["kind"], stored["reason"], stored["author_id"]) == ("cancel_request", "Ordered twice", "alex")
    # The order is cancelled on the server: the client's history shows it, after the request.
    admin_update(server, "order", order["id"], {"status": "cancelled"})
    assert client.sync().ok
    with client.replica() as r:
        history = r.reads.order_history(order["id"])
        assert r.get("order", order["id"])["status"] == "cancelled"
    assert history[-1]["kind"] == "status" and history[-1]["status"] == "cancelled"
    assert request["id"] in {e["id"] for e in history}
    assert_replica_matches_server(client, server)


def test_a_request_the_server_refuses_is_kept_with_its_reason(server, tmp_path):
    client = ClientReplica(tmp_path / "c", server, "alex")
    assert client.sync().ok
    order = _paid_order(client)
    with client.replica() as r:
        request = r.writes.create("order_event", {"customer_id": order["customer_id"], "order_id": order["id"],
                                                  "kind": "cancel_request", "reason": "Changed my mind",
                                                  "occurred_at": WHEN})
    admin_update(server, "order", order["id"], {"status": "shipped"})  # meanwhile it left the warehouse
    report = client.sync()
    assert report.ok
    with client.replica() as r:
        [rejected] = r.outbox.rejected()
    assert rejected.record_id == request["id"]
    assert rejected.error["fields"] == {"order_id": "a shipped order cannot be cancelled (only pending, paid ones)"}
    assert server.get_record("order_events", request["id"]) is None


def test_a_requests_reason_changed_on_both_sides_is_a_conflict_with_both_values(server, tmp_path):
    client = ClientReplica(tmp_path / "c", server, "alex")
    assert client.sync().ok
    order = _paid_order(client)
    with client.replica() as r:
        request = r.writes.create("order_event", {"customer_id": order["customer_id"], "order_id": order["id"],
                                                  "kind": "refund_request", "reason": "Damaged",
                                                  "occurred_at": WHEN})
    assert client.sync().ok
    admin_update(server, "order_event", request["id"], {"reason": "Damaged in transit (photos in the ticket)"})
    with client.replica() as r:
        r.writes.update("order_event", request["id"], {"reason": "Damaged; customer keeps it for a partial refund"})
    assert client.sync().ok
    with client.replica() as r:
        [conflict] = r.conflicts.unresolved()
    assert conflict.fields["reason"]["theirs"] == "Damaged in transit (photos in the ticket)"
    assert conflict.fields["reason"]["mine"] == "Damaged; customer keeps it for a partial refund"


def test_call_outcomes_and_a_lost_deal_reach_the_server_and_other_replicas(server, tmp_path):
    agent = ClientReplica(tmp_path / "agent", server, "alex")
    other = ClientReplica(tmp_path / "other", server, "ada")
    assert agent.sync().ok and other.sync().ok
    with agent.replica() as r:
        deal = r.conn.execute("SELECT id, customer_id FROM deals WHERE stage NOT IN ('won', 'lost')"
                              " ORDER BY id LIMIT 1").fetchone()
        contact = r.conn.execute("SELECT id FROM contacts WHERE customer_id = ? LIMIT 1", (deal[1],)).fetchone()[0]
        call = r.writes.create("activity", {"customer_id": deal[1], "deal_id": deal[0], "kind": "call",
                                            "subject": "Last try", "outcome": "not_interested", "duration_min": 7,
                                            "contact_id": contact, "occurred_at": WHEN})
        r.writes.update("deal", deal[0], {"stage": "lost", "close_date": "2026-11-25", "lost_reason": "No budget"})
    assert agent.sync().ok and other.sync().ok
    with other.replica() as r:
        got = r.get("activity", call["id"])
        lost = r.get("deal", deal[0])
    assert (got["outcome"], got["duration_min"], got["contact_id"]) == ("not_interested", 7, contact)
    assert (lost["stage"], lost["lost_reason"], lost["close_date"]) == ("lost", "No budget", "2026-11-25")
    assert_replica_matches_server(other, server)


def test_a_rep_gets_the_history_of_their_territorys_orders_only(server, tmp_path):
    rep = ClientReplica(tmp_path / "rep", server, "sam")
    assert rep.sync().ok
    assert_replica_matches_server(rep, server)
    with rep.replica() as r:
        outside = r.conn.execute(
            "SELECT count(*) FROM order_events e JOIN customers c ON c.id = e.customer_id").fetchone()[0]
        total = r.count("order_event")
    assert outside == total, "every event the rep holds is of a customer the rep holds"
    # A request on another territory's order never reaches the rep.
    with server.client("ada") as c:
        foreign = next(o for o in list_all(c, "orders", status="delivered")
                       if server.get_record("customers", o["customer_id"], user="sam") is None)
    [r] = server.batch([make_op("create", "order_event", "oe-foreign", {
        "customer_id": foreign["customer_id"], "order_id": foreign["id"], "kind": "refund_request",
        "reason": "Other territory", "occurred_at": WHEN})], user="alex")
    assert r["status"] == "applied"
    assert rep.sync().ok
    with rep.replica() as replica:
        assert replica.get("order_event", "oe-foreign") is None
