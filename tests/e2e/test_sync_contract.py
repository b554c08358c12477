"""The sync contract (docs/sync-contract.md), end to end: a real replica, the real sync engine and
CLI, the real crm-server over loopback. Each test names the promise it keeps."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from crm_tui.replicas import open_replica
from support.client import ClientReplica, assert_replica_matches_server, server_projection
from support.postgres import BACKENDS
from support.server import make_op


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request) -> str:
    """The whole contract holds on both stores."""
    return request.param


def admin_update(server, entity, record_id, fields):
    rec = server.get_record(f"{entity}s" if entity != "activity" else "activities", record_id)
    [res] = server.batch([make_op("update", entity, record_id, fields, base_version=rec["version"])])
    assert res["status"] in ("applied", "merged"), res
    return res


def first_customer(server, territory=None, user="ada"):
    with server.client(user) as http:
        params = {"limit": 1}
        if territory:
            params["territory"] = territory
        return http.get("/v1/customers", params=params).json()["items"][0]


# ---------------- sync-contract promises 1 (cursor), 3 (deletes and scope), 9 (bootstrap)


@pytest.mark.parametrize("user", ["alex", "sam"])
def test_bootstrap_then_incremental_sync_equals_the_server_projection(server_factory, tmp_path, user):
    server = server_factory(seed_customers=120)
    client = ClientReplica(tmp_path / user, server, user, page_size=50)
    report = client.sync()
    assert report.ok, report.error
    assert_replica_matches_server(client, server)
    with client.replica() as r:
        assert r.get_meta("bootstrapped") is True
        assert set(r.get_meta("complete_entities")) >= {"customer", "contact"}

    # Server-side changes of every kind, some inside the rep's territory.
    dach = first_customer(server, "dach")
    admin_update(server, "customer", dach["id"], {"city": "Graz", "tags": ["moved", "vip"]})
    with server.client("ada") as http:
        order = http.get("/v1/orders", params={"customer_id": dach["id"], "limit": 1}).json()["items"]
    if order:
        [res] = server.batch([make_op("delete", "order", order[0]["id"], base_version=order[0]["version"])])
        assert res["status"] == "applied", res
    server.batch([make_op("create", "ticket", f"t-new-{user}", {
        "customer_id": dach["id"], "subject": "Printer on fire", "status": "new", "priority": "urgent"})])
    report = client.sync()
    assert report.ok, report.error
    assert report.pulled > 0
    assert_replica_matches_server(client, server)


def test_a_customer_moved_away_disappears_and_a_granted_territory_arrives(server_factory, tmp_path):
    server = server_factory(seed_customers=150)
    client = ClientReplica(tmp_path / "sam", server, "sam")
    assert client.sync().ok
    moved = first_customer(server, "dach")
    admin_update(server, "customer", moved["id"], {"territory": "france"})
    assert client.sync().ok
    with client.replica() as r:
        assert r.get("customer", moved["id"]) is None
        assert r.conn.execute("SELECT count(*) FROM orders WHERE customer_id = ?", (moved["id"],)).fetchone()[0] == 0
    assert_replica_matches_server(client, server)

    server.grant("sam", "france")
    assert client.sync().ok
    with client.replica() as r:
        assert r.get("customer", moved["id"])["territory"] == "france"
        france = r.conn.execute("SELECT count(*) FROM customers WHERE territory = 'france'").fetchone()[0]
    assert france == len([c for c in server_projection(server, "sam")["customer"].values()
                          if c["territory"] == "france"]) > 0
    assert_replica_matches_server(client, server)

    server.revoke("sam", "france")
    assert client.sync().ok
    with client.replica() as r:
        assert r.conn.execute("SELECT count(*) FROM customers WHERE territory = 'france'").fetchone()[0] == 0
    assert_replica_matches_server(client, server)


# ------------- sync-contract promises 5 (exactly once), 6 (batched writes), 7 (conflicts)


def test_two_offline_clients_merge_different_fields_and_conflict_on_the_same_one(server, tmp_path):
    a = ClientReplica(tmp_path / "a", server, "alex")
    b = ClientReplica(tmp_path / "b", server, "ada")
    assert a.sync().ok and b.sync().ok
    cid = first_customer(server)["id"]
    with a.replica() as r:
        r.writes.update("customer", cid, {"phone": "+1 555 0100"})
    with b.replica() as r:
        r.writes.update("customer", cid, {"city": "Lisbon"})
    assert a.sync().ok and b.sync().ok and a.sync().ok
    for client in (a, b):
        with client.replica() as r:
            rec = r.get("customer", cid)
            assert (rec["phone"], rec["city"]) == ("+1 555 0100", "Lisbon")
    assert server.get_record("customers", cid)["phone"] == "+1 555 0100"

    with a.replica() as r:
        r.writes.update("customer", cid, {"name": "Name From A"})
    with b.replica() as r:
        r.writes.update("customer", cid, {"name": "Name From B", "tier": "platinum"})
    assert a.sync().ok
    report = b.sync()
    assert report.ok and report.conflicts == 1
    # The non-clashing field went through; the clash is stored with both values.
    server_rec = server.get_record("customers", cid)
    assert (server_rec["name"], server_rec["tier"]) == ("Name From A", "platinum")
    status = json.loads(b.cli("status", "--json").stdout)
    assert status["conflicts"] == 1
    [conflict] = status["conflict_details"]
    assert conflict["fields"]["name"]["mine"] == "Name From B"
    assert conflict["fields"]["name"]["theirs"] == "Name From A"
    human = b.cli("status").stdout
    assert "Name From B" in human and "Name From A" in human

    # B keeps its value; after both sync, everyone has it and nothing is pending.
    with b.replica() as r:
        r.writes.resolve_conflict(r.conflicts.unresolved()[0].id, {"name": "mine"})
    assert b.sync().ok and a.sync().ok
    assert server.get_record("customers", cid)["name"] == "Name From B"
    with a.replica() as r:
        assert r.get("customer", cid)["name"] == "Name From B"
    with b.replica() as r:
        assert r.outbox.counts() == {"pending": 0, "rejected": 0, "conflicts": 0}
    assert_replica_matches_server(b, server)


def test_a_rejected_op_is_kept_with_its_reason_and_later_ops_still_go(server, tmp_path):
    sam = ClientReplica(tmp_path / "sam", server, "sam")
    assert sam.sync().ok
    mine = first_customer(server, "dach", user="sam")
    with sam.replica() as r:
        bad = r.writes.create("customer", {"name": "Wrong Territory GmbH", "territory": "france"})
        r.writes.update("customer", mine["id"], {"city": "Salzburg"})
        note = r.writes.create("activity", {"customer_id": mine["id"], "kind": "visit",
                                            "occurred_at": "2026-11-25T10:00:00Z", "body": "on site"})
    report = sam.sync()
    assert report.ok and report.rejected == 1
    assert server.get_record("customers", mine["id"])["city"] == "Salzburg"
    assert server.get_record("activities", note["id"])["body"] == "on site"
    assert server.get_record("customers", bad["id"]) is None
    status = json.loads(sam.cli("status", "--json").stdout)
    assert status["rejected_ops"] == 1 and status["pending_ops"] == 0
    assert "territor" in status["rejected_details"][0]["reason"]
    # Fixed and re-sent, it goes through.
    with sam.replica() as r:
        [op] = r.outbox.rejected()
        r.rejected.resend(op.seq, {"territory": "dach"})
    assert sam.sync().ok
    assert server.get_record("customers", bad["id"])["territory"] == "dach"
    assert_replica_matches_server(sam, server)


def test_many_writes_are_pushed_in_few_requests(server, tmp_path):
    client = ClientReplica(tmp_path / "c", server, "alex", batch_size=100)
    assert client.sync().ok
    cid = first_customer(server)["id"]
    with client.replica() as r:
        for i in range(250):
            r.writes.create("activity", {"customer_id": cid, "kind": "note", "body": f"note {i}",
                                         "occurred_at": "2026-11-25T10:00:00Z"})
    with client.engine() as engine:
        report = engine.run_once()
        requests = engine.client.requests_made
    assert report.ok and report.pushed == 250
    # /v1/me, three batches of at most 100, then the feed (one page here).
    assert requests <= 1 + 3 + 2
    assert_replica_matches_server(client, server)


# ------------------------------------------ sync-contract promise 8 (pending edits win)


def test_a_pull_never_overwrites_a_pending_field(server, tmp_path):
    client = ClientReplica(tmp_path / "c", server, "alex")
    assert client.sync().ok
    cid = first_customer(server)["id"]
    with client.replica() as r:
        r.writes.update("customer", cid, {"phone": "+1 555 0111"})
    admin_update(server, "customer", cid, {"city": "Porto"})
    with client.engine() as engine:
        engine.pull()  # a pull on its own, before the edit was pushed
        rec = engine.replica.get("customer", cid)
        assert (rec["phone"], rec["city"]) == ("+1 555 0111", "Porto")
        [op] = engine.replica.outbox.pending()
        assert op.base_version == rec["version"]  # re-based on the new server version
    assert client.sync().ok
    assert server.get_record("customers", cid)["phone"] == "+1 555 0111"
    with client.replica() as r:
        assert r.outbox.counts()["conflicts"] == 0


# ------------ sync-contract promises 15 (start over, keep the outbox), 4 and 10 (no corruption)


def test_resync_required_replaces_the_replica_and_keeps_the_outbox(server, tmp_path):
    client = ClientReplica(tmp_path / "c", server, "sam")
    assert client.sync().ok
    doomed = first_customer(server, "dach")
    with client.replica() as r:
        rejected = r.writes.create("customer", {"name": "Not Mine", "territory": "iberia"})
    assert client.sync().ok  # the create is rejected and stays, with its reason
    [res] = server.batch([make_op("delete", "customer", doomed["id"],
                                  base_version=server.get_record("customers", doomed["id"])["version"])])
    assert res["status"] == "applied"
    # The real compaction command, as an operator runs it: older cursors now get 410.
    done = subprocess.run([sys.executable, "-m", "crm_server.cli", "compact", "--db", server.db_url,
                           "--keep-days", "0"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    report = client.sync()
    assert report.ok, report.error
    with client.replica() as r:
        assert r.get("customer", doomed["id"]) is None
        assert r.get("customer", rejected["id"]) is not None  # still the user's to fix or discard
        assert r.outbox.counts()["rejected"] == 1


def test_a_replica_locked_by_another_process_fails_the_run_cleanly(server, tmp_path):
    from sync.client import CrmClient
    from sync.engine import SyncEngine

    client = ClientReplica(tmp_path / "c", server, "alex")
    assert client.sync().ok
    with client.replica() as holder:
        holder.conn.execute("BEGIN IMMEDIATE")  # e.g. a long write in another process
        with open_replica(client.paths, client.settings, busy_timeout=0.2) as r, CrmClient(
                server.url, server.tokens["alex"], client.sync_settings) as http:
            report = SyncEngine(r, http).run_once()
        holder.conn.execute("ROLLBACK")
    assert not report.ok and "replica is busy" in report.error
    assert client.sync().ok  # and the next run simply works


# ------------------------------------------- sync-contract promise 6 (batched writes) at scale


def test_pushing_grows_linearly_with_the_outbox(server_factory, tmp_path):
    """Work per pushed op stays flat as the queue grows (counted in SQLite VM steps, not seconds):
    a push must never rescan the whole outbox for every result."""
    from sync.client import CrmClient
    from sync.engine import SyncEngine

    server = server_factory(seed_customers=450)
    client = ClientReplica(tmp_path / "c", server, "alex", batch_size=50)
    assert client.sync().ok

    def push_work(n: int) -> int:
        with client.replica() as r:
            ids = [row[0] for row in r.conn.execute("SELECT id FROM customers ORDER BY id LIMIT ?", (n,))]
            for i, cid in enumerate(ids):
                r.writes.update("customer", cid, {"city": f"N{n}-{i}"})
        steps = [0]
        with client.replica(durable=False) as r, CrmClient(
                server.url, server.tokens["alex"], client.sync_settings) as http:
            r.conn.set_progress_handler(lambda: steps.__setitem__(0, steps[0] + 1) or 0, 1000)
            report = SyncEngine(r, http).push()
        assert report.pushed == n
        return steps[0]

    small, large = push_work(100), push_work(400)
    assert large < 6 * small, (small, large)  # linear would be ~4x; quadratic ~16x
