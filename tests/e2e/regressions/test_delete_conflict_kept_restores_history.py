"""A delete of a customer that clashes on the server (someone edited it meanwhile): when the user
keeps the customer, its whole history comes back to the replica, and an edit of one of its
contacts made before the delete still reaches the server."""
from support.client import ClientReplica, assert_replica_matches_server, server_projection
from support.records import admin_update, first_customer


def test_customer_delete_conflict_loses_children_for_good(server, tmp_path):
    alex = ClientReplica(tmp_path / "alex", server, "alex")
    assert alex.sync().ok
    cust = first_customer(server, with_children=True)
    cid = cust["id"]
    proj = server_projection(server, "alex")
    server_children = {e: [r for r in recs.values() if r.get("customer_id") == cid]
                       for e, recs in proj.items() if e in ("contact", "order", "ticket", "deal", "activity")}
    n_children = sum(map(len, server_children.values()))
    assert n_children > 0
    # alex also has a pending edit on one of the customer's contacts
    contact = server_children["contact"][0]
    with alex.replica() as r:
        r.writes.update("contact", contact["id"], {"title": "Edited offline by alex"})
        # ... and deletes the customer, offline
        r.writes.delete("customer", cid)
    # meanwhile someone else edits the customer -> the delete will be a conflict
    admin_update(server, "customer", cid, {"city": "Changed Meanwhile"})
    rep = alex.sync()
    assert rep.ok and rep.conflicts == 1, rep
    with alex.replica() as r:
        [conf] = r.conflicts.unresolved()
        assert conf.kind == "delete"
        # user decides to keep the customer
        r.writes.resolve_conflict(conf.id, {"record": "keep"})
    assert alex.sync().ok
    assert alex.sync().ok
    with alex.replica() as r:
        assert r.get("customer", cid) is not None  # customer came back
        local_children = sum(r.conn.execute(f"SELECT count(*) FROM {t} WHERE customer_id = ?", (cid,)).fetchone()[0]
                             for t in ("contacts", "orders", "tickets", "deals", "activities"))
        pending = r.outbox.counts()
    assert server.get_record("contacts", contact["id"])["title"] == "Edited offline by alex"
    assert local_children == n_children, f"replica lost {n_children - local_children} child records"
    assert pending == {"pending": 0, "rejected": 0, "conflicts": 0}
    assert_replica_matches_server(alex, server)
