"""Report figures from the replica: revenue by month, the pipeline as a funnel, ticket SLA
compliance and first-response time by week; each for a territory, an owner and a period.

Each figure is computed with a few aggregate queries (seconds on a million-record replica, so
callers run them off the UI thread) and kept in the hot cache under its filter, stamped with the
replica's revision: it is served until any of the data changes, then rebuilt.

Definitions (the reports screen's help says the same):

* Revenue: orders in the period by ``order_date``, cancelled and refunded ones left out, summed
  per month and currency (amounts in minor units; currencies are never added together: the
  replica holds no exchange rates). Per currency, its orders and total, and per month: the total
  over the months elapsed since its first sale in the period (the current month by its days so
  far); currencies rank by
  their number of orders, the one measure that compares across currencies. Territory and
  owner are the customer's.
* Funnel: deals created in the period. A deal has *reached* a stage if it is in that stage or a
  later one (won counts as past every open stage); a lost deal is only counted as having entered
  the funnel, since the replica does not keep the stage it was lost from. Conversion of a stage
  is reached(next) / reached(this). Territory is the customer's, owner the deal's.
* Tickets: tickets opened in the period, by the week (Monday) they were opened; the first week
  starts on the period's first day when that is not a Monday, and each week says how many of
  its days are in the period (the current one: up to today). The first
  response is the earliest activity on the ticket that is not internal and is an email (a reply)
  or a call, at or after the ticket was opened. A ticket met its SLA if that response came by its
  SLA due time; it breached it if the response came later, or never came and the due time has
  passed; otherwise it is still open within its SLA and not counted in compliance. Territory is
  the customer's, owner the ticket's assignee.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

from cache.hot import HotCache
from cache.revisions import Revisions
from cache.store import Store
from crm_tui.core.domain import DEAL_STAGES, format_datetime, format_major, stage_label

PERIODS = (3, 6, 12, 24)  # months a report can look back
FUNNEL_STAGES = tuple(s for s in DEAL_STAGES if s != "lost")  # lead ... negotiation, won
RESPONSE_KINDS = ("email", "call")
# The figures' shape, in their hot-cache keys: figures an older version kept on disk (without an
# SLA week's days, say) are not served to this one.
FIGURES_VERSION = 2


@dataclass(frozen=True)
class ReportFilter:
    """Which records a report covers: the customer's territory, an owner, the last ``months``
    calendar months up to and including ``today``'s."""

    today: str  # ISO date: the end of the period
    months: int = 12
    territory: str | None = None
    owner: str | None = None

    @property
    def months_covered(self) -> list[str]:
        """The period's months, oldest first, as YYYY-MM."""
        year, month = int(self.today[:4]), int(self.today[5:7])
        out = []
        for _ in range(self.months):
            out.append(f"{year:04d}-{month:02d}")
            month -= 1
            if month == 0:
                year, month = year - 1, 12
        return out[::-1]

    @property
    def start(self) -> str:
        """The period's first day (ISO date)."""
        return self.months_covered[0] + "-01"

    @property
    def key(self) -> str:
        return f"{self.today}:{self.months}:{self.territory or '*'}:{self.owner or '*'}"

    def months_elapsed(self, since: str | None = None) -> float:
        """How many months of the period have happened, from its start (or the month ``since``,
        YYYY-MM, if later) through today: whole months, and the current one by its days so far
        (2026-12-02: 11 and 2/31 for 12 months). What a "per month" figure divides by."""
        months = self.months_covered
        first = months.index(since) if since in months else 0
        day = dt.date.fromisoformat(self.today)
        days_in_month = (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(days=1)
        return (len(months) - 1 - first) + day.day / days_in_month.day

    def describe(self, territory_name: str | None = None, owner_name: str | None = None) -> str:
        """The filter in words, for the screen and the exported file: '12 months: Jan 2026 to
        2 Dec 2026' (the current month so far; short enough for 80 columns)."""
        territory = territory_name or self.territory or "all territories"
        owner = owner_name or self.owner or "all owners"
        start, today = dt.date.fromisoformat(self.start), dt.date.fromisoformat(self.today)
        return f"{territory} · {owner} · {self.months} months: {start:%b %Y} to {today.day} {today:%b %Y}"


@dataclass(frozen=True)
class FunnelStage:
    stage: str
    count: int  # deals in this stage now
    reached: int  # deals in this stage or past it
    conversion: float | None  # reached(next stage) / reached(this); None for the last


@dataclass(frozen=True)
class SlaWeek:
    week: str  # its first day in the period: the Monday, or the period's first day
    days: int  # its days in the period, up to today (7 but for the first and the current week)
    opened: int
    responded: int
    met: int
    breached: int
    median_hours: float | None  # first-response time of the responded tickets
    mean_hours: float | None

    @property
    def compliance(self) -> float | None:
        decided = self.met + self.breached
        return self.met / decided if decided else None


T = TypeVar("T")


class Reports:
    """The report figures of one replica connection (see the module docstring)."""

    def __init__(self, store: Store, revisions: Revisions, hot: HotCache):
        self._revisions = revisions
        self._hot = hot
        self.conn = store.conn

    def _cached(self, name: str, flt: ReportFilter, build: Callable[[], T]) -> T:
        return self._hot.get_or_build(f"report:v{FIGURES_VERSION}:{name}:{flt.key}", self._revisions.replica_stamp(),
                                      build)

    def cached(self, name: str, flt: ReportFilter) -> Any:
        """A figure if the hot cache holds it for the data as it is now, else None (no work)."""
        return self._hot.get_fresh(f"report:v{FIGURES_VERSION}:{name}:{flt.key}", self._revisions.replica_stamp())

    def figures(self, flt: ReportFilter, now: dt.datetime, *, cached_only: bool = False) -> dict[str, Any] | None:
        """{"revenue", "currencies", "funnel", "sla"} for ``flt``. With ``cached_only``, None unless the hot
        cache holds all three for the data as it is now (the UI thread asks this; a worker
        builds)."""
        if cached_only:
            out = {"revenue": self.cached("revenue", flt), "currencies": self.cached("currencies", flt),
                   "funnel": self.cached("funnel", flt),
                   "sla": self.cached(f"sla:{format_datetime(_minute(now))}", flt)}
            return out if all(v is not None for v in out.values()) else None
        return {"revenue": self.revenue_by_month(flt), "currencies": self.revenue_by_currency(flt),
                "funnel": self.funnel(flt), "sla": self.sla_by_week(flt, now)}

    @staticmethod
    def _scope(flt: ReportFilter, alias: str, *, dated: str, owner: str) -> tuple[str, str, list[Any]]:
        """(join, where, params) keeping the ``alias`` rows the filter covers: ``dated`` in the
        period, the customer in the territory, ``owner`` (a column, c.* for the customer's) the owner."""
        where = [f"{alias}.{dated} >= ?", f"{alias}.{dated} < ?"]
        params: list[Any] = [flt.start, _day_after(flt.today)]
        join = ""
        if flt.territory or (flt.owner and owner.startswith("c.")):
            join = f" JOIN customers c ON c.id = {alias}.customer_id"
        if flt.territory:
            where.append("c.territory = ?")
            params.append(flt.territory)
        if flt.owner:
            where.append(f"{owner} = ?")
            params.append(flt.owner)
        return join, " AND ".join(where), params

    # ------------------------------------------------------------------ revenue

    def revenue_by_month(self, flt: ReportFilter) -> list[tuple[str, str, int]]:
        """(month, currency, amount in minor units) for every month of the period and every
        currency sold in it; a month without sales in a currency has 0."""
        return self._cached("revenue", flt, lambda: self._revenue(flt))

    def _revenue(self, flt: ReportFilter) -> list[tuple[str, str, int]]:
        join, where, params = self._scope(flt, "o", dated="order_date", owner="c.owner_id")
        sums: dict[tuple[str, str], int] = {}
        for month, currency, total in self.conn.execute(
            f"SELECT substr(o.order_date, 1, 7), o.currency, sum(o.amount) FROM orders o{join} "
            f"WHERE {where} AND o.status NOT IN ('cancelled', 'refunded') GROUP BY 1, 2", params,
        ):
            sums[(month, currency or "")] = int(total or 0)
        currencies = sorted({c for _, c in sums})
        return [(m, c, sums.get((m, c), 0)) for m in flt.months_covered for c in currencies]

    def revenue_by_currency(self, flt: ReportFilter) -> list[dict[str, Any]]:
        """Per currency sold in the period: {"currency", "orders", "amount" (minor units)}, the
        currency with the most orders first (then the larger amount, then by name)."""
        return self._cached("currencies", flt, lambda: self._currencies(flt))

    def _currencies(self, flt: ReportFilter) -> list[dict[str, Any]]:
        join, where, params = self._scope(flt, "o", dated="order_date", owner="c.owner_id")
        rows = [{"currency": currency or "", "orders": int(n), "amount": int(total or 0)}
                for currency, n, total in self.conn.execute(
                    f"SELECT o.currency, count(*), sum(o.amount) FROM orders o{join} "
                    f"WHERE {where} AND o.status NOT IN ('cancelled', 'refunded') GROUP BY 1", params)]
        return sorted(rows, key=lambda r: (-r["orders"], -r["amount"], r["currency"]))

    # ------------------------------------------------------------------ funnel

    def funnel(self, flt: ReportFilter) -> dict[str, Any]:
        """{"stages": [FunnelStage as dict...], "lost": n, "total": n} for deals created in the period."""
        return self._cached("funnel", flt, lambda: self._funnel(flt))

    def _funnel(self, flt: ReportFilter) -> dict[str, Any]:
        join, where, params = self._scope(flt, "d", dated="created_at", owner="d.owner_id")
        counts = dict(self.conn.execute(
            f"SELECT d.stage, count(*) FROM deals d{join} WHERE {where} GROUP BY d.stage", params))
        lost = int(counts.get("lost", 0))
        reached = []
        for i, _stage in enumerate(FUNNEL_STAGES):
            reached.append(sum(int(counts.get(s, 0)) for s in FUNNEL_STAGES[i:]) + (lost if i == 0 else 0))
        stages = []
        for i, stage in enumerate(FUNNEL_STAGES):
            nxt = reached[i + 1] if i + 1 < len(reached) else None
            conversion = (nxt / reached[i] if reached[i] else None) if nxt is not None else None
            stages.append(asdict(FunnelStage(stage, int(counts.get(stage, 0)), reached[i], conversion)))
        return {"stages": stages, "lost": lost, "total": reached[0]}

    # ------------------------------------------------------------------ tickets

    def sla_by_week(self, flt: ReportFilter, now: dt.datetime) -> list[dict[str, Any]]:
        """One row (SlaWeek as a dict, compliance included) per week with tickets opened in the
        period, oldest first; a week that began before the period starts at the period's first
        day, and ``days`` says how many of its days are in the period. ``now`` decides whether an unanswered ticket has breached yet."""
        now = _minute(now)  # a minute's precision keeps the cache useful
        return self._cached(f"sla:{format_datetime(now)}", flt, lambda: self._sla(flt, now))

    def _sla(self, flt: ReportFilter, now: dt.datetime) -> list[dict[str, Any]]:
        join, where, params = self._scope(flt, "t", dated="created_at", owner="t.assignee_id")
        kinds = ", ".join(f"'{k}'" for k in RESPONSE_KINDS)
        rows = self.conn.execute(
            "SELECT date(t.created_at, '-6 days', 'weekday 1'), t.created_at, t.sla_due,"
            " (SELECT min(a.occurred_at) FROM activities a WHERE a.ticket_id = t.id"
            f"  AND coalesce(a.internal, 0) = 0 AND a.kind IN ({kinds}) AND a.occurred_at >= t.created_at)"
            f" FROM tickets t{join} WHERE {where}", params)
        now_text = format_datetime(now)
        weeks: dict[str, dict[str, Any]] = {}
        for week, created, due, first in rows:
            w = weeks.setdefault(week, {"opened": 0, "met": 0, "breached": 0, "hours": []})
            w["opened"] += 1
            if first is not None:
                w["hours"].append((_ts(first) - _ts(created)).total_seconds() / 3600)
                if due is None or first <= due:
                    w["met"] += 1
                else:
                    w["breached"] += 1
            elif due is not None and due < now_text:
                w["breached"] += 1
        out = []
        start, today = dt.date.fromisoformat(flt.start), dt.date.fromisoformat(flt.today)
        for week in sorted(weeks):
            w = weeks[week]
            hours = w["hours"]
            monday = dt.date.fromisoformat(week)
            first, last = max(monday, start), min(monday + dt.timedelta(days=6), today)
            row = SlaWeek(first.isoformat(), (last - first).days + 1, w["opened"], len(hours), w["met"], w["breached"],
                          statistics.median(hours) if hours else None, statistics.fmean(hours) if hours else None)
            out.append({**asdict(row), "compliance": row.compliance})
        return out


def csv_rows(report: str, figures: Any) -> Iterator[list[Any]]:
    """A report's figures as CSV rows, header first (amounts in major units, as text, with the
    currency's decimals: none for JPY, KRW ...)."""
    if report == "revenue":
        yield ["month", "currency", "revenue"]
        for month, currency, amount in figures:
            yield [month, currency, format_major(amount, currency)]
    elif report == "funnel":
        # The stage's id (to join on) and its name as the screen shows it.
        yield ["stage", "stage name", "deals now", "reached", "conversion to next"]
        for s in figures["stages"]:
            conv = "" if s["conversion"] is None else f"{s['conversion']:.4f}"
            yield [s["stage"], stage_label(s["stage"]), s["count"], s["reached"], conv]
        yield ["lost", stage_label("lost"), figures["lost"], "", ""]
    elif report == "sla":
        yield ["week", "days", "opened", "responded", "met sla", "breached sla", "compliance",
               "median first response h", "mean first response h"]
        for w in figures:
            yield [w["week"], w["days"], w["opened"], w["responded"], w["met"], w["breached"],
                   "" if w["compliance"] is None else f"{w['compliance']:.4f}",
                   "" if w["median_hours"] is None else f"{w['median_hours']:.2f}",
                   "" if w["mean_hours"] is None else f"{w['mean_hours']:.2f}"]
    else:
        raise ValueError(f"no report {report!r}")


def _minute(now: dt.datetime) -> dt.datetime:
    return now.replace(second=0, microsecond=0)


def _day_after(day: str) -> str:
    return (dt.date.fromisoformat(day) + dt.timedelta(days=1)).isoformat()


def _ts(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
