"""A minimal replica that applies feed pages exactly as docs/sync-protocol.md tells a client to,
and the server's truth to compare it with."""

from __future__ import annotations

import copy
from typing import Any

import httpx

from crm_tui.core.domain import ENTITIES, validate_record

ATTACHED = tuple(e.name for e in ENTITIES.values() if e.anchor == "customer_id")


class MiniReplica:
    """Records by entity and id, plus the cursor; applies pages segment by segment, in order."""

    def __init__(self) -> None:
        self.records: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in ENTITIES}
        self.cursor: str | None = None
        self.pages: list[dict] = []

    def copy(self) -> MiniReplica:
        other = MiniReplica()
        other.records = copy.deepcopy(self.records)
        other.cursor = self.cursor
        return other

    def apply(self, page: dict) -> None:
        for seg in page["segments"]:
            op = seg["op"]
            if op == "upsert":
                ent = ENTITIES[seg["entity"]]
                assert seg["columns"] == list(ent.columns)
                for row in seg["rows"]:
                    record = dict(zip(seg["columns"], row, strict=True))
                    validate_record(ent, record)  # what a real client does with everything it pulls
                    self.records[ent.name][record["id"]] = record
            elif op == "delete":
                for rid in seg["ids"]:
                    self.records[seg["entity"]].pop(rid, None)
            elif op == "exit":
                assert seg["entity"] == "customer"
                for cid in seg["ids"]:
                    self.drop_customer(cid)
            elif op == "exit_territory":
                for cid in [c["id"] for c in self.records["customer"].values() if c["territory"] == seg["territory"]]:
                    self.drop_customer(cid)
            else:
                raise AssertionError(f"unknown segment {op}")
        self.cursor = page["cursor"]
        self.pages.append(page)

    def drop_customer(self, cid: str) -> None:
        self.records["customer"].pop(cid, None)
        for name in ATTACHED:
            for rid in [r["id"] for r in self.records[name].values() if r["customer_id"] == cid]:
                del self.records[name][rid]

    def pull(self, client: httpx.Client, limit: int = 2000, max_pages: int = 10_000) -> int:
        """Pull until has_more is false; returns the number of requests made."""
        for n in range(1, max_pages + 1):
            response = client.get("/v1/changes", params={"limit": limit, **({"cursor": self.cursor} if self.cursor else {})})
            assert response.status_code == 200, response.text
            page = response.json()
            self.apply(page)
            if not page["has_more"]:
                return n
        raise AssertionError("the feed never ended")

    def ids(self) -> dict[str, set[str]]:
        return {name: set(recs) for name, recs in self.records.items()}


def list_all(client: httpx.Client, table: str, **filters: str) -> list[dict]:
    """Every record of ``table`` the client may see, following ``next``."""
    out, after = [], None
    while True:
        params = {"limit": 500, **filters, **({"after": after} if after else {})}
        response = client.get(f"/v1/{table}", params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        out.extend(body["items"])
        after = body["next"]
        if after is None:
            return out


def truth(admin: httpx.Client, territories: set[str] | None) -> dict[str, dict[str, dict]]:
    """The server's records in a scope (None: every territory), read as an admin."""
    out: dict[str, dict[str, dict]] = {}
    customers = {c["id"]: c for c in list_all(admin, "customers")}
    for ent in ENTITIES.values():
        records = customers.values() if ent.name == "customer" else list_all(admin, ent.table)
        keep = {}
        for r in records:
            if territories is not None and ent.anchor is not None:
                cid = r["id"] if ent.anchor == "self" else r["customer_id"]
                if customers[cid]["territory"] not in territories:
                    continue
            keep[r["id"]] = r
        out[ent.name] = keep
    return out


def territory_of(record: dict, entity: str, customer_territory: dict[str, str]) -> str | None:
    """The territory a record belongs to (None: global), from the customers' current territories."""
    ent = ENTITIES[entity]
    if ent.anchor is None:
        return None
    if ent.anchor == "self":
        return record["territory"]
    return customer_territory.get(record["customer_id"], "?unknown customer")
