"""Small helpers for tests that change records on the real server as an admin would, and
server-shaped rows for tests that feed the replica pages of their own."""

from __future__ import annotations

from crm_tui.core.domain import CUSTOMER
from support.server import make_op


def customer_row(cid: str, version: int = 1, **kw):
    rec = {
        "id": cid, "name": f"Customer {cid}", "company": "Acme GmbH", "email": f"{cid}@acme.example",
        "phone": "+49 30 1234567", "city": "Berlin", "country": "DE", "tier": "gold", "territory": "t1",
        "owner_id": None, "tags": ["vip"], "lifetime_value": 100_00, "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:00:00Z", "version": version,
    }
    rec.update(kw)
    return [rec[c] for c in CUSTOMER.columns]


def table(entity):
    return {"activity": "activities", "territory": "territories"}.get(entity, entity + "s")


def admin_update(server, entity, record_id, fields, user="ada"):
    rec = server.get_record(table(entity), record_id)
    [res] = server.batch([make_op("update", entity, record_id, fields, base_version=rec["version"])], user=user)
    assert res["status"] in ("applied", "merged"), res
    return res


def first_customer(server, territory=None, user="ada", with_children=False):
    with server.client(user) as http:
        params = {"limit": 50}
        if territory:
            params["territory"] = territory
        items = http.get("/v1/customers", params=params).json()["items"]
        if not with_children:
            return items[0]
        for c in items:
            n = len(http.get("/v1/contacts", params={"customer_id": c["id"], "limit": 5}).json()["items"])
            if n:
                return c
    raise AssertionError("no customer with contacts")
