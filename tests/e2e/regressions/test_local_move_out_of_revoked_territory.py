from support.client import ClientReplica, assert_replica_matches_server
from support.records import first_customer


def test_a_customer_moved_locally_out_of_a_revoked_territory_still_leaves(server, tmp_path):
    """rita (france + benelux) moves a france customer to benelux offline; france is revoked. The
    push is rejected (the customer is no longer hers to see) and the revoke removes the customer
    and its history although the local row says benelux: the server has it in france."""
    rita = ClientReplica(tmp_path / "rita", server, "rita")
    assert rita.sync().ok
    cust = first_customer(server, "france", user="rita")
    with rita.replica() as r:
        r.writes.update("customer", cust["id"], {"territory": "benelux"})
    server.revoke("rita", "france")
    rep = rita.sync()
    assert rep.ok and rep.rejected == 1
    with rita.replica() as r:
        row = r.get("customer", cust["id"])
        kids = r.conn.execute("SELECT count(*) FROM activities WHERE customer_id = ?", (cust["id"],)).fetchone()[0]
        assert row is None and kids == 0
    assert server.get_record("customers", cust["id"], user="rita") is None   # out of rita's scope
    assert_replica_matches_server(rita, server)
