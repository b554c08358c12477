"""The seeded data tells one consistent story, as the demo shows it.

A new user of `crm-tui demo` saw almost every order delivered (hardly a pending or paid one to
act on), deals closed before they were created and follow-ups made before their ticket existed.
These check, on a seeded database, what a person would trip over: time only runs forward
(created <= updated <= now, events in order), a record's state agrees with its dates, and every
state appears often enough to be met.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter

import pytest

from crm_server.seed import seed_database
from crm_server.store import open_store
from crm_tui.core.agenda import bucket
from crm_tui.core.domain import ENTITIES, ORDER_STATUSES, parse_datetime

# A working morning, and just after midnight (a demo started late: "today" has barely begun).
CLOCKS = [dt.datetime(2026, 11, 25, 9, 0, tzinfo=dt.UTC), dt.datetime(2026, 11, 25, 0, 40, tzinfo=dt.UTC)]
NOW = CLOCKS[0]
TODAY = NOW.date().isoformat()


@pytest.fixture(scope="module", params=CLOCKS, ids=["09:00", "00:40"])
def records(request, tmp_path_factory) -> dict[str, list[dict]]:
    global NOW, TODAY
    NOW, TODAY = request.param, request.param.date().isoformat()
    path = tmp_path_factory.mktemp("coherent") / "s.db"
    store = open_store(path)
    try:
        seed_database(store, customers=1500, seed=7, now=NOW)
        with store.read() as tx:
            return {e.name: tx.list_records(e, after=None, limit=10**6, filters={}, territories=None)
                    for e in ENTITIES.values()}
    finally:
        store.close()


def at(value: str) -> dt.datetime:
    return parse_datetime(value)


def by_id(rows: list[dict]) -> dict[str, dict]:
    return {r["id"]: r for r in rows}


def test_time_runs_forward_for_every_record(records):
    for name, rows in records.items():
        for r in rows:
            if "created_at" in r:
                assert at(r["created_at"]) <= at(r["updated_at"]) <= NOW, (name, r)


def test_every_order_status_is_common_enough_to_meet(records):
    orders = records["order"]
    statuses = Counter(o["status"] for o in orders)
    assert set(statuses) == set(ORDER_STATUSES)
    # Orders still in progress are the ones people act on: a customer's newest orders.
    in_progress = sum(statuses[s] for s in ("pending", "paid", "shipped"))
    assert in_progress >= 0.08 * len(orders), statuses
    for status in ("pending", "paid", "shipped", "cancelled", "refunded"):
        assert statuses[status] >= 0.015 * len(orders), statuses


def test_orders_agree_with_their_dates_and_history(records):
    customers = by_id(records["customer"])
    orders = by_id(records["order"])
    events: dict[str, list[dict]] = {}
    for e in records["order_event"]:
        events.setdefault(e["order_id"], []).append(e)
    for o in orders.values():
        assert o["order_date"] == o["created_at"][:10] <= TODAY
        assert o["created_at"] >= customers[o["customer_id"]]["created_at"]
        if o["status"] in ("pending", "paid"):
            assert (NOW - at(o["created_at"])).days < 14, o
    for oid, history in events.items():
        order = orders[oid]
        history.sort(key=lambda e: (e["occurred_at"], e["id"]))
        assert all(order["created_at"] <= e["occurred_at"] <= order["updated_at"] for e in history), (order, history)
        assert [e["status"] for e in history if e["kind"] == "status"][-1] == order["status"]


def test_tickets_deals_and_activities_agree_with_their_dates(records):
    customers = by_id(records["customer"])
    tickets = by_id(records["ticket"])
    placed = {o["number"]: o["created_at"] for o in records["order"]}
    mentions = 0
    for t in tickets.values():
        assert at(t["sla_due"]) > at(t["created_at"])
        assert t["created_at"] >= customers[t["customer_id"]]["created_at"]
        for number in re.findall(r"SO-\d{8}", t["description"] or ""):
            mentions += 1
            assert placed[number] <= t["created_at"], (number, t)  # no ticket about an order not yet placed
    assert mentions > 0.1 * len(tickets)
    for d in records["deal"]:
        assert d["created_at"] >= customers[d["customer_id"]]["created_at"]
        if d["stage"] in ("won", "lost"):
            assert d["created_at"][:10] <= d["close_date"] <= TODAY, d
            assert d["updated_at"][:10] >= d["close_date"], d
        else:
            assert d["close_date"] > TODAY, d
        assert (d["lost_reason"] is not None) == (d["stage"] == "lost")
    deals = by_id(records["deal"])
    for a in records["activity"]:
        assert customers[a["customer_id"]]["created_at"] <= a["occurred_at"] <= a["created_at"]
        if a["ticket_id"]:
            assert a["occurred_at"] >= tickets[a["ticket_id"]]["created_at"]
        if a["deal_id"]:
            assert a["occurred_at"] >= deals[a["deal_id"]]["created_at"]


def test_tasks_fall_around_today_and_after_what_they_are_about(records):
    tickets = by_id(records["ticket"])
    deals = by_id(records["deal"])
    buckets = Counter(bucket(t["due_at"], NOW) for t in records["task"] if t["status"] == "open")
    assert buckets["overdue"] and buckets["today"] and buckets["upcoming"], buckets
    for t in records["task"]:
        if t["ticket_id"]:
            assert t["created_at"] >= tickets[t["ticket_id"]]["created_at"], t
        if t["deal_id"]:
            assert t["created_at"] >= deals[t["deal_id"]]["created_at"], t
        if t["status"] == "done":
            assert t["created_at"] <= t["done_at"] <= t["updated_at"]
        else:
            assert t["done_at"] is None


def _first_replies(records) -> dict[str, str]:
    """When each ticket was first answered: its earliest email or call that is not internal, at or
    after it was opened (the reports screen's definition, computed here over the seeded rows)."""
    tickets = by_id(records["ticket"])
    first: dict[str, str] = {}
    for a in records["activity"]:
        t = tickets.get(a["ticket_id"] or "")
        if t and not a["internal"] and a["kind"] in ("email", "call") and at(a["occurred_at"]) >= at(t["created_at"]):
            first[t["id"]] = min(first.get(t["id"], a["occurred_at"]), a["occurred_at"], key=at)
    return first


def test_tickets_are_answered_mostly_within_their_sla(records):
    """A new user saw 'SLA met' at 0-2 % on the demo: solved tickets were never answered, and the
    few replies came days later. A healthy queue: every worked ticket was answered, most of them
    within their SLA, in hours, not days."""
    first = _first_replies(records)
    met = breached = 0
    hours = []
    for t in records["ticket"]:
        reply = first.get(t["id"])
        if t["status"] in ("solved", "closed", "pending"):
            assert reply is not None, t  # nobody solves or waits on a customer without answering
        if reply is not None:
            assert at(reply) <= NOW
            hours.append((at(reply) - at(t["created_at"])).total_seconds() / 3600)
            met += at(reply) <= at(t["sla_due"])
            breached += at(reply) > at(t["sla_due"])
        elif at(t["sla_due"]) < NOW:
            breached += 1
    assert 0.7 <= met / (met + breached) <= 0.95, (met, breached)
    hours.sort()
    assert 1 <= hours[len(hours) // 2] <= 24, hours[len(hours) // 2]  # the median first reply: hours
    # And so by week: no week of the last three months with a handful of tickets is mostly breached.
    weeks: dict[str, list[bool]] = {}
    for t in records["ticket"]:
        created, reply = at(t["created_at"]), first.get(t["id"])
        if (NOW - created).days > 91 or (reply is None and at(t["sla_due"]) >= NOW):
            continue
        week = (created.date() - dt.timedelta(days=created.weekday())).isoformat()
        weeks.setdefault(week, []).append(reply is not None and at(reply) <= at(t["sla_due"]))
    shares = {w: sum(v) / len(v) for w, v in weeks.items() if len(v) >= 5}
    assert len(shares) >= 10 and min(shares.values()) >= 0.4, shares
