import threading

from support.client import ClientReplica, assert_replica_matches_server
from support.faultproxy import FaultProxy, gate
from support.records import admin_update, first_customer


def test_revert_of_an_edit_made_during_a_pull_surfaces_the_clash(server, tmp_path):
    """As test_pull_rebases_pending_edits.py, through the ordinary run_once path and two connections: the user edits
    while the background sync is in its pull phase (the feed answer is slow), then reverts."""
    alex = ClientReplica(tmp_path / "alex", server, "alex")
    assert alex.sync().ok
    cid = first_customer(server)["id"]
    with alex.replica() as r:
        original = r.get("customer", cid)["city"]
    admin_update(server, "customer", cid, {"city": "Theirs"})               # someone else
    with FaultProxy(upstream=server.url) as proxy:
        held = gate(after_upstream=True)                                    # the feed answer is slow
        proxy.add_rule(held, method="GET", path="/v1/changes", times=1)
        t = threading.Thread(target=lambda: alex.sync(url=proxy.url))
        t.start()
        assert held.entered.wait(30)                                        # the pull is under way
        with alex.replica() as r:
            r.writes.update("customer", cid, {"city": "Mine"})
        held.open()
        t.join(60)
        assert not t.is_alive()
    with alex.replica() as r:
        assert r.get("customer", cid)["city"] == "Mine"
        r.writes.update("customer", cid, {"city": original})               # changes their mind
    report = alex.sync()
    assert report.ok and report.conflicts == 1
    with alex.replica() as r:
        [conflict] = r.conflicts.unresolved()
        assert (conflict.fields["city"]["mine"], conflict.fields["city"]["theirs"]) == (original, "Theirs")
        r.writes.resolve_conflict(conflict.id, {"city": "mine"})
    assert alex.sync().ok
    assert server.get_record("customers", cid)["city"] == original
    assert_replica_matches_server(alex, server)
