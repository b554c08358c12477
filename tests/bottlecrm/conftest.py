"""The BottleCRM every gateway test starts from."""

from __future__ import annotations

import pytest

from support.bottlecrm import BottleCRMProcess


@pytest.fixture
def bottle(tmp_path):
    """A real BottleCRM seeded through its own API: two accounts with contacts, cases, a deal."""
    with BottleCRMProcess(tmp_path / "bcrm") as bcrm:
        globex = bcrm.create("accounts", {"name": "Globex GmbH", "email": "info@globex.example",
                                          "phone": "+49 30 123456", "city": "Berlin", "country": "DE"})
        initech = bcrm.create("accounts", {"name": "Initech Inc", "city": "Austin", "country": "US"})
        ids = {
            "globex": globex,
            "initech": initech,
            "hanna": bcrm.create("contacts", {"first_name": "Hanna", "last_name": "Schmidt", "title": "CTO",
                                              "email": "hanna@globex.example", "account": globex}),
            "printer": bcrm.create("cases", {"name": "Printer on fire", "status": "New", "priority": "High",
                                             "account": globex, "description": "smoke everywhere"}),
            "tps": bcrm.create("cases", {"name": "TPS reports missing", "status": "Assigned", "priority": "Low",
                                         "account": initech}),
            "stapler": bcrm.create("cases", {"name": "Red stapler gone", "status": "Pending", "priority": "Urgent",
                                             "account": initech}),
            "deal": bcrm.create("opportunities", {"name": "Fleet renewal", "account": globex, "stage": "PROPOSAL",
                                                  "amount": "1234.50", "currency": "EUR", "probability": 40,
                                                  "closed_on": "2027-01-31"}),
            "initech_deal": bcrm.create("opportunities", {"name": "Swingline order", "account": initech,
                                                          "stage": "NEGOTIATION", "amount": "99.00", "currency": "USD",
                                                          "closed_on": "2027-03-01"}),
        }
        bcrm.ids = ids
        yield bcrm
