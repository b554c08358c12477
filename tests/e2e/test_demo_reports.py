"""The reports over demo data as it reaches a replica: seeded server, a real sync, the figures
computed from the replica, checked against sums made here from the server's own records."""

from __future__ import annotations

import statistics
from collections import defaultdict

from server.helpers import list_all

from cache.reports import ReportFilter
from support.client import ClientReplica
from support.server import FIXED_NOW


def test_seeded_tickets_are_mostly_answered_within_their_sla_on_the_reports(seeded_server, tmp_path):
    """A new user saw 'SLA met' at 0-2 % and first replies of days on the demo's reports."""
    client = ClientReplica(tmp_path / "c", seeded_server, "alex")
    assert client.sync().ok
    with client.replica() as r:
        weeks = r.reports.sla_by_week(ReportFilter(FIXED_NOW.date().isoformat(), 12), FIXED_NOW)
    met, decided = sum(w["met"] for w in weeks), sum(w["met"] + w["breached"] for w in weeks)
    assert decided >= 50 and 0.7 <= met / decided <= 0.95, (met, decided)
    medians = [w["median_hours"] for w in weeks if w["median_hours"] is not None]
    assert statistics.median(medians) < 24, medians  # a typical week's first reply: hours, not days


def test_every_seeded_currency_is_in_the_revenue_table_with_the_servers_totals(seeded_server, tmp_path):
    client = ClientReplica(tmp_path / "c", seeded_server, "alex")
    assert client.sync().ok
    flt = ReportFilter(FIXED_NOW.date().isoformat(), 12)
    with seeded_server.client("ada") as c:
        orders = list_all(c, "orders")
    expected: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for o in orders:
        if o["status"] not in ("cancelled", "refunded") and o["order_date"][:7] in flt.months_covered:
            expected[o["currency"]][0] += 1
            expected[o["currency"]][1] += o["amount"]
    with client.replica() as r:
        rows = r.reports.revenue_by_currency(flt)
    assert len(rows) > 10  # the demo sells in many currencies: one chart each would be unreadable
    assert {x["currency"]: [x["orders"], x["amount"]] for x in rows} == dict(expected)
    assert [x["orders"] for x in rows] == sorted((x["orders"] for x in rows), reverse=True)
