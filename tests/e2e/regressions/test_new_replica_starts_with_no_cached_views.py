import os

from support.client import ClientReplica
from support.records import admin_update, first_customer


def test_a_new_replica_never_inherits_the_old_replicas_cached_views(server, tmp_path):
    """The hot cache may outlive the replica (it lives in the cache dir); every entry is stamped
    with the replica file's own id, so a replica made afresh builds its views anew."""
    alex = ClientReplica(tmp_path / "alex", server, "alex")
    assert alex.sync().ok
    cid = first_customer(server)["id"]
    with alex.replica() as r:
        assert r.reads.customer_360(cid)["customer"]["city"] != "Fresh City"
    admin_update(server, "customer", cid, {"city": "Fresh City"})
    for suffix in ("", "-wal", "-shm"):
        p = str(alex.paths.replica) + suffix
        if os.path.exists(p):
            os.unlink(p)
    assert alex.sync().ok                     # a brand-new replica, bootstrapped from scratch
    with alex.replica() as r:
        assert r.get("customer", cid)["city"] == "Fresh City"
        view = r.reads.customer_360(cid)
        assert view["customer"]["city"] == "Fresh City"
