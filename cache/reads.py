"""Reads for the screens: every query a screen makes, answered from the replica alone.

Lists are keyset-paginated (a page is ``limit`` rows after a key), never loaded whole. The
customer 360 view and the report figures are assembled once and served from the hot cache
until the data they were built from changes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from cache.history import SyncHistory
from cache.hot import HotCache
from cache.quarantine import Quarantine
from cache.records import Records, decode_row
from cache.revisions import Revisions
from cache.schema import ACTIVE_TICKETS_SQL
from cache.sqlite import sqlite3
from cache.store import Store
from cache.tasks import TaskReads
from cache.windows import execute_hinted
from crm_tui.core.domain import (
    ACTIVE_TICKET_STATUSES,
    DEAL_STAGES,
    ENTITIES,
    TICKET_STATUSES,
    Entity,
    format_datetime,
)

OPEN_DEAL_STAGES = ("lead", "qualified", "proposal", "negotiation")
_ACTIVE_SQL = ACTIVE_TICKETS_SQL


@dataclass
class StageSummary:
    stage: str
    count: int = 0
    totals: dict[str, int] = field(default_factory=dict)  # currency -> minor units


@dataclass(eq=False)
class Reads:
    """Handed what the screens' reads look in besides the tables: the hot cache and the stamps
    it compares, tasks (open counts), the sync history and the quarantine."""

    _store: Store
    _records: Records
    _revisions: Revisions
    _hot: HotCache
    _tasks: TaskReads
    _history: SyncHistory
    _quarantine: Quarantine
    conn: sqlite3.Connection = field(init=False)

    def __post_init__(self) -> None:
        self.conn = self._store.conn

    # ------------------------------------------------------------------ helpers

    def _rows(self, ent: Entity, sql: str, params: tuple[Any, ...] | list[Any] = (), hint: str = "") -> list[dict[str, Any]]:
        cur = execute_hinted(self.conn, sql, params, hint)
        names = [d[0] for d in cur.description]
        return [decode_row(ent, r, names) for r in cur.fetchall()]

    def _keyset(self, ent: Entity, where: str, params: list[Any], key: tuple[str, ...],
                after: tuple[Any, ...] | None, limit: int, *, desc: bool = False) -> list[dict[str, Any]]:
        """One page of ``ent`` rows matching ``where``, ordered by the ``key`` expressions, after
        (or, descending, before) the key of the previous page's last row."""
        direction = " DESC" if desc else ""
        sql = f"SELECT * FROM {ent.table} WHERE {where}"
        if after is not None:
            sql += f" AND ({', '.join(key)}) {'<' if desc else '>'} ({', '.join('?' * len(key))})"
            params = [*params, *after]
        sql += f" ORDER BY {', '.join(k + direction for k in key)} LIMIT ?"
        return self._rows(ent, sql, [*params, limit])

    # ------------------------------------------------------------------ directory

    def users(self) -> dict[str, dict[str, Any]]:
        ent = ENTITIES["user"]
        return {u["id"]: u for u in self._rows(ent, "SELECT * FROM users ORDER BY name")}

    def territories(self) -> dict[str, dict[str, Any]]:
        ent = ENTITIES["territory"]
        return {t["id"]: t for t in self._rows(ent, "SELECT * FROM territories ORDER BY name")}

    def user_name(self, user_id: str | None) -> str:
        if not user_id:
            return ""
        row = self.conn.execute("SELECT name FROM users WHERE id = ?", (user_id,)).fetchone()
        return row[0] if row else user_id

    def customers_like(self, *, name: str | None, email: str | None, limit: int = 3) -> list[dict[str, Any]]:
        """Customers with this name or this email (case ignored): the likely duplicates of a new
        one. Each is {id, name, email, city}; both lookups are indexed."""
        out: dict[str, dict[str, Any]] = {}
        for column, value in (("email", email), ("name", name)):
            if not value:
                continue
            for rid, rname, remail, city in self.conn.execute(
                f"SELECT id, name, email, city FROM customers WHERE {column} = ? COLLATE NOCASE LIMIT ?",
                (value.strip(), limit),
            ):
                out.setdefault(rid, {"id": rid, "name": rname, "email": remail, "city": city})
        return list(out.values())[:limit]

    def has_customers(self) -> bool:
        """Whether any customer is in the replica (cheap, unlike counting a million)."""
        return bool(self.conn.execute("SELECT EXISTS(SELECT 1 FROM customers)").fetchone()[0])

    def me(self) -> dict[str, Any] | None:
        """The signed-in user as the last sync stored them (id, name, role, team, territories),
        or None before the first sync; the one reader of ``replica_meta['me']``."""
        me = self._store.get_meta("me")
        return me if isinstance(me, dict) else None

    # ------------------------------------------------------------------ customer 360

    def customer_currency(self, customer_id: str) -> str | None:
        """The currency a customer trades in (its lifetime value is in it): that of most of its
        orders, else of most of its deals; None when it has neither."""
        for table in ("orders", "deals"):
            row = self.conn.execute(
                f"SELECT currency FROM {table} WHERE customer_id = ? AND currency IS NOT NULL "
                "GROUP BY currency ORDER BY count(*) DESC, currency LIMIT 1", (customer_id,)).fetchone()
            if row:
                return str(row[0])
        return None

    def customer_360(self, customer_id: str) -> dict[str, Any] | None:
        """The customer with counts, totals and the most recent of everything attached to it.

        Served from the hot cache while nothing it was built from has changed."""
        stamp = self._revisions.customer_stamp(customer_id)
        return self._hot.get_or_build(f"c360:{customer_id}", stamp, lambda: self._build_360(customer_id))

    def _build_360(self, customer_id: str) -> dict[str, Any] | None:
        customer = self._records.get("customer", customer_id)
        if customer is None:
            return None
        c = self.conn
        counts = {
            "contacts": c.execute("SELECT count(*) FROM contacts WHERE customer_id = ?", (customer_id,)).fetchone()[0],
            "orders": c.execute("SELECT count(*) FROM orders WHERE customer_id = ?", (customer_id,)).fetchone()[0],
            "tickets": c.execute("SELECT count(*) FROM tickets WHERE customer_id = ?", (customer_id,)).fetchone()[0],
            "open_tickets": c.execute(
                f"SELECT count(*) FROM tickets WHERE customer_id = ? AND {_ACTIVE_SQL}", (customer_id,)).fetchone()[0],
            "deals": c.execute("SELECT count(*) FROM deals WHERE customer_id = ?", (customer_id,)).fetchone()[0],
            "open_deals": c.execute(
                "SELECT count(*) FROM deals WHERE customer_id = ? AND stage NOT IN ('won', 'lost')",
                (customer_id,)).fetchone()[0],
            "activities": c.execute(
                "SELECT count(*) FROM activities WHERE customer_id = ?", (customer_id,)).fetchone()[0],
            "open_tasks": self._tasks.open_count(customer_id),
        }
        order_totals: dict[str, int] = {}
        for currency, total in c.execute(
            "SELECT currency, sum(amount) FROM orders WHERE customer_id = ? AND status NOT IN ('cancelled', 'refunded') "
            "GROUP BY currency ORDER BY count(*) DESC, sum(amount) DESC, currency", (customer_id,)
        ):
            order_totals[currency or ""] = total or 0
        territory = c.execute("SELECT name FROM territories WHERE id = ?", (customer.get("territory"),)).fetchone()
        return {
            "customer": customer,
            "owner_name": self.user_name(customer.get("owner_id")),
            "territory_name": territory[0] if territory else customer.get("territory"),
            "counts": counts,
            "order_totals": order_totals,
            "contacts": self.contacts(customer_id, limit=50),
            "recent_orders": self.orders(customer_id, limit=10),
            "recent_tickets": self.tickets_for_customer(customer_id, limit=10),
            "deals": self.deals_for_customer(customer_id, limit=20),
            "recent_activities": self.activities(customer_id=customer_id, limit=10),
        }

    # ------------------------------------------------------------------ per customer lists

    def contacts(self, customer_id: str, *, after: tuple[int, str, str] | None = None,
                 limit: int = 100) -> list[dict[str, Any]]:
        """Contacts, primary first, then by name; ``after`` is ``contact_key`` of the previous
        page's last row (an exact keyset: no row skipped or repeated at page edges)."""
        return self._keyset(ENTITIES["contact"], "customer_id = ?", [customer_id],
                            ("-coalesce(is_primary, 0)", "lower(name)", "id"), after, limit)

    @staticmethod
    def contact_key(row: dict[str, Any]) -> tuple[int, str, str]:
        return (-int(bool(row.get("is_primary"))), (row.get("name") or "").lower(), row["id"])

    def orders(self, customer_id: str, *, before: tuple[str, str] | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """Orders newest first; ``before`` is the (order_date, id) of the last row of the previous page."""
        return self._keyset(ENTITIES["order"], "customer_id = ?", [customer_id], ("order_date", "id"), before,
                            limit, desc=True)

    def tickets_for_customer(self, customer_id: str, *, limit: int = 50,
                             offset_key: tuple[str, str] | None = None) -> list[dict[str, Any]]:
        """A customer's tickets, newest first; ``offset_key`` is the (created_at, id) of the last row."""
        return self._keyset(ENTITIES["ticket"], "customer_id = ?", [customer_id], ("created_at", "id"), offset_key,
                            limit, desc=True)

    def deals_for_customer(self, customer_id: str, *, after: tuple[int, str, str] | None = None,
                           limit: int = 50) -> list[dict[str, Any]]:
        """Open deals first, then won and lost, each by close date; ``after`` is ``deal_key`` of
        the previous page's last row."""
        return self._keyset(ENTITIES["deal"], "customer_id = ?", [customer_id],
                            ("stage IN ('won', 'lost')", "coalesce(close_date, '')", "id"), after, limit)

    @staticmethod
    def deal_key(row: dict[str, Any]) -> tuple[int, str, str]:
        return (int(row.get("stage") in ("won", "lost")), row.get("close_date") or "", row["id"])

    def activities(
        self,
        *,
        customer_id: str | None = None,
        ticket_id: str | None = None,
        deal_id: str | None = None,
        before: tuple[str, str] | None = None,
        limit: int = 50,
    ) -> list[dict[str, Any]]:
        """The activity timeline, newest first, for a customer, a ticket or a deal."""
        ent = ENTITIES["activity"]
        if ticket_id is not None:
            where, key = "ticket_id = ?", ticket_id
        elif deal_id is not None:
            where, key = "deal_id = ?", deal_id
        else:
            where, key = "customer_id = ?", customer_id or ""
        return self._keyset(ent, where, [key], ("occurred_at", "id"), before, limit, desc=True)

    # ------------------------------------------------------------------ an order

    def order_history(self, order_id: str, *, limit: int = 200) -> list[dict[str, Any]]:
        """An order's events (status changes, cancellation and refund requests), oldest first."""
        return self._keyset(ENTITIES["order_event"], "order_id = ?", [order_id], ("occurred_at", "id"), None, limit)

    def tickets_mentioning(self, customer_id: str, number: str, *, limit: int = 50) -> list[dict[str, Any]]:
        """The customer's tickets whose subject or description mention an order number, newest
        first: through the tickets' word index (as people write it: SO-00010042, SO-10042,
        so10042, "order 10042"), never by scanning ticket text. Empty while the tickets' word
        index is still being built in a first sync."""
        digits = "".join(ch for ch in number if ch.isdigit())
        if not digits:
            return []
        short = digits.lstrip("0") or "0"
        forms = {f'"{digits}"', f'"so{digits}"', f'"so {short}"', f'"so{short}"', f'"order {short}"'}
        sql = ("SELECT * FROM tickets WHERE rowid IN (SELECT rowid FROM tickets_fts WHERE tickets_fts MATCH ?)"
               " AND customer_id = ? ORDER BY created_at DESC, id DESC LIMIT ?")
        return self._rows(ENTITIES["ticket"], sql, [" OR ".join(sorted(forms)), customer_id, limit])

    # ------------------------------------------------------------------ ticket queue

    def ticket_queue(
        self,
        view: str = "all",
        *,
        user_id: str | None = None,
        team: str | None = None,
        statuses: tuple[str, ...] = ACTIVE_TICKET_STATUSES,
        priorities: tuple[str, ...] = (),
        after: tuple[str | None, str] | None = None,
        limit: int = 50,
    ) -> list[dict[str, Any]]:
        """Tickets by SLA due (soonest first), for 'mine', 'team', 'unassigned' or 'all'.

        ``after`` is the (sla_due, id) of the last row of the previous page."""
        ent = ENTITIES["ticket"]
        where, params = self._queue_filter(view, user_id, team, statuses, priorities)
        if after is not None:
            due, last_id = after
            if due is None:
                where.append("((sla_due IS NULL AND id > ?) OR sla_due IS NOT NULL)")
                params.append(last_id)
            else:
                where.append("(sla_due > ? OR (sla_due = ? AND id > ?))")
                params.extend([due, due, last_id])
        hint = ""
        if set(statuses) == set(ACTIVE_TICKET_STATUSES):
            # The planner would rather sort a status range than walk the partial index in order.
            hint = {"mine": "INDEXED BY ix_tickets_active_assignee", "unassigned": "INDEXED BY ix_tickets_active_assignee",
                    "team": "INDEXED BY ix_tickets_active_team"}.get(view, "INDEXED BY ix_tickets_active_sla")
        sql = f"SELECT * FROM tickets {hint} WHERE {' AND '.join(where) or '1'} ORDER BY sla_due, id LIMIT ?"
        return self._rows(ent, sql, [*params, limit], hint)

    def ticket_queue_count(self, view: str = "all", *, user_id: str | None = None, team: str | None = None,
                           statuses: tuple[str, ...] = ACTIVE_TICKET_STATUSES, priorities: tuple[str, ...] = (),
                           cap: int = 100_000) -> int:
        where, params = self._queue_filter(view, user_id, team, statuses, priorities)
        sql = f"SELECT count(*) FROM (SELECT 1 FROM tickets WHERE {' AND '.join(where) or '1'} LIMIT ?)"
        return int(self.conn.execute(sql, [*params, cap]).fetchone()[0])

    def overdue_count(self, now: dt.datetime, view: str = "all", *, user_id: str | None = None,
                      team: str | None = None) -> int:
        where, params = self._queue_filter(view, user_id, team, ACTIVE_TICKET_STATUSES, ())
        where.append("sla_due < ?")
        params.append(format_datetime(now))
        return int(self.conn.execute(f"SELECT count(*) FROM tickets WHERE {' AND '.join(where)}", params).fetchone()[0])

    @staticmethod
    def _queue_filter(view: str, user_id: str | None, team: str | None, statuses: tuple[str, ...],
                      priorities: tuple[str, ...]) -> tuple[list[str], list[Any]]:
        where: list[str] = []
        params: list[Any] = []
        statuses = tuple(s for s in statuses if s in TICKET_STATUSES)
        if set(statuses) == set(ACTIVE_TICKET_STATUSES):
            where.append(_ACTIVE_SQL)  # matches the partial indexes word for word
        elif set(statuses) == set(TICKET_STATUSES):
            pass  # every ticket: no condition, so the queue walks ix_tickets_sla in order
        elif statuses:
            where.append(f"status IN ({', '.join('?' * len(statuses))})")
            params.extend(statuses)
        if view == "mine":
            where.append("assignee_id = ?")
            params.append(user_id or "")
        elif view == "team":
            where.append("team = ?")
            params.append(team or "")
        elif view == "unassigned":
            where.append("assignee_id IS NULL")
        if priorities:
            where.append(f"priority IN ({', '.join('?' * len(priorities))})")
            params.extend(priorities)
        return where, params

    # ------------------------------------------------------------------ pipeline

    def pipeline(self, owner_id: str | None = None) -> list[StageSummary]:
        """Count and total amount (per currency) of deals in each stage; each stage's totals in
        order of how many deals they hold (then how much), so the main currencies come first."""
        def build() -> list[StageSummary]:
            out = {s: StageSummary(s) for s in DEAL_STAGES}
            sql = "SELECT stage, currency, count(*), sum(amount) FROM deals"
            params: tuple[Any, ...] = ()
            if owner_id:
                sql += " WHERE owner_id = ?"
                params = (owner_id,)
            for stage, currency, n, total in self.conn.execute(
                    sql + " GROUP BY stage, currency ORDER BY count(*) DESC, sum(amount) DESC, currency", params):
                if stage not in out:
                    continue
                out[stage].count += n
                out[stage].totals[currency or ""] = out[stage].totals.get(currency or "", 0) + (total or 0)
            return list(out.values())

        return self._hot.get_or_build(f"pipeline:{owner_id or '*'}", self._revisions.replica_stamp(), build)

    def pipeline_cached(self, owner_id: str | None = None) -> list[StageSummary] | None:
        """``pipeline(owner_id)`` if the hot cache holds it for the data as it is now, else None
        (no work: the UI thread asks this; a worker builds)."""
        fresh: list[StageSummary] | None = self._hot.get_fresh(f"pipeline:{owner_id or '*'}",
                                                               self._revisions.replica_stamp())
        return fresh

    def deals_in_stage(self, stage: str, *, owner_id: str | None = None, after: tuple[str | None, str] | None = None,
                       limit: int = 50) -> list[dict[str, Any]]:
        """Deals of one stage by close date (soonest first), keyset-paginated on (close_date, id)."""
        ent = ENTITIES["deal"]
        where = ["stage = ?"]
        params: list[Any] = [stage]
        if owner_id:
            where.append("owner_id = ?")
            params.append(owner_id)
        if after is not None:
            due, last_id = after
            if due is None:
                where.append("((close_date IS NULL AND id > ?) OR close_date IS NOT NULL)")
                params.append(last_id)
            else:
                where.append("(close_date > ? OR (close_date = ? AND id > ?))")
                params.extend([due, due, last_id])
        sql = f"SELECT * FROM deals WHERE {' AND '.join(where)} ORDER BY close_date, id LIMIT ?"
        return self._rows(ent, sql, [*params, limit])

    # ------------------------------------------------------------------ sync bookkeeping

    def sync_runs(self, limit: int = 20) -> list[dict[str, Any]]:
        """The newest sync runs first (``SyncHistory.runs``)."""
        return self._history.runs(limit)

    def quarantined_count(self) -> int:
        """How many invalid records from the server were set aside."""
        return self._quarantine.count()

    def quarantined(self, limit: int = 100) -> list[dict[str, Any]]:
        """The invalid records from the server that were set aside, newest first."""
        return self._quarantine.latest(limit)
