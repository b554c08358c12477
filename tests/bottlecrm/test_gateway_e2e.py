"""crm-tui against crm-server in gateway mode against a REAL BottleCRM (issue 13, "Done when").

Every test runs the real sync engine (as tests/e2e do against crm_server) against the real
gateway process, in front of a real BottleCRM 1.35.0 (gunicorn, its own SQLite database copied
from the cached template). Faults between the gateway and BottleCRM come from the real
FaultProxy. Run with ``make test-bottlecrm`` (``.ci/run`` calls it after ``make test``).
"""

from __future__ import annotations

import json

import pytest

from support.client import ClientReplica
from support.faultproxy import FaultProxy, drop_after_upstream, status
from support.gateway import TERRITORY, GatewayProcess, eventually


@pytest.fixture
def gateway(tmp_path, bottle):
    with GatewayProcess(tmp_path / "mirror.db", upstream=bottle) as gw:
        yield gw


@pytest.fixture
def alex(gateway, tmp_path):
    """Alex (an agent) with a replica bootstrapped from the gateway."""
    client = ClientReplica(tmp_path / "alex", gateway, "alex")
    synced(client)
    return client


def synced(client: ClientReplica):
    report = client.sync()
    assert report.ok, report.error
    return report


def replica_get(client, entity, record_id):
    with client.replica() as r:
        return r.get(entity, record_id)


def ids_in_replica(client, entity):
    with client.replica() as r:
        return {row[0] for row in r.conn.execute(f"SELECT id FROM {entity}")}


# ---------------------------------------------------------------------- bootstrap


@pytest.mark.parametrize("user", ["alex", "sam"])
def test_bootstrap_fills_the_replica_with_what_bottlecrm_holds(bottle, gateway, tmp_path, user):
    client = ClientReplica(tmp_path / user, gateway, user)
    synced(client)
    ids = bottle.ids
    globex = replica_get(client, "customer", ids["globex"])
    assert (globex["name"], globex["email"], globex["phone"], globex["city"], globex["country"], globex["territory"]) == (
        "Globex GmbH", "info@globex.example", "+49 30 123456", "Berlin", "DE", TERRITORY)
    hanna = replica_get(client, "contact", ids["hanna"])
    assert (hanna["name"], hanna["title"], hanna["customer_id"]) == ("Hanna Schmidt", "CTO", ids["globex"])
    printer = replica_get(client, "ticket", ids["printer"])
    assert (printer["subject"], printer["status"], printer["priority"], printer["customer_id"]) == (
        "Printer on fire", "new", "high", ids["globex"])
    assert printer["number"] and printer["sla_due"]
    assert (replica_get(client, "ticket", ids["tps"])["status"], replica_get(client, "ticket", ids["stapler"])["priority"]) == (
        "open", "urgent")
    deal = replica_get(client, "deal", ids["deal"])
    assert (deal["title"], deal["stage"], deal["amount"], deal["currency"], deal["probability"], deal["close_date"]) == (
        "Fleet renewal", "proposal", 123450, "EUR", 40, "2027-01-31")
    assert ids_in_replica(client, "customers") == {ids["globex"], ids["initech"]}
    assert ids_in_replica(client, "tickets") == {ids["printer"], ids["tps"], ids["stapler"]}


# ---------------------------------------------------------------------- pull


def test_an_edit_made_in_bottlecrm_reaches_the_replica(bottle, alex):
    client = alex
    ids = bottle.ids
    bottle.patch("accounts", ids["globex"], {"phone": "+49 30 999999", "city": "Potsdam"})
    bottle.patch("cases", ids["printer"], {"status": "Assigned", "priority": "Urgent"})
    newcomer = bottle.create("cases", {"name": "Coffee machine leaks", "status": "New", "priority": "Normal",
                                       "account": ids["initech"]})

    def arrived():
        synced(client)
        customer = replica_get(client, "customer", ids["globex"])
        ticket = replica_get(client, "ticket", ids["printer"])
        return (customer["phone"], customer["city"]) == ("+49 30 999999", "Potsdam") and \
            (ticket["status"], ticket["priority"]) == ("open", "urgent") and \
            replica_get(client, "ticket", newcomer) is not None

    eventually(arrived, what="BottleCRM's edits reaching the replica")
    assert replica_get(client, "ticket", newcomer)["subject"] == "Coffee machine leaks"


def test_records_deleted_in_bottlecrm_disappear_with_their_cascade(bottle, alex):
    client = alex
    ids = bottle.ids
    bottle.delete("cases", ids["printer"])
    # Deleting an account silently deletes its cases and opportunities in BottleCRM.
    bottle.delete("accounts", ids["initech"])
    assert bottle.get("cases", ids["tps"]) is None and bottle.get("opportunities", ids["initech_deal"]) is None

    def gone():
        synced(client)
        return ids_in_replica(client, "tickets") == set() and ids_in_replica(client, "customers") == {ids["globex"]}

    eventually(gone, what="the deletes reaching the replica")
    assert ids_in_replica(client, "deals") == {ids["deal"]}
    assert ids_in_replica(client, "contacts") == {ids["hanna"]}


def test_a_missed_audit_window_forces_a_full_scan(bottle, tmp_path):
    """More than 50 audit entries between two polls: the delete's own entry is pushed out of the
    log, so only a scan (with its id-set difference) can find it."""
    ids = bottle.ids
    with FaultProxy(bottle.url) as proxy, GatewayProcess(tmp_path / "mirror.db", upstream=bottle,
                                                         upstream_url=proxy.url) as gw:
        client = ClientReplica(tmp_path / "alex", gw, "alex")
        synced(client)
        # The gateway cannot read the audit log while the burst happens.
        blind = proxy.add_rule(status(503), path="/api/activities/")
        bottle.delete("cases", ids["stapler"])
        for i in range(55):
            bottle.patch("accounts", ids["initech"], {"city": f"Austin {i}"})
        eventually(lambda: blind.hits >= 2, what="the gateway polling the blinded audit log")
        proxy.remove_rule(blind)

        def caught_up():
            synced(client)
            return ids["stapler"] not in ids_in_replica(client, "tickets") and \
                replica_get(client, "customer", ids["initech"])["city"] == "Austin 54"

        eventually(caught_up, what="the full scan after the missed window")
        assert "no longer reaches back" in gw.log_text()


def test_full_scans_of_an_unchanged_bottlecrm_change_nothing(bottle, tmp_path):
    """Content hashes: a scan that finds nothing new writes nothing, so replicas pull nothing."""
    with GatewayProcess(tmp_path / "mirror.db", upstream=bottle, scan_interval=1) as gw:
        client = ClientReplica(tmp_path / "alex", gw, "alex")
        synced(client)

        def scans():
            return [line.split("full scan of BottleCRM: ", 1)[1] for line in gw.log_text().splitlines()
                    if "full scan of BottleCRM: " in line]

        later = eventually(lambda: scans()[1:3] if len(scans()) >= 3 else None, what="two scheduled scans")
        assert later == ["{'unchanged': 8}", "{'unchanged': 8}"]
        assert synced(client).pulled == 0


# ---------------------------------------------------------------------- write-through


def test_an_edit_made_offline_in_crm_tui_reaches_bottlecrm(bottle, gateway, tmp_path):
    client = ClientReplica(tmp_path / "sam", gateway, "sam")
    synced(client)
    ids = bottle.ids
    with client.replica() as r:  # offline: nothing but the replica and its outbox
        r.writes.update("customer", ids["globex"], {"city": "Hamburg", "tier": "gold"})
        r.writes.update("ticket", ids["printer"], {"status": "open"})
        r.writes.update("deal", ids["deal"], {"stage": "negotiation", "amount": 250000})
        r.writes.update("contact", ids["hanna"], {"name": "Hanna Maria Schmidt-Lang"})
        acme = r.writes.create("customer", {"name": "Acme Rockets", "email": "sales@acme.example",
                                            "territory": TERRITORY, "country": "US"})
        ticket = r.writes.create("ticket", {"customer_id": acme["id"], "subject": "Rocket skates misfire",
                                            "status": "new", "priority": "urgent"})
        r.writes.delete("ticket", ids["stapler"])
        assert r.outbox.counts()["pending"] == 7
    report = synced(client)
    assert report.pushed == 7 and report.rejected == 0
    with client.replica() as r:
        assert r.outbox.counts() == {"pending": 0, "rejected": 0, "conflicts": 0}

    account = bottle.get("accounts", ids["globex"])
    assert account["city"] == "Hamburg"
    assert bottle.get("cases", ids["printer"])["status"] == "Assigned"
    assert bottle.get("cases", ids["stapler"]) is None
    deal = bottle.get("opportunities", ids["deal"])
    assert (deal["stage"], deal["amount"]) == ("NEGOTIATION", "2500.00")
    contact = bottle.get("contacts", ids["hanna"])
    assert (contact["first_name"], contact["last_name"]) == ("Hanna Maria", "Schmidt-Lang")
    [created] = bottle.find("accounts", name="Acme Rockets")
    assert created["email"] == "sales@acme.example"
    [case] = bottle.find("cases", name="Rocket skates misfire")
    assert (case["priority"], case["account"]["id"]) == ("Urgent", created["id"])
    # The tier has no BottleCRM counterpart: it stays in the mirror, for everyone on the gateway.
    other = ClientReplica(tmp_path / "alex", gateway, "alex")
    synced(other)
    assert replica_get(other, "customer", ids["globex"])["tier"] == "gold"
    assert replica_get(other, "ticket", ticket["id"])["subject"] == "Rocket skates misfire"


def test_the_same_field_edited_on_both_sides_is_a_visible_conflict(bottle, alex):
    client = alex
    ids = bottle.ids
    with client.replica() as r:
        r.writes.update("customer", ids["globex"], {"name": "Globex (crm-tui)", "city": "Leipzig"})
    bottle.patch("accounts", ids["globex"], {"name": "Globex (BottleCRM)", "phone": "+49 40 555555"})
    report = synced(client)
    assert report.conflicts == 1
    status_json = json.loads(client.cli("status", "--json").stdout)
    [conflict] = status_json["conflict_details"]
    assert conflict["fields"]["name"]["mine"] == "Globex (crm-tui)"
    assert conflict["fields"]["name"]["theirs"] == "Globex (BottleCRM)"
    # The field that did not clash went through; BottleCRM's own edit was kept.
    account = bottle.get("accounts", ids["globex"])
    assert (account["name"], account["city"], account["phone"]) == ("Globex (BottleCRM)", "Leipzig", "+49 40 555555")
    record = replica_get(client, "customer", ids["globex"])
    assert (record["city"], record["phone"]) == ("Leipzig", "+49 40 555555")  # the name waits for the user
    # Keeping mine resolves it, and BottleCRM gets it.
    with client.replica() as r:
        r.writes.resolve_conflict(r.conflicts.unresolved()[0].id, {"name": "mine"})
    synced(client)
    assert bottle.get("accounts", ids["globex"])["name"] == "Globex (crm-tui)"


def test_a_retried_create_after_a_dropped_response_makes_no_duplicate(bottle, tmp_path):
    ids = bottle.ids
    with FaultProxy(bottle.url) as proxy, GatewayProcess(tmp_path / "mirror.db", upstream=bottle,
                                                         upstream_url=proxy.url) as gw:
        client = ClientReplica(tmp_path / "alex", gw, "alex")
        synced(client)
        # BottleCRM creates the account, the gateway never hears back.
        dropped = proxy.add_rule(drop_after_upstream(), method="POST", path="/api/accounts/", times=1)
        with client.replica() as r:
            umbrella = r.writes.create("customer", {"name": "Umbrella Corp", "territory": TERRITORY})
        report = synced(client)
        assert dropped.hits == 1
        # Adopted, not re-posted: BottleCRM would refuse a second "Umbrella Corp" (it rejects
        # duplicate account names), and the user would be told their own account exists.
        assert report.rejected == 0
        assert client.sleeps == []  # found within the same request: the client never had to retry
        assert [a["name"] for a in bottle.find("accounts", name="Umbrella Corp")] == ["Umbrella Corp"]
        assert proxy.count("POST", "/api/accounts/") == 1

        # Worse: the answer is lost AND the gateway cannot look (its lookups fail), so the client
        # gets 503 and re-sends later; the op ledger makes the re-sent op look before posting.
        proxy.add_rule(drop_after_upstream(), method="POST", path="/api/cases/", times=1)
        blind = proxy.add_rule(status(503), method="GET", path="/api/cases/", times=4)
        with client.replica() as r:
            ticket = r.writes.create("ticket", {"customer_id": ids["globex"], "subject": "Umbrella stand broken",
                                                "status": "new", "priority": "low"})
        client.sync()  # may fail with 503 after its retries, or succeed on a retry: either way
        synced(client)
        assert blind.hits == 4
        assert len(bottle.find("cases", name="Umbrella stand broken")) == 1
        assert proxy.count("POST", "/api/cases/") == 1
        with client.replica() as r:
            assert r.outbox.counts() == {"pending": 0, "rejected": 0, "conflicts": 0}
        assert replica_get(client, "customer", umbrella["id"])["name"] == "Umbrella Corp"
        assert replica_get(client, "ticket", ticket["id"])["subject"] == "Umbrella stand broken"


def test_a_bottlecrm_validation_error_arrives_as_a_rejected_op_with_its_reason(bottle, alex):
    client = alex
    ids = bottle.ids
    long_subject = "The quarterly report printer jams on every second page of the summary"  # 70 > BottleCRM's 64
    with client.replica() as r:
        r.writes.create("ticket", {"customer_id": ids["globex"], "subject": long_subject, "status": "new",
                                   "priority": "normal"})
        r.writes.update("customer", ids["initech"], {"city": "Round Rock"})
        r.writes.create("order", {"customer_id": ids["globex"], "order_date": "2026-11-25", "amount": 100,
                                  "currency": "EUR", "status": "paid"})
    report = synced(client)
    assert report.rejected == 2
    assert bottle.get("accounts", ids["initech"])["city"] == "Round Rock"  # the good op still went
    assert bottle.find("cases", name="quarterly report") == []
    with client.replica() as r:
        rejected = {op.entity: op.error for op in r.outbox.rejected()}
    assert "64 characters" in rejected["ticket"]["message"]
    assert "64 characters" in rejected["ticket"]["fields"]["subject"]
    assert "no orders" in rejected["order"]["message"]
    status_json = json.loads(client.cli("status", "--json").stdout)
    assert status_json["rejected_ops"] == 2
