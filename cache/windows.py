"""Windows onto whole results: a list on screen is a count and the few rows in view.

A ``Window`` is one table's rows matching a condition, in one indexed order. The screens ask it
how many rows there are (``count``), for the rows at any position (``rows(offset, limit)``) and
where a record sits (``position``). A `/` filter narrows the same query in SQL, so it covers the
whole result, not only rows someone has scrolled past.

Positions in the far half of a result are read walking the index from the other end (the order
reversed), so the last row of a 500k-row queue costs what the first one does, and the deepest
position costs half a walk of the index, never a walk past everything before it. Only row ids
are walked; whole rows are read for the window alone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cache.sqlite import sqlite3

MAX_FILTER = 100  # characters of a `/` filter considered
EXPORT_BATCH = 500  # rows an export holds at a time
POSITION_SCAN_CAP = 200_000  # rows ranked to find a record's position; beyond, "not known"


def execute_hinted(conn: sqlite3.Connection, sql: str, params: Sequence[Any], hint: str) -> sqlite3.Cursor:
    """Run ``sql``, which names an index with ``hint`` (``INDEXED BY ...``); while a bootstrap has
    dropped the derived indexes to bulk-load, the same query runs without it, reading the table
    (a query naming a missing index fails: the queue died on 'no such index')."""
    try:
        return conn.execute(sql, params)
    except Exception as exc:  # sqlite3 or sqlcipher3 OperationalError
        if not hint.startswith("INDEXED BY ") or "no such index" not in str(exc):
            raise
        return conn.execute(sql.replace(hint, "", 1), params)


def _like(text: str) -> str:
    """A LIKE pattern for ``text`` anywhere, with LIKE's own wildcards taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


@dataclass(frozen=True)
class Window:
    """One table's rows matching ``where``, ordered by ``order`` (each (expression, descending)).

    ``decode(row, names)`` turns a stored row into what the list holds (a dict with the
    ``key_column``). ``search`` are the SQL expressions a `/` filter looks in (each matched
    case-insensitively with LIKE); ``hint`` is an ``INDEXED BY`` clause for the unfiltered walk;
    ``extra_search`` maps the filter text to more (SQL, params) alternatives (a user's name, say).
    ``filter_hint`` is the index a filtered count reads (one that covers the searched columns);
    without one, a filtered count reads the table in its own order. ``extra_columns`` are
    (name, SQL expression) pairs read with each block of rows (a customer's name, say), so a
    list does not look them up row by row as it paints. ``count_in_background`` tells a list
    that a filtered count may take long (it must look at every row): paint the first rows, count
    apart; ``count_whole_in_background`` says the same of the unfiltered count (a table that
    may hold any number of rows and whose list is opened often: conflicts, rejected changes).
    """

    conn: sqlite3.Connection
    table: str
    decode: Callable[[tuple[Any, ...], list[str]], dict[str, Any]]
    key_column: str = "id"
    where: str = "1"
    params: tuple[Any, ...] = ()
    order: tuple[tuple[str, bool], ...] = (("id", False),)
    search: tuple[str, ...] = ()
    hint: str = ""
    extra_search: Callable[[str], list[tuple[str, list[Any]]]] | None = None
    filter_hint: str | None = None
    extra_columns: tuple[tuple[str, str], ...] = ()
    count_in_background: bool = False
    count_whole_in_background: bool = False

    # ------------------------------------------------------------------ SQL pieces

    def _filter(self, text: str) -> tuple[str, list[Any], str]:
        """(WHERE clause, params, index hint) for the window narrowed by ``text``."""
        text = text.strip()[:MAX_FILTER]
        if not text or not self.search:
            return self.where, list(self.params), self.hint
        pattern = _like(text)
        alts = [f"{expr} LIKE ? ESCAPE '\\'" for expr in self.search]
        params: list[Any] = [pattern] * len(self.search)
        if self.extra_search is not None:
            for sql, more in self.extra_search(text):
                alts.append(sql)
                params.extend(more)
        # The hint stays: the filter is checked on each row of the same indexed walk.
        return f"({self.where}) AND ({' OR '.join(alts)})", [*self.params, *params], self.hint

    def _order_sql(self, reverse: bool = False) -> str:
        return ", ".join(f"{expr}{' DESC' if desc != reverse else ''}" for expr, desc in self.order)

    # ------------------------------------------------------------------ reads

    def count(self, text: str = "") -> int:
        """How many rows the window has (narrowed by a `/` filter ``text``)."""
        where, params, hint = self._filter(text)
        if text.strip() and self.search:
            # A filtered count looks at every row anyway: in an index that covers the searched
            # columns, or else in the table's own order, several times faster than visiting the
            # table in an index's order (measured: bench scenario 8).
            hint = self.filter_hint or "NOT INDEXED"
        return int(execute_hinted(
            self.conn, f"SELECT count(*) FROM {self.table} {hint} WHERE {where}", params, hint).fetchone()[0])

    def rowids(self, offset: int, limit: int, text: str = "", *, total: int | None = None) -> list[int]:
        """The rowids of the rows at positions ``offset`` .. ``offset + limit - 1``, in order.

        With ``total`` known, a position in the far half is walked to from the end."""
        if limit <= 0 or offset < 0:
            return []
        where, params, hint = self._filter(text)
        reverse = total is not None and offset + limit / 2 > total / 2
        if reverse:
            assert total is not None
            end = min(offset + limit, total)
            back_offset, back_limit = total - end, end - offset
            if back_limit <= 0:
                return []
            sql = (f"SELECT rowid FROM {self.table} {hint} WHERE {where} "
                   f"ORDER BY {self._order_sql(reverse=True)} LIMIT ? OFFSET ?")
            ids = [r[0] for r in execute_hinted(self.conn, sql, [*params, back_limit, back_offset], hint)]
            ids.reverse()
            return ids
        sql = (f"SELECT rowid FROM {self.table} {hint} WHERE {where} "
               f"ORDER BY {self._order_sql()} LIMIT ? OFFSET ?")
        return [r[0] for r in execute_hinted(self.conn, sql, [*params, limit, offset], hint)]

    def rows(self, offset: int, limit: int, text: str = "", *, total: int | None = None) -> list[dict[str, Any]]:
        """The records at positions ``offset`` .. ``offset + limit - 1`` (fewer at the end)."""
        ids = self.rowids(offset, limit, text, total=total)
        if not ids:
            return []
        extra = len(self.extra_columns)
        more = "".join(f", {expr} AS {name}" for name, expr in self.extra_columns)
        cur = self.conn.execute(
            f"SELECT {self.table}.rowid AS _rowid, {self.table}.*{more} FROM {self.table} "
            f"WHERE {self.table}.rowid IN ({', '.join('?' * len(ids))})", ids)
        names = [d[0] for d in cur.description]
        stored = len(names) - extra
        by_rowid = {}
        for row in cur.fetchall():
            record = self.decode(row[1:stored], names[1:stored])
            for i in range(stored, len(names)):
                record[names[i]] = row[i]
            by_rowid[row[0]] = record
        return [by_rowid[i] for i in ids if i in by_rowid]

    def batches(self, text: str = "", size: int = EXPORT_BATCH, *,
                conn: sqlite3.Connection | None = None) -> Iterator[list[dict[str, Any]]]:
        """Every row of the window (narrowed by a `/` filter ``text``), in its order, ``size`` at
        a time: one SELECT read as it goes, so an export of a million rows never holds more than
        one batch. ``conn``: another connection to the same replica (a worker thread's own)."""
        where, params, hint = self._filter(text)
        cur = execute_hinted(conn or self.conn,
                             f"SELECT * FROM {self.table} {hint} WHERE {where} ORDER BY {self._order_sql()}", params, hint)
        try:
            names = [d[0] for d in cur.description]
            while rows := cur.fetchmany(size):
                yield [self.decode(row, names) for row in rows]
        finally:
            cur.close()

    def position(self, record_id: str, text: str = "") -> int | None:
        """Where the record with ``record_id`` sits in the window, or None if it is not in it
        (or it sits beyond the first POSITION_SCAN_CAP rows)."""
        where, params, hint = self._filter(text)
        sql = (f"SELECT pos FROM (SELECT {self.key_column} AS k, row_number() OVER (ORDER BY {self._order_sql()}) - 1 AS pos "
               f"FROM (SELECT * FROM {self.table} {hint} WHERE {where} "
               f"ORDER BY {self._order_sql()} LIMIT ?)) WHERE k = ?")
        row = execute_hinted(self.conn, sql, [*params, POSITION_SCAN_CAP, record_id], hint).fetchone()
        return row[0] if row else None


@dataclass
class ListWindow:
    """A plain list already in memory, shaped like a ``Window`` (search hits, outbox entries).

    ``text_of(row)`` is what a `/` filter looks in."""

    items: list[dict[str, Any]]
    text_of: Callable[[dict[str, Any]], str] = lambda row: " ".join(str(v) for v in row.values() if v is not None)
    key: str = "id"

    def _matching(self, text: str) -> list[dict[str, Any]]:
        text = text.strip().lower()[:MAX_FILTER]
        if not text:
            return self.items
        return [r for r in self.items if text in self.text_of(r).lower()]

    def count(self, text: str = "") -> int:
        return len(self._matching(text))

    def rows(self, offset: int, limit: int, text: str = "", *, total: int | None = None) -> list[dict[str, Any]]:
        return self._matching(text)[max(0, offset):max(0, offset) + max(0, limit)]

    def batches(self, text: str = "", size: int = EXPORT_BATCH, *,
                conn: sqlite3.Connection | None = None) -> Iterator[list[dict[str, Any]]]:
        """The matching rows, ``size`` at a time (they are in memory already)."""
        matching = self._matching(text)
        for start in range(0, len(matching), size):
            yield matching[start:start + size]

    def position(self, record_id: str, text: str = "") -> int | None:
        for i, row in enumerate(self._matching(text)):
            if str(row.get(self.key)) == record_id:
                return i
        return None
