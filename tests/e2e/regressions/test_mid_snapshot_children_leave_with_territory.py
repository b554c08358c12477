import threading

from support.client import ClientReplica, assert_replica_matches_server
from support.server import make_op
from sync.client import CrmClient
from sync.engine import SyncEngine


def _run_until(c, server, predicate):
    stop = threading.Event()
    with c.replica(durable=False) as r, \
            CrmClient(server.url, server.tokens[c.user], c.sync_settings) as http:
        def on_event(ev):
            if predicate(r):
                stop.set()
        return SyncEngine(r, http, c.sync_settings, on_event, stop).run_once()


def test_children_of_a_customer_created_mid_snapshot_leave_with_a_revoked_territory(server, tmp_path):
    """Bootstrap: the customer pass is over; admin creates customer N (dach) with a contact; the
    contact pass streams N's contact (N itself comes only with the feed). sam loses dach before the
    snapshot ends: the revoke also sweeps history whose customer is not in the replica."""
    sam = ClientReplica(tmp_path / "sam", server, "sam", page_size=5)
    _run_until(sam, server, lambda r: "customer" in (r.get_meta("complete_entities") or []))
    server.batch([make_op("create", "customer", "zz-new-dach", {"name": "New Mid Snapshot", "territory": "dach"}),
                  make_op("create", "contact", "zz-contact-of-new", {"customer_id": "zz-new-dach", "name": "Orphan To Be"})])
    _run_until(sam, server, lambda r: "contact" in (r.get_meta("complete_entities") or []))
    with sam.replica() as r:
        assert r.get("contact", "zz-contact-of-new") is not None
    server.revoke("sam", "dach")
    assert sam.sync().ok
    with sam.replica() as r:
        assert r.get("contact", "zz-contact-of-new") is None
    assert_replica_matches_server(sam, server)
