"""The whole results the screens' lists show, each as a ``Window`` (count, rows at any position,
a `/` filter in SQL).

Each window walks the index its list was given in ``cache.schema`` (the ticket queue its
partial indexes, a customer's orders ``ix_orders_customer_date`` ...), in the same order as the
keyset reads in ``cache.reads``, so a position is an index step, never a sort of the result.
"""

from __future__ import annotations

from typing import Any

from cache.conflicts import CONFLICT_COLUMNS, conflict_from_row
from cache.outbox import OP_COLUMNS, op_from_row
from cache.reads import Reads
from cache.records import decode_row
from cache.search import fts_query, words
from cache.store import Store
from cache.windows import Window
from crm_tui.core.domain import ACTIVE_TICKET_STATUSES, ENTITIES, TICKET_STATUSES

NAME_MATCHES = 1000  # customers a `/` filter looks up by name (FTS prefix), at most


class Lists:
    """Windows for the screens' lists, answered from the replica alone."""

    def __init__(self, store: Store):
        self.conn = store.conn

    def _records(self, entity_name: str, where: str, params: list[Any], order: tuple[tuple[str, bool], ...],
                 search: tuple[str, ...], **kw: Any) -> Window:
        ent = ENTITIES[entity_name]
        return Window(self.conn, ent.table, lambda row, names: decode_row(ent, row, names),
                      where=where, params=tuple(params), order=order, search=search, **kw)

    def _user_named(self, column: str) -> Any:
        def extra(text: str) -> list[tuple[str, list[Any]]]:
            return [(f"{column} IN (SELECT id FROM users WHERE name LIKE ? ESCAPE '\\')", [f"%{_escape(text)}%"])]
        return extra

    # ------------------------------------------------------------------ ticket queue

    def ticket_queue(self, view: str = "all", *, user_id: str | None = None, team: str | None = None,
                     statuses: tuple[str, ...] = ACTIVE_TICKET_STATUSES, priorities: tuple[str, ...] = ()) -> Window:
        """The queue by SLA due (soonest first, then id), for 'mine', 'team', 'all' or 'unassigned'; a `/` filter
        looks in the number, subject, team, the assignee's name and the
        customer's name (words that start with what was typed)."""
        where, params = Reads._queue_filter(view, user_id, team, statuses, priorities)
        hint = ""
        if set(statuses) == set(ACTIVE_TICKET_STATUSES):
            hint = {"mine": "INDEXED BY ix_tickets_active_assignee", "unassigned": "INDEXED BY ix_tickets_active_assignee",
                    "team": "INDEXED BY ix_tickets_active_team"}.get(view, "INDEXED BY ix_tickets_active_sla")
        elif set(statuses) == set(TICKET_STATUSES) and view == "all" and not priorities:
            hint = "INDEXED BY ix_tickets_sla"  # every ticket in queue order: never a sort of them all

        def extra(text: str) -> list[tuple[str, list[Any]]]:
            out: list[tuple[str, list[Any]]] = self._user_named("assignee_id")(text)
            if any(ch.isdigit() for ch in text):  # a ticket number is digits: other text never matches one
                out.append(("number LIKE ? ESCAPE '\\'", [f"%{_escape(text)}%"]))
            terms = words(text)
            if terms:
                out.append(("customer_id IN (SELECT id FROM customers WHERE rowid IN (SELECT rowid FROM customers_fts "
                            "WHERE customers_fts MATCH ? LIMIT ?))",
                            [f"{{name}} : ({fts_query(terms)})", NAME_MATCHES]))
            return out

        # Names shown in the rows come with each block (one statement), not one look-up per row painted.
        names = (("customer_name", "(SELECT name FROM customers WHERE customers.id = tickets.customer_id)"),
                 ("assignee_name", "(SELECT name FROM users WHERE users.id = tickets.assignee_id)"))
        return self._records("ticket", " AND ".join(where) or "1", params, (("sla_due", False), ("id", False)),
                             ("subject", "team"), hint=hint, extra_search=extra, filter_hint=hint or None,
                             extra_columns=names, count_in_background=True, count_whole_in_background=True)

    def _customer_named(self, column: str) -> Any:
        """A `/` filter's alternative: the customer's name has words that start with the text."""
        def extra(text: str) -> list[tuple[str, list[Any]]]:
            terms = words(text)
            if not terms:
                return []
            return [(f"{column} IN (SELECT id FROM customers WHERE rowid IN (SELECT rowid FROM customers_fts "
                     "WHERE customers_fts MATCH ? LIMIT ?))", [f"{{name}} : ({fts_query(terms)})", NAME_MATCHES])]
        return extra

    # ------------------------------------------------------------------ tasks (Today)

    def tasks(self, status: str = "open", *, owner_id: str | None = None) -> Window:
        """Tasks of one status, one owner's (None: everyone's): open ones soonest due first, done
        ones most recently due first (then id), along ``ix_tasks_owner_due`` or
        ``ix_tasks_status_due``; a `/` filter looks in the title and notes, the owner's name and
        the customer's name (words that start with what was typed)."""
        where, params = ["status = ?"], [status]
        hint = "INDEXED BY ix_tasks_status_due"
        if owner_id is not None:
            where.insert(0, "owner_id = ?")
            params.insert(0, owner_id)
            hint = "INDEXED BY ix_tasks_owner_due"
        desc = status == "done"
        users, customers = self._user_named("owner_id"), self._customer_named("customer_id")

        def extra(text: str) -> list[tuple[str, list[Any]]]:
            out: list[tuple[str, list[Any]]] = users(text)
            out.extend(customers(text))
            return out

        names = (("customer_name", "(SELECT name FROM customers WHERE customers.id = tasks.customer_id)"),)
        # Everyone's tasks may number hundreds of thousands: counted apart, filtered or not.
        return self._records("task", " AND ".join(where), params, (("due_at", desc), ("id", desc)),
                             ("title", "notes"), hint=hint, extra_search=extra, extra_columns=names,
                             count_in_background=True, count_whole_in_background=True)

    # ------------------------------------------------------------------ a customer's lists

    def contacts(self, customer_id: str) -> Window:
        """A customer's contacts, primary first, then by name."""
        return self._records("contact", "customer_id = ?", [customer_id],
                             (("-coalesce(is_primary, 0)", False), ("lower(name)", False), ("id", False)),
                             ("name", "title", "phone", "email"))

    def orders(self, customer_id: str) -> Window:
        """A customer's orders, newest first."""
        return self._records("order", "customer_id = ?", [customer_id], (("order_date", True), ("id", True)),
                             ("number", "order_date", "status", "currency"))

    def customer_tickets(self, customer_id: str) -> Window:
        """A customer's tickets, newest first."""
        return self._records("ticket", "customer_id = ?", [customer_id], (("created_at", True), ("id", True)),
                             ("number", "subject", "status", "priority"), extra_search=self._user_named("assignee_id"))

    def customer_deals(self, customer_id: str) -> Window:
        """A customer's deals: open ones first, then won and lost, each by close date."""
        return self._records("deal", "customer_id = ?", [customer_id],
                             (("stage IN ('won', 'lost')", False), ("coalesce(close_date, '')", False), ("id", False)),
                             ("title", "stage", "close_date"), extra_search=self._user_named("owner_id"))

    def activities(self, customer_id: str) -> Window:
        """A customer's activity timeline, newest first."""
        return self._records("activity", "customer_id = ?", [customer_id], (("occurred_at", True), ("id", True)),
                             ("kind", "subject", "body"), extra_search=self._user_named("author_id"))

    # ------------------------------------------------------------------ pipeline

    def deals_in_stage(self, stage: str, *, owner_id: str | None = None) -> Window:
        """One stage's deals by close date (soonest first, undated first), then id."""
        where, params = "stage = ?", [stage]
        if owner_id:
            where += " AND owner_id = ?"
            params.append(owner_id)
        # A stage may hold any number of deals and the board reads six at once: each counts apart.
        return self._records("deal", where, params, (("close_date", False), ("id", False)),
                             ("title", "close_date"), count_whole_in_background=True)

    # ------------------------------------------------------------------ outbox

    def conflicts(self) -> Window:
        """Unsettled conflicts, oldest first; each row is {id, conflict: Conflict}."""
        cols = [c.strip() for c in CONFLICT_COLUMNS.split(",")]

        def decode(row: tuple[Any, ...], names: list[str]) -> dict[str, Any]:
            r = dict(zip(names, row, strict=True))
            c = conflict_from_row(tuple(r[c] for c in cols))
            return {"id": str(c.id), "conflict": c}

        return Window(self.conn, "conflicts", decode, where="resolved_at IS NULL", order=(("id", False),),
                      search=("entity", "record_id", "kind", "fields"), count_whole_in_background=True)

    def rejected(self) -> Window:
        """Changes the server refused, oldest first; each row is {id: seq, op: OutboxOp}."""
        cols = [c.strip() for c in OP_COLUMNS.split(",")]

        def decode(row: tuple[Any, ...], names: list[str]) -> dict[str, Any]:
            r = dict(zip(names, row, strict=True))
            op = op_from_row(tuple(r[c] for c in cols))
            return {"id": str(op.seq), "op": op}

        return Window(self.conn, "outbox", decode, key_column="seq", where="state = 'rejected'",
                      order=(("seq", False),), search=("op", "entity", "record_id", "fields", "error"),
                      count_whole_in_background=True)


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
