"""A read standby (docs/sync-protocol.md, "Read standby"): a REAL PostgreSQL hot standby, made with
pg_basebackup and following the primary by streaming replication, serves the change feed and
record reads; writes go to the primary. Made to lag ON PURPOSE (its WAL replay paused), it never
answers a client with a gap or a step back. Which cluster ran what is read from the clusters'
own statement logs (each connection is named by its URL's application_name).
"""

from __future__ import annotations

import threading
import time

import httpx
import pytest
from click.testing import CliRunner

from crm_server.cli import main
from crm_server.store import open_store
from crm_server.store.pg_standby import PostgresStandby
from crm_tui.core.domain import ENTITIES
from server.helpers import MiniReplica
from support.feedload import FeedFollower, run_harness
from support.server import ServerProcess, UserSpec, make_op
from support.standby import ReplicatedPostgres

pytestmark = pytest.mark.slow  # make test-slow: a PostgreSQL primary and its streaming standby

PRIMARY_APP, STANDBY_APP = "crm-primary", "crm-standby"
USERS = (UserSpec("ada", "admin"), UserSpec("sam", "sales", ("dach",)))


def _named(url: str, app: str) -> str:
    return f"{url}?application_name={app}"


class Org:
    """A primary and its standby with one database, and servers over them."""

    def __init__(self, pg: ReplicatedPostgres, url: str, tmp_path):
        self.pg, self.tmp_path = pg, tmp_path
        self.primary_url = _named(url, PRIMARY_APP)
        self.standby_url = pg.standby_url(_named(url, STANDBY_APP))
        self.servers: list[ServerProcess] = []

    def server(self, read_wait: float, *, seed: bool = True, workers: int = 1) -> ServerProcess:
        """A crm-server over the primary with ``--read-db`` the standby (the database is seeded
        and given ada and sam by the first one)."""
        srv = ServerProcess(self.tmp_path / f"srv{len(self.servers)}.db", database=self.primary_url,
                            users=USERS, rate_limit=1000,
                            serve_args=("--read-db", self.standby_url, "--read-wait", str(read_wait),
                                        "--workers", str(workers)))
        if seed:
            srv.prepare()
        else:
            srv.tokens, srv.user_ids = dict(self.servers[0].tokens), dict(self.servers[0].user_ids)
        self.pg.wait_replayed()
        srv.start()
        self.servers.append(srv)
        return srv

    def ran(self, which: str, since: int) -> list[str]:
        """The statements the server's connections ran on ``which`` since the mark ``since``."""
        return self.pg.statements(which, PRIMARY_APP if which == "primary" else STANDBY_APP, since)

    def marks(self) -> dict[str, int]:
        return {w: self.pg.log_size(w) for w in ("primary", "standby")}

    def truth(self, territories: list[str]) -> dict[str, dict[str, int]]:
        """Every record sam may see, id -> version, read from the primary itself."""
        store = open_store(self.primary_url)
        try:
            with store.read() as tx:
                return {e.name: {r["id"]: r["version"] for r in tx.list_records(
                    e, after=None, limit=100_000, filters={}, territories=territories)} for e in ENTITIES.values()}
        finally:
            store.close()

    def stop(self) -> None:
        for srv in self.servers:
            srv.stop()


@pytest.fixture(scope="module")
def org(tmp_path_factory):
    with ReplicatedPostgres.start() as pg:
        org = Org(pg, pg.create_database(), tmp_path_factory.mktemp("standby"))
        try:
            yield org
        finally:
            org.stop()


@pytest.fixture(scope="module")
def quick(org):
    """A server that waits at most 0.3 s for the standby."""
    return org.server(0.3)


@pytest.fixture(scope="module")
def patient(org, quick):
    """Two server processes over the same databases that wait up to 20 s for the standby."""
    return org.server(20, seed=False, workers=2)


class WatchedReplica(MiniReplica):
    """A replica that fails on a step back: a record coming back in an older version."""

    def apply(self, page: dict) -> None:
        for seg in page["segments"]:
            if seg["op"] == "upsert":
                known = self.records[seg["entity"]]
                for row in seg["rows"]:
                    record = dict(zip(seg["columns"], row, strict=True))
                    old = known.get(record["id"])
                    assert old is None or record["version"] >= old["version"], f"step back of {record['id']}"
        super().apply(page)

    def versions(self) -> dict[str, dict[str, int]]:
        return {name: {rid: r["version"] for rid, r in recs.items()} for name, recs in self.records.items()}


def _activity(rid: str, cid: str) -> dict:
    return make_op("create", "activity", rid, {"customer_id": cid, "kind": "call", "occurred_at": "2026-11-25T10:00:00Z"})


def test_feed_and_reads_come_from_the_standby_and_writes_go_to_the_primary(org, quick):
    replica = WatchedReplica()
    with quick.client("sam") as sam:
        (made,) = quick.batch([_activity("sb-act-1", "cus-0000001")], user="sam")
        assert made["status"] == "applied"
        org.pg.wait_replayed()
        mark = org.marks()
        replica.pull(sam)
        customers = sam.get("/v1/customers", params={"limit": 50})
        one = sam.get("/v1/activities/sb-act-1")
    assert customers.status_code == 200 and customers.json()["items"]
    assert one.status_code == 200 and one.json()["version"] == made["version"]
    assert "sb-act-1" in replica.records["activity"]

    on_standby = " ".join(org.ran("standby", mark["standby"]))
    on_primary = " ".join(org.ran("primary", mark["primary"]))
    for table in ('"customers"', '"activities"', '"contacts"'):
        assert f"FROM {table}" in on_standby, f"the standby served {table}"
        assert f"FROM {table}" not in on_primary, f"the primary did not serve {table}"
    assert "rate_buckets" in on_primary, "rate limits are counted on the primary"

    # The write itself landed on the primary (and only replication brought it to the standby).
    store = open_store(org.primary_url)
    try:
        with store.read() as tx:
            assert tx.get(ENTITIES["activity"], "sb-act-1").version == made["version"]
    finally:
        store.close()


def test_a_client_ahead_of_a_lagging_standby_gets_no_gap_and_no_step_back(org, quick):
    replica = WatchedReplica()
    with quick.client("sam") as sam, quick.client("ada") as ada:
        replica.pull(sam)
        org.pg.pause_replay()
        try:
            customer = sam.get("/v1/customers/cus-0000001").json()
            # sam writes; the standby does not have it (its replay is paused).
            results = quick.batch([
                make_op("update", "customer", customer["id"], {"phone": "+49 30 555"}, base_version=customer["version"]),
                _activity("sb-lag-1", customer["id"]),
            ], user="sam")
            assert [r["status"] for r in results] == ["applied", "applied"]
            new_version = results[0]["version"]
            mark = org.marks()
            replica.pull(sam)  # a cursor from before the write: must bring the write
            assert replica.records["customer"][customer["id"]]["version"] == new_version
            assert "sb-lag-1" in replica.records["activity"]
            # Someone else writes too; sam's cursor is now ahead of the standby.
            (other,) = quick.batch([_activity("sb-lag-2", customer["id"])], user="ada")
            replica.pull(sam)
            assert replica.records["activity"]["sb-lag-2"]["version"] == other["version"]
            # A read of what was just written is not answered from the paused standby either.
            got = sam.get("/v1/activities/sb-lag-2")
            assert got.status_code == 200 and got.json()["version"] == other["version"]
            assert ada.get("/v1/customers/" + customer["id"]).json()["version"] == new_version
            assert "FROM changes" in " ".join(org.ran("primary", mark["primary"])), "the primary served them"
        finally:
            org.pg.resume_replay()
        org.pg.wait_replayed()
        mark = org.marks()
        replica.pull(sam)
    assert "FROM changes" in " ".join(org.ran("standby", mark["standby"])), "caught up, the standby serves again"
    assert replica.versions() == org.truth(["dach"]), "converged: every record in sam's scope, latest versions"


def test_a_read_waits_for_the_standby_to_replay_what_it_must_show(org, quick, patient):
    with patient.client("sam") as sam:
        org.pg.pause_replay()
        try:
            (made,) = patient.batch([_activity("sb-wait-1", "cus-0000001")], user="sam")
            mark = org.marks()
            answer: list[httpx.Response] = []
            reader = threading.Thread(target=lambda: answer.append(sam.get("/v1/activities/sb-wait-1")))
            reader.start()
            # The request is waiting once the standby has been asked (and found behind) twice.
            deadline = time.monotonic() + 20
            while sum("FROM commits" in s for s in org.ran("standby", mark["standby"])) < 2:
                assert time.monotonic() < deadline, "the read never looked at the standby"
                time.sleep(0.01)
        finally:
            org.pg.resume_replay()
        reader.join(30)
    assert answer and answer[0].status_code == 200 and answer[0].json()["version"] == made["version"]
    assert 'FROM "activities"' in " ".join(org.ran("standby", mark["standby"])), "the standby answered it"
    assert 'FROM "activities"' not in " ".join(org.ran("primary", mark["primary"]))


def test_the_standby_feed_never_skips_a_change_committed_out_of_order(org, quick):
    """The proof of "Concurrent writers", read from the standby itself: its snapshots' head,
    made from the primary's transactions as replayed, stays below a writer still open there."""
    standby = PostgresStandby(org.standby_url, open_store(org.primary_url))
    try:
        follower = FeedFollower(standby)
        while follower.pull():
            pass
        out = run_harness(org.primary_url, follower, follower.pull)
        org.pg.wait_replayed()
        while follower.pull():
            pass
    finally:
        standby.primary.close()
        standby.close()
    mine = [(cid, v) for cid, v in out["delivered"] if cid in out["latest"]]
    assert len(mine) == len(set(mine)), "no change is delivered twice"
    assert dict(mine) == out["latest"], "every committed change arrives, in its latest state"
    assert out["held"] in mine, "the change committed out of sequence order is not skipped"


def test_serve_refuses_a_read_db_that_is_not_a_standby_of_the_db(org, tmp_path):
    primary, other = org.pg.create_database(), org.pg.create_database()
    for db in (primary, other):
        open_store(db).close()
    runner = CliRunner()
    cases = {
        (primary, other): "is not a standby of",
        (primary, "postgresql://postgres@127.0.0.1:1/nowhere"): "cannot use read standby",
        (str(tmp_path / "crm.db"), other): "both must be postgresql:// URLs",
    }
    # Were the standby accepted, the key without a certificate would stop serve instead: a
    # wrong answer fails this test, it never hangs in a server.
    key = tmp_path / "key.pem"
    key.write_text("not used")
    for (db, read_db), message in cases.items():
        result = runner.invoke(main, ["serve", "--db", db, "--read-db", read_db, "--port", "0", "--ssl-keyfile", str(key)])
        assert result.exit_code == 1, result.output
        assert message in result.output and len(result.output.strip().splitlines()) == 1, result.output


def test_a_token_issued_or_a_device_revoked_a_moment_ago_is_judged_on_the_primary(org, quick):
    """Issuing a token or revoking a device moves no commit a standby could be waited for: with
    the standby's replay paused, a new token works at once, and a revoked device is refused at
    once (403 device_revoked), for the feed and for record reads alike."""
    from crm_server.accounts import issue_token, revoke_device

    quick.add_user("vic", "sales", ("dach",))  # not sam: a revoked device takes its tokens with it
    device = {"X-CRM-Device": "standby-lost-laptop-01"}
    with quick.client("vic", headers=device) as vic:
        assert vic.get("/v1/changes", params={"limit": 5}).status_code == 200  # the device is known
    org.pg.wait_replayed()
    org.pg.pause_replay()
    store = open_store(org.primary_url)
    try:
        fresh_token = issue_token(store, quick.user_ids["vic"])
        with quick.client(None, headers={"Authorization": f"Bearer {fresh_token}"}) as new:
            assert new.get("/v1/changes", params={"limit": 5}).status_code == 200
            assert new.get("/v1/customers", params={"limit": 5}).status_code == 200
        revoke_device(store, quick.user_ids["vic"], device["X-CRM-Device"])
        with quick.client("vic", headers=device) as vic:
            for path in ("/v1/changes", "/v1/customers", "/v1/customers/cus-0000001"):
                got = vic.get(path)
                assert got.status_code == 403 and got.json()["error"]["code"] == "device_revoked", (path, got.text)
    finally:
        store.close()
        org.pg.resume_replay()
    org.pg.wait_replayed()


def test_a_standby_that_goes_away_sends_reads_to_the_primary(org, quick):
    # Last in this module: the standby does not come back.
    replica = WatchedReplica()
    with quick.client("sam") as sam:
        replica.pull(sam)
        org.pg.halt_standby()
        (made,) = quick.batch([_activity("sb-down-1", "cus-0000001")], user="sam")
        replica.pull(sam)
        listed = sam.get("/v1/activities", params={"customer_id": "cus-0000001"})
    assert replica.records["activity"]["sb-down-1"]["version"] == made["version"]
    assert listed.status_code == 200 and "sb-down-1" in [a["id"] for a in listed.json()["items"]]
    log = quick.log_text()
    assert log.count("the read standby cannot be used") == 1, log[-2000:]
    assert replica.versions() == org.truth(["dach"])
