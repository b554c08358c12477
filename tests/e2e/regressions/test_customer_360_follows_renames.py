from support.client import ClientReplica
from support.records import admin_update


def test_customer_360_follows_renamed_owners_and_territories(server, tmp_path):
    """The 360 view names the owner and territory: renaming either makes the cached view stale."""
    alex = ClientReplica(tmp_path / "alex", server, "alex")
    assert alex.sync().ok
    with alex.replica() as r:
        cid, owner, terr = r.conn.execute(
            "SELECT id, owner_id, territory FROM customers WHERE owner_id IS NOT NULL LIMIT 1").fetchone()
        r.reads.customer_360(cid)
    admin_update(server, "user", owner, {"name": "Renamed Owner"})
    admin_update(server, "territory", terr, {"name": "Renamed Territory"})
    assert alex.sync().ok
    with alex.replica() as r:
        assert r.reads.user_name(owner) == "Renamed Owner"      # the replica has the new name
        view = r.reads.customer_360(cid)                        # ... and so does its cached view
        assert view["owner_name"] == "Renamed Owner"
        assert view["territory_name"] == "Renamed Territory"
