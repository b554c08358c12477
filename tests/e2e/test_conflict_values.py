"""A clash the user sees through the real server: what a conflicted field shows is "mine" or
"theirs", also when the user edited it again while the clashing edit was on its way."""

from __future__ import annotations

from support.client import ClientReplica, assert_replica_matches_server
from support.faultproxy import FaultProxy, Match, drop_after_upstream
from support.server import make_op


def test_an_edit_made_while_the_clashing_one_was_unanswered_is_mine_in_the_one_conflict(server, tmp_path):
    with FaultProxy(server.url) as proxy:
        client = ClientReplica(tmp_path / "c", server, "alex", url=proxy.url)
        assert client.sync().ok
        with client.replica() as r:
            cid = r.conn.execute("SELECT id FROM customers ORDER BY id LIMIT 1").fetchone()[0]
            r.writes.update("customer", cid, {"city": "Munich"})
        rec = server.get_record("customers", cid)
        [res] = server.batch([make_op("update", "customer", cid, {"city": "Hamburg"}, base_version=rec["version"])])
        assert res["status"] == "applied"
        # The server judges the edit (a clash), but no answer ever comes back in this run.
        proxy.add_rule(drop_after_upstream(), match=Match(method="POST", path="/v1/batch"), times=3)
        assert not client.sync().ok
        with client.replica() as r:
            r.writes.update("customer", cid, {"city": "Cologne"})  # the user's later wish
        assert client.sync().ok
        with client.replica() as r:
            [conflict] = r.conflicts.unresolved()
            assert (conflict.fields["city"]["mine"], conflict.fields["city"]["theirs"]) == ("Cologne", "Hamburg")
            assert r.get("customer", cid)["city"] == "Cologne"
            assert r.outbox.counts()["pending"] == 0
            r.writes.resolve_conflict(conflict.id, {"city": "mine"})
        assert server.get_record("customers", cid)["city"] == "Hamburg"  # nothing sent unasked
        assert client.sync().ok
        assert server.get_record("customers", cid)["city"] == "Cologne"
        assert_replica_matches_server(client, server)
