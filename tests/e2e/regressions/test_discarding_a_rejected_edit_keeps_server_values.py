"""Discarding a rejected edit never puts stale values under a newer version, so the next edit
cannot overwrite a value the user never saw."""

from support.client import ClientReplica, assert_replica_matches_server
from support.records import admin_update, first_customer


def test_discard_after_a_pull_keeps_the_servers_values(server, tmp_path):
    sam = ClientReplica(tmp_path / "sam", server, "sam")
    assert sam.sync().ok
    cid = first_customer(server, "dach", user="sam")["id"]
    with sam.replica() as r:
        r.writes.update("customer", cid, {"city": "Sam City", "territory": "france"})  # not sam's territory
    admin_update(server, "customer", cid, {"city": "Admin City"})
    report = sam.sync()
    assert report.ok and report.rejected == 1 and report.conflicts == 0
    with sam.replica() as r:
        [op] = r.outbox.rejected()
        r.rejected.discard(op.seq)
        row = r.get("customer", cid)
        server_row = server.get_record("customers", cid)
        assert (row["city"], row["version"]) == ("Admin City", server_row["version"])
    assert sam.sync().ok
    assert_replica_matches_server(sam, server)


def test_discard_before_any_pull_restores_what_the_server_had(server, tmp_path):
    sam = ClientReplica(tmp_path / "sam", server, "sam")
    assert sam.sync().ok
    cid = first_customer(server, "dach", user="sam")["id"]
    with sam.replica() as r:
        original = r.get("customer", cid)["city"]
        r.writes.update("customer", cid, {"city": "Sam City", "territory": "france"})
    with sam.engine() as engine:
        report = engine.replica.outbox  # push only: the result comes back, no pull follows
        engine.push()
        [op] = report.rejected()
        engine.replica.rejected.discard(op.seq)
        assert engine.replica.get("customer", cid)["city"] == original
    assert sam.sync().ok
    assert_replica_matches_server(sam, server)
