"""A crm-server process behind HAProxy is killed while it applies a batch of a client's push:
the client sends the batch again, HAProxy hands it to the other process, and every write is
applied exactly once — on the server and in the replica.

The kill lands inside the batch's transaction for certain: the test holds a row lock on a
customer the batch updates, so the server applying it waits in the middle of its transaction
(50 ops of the batch done, uncommitted) until it is killed.
"""

from __future__ import annotations

import re
import signal
import threading
import time

import psycopg
import pytest

from support.client import ClientReplica, assert_replica_matches_server

WAIT = 60.0


@pytest.fixture(scope="module")
def backend() -> str:
    return "balanced"


def wait_for(predicate, what: str):
    deadline = time.monotonic() + WAIT
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
    return value


def batch_log(server) -> list[tuple[str, int]]:
    """(server name, status) of each POST /v1/batch in HAProxy's log, in the order they ended."""
    return [(m[1], int(m[2])) for m in re.finditer(r"crm_servers/(crm\d) \S+ (\d{3}) .*\"POST /v1/batch ",
                                                  server.haproxy_log.read_text())]


def test_a_server_killed_in_the_middle_of_a_batch_loses_and_doubles_nothing(server_factory, tmp_path):
    server = server_factory(seed_customers=20)
    client = ClientReplica(tmp_path / "ada", server, "ada", batch_size=200, max_retries=4)
    assert client.sync().ok
    with server.client("ada") as http:
        customers = http.get("/v1/customers", params={"limit": 2}).json()["items"]
    anchor, locked = customers[0]["id"], customers[1]["id"]
    created = []
    with client.replica() as r:
        for i in range(501):
            if i == 250:  # the 51st op of the second batch of 200
                r.writes.update("customer", locked, {"city": "Killed-In-Flight"})
                continue
            created.append(r.writes.create("activity", {
                "customer_id": anchor, "kind": "note", "subject": f"visit {i}", "body": "x" * 150,
                "occurred_at": "2026-11-25T10:00:00Z"})["id"])

    with psycopg.connect(server.database) as holder:
        holder.execute("SELECT 1 FROM customers WHERE id = %s FOR UPDATE", (locked,))
        reports = []
        pushing = threading.Thread(target=lambda: reports.append(client.sync()))
        pushing.start()
        with psycopg.connect(server.database, autocommit=True) as watcher:
            wait_for(lambda: watcher.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event_type = 'Lock'").fetchone()[0] == 1, "the batch to wait on the row lock")
        busy = wait_for(lambda: [i for i, row in enumerate(server.stats()) if row["scur"] == "1"], "HAProxy's view")
        assert len(busy) == 1
        victim, survivor = server.backends[busy[0]], server.backends[1 - busy[0]]
        victim.proc.send_signal(signal.SIGKILL)
        victim.proc.wait(WAIT)
        holder.rollback()  # the dead server's transaction is rolled back, not committed
    pushing.join(WAIT * 2)
    [report] = reports
    assert report.ok, report.error
    assert (report.pushed, report.rejected, report.conflicts) == (501, 0, 0)

    # The client saw the batch fail (HAProxy does not replay a body larger than its buffer) and
    # sent it again; HAProxy gave the re-send, and the last batch, to the other server.
    assert client.sleeps, "the client never had to retry"
    answered = batch_log(server)
    assert len(answered) == 3 and all(status == 200 for _, status in answered), answered
    assert answered[1:] == [(f"crm{2 - busy[0]}", 200)] * 2, answered

    # Exactly once on the server: every op has one result, every create one record, the update
    # one new version; and the surviving server still serves.
    with psycopg.connect(server.database) as conn:
        assert conn.execute("SELECT count(*), count(DISTINCT op_id) FROM op_results WHERE record_id = ANY(%s)",
                            ([*created, locked],)).fetchone() == (501, 501)
        assert conn.execute("SELECT count(*) FROM activities WHERE id = ANY(%s)", (created,)).fetchone()[0] == 500
        assert conn.execute("SELECT count(*) FROM activities WHERE customer_id = %s AND subject LIKE 'visit %%'",
                            (anchor,)).fetchone()[0] == 500
    assert server.get_record("customers", locked)["city"] == "Killed-In-Flight"
    with client.replica() as r:
        assert r.outbox.counts() == {"pending": 0, "rejected": 0, "conflicts": 0}
    assert client.sync().ok
    assert_replica_matches_server(client, server)
    assert survivor.proc.poll() is None
