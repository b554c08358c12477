"""Faults from a real misbehaving proxy between the real client and the real server: timeouts,
5xx, 429, dropped connections, truncated bodies, HTML with 200, wrong types; and kills. Promises
are numbered as in docs/sync-contract.md."""

from __future__ import annotations

import random
import signal
import time

import pytest

from support.client import ClientReplica, assert_replica_matches_server
from support.faultproxy import (
    FaultProxy,
    Match,
    delay,
    drop_after_upstream,
    replace_body,
    status,
    transform_json,
    truncate,
)
from support.server import make_op

pytestmark = pytest.mark.slow  # make test-slow: many servers, proxies and killed processes


def replica_fingerprint(client: ClientReplica):
    with client.replica() as r:
        counts = r.counts()
        versions = r.conn.execute("SELECT sum(version) FROM customers").fetchone()[0]
        return r.cursor, counts, versions


def change_something(server):
    with server.client("ada") as http:
        c = http.get("/v1/customers", params={"limit": 1}).json()["items"][0]
    [res] = server.batch([make_op("update", "customer", c["id"], {"city": f"City {time.monotonic_ns()}"},
                                  base_version=c["version"])])
    assert res["status"] in ("applied", "merged")


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param(lambda: truncate(40), id="truncated-body"),
        pytest.param(lambda: replace_body(b"<html><body>Gateway login</body></html>", status=200), id="html-200"),
        pytest.param(lambda: transform_json(lambda p: {**p, "has_more": "yes"}), id="wrong-type-has-more"),
        pytest.param(lambda: transform_json(lambda p: {**p, "segments": [
            {**s, "rows": [r[:-2] for r in (s.get("rows") or [])]} for s in p["segments"]]}), id="short-rows"),
        pytest.param(lambda: transform_json(lambda p: [p]), id="json-array"),
    ],
)
def test_malformed_pages_surface_an_error_and_change_nothing(server, tmp_path, fault):
    with FaultProxy(server.url) as proxy:
        client = ClientReplica(tmp_path / "c", server, "alex", url=proxy.url)
        assert client.sync().ok
        before = replica_fingerprint(client)
        change_something(server)
        proxy.add_rule(fault(), match=Match(path="/v1/changes"))
        report = client.sync()
        assert not report.ok and report.error
        assert replica_fingerprint(client) == before
        proxy.clear()
        assert client.sync().ok
        assert replica_fingerprint(client) != before
        assert_replica_matches_server(client, server)


def test_5xx_and_429_are_retried_honouring_retry_after(server, tmp_path):
    with FaultProxy(server.url) as proxy:
        client = ClientReplica(tmp_path / "c", server, "alex", max_retries=3)
        client.url = proxy.url
        proxy.add_rule(status(503, {"error": {"code": "busy", "message": "busy"}}), match=Match(path="/v1/changes"),
                       times=1)
        proxy.add_rule(status(429, {"error": {"code": "rate_limited", "message": "slow down"}},
                              headers={"Retry-After": "2"}), match=Match(path="/v1/changes"), times=1)
        report = client.sync(proxy.url)
        assert report.ok, report.error
        assert 2.0 in client.sleeps  # waited as the server asked, not less
        assert proxy.count(path="/v1/changes") >= 3
        assert_replica_matches_server(client, server)


def test_retries_are_capped_and_the_reason_is_reported(server, tmp_path):
    with FaultProxy(server.url) as proxy:
        client = ClientReplica(tmp_path / "c", server, "alex", max_retries=2, url=proxy.url)
        proxy.add_rule(status(500, b"boom"), match=Match(path="/v1/me"))
        report = client.sync()
        assert not report.ok and report.offline
        assert "3 times" in report.error and "HTTP 500" in report.error
        assert proxy.count(path="/v1/me") == 3


def test_a_read_timeout_is_retried(server, tmp_path):
    with FaultProxy(server.url) as proxy:
        client = ClientReplica(tmp_path / "c", server, "alex", read_timeout=0.3, url=proxy.url)
        proxy.add_rule(delay(1.0), match=Match(path="/v1/changes"), times=1)
        report = client.sync()
        assert report.ok, report.error
        assert_replica_matches_server(client, server)


def test_a_batch_whose_answer_was_lost_is_applied_once(server, tmp_path):
    with FaultProxy(server.url) as proxy:
        client = ClientReplica(tmp_path / "c", server, "alex", url=proxy.url)
        assert client.sync().ok
        with client.replica() as r:
            cid = r.conn.execute("SELECT id FROM customers LIMIT 1").fetchone()[0]
            note = r.writes.create("activity", {"customer_id": cid, "kind": "call", "body": "called back",
                                                "occurred_at": "2026-11-25T10:00:00Z"})
            r.writes.update("customer", cid, {"city": "Bergen"})
        # The server applies the batch, then the connection drops before the answer.
        proxy.add_rule(drop_after_upstream(), match=Match(method="POST", path="/v1/batch"), times=1)
        report = client.sync()
        assert report.ok, report.error
        assert proxy.count(method="POST", path="/v1/batch") == 2
        with client.replica() as r:
            assert r.outbox.counts() == {"pending": 0, "rejected": 0, "conflicts": 0}
        assert server.get_record("activities", note["id"])["body"] == "called back"
        assert_replica_matches_server(client, server)


def test_server_down_for_days_loses_nothing(server, tmp_path):
    client = ClientReplica(tmp_path / "c", server, "alex")
    assert client.sync().ok
    server.stop()
    with client.replica() as r:
        cid = r.conn.execute("SELECT id FROM customers LIMIT 1").fetchone()[0]
        for i in range(5):
            r.writes.create("activity", {"customer_id": cid, "kind": "note", "body": f"offline {i}",
                                         "occurred_at": "2026-11-25T10:00:00Z"})
    for _ in range(3):
        report = client.sync()
        assert not report.ok and report.offline
    proc = client.cli("sync", "--once")
    assert proc.returncode == 4 and proc.stderr.count("\n") == 1, proc.stderr
    with client.replica() as r:
        assert r.outbox.counts()["pending"] == 5
    server.start()  # back, on a new port
    client.url = server.url
    from crm_tui import credentials

    credentials.save(client.paths, credentials.Credentials(server.url, server.tokens["alex"]))
    assert client.sync().ok
    assert_replica_matches_server(client, server)


# ------------------------------- kills: sync-contract promises 1 (cursor), 4 (durable), 5 (once)


def _kill_once_it_moves(client: ClientReplica, rng: random.Random, progress, **env: str) -> None:
    """Start `crm-tui sync --once`, wait until ``progress(replica)`` has changed a random number
    of times (the sync is really under way, however slow the machine), then SIGKILL it: the kill
    lands at a random point of the run, chosen by what the run has done rather than by a guess
    at how long it takes."""
    with client.replica() as r:
        seen = progress(r)
    moves = rng.randint(1, 3)
    proc = client.popen("sync", "--once", "--quiet", **env)
    deadline = time.monotonic() + 60
    while moves and time.monotonic() < deadline and proc.poll() is None:
        with client.replica() as r:
            now = progress(r)
        if now != seen:
            seen, moves = now, moves - 1
        else:
            time.sleep(0.01)  # polling the replica; the deadline bounds the wait
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)


def test_sync_killed_at_random_points_during_pull_and_push_converges_exactly_once(server_factory, tmp_path):
    rng = random.Random(20261125)
    server = server_factory(seed_customers=1500)
    with FaultProxy(server.url) as proxy:
        # Slow requests down a little so kills land inside the bootstrap and between batches.
        proxy.add_rule(delay(0.08), match=Match(method="POST", path="/v1/batch"))
        proxy.add_rule(delay(0.03), match=Match(path="/v1/"))
        client = ClientReplica(tmp_path / "c", server, "alex", url=proxy.url)
        slow = {"CRM_TUI_SYNC__PAGE_SIZE": "250", "CRM_TUI_SYNC__BATCH_SIZE": "10"}
        partial_pulls = 0
        for _ in range(6):  # during bootstrap
            _kill_once_it_moves(client, rng, lambda r: r.cursor, **slow)
            with client.replica() as r:
                progress = r.get_meta("progress") or {}
                partial_pulls += bool(progress) and progress.get("done", 0) < progress.get("total", 0)
        assert partial_pulls >= 2  # the kills really landed mid-bootstrap

        # Offline work: creates and edits, then pushes that keep getting killed.
        created = []
        with client.replica() as r:
            ids = [row[0] for row in r.conn.execute("SELECT id FROM customers ORDER BY id LIMIT 120")]
            for i, cid in enumerate(ids):
                created.append(r.writes.create("activity", {
                    "customer_id": cid, "kind": "note", "body": f"visit {i}", "occurred_at": "2026-11-25T10:00:00Z"})["id"])
                r.writes.update("customer", cid, {"city": f"Town {i}"})
        partial_pushes = 0
        for _ in range(6):
            _kill_once_it_moves(client, rng, lambda r: r.outbox.counts()["pending"], **slow)
            with client.replica() as r:
                pending = r.outbox.counts()["pending"]
                partial_pushes += 0 < pending < 2 * len(ids)
        assert partial_pushes >= 2  # the kills really landed mid-push
        done = client.cli("sync", "--once", "--quiet", **slow, timeout=180)
        assert done.returncode == 0, done.stderr
        with client.replica() as r:
            assert r.outbox.counts() == {"pending": 0, "rejected": 0, "conflicts": 0}
        for i, aid in enumerate(created):
            assert server.get_record("activities", aid)["body"] == f"visit {i}"
        with server.client("ada") as http:
            for i, cid in enumerate(ids):
                assert http.get(f"/v1/customers/{cid}").json()["city"] == f"Town {i}"
                notes = http.get("/v1/activities", params={"customer_id": cid, "limit": 500}).json()["items"]
                assert sum(1 for n in notes if n["body"] == f"visit {i}") == 1  # exactly once
        assert_replica_matches_server(client, server)
