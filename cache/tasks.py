"""Reads of tasks and follow-ups: the Today view, its counts, reminders and the agenda.

Every query is an indexed range over ``(status, due_at)`` or ``(owner_id, status, due_at)``
(``ix_tasks_status_due``, ``ix_tasks_owner_due``), keyset-paginated on ``(due_at, id)``. None
forces an index: while a bootstrap has the indexes down they still answer, by a scan.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from cache.records import decode_row
from cache.store import Store
from crm_tui.core.agenda import UPCOMING_DAYS, day_bounds
from crm_tui.core.domain import ENTITIES, format_datetime

Rows = list[dict[str, Any]]  # TaskReads has a method named list, which hides the builtin there

TASK = ENTITIES["task"]


@dataclass(frozen=True, slots=True)
class AgendaCounts:
    overdue: int
    today: int
    upcoming: int  # due after today, within the upcoming window
    later: int  # due after the window
    done_today: int


class TaskReads:
    def __init__(self, store: Store):
        self.conn = store.conn

    def _rows(self, sql: str, params: list[Any]) -> Rows:
        cur = self.conn.execute(sql, params)
        names = [d[0] for d in cur.description]
        return [decode_row(TASK, r, names) for r in cur.fetchall()]

    @staticmethod
    def _filter(status: str, owner_id: str | None) -> tuple[list[str], list[Any]]:
        where, params = ["status = ?"], [status]
        if owner_id is not None:
            where.insert(0, "owner_id = ?")
            params.insert(0, owner_id)
        return where, params

    def list(self, *, status: str = "open", owner_id: str | None = None, customer_id: str | None = None,
             after: tuple[str, str] | None = None, limit: int = 50) -> Rows:
        """Tasks of one status, one owner's (None: everyone's) or one customer's: open ones soonest
        due first, done ones most recently due first. ``after`` is the (due_at, id) of the last
        row of the previous page."""
        where, params = self._filter(status, owner_id)
        if customer_id is not None:
            where.append("customer_id = ?")
            params.append(customer_id)
        desc = status == "done"
        if after is not None:
            where.append(f"(due_at, id) {'<' if desc else '>'} (?, ?)")
            params.extend(after)
        order = "due_at DESC, id DESC" if desc else "due_at, id"
        return self._rows(f"SELECT * FROM tasks WHERE {' AND '.join(where)} ORDER BY {order} LIMIT ?",
                          [*params, limit])

    def for_customer(self, customer_id: str, *, after: tuple[int, str, str] | None = None,
                     limit: int = 50) -> Rows:
        """A customer's tasks: open ones soonest due first, then done ones; ``after`` is
        ``customer_key`` of the previous page's last row."""
        where, params = "customer_id = ?", list[Any]([customer_id])
        key = "(status = 'done'), due_at, id"
        if after is not None:
            where += f" AND ({key}) > (?, ?, ?)"
            params = [*params, *after]
        return self._rows(f"SELECT * FROM tasks WHERE {where} ORDER BY {key} LIMIT ?", [*params, limit])

    @staticmethod
    def customer_key(row: dict[str, Any]) -> tuple[int, str, str]:
        return (int(row.get("status") == "done"), row.get("due_at") or "", row["id"])

    def open_count(self, customer_id: str) -> int:
        return int(self.conn.execute("SELECT count(*) FROM tasks WHERE customer_id = ? AND status = 'open'",
                                     (customer_id,)).fetchone()[0])

    def counts(self, now: dt.datetime, *, owner_id: str | None = None, days: int = UPCOMING_DAYS) -> AgendaCounts:
        """How many open tasks are overdue, due today, upcoming and later; how many were done today."""
        start, end_of_day, horizon = day_bounds(now, days)
        where, params = self._filter("open", owner_id)
        row = self.conn.execute(
            "SELECT count(*) FILTER (WHERE due_at < ?), count(*) FILTER (WHERE due_at >= ? AND due_at < ?),"
            " count(*) FILTER (WHERE due_at >= ? AND due_at < ?), count(*) FILTER (WHERE due_at >= ?)"
            f" FROM tasks WHERE {' AND '.join(where)}",
            [start, start, end_of_day, end_of_day, horizon, horizon, *params]).fetchone()
        midnight = format_datetime(dt.datetime(now.year, now.month, now.day, tzinfo=dt.UTC))
        done_where, done_params = self._filter("done", owner_id)
        done = self.conn.execute(
            f"SELECT count(*) FROM tasks WHERE {' AND '.join(done_where)} AND done_at >= ? AND done_at < ?",
            [*done_params, midnight, end_of_day]).fetchone()[0]
        return AgendaCounts(row[0], row[1], row[2], row[3], done)

    def agenda(self, now: dt.datetime, *, owner_id: str | None = None, days: int = UPCOMING_DAYS,
               limit: int = 500) -> Rows:
        """Open tasks due before the end of the upcoming window (overdue ones included), soonest
        first, each with its customer's name (``customer_name``): what ``crm-tui agenda`` prints."""
        _start, _end, horizon = day_bounds(now, days)
        where, params = self._filter("open", owner_id)
        cur = self.conn.execute(
            "SELECT tasks.*, customers.name AS customer_name FROM tasks"
            " LEFT JOIN customers ON customers.id = tasks.customer_id"
            f" WHERE {' AND '.join('tasks.' + w for w in where)} AND tasks.due_at < ?"
            " ORDER BY tasks.due_at, tasks.id LIMIT ?", [*params, horizon, limit])
        names = [d[0] for d in cur.description]
        out = []
        for r in cur.fetchall():
            record = decode_row(TASK, r, names)
            record["customer_name"] = r[names.index("customer_name")]
            out.append(record)
        return out

    def falling_due(self, since: dt.datetime, until: dt.datetime, *, owner_id: str | None = None,
                    limit: int = 20) -> Rows:
        """Open tasks whose due time passed in ``(since, until]``: what a reminder is shown for."""
        where, params = self._filter("open", owner_id)
        return self._rows(
            f"SELECT * FROM tasks WHERE {' AND '.join(where)} AND due_at > ? AND due_at <= ?"
            " ORDER BY due_at, id LIMIT ?", [*params, format_datetime(since), format_datetime(until), limit])
