"""Big writes never stall the queue: batches are cut by size as well as count, a batch the server
still finds too large (413) is split, and nothing is lost or sent twice on the way."""

from support.client import ClientReplica
from support.faultproxy import FaultProxy, Match, status
from support.records import admin_update, first_customer


def queue_long_notes(rep, cid, n, size=20000):
    with rep.replica() as r:
        return [r.writes.create("activity", {"customer_id": cid, "kind": "email", "occurred_at": "2026-11-25T10:00:00Z",
                                             "body": (f"pasted e-mail thread {i} ").ljust(size, "é")})["id"]
                for i in range(n)]


def notes_on_server(server, cid):
    with server.client("ada") as http:
        items, after = [], None
        while True:
            params = {"customer_id": cid, "limit": 500, **({"after": after} if after else {})}
            body = http.get("/v1/activities", params=params).json()
            items += body["items"]
            after = body["next"]
            if not after:
                return items


def test_a_queue_of_long_notes_goes_through_and_the_pull_follows(server, tmp_path):
    rep = ClientReplica(tmp_path / "rep", server, "alex", batch_size=500)
    assert rep.sync().ok
    cid = first_customer(server)["id"]
    ids = queue_long_notes(rep, cid, 430)  # ~8 MiB of JSON escapes per 70 notes
    other = "cus-0000009"
    admin_update(server, "customer", other, {"city": "Pulled Later"})
    report = rep.sync()
    assert report.ok, report.error
    assert report.pushed == 430 and report.rejected == 0
    with rep.replica() as r:
        assert r.outbox.counts()["pending"] == 0
        assert r.get("customer", other)["city"] == "Pulled Later"
    assert {n["id"] for n in notes_on_server(server, cid)} >= set(ids)


def test_a_batch_refused_as_too_large_is_split_and_sent_once(server, tmp_path):
    with FaultProxy(server.url) as proxy:
        rep = ClientReplica(tmp_path / "rep", server, "alex", url=proxy.url, batch_size=500)
        assert rep.sync().ok
        cid = first_customer(server)["id"]
        ids = queue_long_notes(rep, cid, 40, size=3000)
        # A gateway in front of the server with a far smaller body limit.
        proxy.add_rule(status(413, {"error": {"code": "payload_too_large", "message": "too large"}}),
                       match=Match(method="POST", path="/v1/batch", predicate=lambda req: len(req.body) > 30_000))
        report = rep.sync()
        assert report.ok, report.error
        assert report.pushed == 40
        assert proxy.count(method="POST", path="/v1/batch") > 2  # it had to split
    notes = [n for n in notes_on_server(server, cid) if n["id"] in set(ids)]
    assert len(notes) == 40  # each exactly once
