"""A network that lies (issue 9, items 1-5): a feed that never ends, an answer that never ends or
drips in a byte at a time, a server that asks to be left alone for a day, a captive portal's
redirect, a cursor the server cannot read. The real client against the real server, with the
faults from the real misbehaving proxy; every limit is a config setting, hit here. Tests that
only read from the server share the worker's seeded one."""

from __future__ import annotations

import json
import time

import pytest

from support.client import ClientReplica, assert_replica_matches_server
from support.faultproxy import (
    FaultProxy,
    Response,
    answer,
    drip,
    endless,
    replace_body,
    status,
    transform_json,
)
from support.server import make_op

pytestmark = pytest.mark.slow  # make test-slow: faults that run into their time limits


def first_customer(server, territory=None):
    with server.client("ada") as http:
        params = {"limit": 1, **({"territory": territory} if territory else {})}
        return http.get("/v1/customers", params=params).json()["items"][0]


def touch_a_customer(server) -> str:
    rec = first_customer(server)
    [res] = server.batch([make_op("update", "customer", rec["id"], {"city": f"City {time.monotonic_ns()}"},
                                  base_version=rec["version"])])
    assert res["status"] in ("applied", "merged")
    return rec["id"]


def fingerprint(client: ClientReplica):
    with client.replica() as r:
        return r.cursor, r.counts(), r.conn.execute("SELECT sum(version) FROM customers").fetchone()[0]


def made_up_feed_page(cursor: str, phase: str = "feed", progress: dict | None = None) -> Response:
    body = {"cursor": cursor, "has_more": True, "phase": phase, "progress": progress, "segments": []}
    return Response(200, [("Content-Type", "application/json")], json.dumps(body).encode())


# ---------------------------------------------------------------------- 1. a feed that never ends


def test_a_feed_repeating_its_cursor_stops_at_once_and_keeps_the_good_cursor(server, tmp_path):
    with FaultProxy(server.url) as proxy:
        client = ClientReplica(tmp_path / "c", server, "alex", url=proxy.url)
        assert client.sync().ok
        touch_a_customer(server)
        # The server's pages, but every one claims there is more: at the end of the feed the
        # server hands back the cursor it was given.
        proxy.add_rule(transform_json(lambda page: {**page, "has_more": True}), path="/v1/changes")
        before = proxy.count(path="/v1/changes")
        report = client.sync()
        assert not report.ok and "same cursor" in report.error
        # The changed page, the next, and at most one more to see the cursor come back: no more.
        assert proxy.count(path="/v1/changes") - before <= 3
        with client.replica() as r:
            good = r.cursor  # the cursor of the page that was applied; the repeat was not
        proxy.clear()
        assert client.sync().ok
        assert_replica_matches_server(client, server)
        assert good is not None


def test_a_feed_with_a_new_cursor_every_time_ends_at_the_page_limit_and_recovers(server, tmp_path):
    with FaultProxy(server.url) as proxy:
        client = ClientReplica(tmp_path / "c", server, "sam", url=proxy.url, max_feed_pages=30)
        assert client.sync().ok
        with client.replica() as r:
            unsynced = r.writes.create("customer", {"name": "Not Mine", "territory": "iberia"})
        served = []

        def endless_feed(request):
            served.append(request.query)
            return made_up_feed_page(f"made-up-{len(served)}")

        proxy.add_rule(answer(endless_feed), path="/v1/changes")
        report = client.sync()
        assert not report.ok and "sync.max_feed_pages" in report.error
        assert len(served) == 30
        # The made-up cursors are unreadable to the real server (400 invalid_cursor): the next
        # sync replaces the replica by a new snapshot and keeps the unsynced work.
        proxy.clear()
        doomed = first_customer(server, "dach")
        [res] = server.batch([make_op("delete", "customer", doomed["id"], base_version=doomed["version"])])
        assert res["status"] == "applied"
        report = client.sync()
        assert report.ok, report.error
        with client.replica() as r:
            assert r.get("customer", unsynced["id"]) is not None
            assert r.outbox.counts()["rejected"] == 1
            assert r.get("customer", doomed["id"]) is None


@pytest.mark.parametrize("progress", [
    pytest.param(lambda n: {"entity": "customer", "done": 10, "total": 100, "complete": []}, id="stuck"),
    pytest.param(lambda n: {"entity": "customer", "done": 10 * n, "total": 100, "complete": []}, id="beyond-total"),
])
def test_a_snapshot_that_does_not_move_or_exceeds_its_announcement_is_stopped(seeded_server, tmp_path, progress):
    with FaultProxy(seeded_server.url) as proxy:
        client = ClientReplica(tmp_path / "c", seeded_server, "alex", url=proxy.url, page_size=10)
        served = []

        def snapshot(request):
            served.append(request.query)
            return made_up_feed_page(f"made-up-{len(served)}", "snapshot", progress(len(served)))

        proxy.add_rule(answer(snapshot), path="/v1/changes")
        report = client.sync()
        assert not report.ok and "snapshot" in report.error
        assert len(served) <= 25  # 100 records announced, 10 a page, and a little slack


# ---------------------------------------------------------------------- 2. an answer that never ends


def test_an_endless_answer_is_read_only_up_to_the_cap(seeded_server, tmp_path):
    with FaultProxy(seeded_server.url) as proxy:
        client = ClientReplica(tmp_path / "c", seeded_server, "alex", url=proxy.url, max_response_mb=1)
        assert client.sync().ok
        before = fingerprint(client)
        proxy.reset_log()
        fault = endless(chunk=b" " * 65536)
        proxy.add_rule(fault, path="/v1/me")
        report = client.sync()
        assert not report.ok and "larger than 1 MB" in report.error
        assert proxy.count(path="/v1/me") == 1  # too large is not retried
        assert fault.finished.wait(30)
        assert fault.bytes_sent < 64 * 1024 * 1024  # the client hung up; it did not take it all in
        assert fingerprint(client) == before


def test_a_page_over_the_cap_is_fetched_again_in_smaller_pages(seeded_server, tmp_path):
    server = seeded_server  # 200 customers: a first page of several hundred kB
    with FaultProxy(server.url) as proxy:
        client = ClientReplica(tmp_path / "c", server, "alex", url=proxy.url, max_response_mb=0.1)
        report = client.sync()
        assert report.ok, report.error
        limits = {int(s.query.split("limit=")[1].split("&")[0]) for s in proxy.seen if s.path == "/v1/changes"}
        assert 5000 in limits and min(limits) < 5000
        assert_replica_matches_server(client, server)


# ---------------------------------------------------------------------- 3. slow answers, long waits


@pytest.mark.parametrize("head", [False, True], ids=["body-drips", "head-drips"])
def test_a_dripping_answer_ends_at_the_request_deadline(seeded_server, tmp_path, head):
    with FaultProxy(seeded_server.url) as proxy:
        # Each byte arrives well within the read timeout; only the whole-request deadline ends it.
        client = ClientReplica(tmp_path / "c", seeded_server, "alex", url=proxy.url, read_timeout=2.0,
                               request_timeout=1.0, max_retries=1)
        fault = drip(0.05, head=head)
        proxy.add_rule(fault, path="/v1/me")
        report = client.sync()
        assert not report.ok and report.offline
        assert "within 1 s (sync.request_timeout)" in report.error
        assert proxy.count(path="/v1/me") == 2  # the first try and one retry
        with seeded_server.client("alex") as http:
            whole = len(http.get("/v1/me").content)
        assert fault.bytes_sent < 2 * whole  # neither answer was ever complete


def test_the_run_deadline_ends_a_sync_however_many_retries_are_left(seeded_server, tmp_path):
    with FaultProxy(seeded_server.url) as proxy:
        client = ClientReplica(tmp_path / "c", seeded_server, "alex", url=proxy.url, read_timeout=2.0,
                               request_timeout=1.0, max_retries=20, run_timeout=2.5)
        proxy.add_rule(drip(0.05), path="/v1/me")
        report = client.sync()
        assert not report.ok and report.offline and "sync.run_timeout" in report.error
        assert proxy.count(path="/v1/me") <= 4  # far from the 21 tries the retry cap allows


@pytest.mark.parametrize("retry_after, options, expect", [
    pytest.param("100000", {}, "27 h", id="beyond-max_retry_after"),
    pytest.param("60", {"run_timeout": 30}, "1 min", id="beyond-the-run-deadline"),
])
def test_a_long_retry_after_ends_the_run_instead_of_sleeping(seeded_server, tmp_path, retry_after, options, expect):
    with FaultProxy(seeded_server.url) as proxy:
        client = ClientReplica(tmp_path / "c", seeded_server, "alex", url=proxy.url, **options)
        proxy.add_rule(status(503, {"error": {"code": "busy", "message": "maintenance"}},
                              headers={"Retry-After": retry_after}), path="/v1/me")
        report = client.sync()
        assert not report.ok and report.offline
        assert f"retry after {expect}" in report.error and "maintenance" in report.error
        assert report.retry_after == float(retry_after)
        assert client.sleeps == [] and proxy.count(path="/v1/me") == 1


def test_a_retry_after_within_the_caps_is_waited_for(seeded_server, tmp_path):
    with FaultProxy(seeded_server.url) as proxy:
        client = ClientReplica(tmp_path / "c", seeded_server, "alex", url=proxy.url, max_retry_after=10)
        proxy.add_rule(status(503, {"error": {"code": "busy", "message": "busy"}}, headers={"Retry-After": "7"}),
                       path="/v1/me", times=1)
        assert client.sync().ok
        assert client.sleeps == [7.0]


# ---------------------------------------------------------------------- 4. only 2xx JSON is data


def test_a_redirect_with_a_json_body_is_an_error_naming_where_it_points(seeded_server, tmp_path):
    with FaultProxy(seeded_server.url) as proxy:
        client = ClientReplica(tmp_path / "c", seeded_server, "alex", url=proxy.url)
        assert client.sync().ok
        before = fingerprint(client)
        cid = first_customer(seeded_server)["id"]
        # A body that would delete a customer and move the cursor, were it taken as data.
        page = {"cursor": "captive", "has_more": False, "phase": "feed", "progress": None,
                "segments": [{"op": "delete", "entity": "customer", "ids": [cid]}]}
        proxy.add_rule(status(302, page, headers={"Location": "http://hotel.example/login"}), path="/v1/changes")
        report = client.sync()
        assert not report.ok and report.offline
        assert "http://hotel.example/login" in report.error and "302" in report.error
        assert fingerprint(client) == before
        proc = client.cli("sync", "--once")
        assert proc.returncode == 4 and "hotel.example" in proc.stderr and proc.stderr.count("\n") == 1


def test_json_sent_as_html_is_not_data(server, tmp_path):
    with FaultProxy(server.url) as proxy:
        client = ClientReplica(tmp_path / "c", server, "alex", url=proxy.url)
        assert client.sync().ok
        before = fingerprint(client)
        touch_a_customer(server)
        page = {"cursor": "portal", "has_more": False, "phase": "feed", "progress": None, "segments": []}
        proxy.add_rule(replace_body(json.dumps(page), content_type="text/html"), path="/v1/changes")
        report = client.sync()
        assert not report.ok and "text/html instead of JSON" in report.error
        assert fingerprint(client) == before


# ---------------------------------------------------------------------- 5. an unreadable cursor


def test_an_unreadable_cursor_leads_to_a_resync_that_keeps_unsynced_work(server, tmp_path):
    client = ClientReplica(tmp_path / "c", server, "sam")
    assert client.sync().ok
    with client.replica() as r:
        rejected = r.writes.create("customer", {"name": "Not Mine", "territory": "iberia"})
    assert client.sync().ok  # the create is rejected and stays, with its reason
    doomed = first_customer(server, "dach")
    [res] = server.batch([make_op("delete", "customer", doomed["id"], base_version=doomed["version"])])
    assert res["status"] == "applied"
    with client.replica() as r:
        cid = r.conn.execute("SELECT id FROM customers WHERE id != ? AND version > 0 LIMIT 1",
                             (doomed["id"],)).fetchone()[0]
        r.writes.update("customer", cid, {"city": "Graz"})
        r.set_meta("cursor", "this-is-no-cursor")
    events = []
    with client.engine() as engine:
        engine.on_event = events.append
        report = engine.run_once()
    assert report.ok, report.error
    assert any(e.phase == "resync" for e in events)
    with client.replica() as r:
        assert r.get("customer", doomed["id"]) is None
        assert r.get("customer", rejected["id"]) is not None
        assert r.outbox.counts()["rejected"] == 1
    assert server.get_record("customers", cid)["city"] == "Graz"
