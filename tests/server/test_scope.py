"""Scope over loopback: customers moving territory, territory grants and revokes, and the
property that no response ever carries a record outside the caller's scope."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm_tui.core.domain import ENTITIES
from server.helpers import MiniReplica, list_all, territory_of, truth
from support.server import ServerProcess, UserSpec, make_op

PLAY = ("dach", "france", "benelux", "italy")  # the territories the property test plays with


@pytest.fixture(scope="module")
def srv(tmp_path_factory, database):
    users = [UserSpec("ada", "admin"), UserSpec("alex", "agent"), UserSpec("sam", "sales", ("dach",)),
             UserSpec("rita", "sales", ("france", "benelux"))]
    path = tmp_path_factory.mktemp("scope") / "crm.db"
    with ServerProcess(path, database=database(path), seed_customers=30, users=users) as s:
        yield s


def _customer_with_history(srv, territory: str, cid: str) -> None:
    results = srv.batch([
        make_op("create", "customer", cid, {"name": f"Mover {cid}", "territory": territory}),
        make_op("create", "contact", f"{cid}-ct", {"customer_id": cid, "name": "Lee"}),
        make_op("create", "ticket", f"{cid}-tk", {"customer_id": cid, "subject": "Broken", "status": "new", "priority": "high"}),
        make_op("create", "order", f"{cid}-or", {"customer_id": cid, "order_date": "2026-01-02", "amount": 1200,
                                                 "currency": "EUR", "status": "paid"}),
        make_op("create", "activity", f"{cid}-ac", {"customer_id": cid, "kind": "visit", "occurred_at": "2026-03-01T10:00:00Z",
                                                    "ticket_id": f"{cid}-tk"}),
    ])
    assert [r["status"] for r in results] == ["applied"] * 5, results


def test_a_customer_moving_territory_exits_one_rep_and_backfills_the_other(srv):
    _customer_with_history(srv, "dach", "mv-1")
    sam, rita = MiniReplica(), MiniReplica()
    with srv.client("sam") as s, srv.client("rita") as r, srv.client("ada") as admin:
        sam.pull(s)
        rita.pull(r)
        assert "mv-1" in sam.records["customer"] and "mv-1-ct" in sam.records["contact"]
        assert "mv-1" not in rita.records["customer"]
        version = admin.get("/v1/customers/mv-1").json()["version"]
        (res,) = srv.batch([make_op("update", "customer", "mv-1", {"territory": "france"}, base_version=version)])
        assert res["status"] == "applied"

        before = len(sam.pages)
        sam.pull(s)
        segments = [seg for p in sam.pages[before:] for seg in p["segments"]]
        assert {"op": "exit", "entity": "customer", "ids": ["mv-1"]} in segments
        assert not any(seg["op"] == "upsert" and any(row[0].startswith("mv-1") for row in seg["rows"]) for seg in segments)
        assert sam.records == truth(admin, {"dach"})

        rita.pull(r)
        for name, rid in (("customer", "mv-1"), ("contact", "mv-1-ct"), ("ticket", "mv-1-tk"), ("order", "mv-1-or"),
                          ("activity", "mv-1-ac")):
            assert rid in rita.records[name], f"{name} history must follow the customer"
        assert rita.records == truth(admin, {"france", "benelux"})


def test_a_granted_territory_is_backfilled_and_a_revoked_one_exits(srv):
    # The two territories with the most seeded customers: each has a history to move.
    with srv.client("ada") as admin:
        kept, granted = (t for t, _ in Counter(c["territory"] for c in list_all(admin, "customers")).most_common(2))
    srv.add_user("gus", role="sales", territories=[kept])
    replica = MiniReplica()
    with srv.client("gus") as c, srv.client("ada") as admin:
        replica.pull(c, limit=20)
        assert replica.records == truth(admin, {kept})

        srv.grant("gus", granted)
        before = len(replica.pages)
        replica.pull(c, limit=20)
        new_pages = replica.pages[before:]
        assert new_pages[0]["phase"] == "backfill"
        assert new_pages[0]["progress"]["total"] > 0
        backfilled = {row[0] for p in new_pages if p["phase"] == "backfill" for s in p["segments"] for row in s["rows"]}
        granted_orders = {o["id"] for o in list_all(admin, "orders") if o["id"] in set(truth(admin, {granted})["order"])}
        assert granted_orders and granted_orders <= backfilled, "history of the new territory is included"
        assert replica.records == truth(admin, {kept, granted})

        srv.revoke("gus", kept)
        before = len(replica.pages)
        replica.pull(c, limit=20)
        first = replica.pages[before]
        assert first["segments"][0] == {"op": "exit_territory", "territory": kept}
        assert replica.records == truth(admin, {granted})


def test_a_territory_granted_during_the_snapshot_is_backfilled_after_it(srv):
    srv.add_user("hal", role="sales", territories=["nordics"])
    replica = MiniReplica()
    with srv.client("hal") as c, srv.client("ada") as admin:
        replica.apply(c.get("/v1/changes", params={"limit": 10}).json())
        srv.grant("hal", "cee")
        replica.pull(c, limit=10)
        assert [p["phase"] for p in replica.pages].count("backfill") >= 1
        assert replica.records == truth(admin, {"nordics", "cee"})


def test_a_territory_revoked_during_its_backfill_exits(srv):
    srv.add_user("ivy", role="sales", territories=["anz"])
    replica = MiniReplica()
    with srv.client("ivy") as c, srv.client("ada") as admin:
        replica.pull(c)
        srv.grant("ivy", "us-east")
        page = c.get("/v1/changes", params={"limit": 3, "cursor": replica.cursor}).json()
        assert page["phase"] == "backfill" and page["segments"], "part of us-east has arrived"
        replica.apply(page)
        srv.revoke("ivy", "us-east")
        before = len(replica.pages)
        replica.pull(c, limit=3)
        assert replica.pages[before]["segments"][0] == {"op": "exit_territory", "territory": "us-east"}
        assert replica.records == truth(admin, {"anz"})


# ----------------------------------------------------------------------------- the property

_customer_ids = itertools.count(1)
_user_ids = itertools.count(1)

actions = st.lists(
    st.one_of(
        st.tuples(st.just("create"), st.sampled_from(PLAY)),
        st.tuples(st.just("move"), st.integers(0, 10_000), st.sampled_from(PLAY)),
        st.tuples(st.just("child"), st.integers(0, 10_000), st.sampled_from(["contact", "ticket", "deal"])),
        st.tuples(st.just("delete"), st.integers(0, 10_000)),
        st.tuples(st.just("grant"), st.integers(0, 1), st.sampled_from(PLAY)),
        st.tuples(st.just("revoke"), st.integers(0, 1), st.sampled_from(PLAY)),
        st.tuples(st.just("read"), st.integers(0, 1), st.integers(0, 10_000)),
        st.tuples(st.just("write"), st.integers(0, 1), st.integers(0, 10_000), st.sampled_from(PLAY)),
        st.tuples(st.just("pull"), st.integers(0, 1), st.integers(1, 7)),
    ),
    min_size=1,
    max_size=10,
)


class _Checker:
    """Checks every record in every response against the caller's scope at that moment."""

    def __init__(self, srv, admin):
        self.srv, self.admin = srv, admin

    def scope_of(self, user: str) -> set[str]:
        return set(self.admin.get(f"/v1/users/{self.srv.user_ids[user]}").json()["territories"])

    def check(self, user: str, entity: str, records: list[dict]) -> None:
        scope = self.scope_of(user)
        customers = {c["id"]: c["territory"] for c in list_all(self.admin, "customers")}
        for record in records:
            territory = territory_of(record, entity, customers)
            assert territory is None or territory in scope, f"{user} (scope {scope}) got {entity} {record['id']} of {territory}"


@pytest.mark.slow  # make test-slow: 25 generated plans, each many requests against the live server
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(plan=actions, territories=st.lists(st.sets(st.sampled_from(PLAY), max_size=2), min_size=2, max_size=2))
def test_no_response_ever_carries_a_record_outside_the_callers_scope(srv, plan, territories):
    reps = []
    for terr in territories:
        name = f"prop{next(_user_ids)}"
        srv.add_user(name, role="sales", territories=sorted(terr))
        reps.append(name)
    replicas = {name: MiniReplica() for name in reps}
    with srv.client("ada") as admin:
        checker = _Checker(srv, admin)
        clients = {name: srv.client(name) for name in reps}
        try:
            for name in reps:  # start from a bootstrapped replica, so moves and revokes must exit
                replicas[name].pull(clients[name])
            for action in plan:
                _run(action, srv, admin, checker, reps, clients, replicas)
            for name in reps:  # and the replicas converge to exactly their scope
                replicas[name].pull(clients[name])
                assert replicas[name].records == truth(admin, checker.scope_of(name))
        finally:
            for c in clients.values():
                c.close()


def _pick(items: list[dict], n: int) -> dict | None:
    return items[n % len(items)] if items else None


def _run(action, srv, admin, checker, reps, clients, replicas):
    kind = action[0]
    customers = [c for c in list_all(admin, "customers") if c["territory"] in PLAY]
    if kind == "create":
        cid = f"pc-{next(_customer_ids)}"
        srv.batch([make_op("create", "customer", cid, {"name": "Prop", "territory": action[1]})])
    elif kind == "move" and (c := _pick(customers, action[1])):
        srv.batch([make_op("update", "customer", c["id"], {"territory": action[2]}, base_version=c["version"])])
    elif kind == "child" and (c := _pick(customers, action[1])):
        fields = {"contact": {"name": "Kit"}, "ticket": {"subject": "Help", "status": "new", "priority": "low"},
                  "deal": {"title": "Deal", "stage": "lead"}}[action[2]]
        srv.batch([make_op("create", action[2], f"{c['id']}-{action[2]}-{next(_customer_ids)}", {"customer_id": c["id"], **fields})])
    elif kind == "delete" and (c := _pick(customers, action[1])):
        srv.batch([make_op("delete", "customer", c["id"], base_version=c["version"])])
    elif kind in ("grant", "revoke"):
        name, territory = reps[action[1]], action[2]
        has = territory in checker.scope_of(name)
        if kind == "grant" and not has:
            srv.grant(name, territory)
        elif kind == "revoke" and has:
            srv.revoke(name, territory)
    elif kind == "read":
        name = reps[action[1]]
        c = clients[name]
        for ent in ("customer", "contact", "ticket", "deal"):
            checker.check(name, ent, list_all(c, ENTITIES[ent].table))
        if target := _pick(customers, action[2]):
            response = c.get(f"/v1/customers/{target['id']}")
            if response.status_code == 200:
                checker.check(name, "customer", [response.json()])
            else:
                assert response.status_code == 404 and set(response.json()) == {"error"}
            response = c.get("/v1/contacts", params={"customer_id": target["id"]})
            checker.check(name, "contact", response.json()["items"])
    elif kind == "write" and (c := _pick(customers, action[2])):
        name = reps[action[1]]
        ops = [
            make_op("update", "customer", c["id"], {"phone": "+1 555 0100"}, base_version=c["version"]),
            make_op("create", "contact", f"w-{next(_customer_ids)}", {"customer_id": c["id"], "name": "Wen"}),
            make_op("update", "customer", c["id"], {"territory": action[3]}, base_version=c["version"]),
        ]
        response = clients[name].post("/v1/batch", json={"ops": ops})
        assert response.status_code == 200
        for op, result in zip(ops, response.json()["results"], strict=True):
            if result["record"] is not None:
                checker.check(name, op["entity"], [result["record"]])
            if result["status"] == "rejected":
                assert result["error"]["code"] in ("not_found", "scope", "validation"), result
    elif kind == "pull":
        name = reps[action[1]]
        replica = replicas[name]
        for _ in range(3):
            params = {"limit": action[2], **({"cursor": replica.cursor} if replica.cursor else {})}
            page = clients[name].get("/v1/changes", params=params).json()
            for seg in page["segments"]:
                if seg["op"] == "upsert":
                    checker.check(name, seg["entity"], [dict(zip(seg["columns"], row, strict=True)) for row in seg["rows"]])
            replica.apply(page)
            if not page["has_more"]:
                break
