"""The change feed over loopback: bootstrap order, resume from any cursor, tombstones, resync."""

from __future__ import annotations

import base64
import threading

import orjson
import pytest

from crm_server.store import open_store
from crm_tui.core.domain import ENTITIES
from server.helpers import MiniReplica, truth
from support.server import ServerProcess, UserSpec, make_op

ORDER = list(ENTITIES)


@pytest.fixture(scope="module")
def srv(tmp_path_factory, database):
    users = [UserSpec("ada", "admin"), UserSpec("alex", "agent"), UserSpec("sam", "sales", ("dach",)),
             UserSpec("fay", "sales", ("africa",))]
    path = tmp_path_factory.mktemp("feed") / "crm.db"
    with ServerProcess(path, database=database(path), seed_customers=25, users=users) as s:
        yield s


def _scope(srv, user):
    return {"alex": None, "ada": None, "sam": {"dach"}, "fay": {"africa"}}[user]


@pytest.mark.parametrize("user", ["alex", "sam"])
def test_snapshot_streams_every_entity_in_bootstrap_order_with_progress(srv, user):
    replica = MiniReplica()
    with srv.client(user) as c, srv.client("ada") as admin:
        replica.pull(c, limit=40)
        expected = truth(admin, _scope(srv, user))
    assert replica.records == expected
    snapshot_pages = [p for p in replica.pages if p["phase"] == "snapshot"]
    assert len(snapshot_pages) >= 3, "a small limit must split the snapshot into pages"
    seen = [ORDER.index(s["entity"]) for p in snapshot_pages for s in p["segments"]]
    assert seen == sorted(seen), "entities arrive in the order territory, user, customer, contact, ..."
    done = [p["progress"]["done"] for p in snapshot_pages]
    assert done == sorted(done) and done[-1] == snapshot_pages[0]["progress"]["total"]
    assert snapshot_pages[-1]["progress"]["complete"] == ORDER
    assert all(len(s.get("rows") or ()) <= 40 for p in snapshot_pages for s in p["segments"])


@pytest.mark.parametrize("user", ["alex", "sam"])
def test_resuming_from_any_cursor_gives_the_same_pages(srv, user):
    first = MiniReplica()
    with srv.client(user) as c, srv.client("ada") as admin:
        page = c.get("/v1/changes", params={"limit": 30}).json()
        first.apply(page)
        # Writes while the snapshot is under way: they must arrive in the feed part.
        dach = [x for x in admin.get("/v1/customers", params={"territory": "dach"}).json()["items"]][:2]
        results = srv.batch([
            make_op("create", "customer", f"aa-{user}-new", {"name": "New Co", "territory": "dach"}),
            make_op("update", "customer", dach[0]["id"], {"phone": "+49 30 111"}, base_version=dach[0]["version"]),
            make_op("create", "contact", f"aa-{user}-ct", {"customer_id": dach[1]["id"], "name": "Kim"}),
        ])
        assert [r["status"] for r in results] == ["applied", "applied", "applied"]
        srv.batch([make_op("delete", "contact", f"aa-{user}-ct", base_version=results[2]["version"])])
        first.pull(c, limit=30)
        expected = truth(admin, _scope(srv, user))
        assert first.records == expected
        assert any(p["phase"] == "feed" and p["segments"] for p in first.pages)

        # Resume from every intermediate cursor: the server keeps no state, so the rest of the
        # walk must be exactly the same pages, and end in the same replica.
        snapshots = []
        replay = MiniReplica()
        for p in first.pages:
            replay.apply(p)
            snapshots.append(replay.copy())
        for i, state in enumerate(snapshots[:-1]):
            resumed = state.copy()
            start = len(resumed.pages)
            resumed.pull(c, limit=30)
            assert _sans_cursor(resumed.pages[start:]) == _sans_cursor(first.pages[i + 1 :]), (
                f"resuming after page {i} differs")
            assert resumed.records == expected


def test_feed_sends_latest_state_once_and_tombstones(srv):
    replica = MiniReplica()
    with srv.client("alex") as c, srv.client("ada") as admin:
        replica.pull(c)
        customer = admin.get("/v1/customers", params={"territory": "italy", "limit": 1}).json()["items"][0]
        version = customer["version"]
        for n in range(3):
            (r,) = srv.batch([make_op("update", "customer", customer["id"], {"city": f"Roma {n}"}, base_version=version)])
            version = r["version"]
        ticket = admin.get("/v1/tickets", params={"limit": 1}).json()["items"][0]
        srv.batch([make_op("delete", "ticket", ticket["id"], base_version=ticket["version"])])
        before = len(replica.pages)
        replica.pull(c)
        segments = [s for p in replica.pages[before:] for s in p["segments"]]
        upserted = [row[0] for s in segments if s["op"] == "upsert" for row in s["rows"]]
        assert upserted.count(customer["id"]) == 1, "a record changed many times arrives once"
        assert replica.records["customer"][customer["id"]]["city"] == "Roma 2"
        assert replica.records["customer"][customer["id"]]["version"] == version
        assert {"op": "delete", "entity": "ticket", "ids": [ticket["id"]]} in segments
        assert ticket["id"] not in replica.records["ticket"]
        assert replica.records == truth(admin, None)


def test_a_record_missed_by_the_snapshot_keyset_arrives_in_the_feed(srv):
    replica = MiniReplica()
    with srv.client("alex") as c, srv.client("ada") as admin:
        while "customer" not in (replica.pages[-1]["progress"]["complete"] if replica.pages else []):
            replica.apply(c.get("/v1/changes", params={"limit": 50, **({"cursor": replica.cursor} if replica.cursor else {})}).json())
        gone = next(iter(replica.records["customer"].values()))
        srv.batch([
            make_op("create", "customer", "a0-sorts-first", {"name": "Early Bird", "territory": "iberia"}),
            make_op("delete", "customer", gone["id"], base_version=gone["version"]),
        ])
        replica.pull(c, limit=50)
        assert "a0-sorts-first" in replica.records["customer"]
        assert gone["id"] not in replica.records["customer"]
        assert not [r for r in replica.records["contact"].values() if r["customer_id"] == gone["id"]]
        assert replica.records == truth(admin, None)


def _sans_cursor(pages: list[dict]) -> list[dict]:
    """Pages without their cursors: a cursor is sealed with a fresh nonce every time."""
    return [{k: v for k, v in p.items() if k != "cursor"} for p in pages]


def test_a_reps_pull_skips_other_territories_traffic_in_one_request(srv):
    replica = MiniReplica()
    with srv.client("fay") as c:
        replica.pull(c)
        # 45 changes outside fay's territory: her feed reads her territory's range of the log only.
        srv.batch([make_op("create", "customer", f"zz-sparse-{i:02d}", {"name": f"Far {i}", "territory": "us-west"})
                   for i in range(45)])
        before = len(replica.pages)
        requests = replica.pull(c, limit=1)
    assert requests == 1
    assert all(not p["segments"] for p in replica.pages[before:])


def _flip(cursor: str, at: int) -> str:
    epoch, body = cursor.split(".")
    raw = bytearray(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    raw[at] ^= 0x01
    return epoch + "." + base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()


def test_the_cursor_is_opaque(srv):
    """Issue 9 item 17: a cursor reveals nothing, not even the write volume by its length."""
    with srv.client("sam") as sam:
        before = sam.get("/v1/changes", params={"limit": 5}).json()["cursor"]
        srv.batch([make_op("create", "territory", f"opaque-{i:04d}", {"name": f"T {i}"}) for i in range(300)])
        after = sam.get("/v1/changes", params={"limit": 5}).json()["cursor"]
    _epoch, body = after.split(".")
    assert len(before) == len(after), "the length of a cursor does not grow with the write volume"
    raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    for text in (raw, raw[12:]):
        with pytest.raises(orjson.JSONDecodeError):
            orjson.loads(text)
    assert b"sam" not in raw and b"dach" not in raw and b"snapshot" not in raw


def test_bad_forged_and_foreign_cursors_are_400(srv):
    with srv.client("sam") as sam, srv.client("alex") as alex:
        cursor = sam.get("/v1/changes", params={"limit": 5}).json()["cursor"]
        for bad in ("nonsense", "a.b", cursor + "x", _flip(cursor, 0), _flip(cursor, 20), _flip(cursor, -1)):
            r = sam.get("/v1/changes", params={"cursor": bad})
            assert r.status_code == 400, bad
            assert r.json()["error"]["code"] == "invalid_cursor"
        r = alex.get("/v1/changes", params={"cursor": cursor})
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_cursor"
        assert "another user" in r.json()["error"]["message"]


def test_cursor_of_another_database_gets_410(srv, server_factory):
    other = server_factory(seed_customers=0, users=[UserSpec("sam", "sales", ("dach",))])
    with other.client("sam") as c:
        foreign = c.get("/v1/changes").json()["cursor"]
    with srv.client("sam") as c:
        r = c.get("/v1/changes", params={"cursor": foreign})
    assert r.status_code == 410
    assert r.json()["error"]["code"] == "resync_required"


def test_compaction_makes_older_cursors_resync(srv):
    with srv.client("alex") as c:
        old = MiniReplica()
        old.pull(c)
        old_cursor = old.cursor
        (made,) = srv.batch([make_op("create", "territory", "compact-t", {"name": "Compact"})])
        srv.batch([make_op("delete", "territory", "compact-t", base_version=made["version"])])
        fresh = MiniReplica()
        fresh.pull(c)
        store = open_store(srv.db_url)
        try:
            # The tombstone the old cursor has not seen goes: that cursor must resync.
            assert store.compact(before_seq=2**62).purged >= 1
        finally:
            store.close()
        r = c.get("/v1/changes", params={"cursor": old_cursor})
        assert r.status_code == 410 and r.json()["error"]["code"] == "resync_required"
        assert c.get("/v1/changes", params={"cursor": fresh.cursor}).status_code == 200
        assert c.get("/v1/changes").status_code == 200


def test_role_change_between_all_and_own_territories_gets_410(srv):
    srv.add_user("ozzy", role="sales", territories=["nordics"])
    with srv.client("ozzy") as c, srv.client("ada") as admin:
        replica = MiniReplica()
        replica.pull(c)
        user = admin.get("/v1/users/ozzy").json()
        (r,) = srv.batch([make_op("update", "user", "ozzy", {"role": "agent"}, base_version=user["version"])])
        assert r["status"] == "applied"
        response = c.get("/v1/changes", params={"cursor": replica.cursor})
        assert response.status_code == 410
        assert response.json()["error"]["code"] == "resync_required"


def test_nothing_is_skipped_while_writers_commit_concurrently(srv):


    replica = MiniReplica()
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(10):
                cid = f"cc-{n}-{i:02d}"
                results = srv.batch([
                    make_op("create", "customer", cid, {"name": f"Busy {n}", "territory": "dach" if i % 2 else "france"}),
                    make_op("create", "contact", cid + "-ct", {"customer_id": cid, "name": "Pat"}),
                ], user="alex")
                if i % 3 == 0:
                    srv.batch([make_op("delete", "contact", cid + "-ct", base_version=results[1]["version"])], user="alex")
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    with srv.client("alex") as c, srv.client("ada") as admin:
        replica.pull(c)
        threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            replica.pull(c, limit=7)  # small pages, racing the writers
        for t in threads:
            t.join()
        assert not errors, errors
        replica.pull(c, limit=7)
        assert replica.records == truth(admin, None)


def test_a_feed_that_has_not_moved_answers_the_same_cursor(srv):
    """The cursor is opaque, yet one position is one token: a client can tell a server that keeps
    handing back its cursor (no progress) from one that moves on."""
    replica = MiniReplica()
    with srv.client("fay") as c:
        replica.pull(c, limit=500)
        end = replica.cursor
        again = c.get("/v1/changes", params={"cursor": end, "limit": 500}).json()
        twice = c.get("/v1/changes", params={"cursor": again["cursor"], "limit": 500}).json()
    assert again["has_more"] is False and again["segments"] == []
    assert again["cursor"] == twice["cursor"]
