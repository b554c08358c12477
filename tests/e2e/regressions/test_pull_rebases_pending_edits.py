"""Edits made while a pull brings newer server values: nothing is silently overwritten, nothing
silently diverges, and no conflict is reported on a value the user already saw."""

from support.client import ClientReplica, assert_replica_matches_server
from support.records import admin_update, first_customer


def test_an_edit_reverted_after_a_pull_still_surfaces_the_clash(server, tmp_path):
    """Pending S->Mine; a pull brings the server's Theirs (the edit cannot re-base); the user sets
    S again. The edit stays explicit: the server reports Theirs against S, nothing diverges."""
    alex = ClientReplica(tmp_path / "alex", server, "alex")
    assert alex.sync().ok
    cid = first_customer(server)["id"]
    with alex.replica() as r:
        original = r.get("customer", cid)["city"]
        r.writes.update("customer", cid, {"city": "Mine"})
    admin_update(server, "customer", cid, {"city": "Theirs"})
    with alex.engine() as engine:  # a pull while the edit is still queued
        engine.pull()
        assert engine.replica.get("customer", cid)["city"] == "Mine"
    with alex.replica() as r:
        r.writes.update("customer", cid, {"city": original})  # the user changes their mind
    report = alex.sync()
    assert report.ok and report.conflicts == 1
    with alex.replica() as r:
        [conflict] = r.conflicts.unresolved()
        assert conflict.fields["city"]["mine"] == original and conflict.fields["city"]["theirs"] == "Theirs"
        r.writes.resolve_conflict(conflict.id, {"city": "theirs"})
    assert alex.sync().ok
    assert_replica_matches_server(alex, server)


def test_a_delete_conflict_kept_shows_the_servers_latest_values(server, tmp_path):
    alex = ClientReplica(tmp_path / "alex", server, "alex")
    assert alex.sync().ok
    cid = first_customer(server)["id"]
    with alex.replica() as r:
        r.writes.delete("customer", cid)
    admin_update(server, "customer", cid, {"city": "First"})
    assert alex.sync().ok
    admin_update(server, "customer", cid, {"city": "Second"})
    assert alex.sync().ok
    with alex.replica() as r:
        assert r.get("customer", cid)["city"] == "Second"  # pulls refresh a delete conflict's record
        [c] = r.conflicts.unresolved()
        r.writes.resolve_conflict(c.id, {"record": "keep"})
    assert alex.sync().ok
    assert_replica_matches_server(alex, server)
    # The next edit is based on what the user now sees, so it goes through as a plain update.
    with alex.replica() as r:
        r.writes.update("customer", cid, {"city": "Third"})
    report = alex.sync()
    assert report.ok and report.conflicts == 0
    assert server.get_record("customers", cid)["city"] == "Third"


def test_an_edit_of_another_field_after_a_pull_is_not_a_spurious_conflict(server, tmp_path):
    """Pending city edit (cannot re-base: the server changed city too); the user then edits the
    company, looking at the server's fresh company. Only city clashes."""
    alex = ClientReplica(tmp_path / "alex", server, "alex")
    assert alex.sync().ok
    cid = first_customer(server)["id"]
    with alex.replica() as r:
        r.writes.update("customer", cid, {"city": "Mine"})
    admin_update(server, "customer", cid, {"city": "Theirs", "company": "Fresh Co"})
    with alex.engine() as engine:
        engine.pull()
        assert engine.replica.get("customer", cid)["company"] == "Fresh Co"
    with alex.replica() as r:
        r.writes.update("customer", cid, {"company": "Fresh Co 2"})
    report = alex.sync()
    assert report.ok
    with alex.replica() as r:
        assert sorted(f for c in r.conflicts.unresolved() for f in c.fields) == ["city"]
    assert server.get_record("customers", cid)["company"] == "Fresh Co 2"
