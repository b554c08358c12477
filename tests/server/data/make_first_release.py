"""Makes first_release.db (+ .json) with the FIRST RELEASE's crm_server (schema version 1).

Run with the first release's code on the path, e.g. from a checkout of commit f8da4d5:
    PYTHONPATH=<checkout> python tests/server/data/make_first_release.py tests/server/data
The .json holds the tokens, a cursor of that release, and every record as that release read it,
so tests/server/test_migrations.py can check the upgrade kept data and behaviour.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import orjson

from crm_server.accounts import add_user, set_territories
from crm_server.batch import apply_batch
from crm_server.feed import pull_changes
from crm_server.scope import SYSTEM
from crm_server.seed import seed_database
from crm_server.store import open_store
from crm_tui.core.domain import ENTITIES

out = Path(sys.argv[1])
db = out / "first_release.db"
db.unlink(missing_ok=True)
store = open_store(db)
seed_database(store, customers=30, seed=7, now=dt.datetime(2026, 11, 25, 9, tzinfo=dt.UTC))
tokens = {}
for name, role, territories in (("ada", "admin", ()), ("alex", "agent", ()), ("sam", "sales", ("dach",))):
    record, tokens[name] = add_user(store, name, role=role, territories=territories)
with store.read() as tx:
    dach = tx.list_records(ENTITIES["customer"], after=None, limit=3, filters={"territory": "dach"}, territories=None)
    contact = tx.list_records(ENTITIES["contact"], after=None, limit=1, filters={}, territories=None)[0]
ops = [
    {"op_id": "fr-update", "op": "update", "entity": "customer", "id": dach[0]["id"], "base_version": dach[0]["version"],
     "fields": {"city": "Graz", "tags": ["vip"]}},
    {"op_id": "fr-move", "op": "update", "entity": "customer", "id": dach[1]["id"], "base_version": dach[1]["version"],
     "fields": {"territory": "france"}},
    {"op_id": "fr-delete", "op": "delete", "entity": "contact", "id": contact["id"], "base_version": contact["version"]},
    {"op_id": "fr-ticket", "op": "create", "entity": "ticket", "id": "fr-ticket",
     "fields": {"customer_id": dach[2]["id"], "subject": "Before the upgrade", "status": "new", "priority": "high"}},
]
results = apply_batch(store, SYSTEM.id, ops)
assert all(r["status"] == "applied" for r in results), results
set_territories(store, "sam", grant=["benelux"])
cursor = None
while True:
    page = orjson.loads(pull_changes(store, "sam", cursor, 500))
    cursor = page["cursor"]
    if not page["has_more"]:
        break
with store.read() as tx:
    records = {e.name: tx.list_records(e, after=None, limit=100_000, filters={}, territories=None)
               for e in ENTITIES.values()}
store.close()
(out / "first_release.json").write_bytes(orjson.dumps(
    {"tokens": tokens, "sam_cursor": cursor, "results": results, "deleted_contact": contact["id"],
     "records": records}, option=orjson.OPT_INDENT_2))
print("wrote", db)
