"""A ``POST /v1/batch`` of edits on PostgreSQL costs a fixed, small number of statements, however
many edits it carries (found by bench/batch_write.py: a dozen statements per customer edit, each
a round trip, so a batch of 100 edits took over a thousand).

Counted from PostgreSQL's own statement log (every statement of the server's connections, named
by the URL's application_name) and by a TCP relay between the server and PostgreSQL (how often
the server waited for an answer: statements sent together in psycopg's pipeline mode wait
once), over the REAL server on loopback; never timed.
"""

from __future__ import annotations

import pytest

from support.postgres import PostgresServer
from support.roundtrips import RoundTripRelay
from support.server import ServerProcess, UserSpec, make_op
from support.standby import LOGGED, logged_statements

APP = "crm-batch-rt"
DEVICE = {"X-CRM-Device": "batch-rt-device-00001", "X-CRM-Device-Name": "laptop"}


@pytest.fixture(scope="module")
def logged():
    server = PostgresServer.start(settings=LOGGED)
    try:
        yield server
    finally:
        server.stop()


def _ran(server: PostgresServer, since: int) -> list[str]:
    return logged_statements(server, since, APP)


def test_a_batch_of_edits_costs_the_same_statements_for_100_edits_as_for_10(logged, tmp_path):
    url = logged.create_database()
    relay = RoundTripRelay(logged.port)
    relayed = url.replace(f":{logged.port}/", f":{relay.port}/") + f"?application_name={APP}"
    srv = ServerProcess(tmp_path / "crm.db", database=relayed, seed_customers=120,
                        users=(UserSpec("ada", "admin"), UserSpec("amy", "agent")))
    with relay, srv, srv.client("amy", headers=DEVICE) as amy:
        customers = amy.get("/v1/customers", params={"limit": 110}).json()["items"]  # notes the device
        assert len(customers) == 110
        runs = []
        for part in (customers[:10], customers[10:]):
            ops = [make_op("update", "customer", c["id"], {"phone": f"+49 30 {i:06d}"}, base_version=c["version"])
                   for i, c in enumerate(part)]
            since = len(logged.log_text())
            relay.reset()
            response = amy.post("/v1/batch", json={"ops": ops})
            runs.append((response, _ran(logged, since), relay.round_trips))
        after = {c["id"]: amy.get(f"/v1/customers/{c['id']}").json() for c in customers[10:]}
    (small, ran_small, trips_small), (large, ran_large, trips_large) = runs
    assert small.status_code == 200 and large.status_code == 200, (small.text, large.text)
    results = large.json()["results"]
    assert [r["status"] for r in small.json()["results"] + results] == ["applied"] * 110
    assert {r["record"]["id"]: (r["version"], r["record"]["phone"]) for r in results} == {
        i: (c["version"], c["phone"]) for i, c in after.items()}
    assert len(ran_large) == len(ran_small), "\n".join(ran_large)
    assert len(ran_large) <= 17, "\n".join(ran_large)
    # The token check's read transaction and the batch's write transaction, each a few waits.
    assert trips_large == trips_small, (trips_small, trips_large)
    assert trips_large <= 10, trips_large
