"""The gateway with its mirror and its own state in PostgreSQL: two `crm-server serve
--upstream bottlecrm --db postgresql://...` processes on one database in front of a REAL
BottleCRM. Only one polls BottleCRM (the advisory lock); both serve the sync protocol and write
through; when the poller stops, the other takes over."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.client import ClientReplica
from support.gateway import TERRITORY, GatewayProcess, eventually


@pytest.fixture
def two_gateways(tmp_path, bottle, postgres):
    url = postgres.create_database()
    first = GatewayProcess(tmp_path / "gw1.db", upstream=bottle, database=url)
    first.prepare()
    first.start()
    second = GatewayProcess(tmp_path / "gw2.db", upstream=bottle, database=url, tokens=first.tokens,
                            user_ids=first.user_ids)
    second.db_path = Path(second.db_path)
    try:
        second.start()  # the mirror and the users are the first one's: nothing to prepare
        yield first, second
    finally:
        second.stop()
        first.stop()
        postgres.drop_database(url)


def synced(client: ClientReplica):
    report = client.sync()
    assert report.ok, report.error
    return report


def replica_get(client, entity, record_id):
    with client.replica() as r:
        return r.get(entity, record_id)


def test_bootstrap_write_through_and_pull_over_postgresql_with_one_poller(bottle, two_gateways, tmp_path):
    first, second = two_gateways
    ids = bottle.ids
    assert "another server process polls" in second.log_text(), "the second process does not poll"
    assert "first scan of" in first.log_text()

    # Bootstrap from the process that never polled: the mirror is the database both share.
    sam = ClientReplica(tmp_path / "sam", second, "sam")
    synced(sam)
    globex = replica_get(sam, "customer", ids["globex"])
    assert (globex["name"], globex["city"], globex["territory"]) == ("Globex GmbH", "Berlin", TERRITORY)
    assert replica_get(sam, "ticket", ids["printer"])["status"] == "new"

    # Write-through from an offline edit, through the second process; a create is made once.
    with sam.replica() as r:
        r.writes.update("customer", ids["globex"], {"city": "Hamburg"})
        r.writes.update("ticket", ids["printer"], {"status": "open"})
        acme = r.writes.create("customer", {"name": "Acme Rockets", "territory": TERRITORY, "country": "US"})
    report = synced(sam)
    assert report.pushed == 3 and report.rejected == 0
    assert bottle.get("accounts", ids["globex"])["city"] == "Hamburg"
    assert bottle.get("cases", ids["printer"])["status"] == "Assigned"
    assert len(bottle.find("accounts", name="Acme Rockets")) == 1
    with sam.replica() as r:
        assert r.get("customer", acme["id"])["name"] == "Acme Rockets"

    # An edit made in BottleCRM is pulled by the poller and served by the other process.
    bottle.patch("accounts", ids["initech"], {"city": "Dallas"})

    def pulled(city: str):
        def check():
            synced(sam)
            return replica_get(sam, "customer", ids["initech"])["city"] == city
        return check

    eventually(pulled("Dallas"), what="the BottleCRM edit reaching the replica")
    assert "now polls" not in second.log_text()

    # The poller stops: the other process takes over (with a full scan) and keeps the mirror fresh.
    first.stop()
    eventually(lambda: "now polls" in second.log_text(), what="the second process taking over the polling")
    bottle.patch("accounts", ids["initech"], {"city": "Houston"})
    eventually(pulled("Houston"), what="an edit pulled by the new poller")
    assert len(bottle.find("accounts", name="Acme Rockets")) == 1, "no duplicate create"
