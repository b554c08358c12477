"""What the status bar says while a sync sends changes reads as English for one change too
("sending 1 change", not "sending 1 changes" — seen by a new user in the status bar)."""

from __future__ import annotations

from cache.replica import Replica
from support.client import ClientReplica
from sync.client import CrmClient
from sync.engine import SyncEngine


def test_a_push_of_one_change_says_one_change(server, tmp_path):
    client = ClientReplica(tmp_path / "c", server, "alex")
    replica = Replica(tmp_path / "r" / "replica.db", tmp_path / "r" / "hot")
    try:
        with CrmClient(server.url, server.tokens["alex"], client.sync_settings) as http:
            assert SyncEngine(replica, http).run_once().ok
            customer_id = replica.conn.execute("SELECT id FROM customers ORDER BY id LIMIT 1").fetchone()[0]
            replica.writes.update("customer", customer_id, {"city": "Onetown"})
            events = []
            report = SyncEngine(replica, http, client.sync_settings, events.append).run_once()
        assert report.ok, report.error
        said = [ev.message for ev in events if ev.phase == "push"]
        assert "sending 1 change" in said, said
    finally:
        replica.close()
