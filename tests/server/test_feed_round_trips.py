"""A change-feed page on PostgreSQL costs a fixed, small number of round trips (bench/SERVER.md,
"Feed pages"): the token check runs inside the page's own read transaction (one BEGIN, one
ROLLBACK) and reads the device, the token, whether the token was used on the device and the
token's user with one statement, and the rows of the changed orders come from one statement.

Counted from PostgreSQL's own statement log (every statement of the server's connections, named
by the URL's application_name), over the REAL server on loopback; never timed.
"""

from __future__ import annotations

import re

import pytest

from support.postgres import PostgresServer
from support.server import ServerProcess, UserSpec, make_op
from support.standby import LOGGED, logged_statements

APP = "crm-feed-page"
_USERS = re.compile(r'\b(FROM|JOIN) "?users"?(\s|$)')  # a statement that reads the users table
DEVICE = {"X-CRM-Device": "feed-page-device-0001", "X-CRM-Device-Name": "laptop"}


@pytest.fixture(scope="module")
def logged():
    server = PostgresServer.start(settings=LOGGED)
    try:
        yield server
    finally:
        server.stop()


def _ran(server: PostgresServer, since: int) -> list[str]:
    return logged_statements(server, since, APP)


def _to_feed(client, cursor: str | None = None) -> str:
    while True:
        page = client.get("/v1/changes", params={"cursor": cursor or "", "limit": 1000})
        assert page.status_code == 200, page.text
        body = page.json()
        cursor = body["cursor"]
        if body["phase"] == "feed" and not body["has_more"]:
            return cursor


def test_a_feed_page_is_one_read_transaction_with_the_token_check_inside(logged, tmp_path):
    url = f"{logged.create_database()}?application_name={APP}"
    srv = ServerProcess(tmp_path / "crm.db", database=url, seed_customers=20,
                        users=(UserSpec("ada", "admin"), UserSpec("sam", "sales", ("dach",))))
    with srv, srv.client("sam", headers=DEVICE) as sam:
        cursor = _to_feed(sam)
        (customer,) = sam.get("/v1/customers", params={"limit": 1}).json()["items"]
        made = srv.batch([make_op("create", "order", f"ord-rt-{i}", {
            "customer_id": customer["id"], "order_date": day, "amount": 1000 + i, "currency": "EUR",
            "status": "paid"}) for i, day in enumerate(("2026-03-02", "2026-11-20"))])
        assert {r["status"] for r in made} == {"applied"}
        _to_feed(sam, cursor)  # the device's first use is noted (a write); now it is known
        since = len(logged.log_text())
        page = sam.get("/v1/changes", params={"cursor": cursor, "limit": 1000})
        ran = _ran(logged, since)
    assert page.status_code == 200, page.text
    orders = [seg for seg in page.json()["segments"] if seg.get("entity") == "order"]
    assert sorted(row[0] for seg in orders for row in seg["rows"]) == ["ord-rt-0", "ord-rt-1"]
    begins = [s for s in ran if s.upper().startswith("BEGIN")]
    assert len(begins) == 1, "\n".join(ran)  # the token check and the page: one read transaction
    users = [s for s in ran if _USERS.search(s)]
    assert len(users) == 1, "\n".join(ran)  # the user is read once
    orders_read = [s for s in ran if 'FROM "orders"' in s]
    assert len(orders_read) == 1, "\n".join(ran)
    tokens = [s for s in ran if "FROM devices" in s or "FROM tokens" in s or "FROM device_tokens" in s]
    assert len(tokens) == 1, "\n".join(ran)  # the device, the token, its use on the device, the user: one statement
    assert len(ran) <= 11, "\n".join(ran)


def test_a_record_read_and_a_list_are_one_read_transaction_each(logged, tmp_path):
    url = f"{logged.create_database()}?application_name={APP}"
    srv = ServerProcess(tmp_path / "crm.db", database=url, seed_customers=20,
                        users=(UserSpec("ada", "admin"), UserSpec("sam", "sales", ("dach",))))
    with srv, srv.client("sam", headers=DEVICE) as sam:
        (customer,) = sam.get("/v1/customers", params={"limit": 1}).json()["items"]  # notes the device
        runs = []
        for path, params in ((f"/v1/customers/{customer['id']}", {}), ("/v1/contacts", {"limit": 5})):
            since = len(logged.log_text())
            response = sam.get(path, params=params)
            runs.append((response, _ran(logged, since)))
        gone = sam.get("/v1/customers/cus-nobody")
    assert gone.status_code == 404
    (one, ran_one), (listed, ran_list) = runs
    assert one.status_code == 200 and one.json()["id"] == customer["id"]
    assert listed.status_code == 200 and listed.json()["items"]
    for ran in (ran_one, ran_list):
        assert len([s for s in ran if s.upper().startswith("BEGIN")]) == 1, "\n".join(ran)
        assert len([s for s in ran if _USERS.search(s)]) == 1, "\n".join(ran)
