"""Report figures against sums computed here, independently, from the seeded records
(tests/support/ui_data.py), with plain Python over the seed rather than SQL."""

from __future__ import annotations

import datetime as dt
import statistics
from collections import Counter, defaultdict

import pytest

from cache.reports import ReportFilter
from support import ui_data

TODAY = ui_data.NOW.date().isoformat()


def _months(n: int) -> list[str]:
    year, month, out = ui_data.NOW.year, ui_data.NOW.month, []
    for _ in range(n):
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return out[::-1]


def _customers() -> dict[str, dict]:
    return {c["id"]: c for c in ui_data.customers()}


@pytest.mark.parametrize("territory", [None, "te_north"])
def test_revenue_by_month_is_every_month_of_the_period_in_every_currency(replica, territory):
    months = _months(12)
    customers = _customers()
    expected: dict[tuple[str, str], int] = defaultdict(int)
    for o in ui_data.orders():
        if o["status"] in ("cancelled", "refunded") or o["order_date"][:7] not in months:
            continue
        if territory and customers[o["customer_id"]]["territory"] != territory:
            continue
        expected[(o["order_date"][:7], o["currency"])] += o["amount"]
    rows = replica.reports.revenue_by_month(ReportFilter(TODAY, 12, territory=territory))
    assert [m for m in dict.fromkeys(r[0] for r in rows)] == months  # 12 months, not 2
    assert {r[1] for r in rows} == {"EUR", "USD"}  # no currency dropped
    assert {(m, c): a for m, c, a in rows if a} == dict(expected)
    assert sum(a for _, _, a in rows) == sum(expected.values())


@pytest.mark.parametrize("territory", [None, "te_north"])
def test_revenue_by_currency_is_orders_and_totals_most_orders_first(replica, territory):
    months = _months(12)
    customers = _customers()
    orders: Counter[str] = Counter()
    totals: dict[str, int] = defaultdict(int)
    for o in ui_data.orders():
        if o["status"] in ("cancelled", "refunded") or o["order_date"][:7] not in months:
            continue
        if territory and customers[o["customer_id"]]["territory"] != territory:
            continue
        orders[o["currency"]] += 1
        totals[o["currency"]] += o["amount"]
    rows = replica.reports.revenue_by_currency(ReportFilter(TODAY, 12, territory=territory))
    assert [r["currency"] for r in rows] == [c for c, _ in orders.most_common()] == ["EUR", "USD"]
    assert {r["currency"]: (r["orders"], r["amount"]) for r in rows} == {
        c: (orders[c], totals[c]) for c in orders}


def test_revenue_for_an_owner_counts_only_their_customers(replica):
    customers = _customers()
    expected = sum(o["amount"] for o in ui_data.orders()
                   if o["status"] not in ("cancelled", "refunded") and o["order_date"][:7] in _months(3)
                   and customers[o["customer_id"]]["owner_id"] == "us_kat")
    rows = replica.reports.revenue_by_month(ReportFilter(TODAY, 3, owner="us_kat"))
    assert len({r[0] for r in rows}) == 3
    assert sum(a for _, _, a in rows) == expected > 0


def _deals(replica) -> list[dict]:
    # The seed, with the local edit the seeded replica carries (a rejected move of de_005).
    return [{**d, "stage": replica.get("deal", d["id"])["stage"]} for d in ui_data.deals()]


def test_funnel_counts_and_conversion(replica):
    deals = [d for d in _deals(replica) if d["created_at"][:7] in _months(12)]
    stages = Counter(d["stage"] for d in deals)
    order = ["lead", "qualified", "proposal", "negotiation", "won"]
    reached = [sum(stages[s] for s in order[i:]) + (stages["lost"] if i == 0 else 0) for i in range(len(order))]
    funnel = replica.reports.funnel(ReportFilter(TODAY, 12))
    assert [s["stage"] for s in funnel["stages"]] == order
    assert [s["count"] for s in funnel["stages"]] == [stages[s] for s in order]
    assert [s["reached"] for s in funnel["stages"]] == reached
    assert funnel["lost"] == stages["lost"] and funnel["total"] == len(deals)
    assert funnel["stages"][0]["conversion"] == pytest.approx(reached[1] / reached[0])
    assert funnel["stages"][-1]["conversion"] is None


def test_funnel_for_an_owner(replica):
    mine = [d for d in _deals(replica) if d["owner_id"] == "us_kat"]
    funnel = replica.reports.funnel(ReportFilter(TODAY, 12, owner="us_kat"))
    assert funnel["total"] == len(mine) and funnel["lost"] == sum(d["stage"] == "lost" for d in mine)


def _ts(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_sla_compliance_and_first_response_by_week(replica):
    responses: dict[str, list[str]] = defaultdict(list)
    tickets = {t["id"]: t for t in ui_data.tickets()}
    for a in ui_data.activities():
        t = tickets.get(a.get("ticket_id") or "")
        if t and not a["internal"] and a["kind"] in ("email", "call") and a["occurred_at"] >= t["created_at"]:
            responses[t["id"]].append(a["occurred_at"])
    expected: dict[str, dict] = {}
    for t in tickets.values():
        created = _ts(t["created_at"])
        week = (created.date() - dt.timedelta(days=created.weekday())).isoformat()
        w = expected.setdefault(week, {"opened": 0, "met": 0, "breached": 0, "hours": []})
        w["opened"] += 1
        first = min(responses[t["id"]]) if responses[t["id"]] else None
        if first:
            w["hours"].append((_ts(first) - created).total_seconds() / 3600)
            w["met" if _ts(first) <= _ts(t["sla_due"]) else "breached"] += 1
        elif _ts(t["sla_due"]) < ui_data.NOW:
            w["breached"] += 1
    rows = replica.reports.sla_by_week(ReportFilter(TODAY, 12), ui_data.NOW)
    assert [r["week"] for r in rows] == sorted(expected)
    for r in rows:
        e = expected[r["week"]]
        assert (r["opened"], r["met"], r["breached"], r["responded"]) == (
            e["opened"], e["met"], e["breached"], len(e["hours"]))
        assert r["median_hours"] == pytest.approx(statistics.median(e["hours"]))
        decided = e["met"] + e["breached"]
        assert r["compliance"] == pytest.approx(e["met"] / decided if decided else None)
    assert sum(r["opened"] for r in rows) == len(tickets)


def test_figures_come_from_the_hot_cache_until_the_data_changes(replica):
    flt = ReportFilter(TODAY, 12)
    first = replica.reports.revenue_by_month(flt)
    hits = replica.hot.hits
    assert replica.reports.revenue_by_month(flt) == first and replica.hot.hits == hits + 1
    assert replica.reports.cached("revenue", flt) == first
    replica.writes.update("customer", "cu_003", {"city": "Turin"})  # any change to the replica
    assert replica.reports.cached("revenue", flt) is None
    assert replica.reports.revenue_by_month(flt) == first  # rebuilt, and the same figures
