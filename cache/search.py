"""Search across customers and contacts (name, company, email, phone, city), tickets by number
and orders by number.

Any string a person can type is a valid search: user text is never handed to FTS5 as query
syntax. It is split into words, each quoted as a prefix term, so quotes, ``AND``, ``name:``,
parentheses, ``*`` and ``NEAR(`` are just characters.

Ranking is designed for a million customers rather than left to bm25 over every match (a ranked
MATCH on a 3-letter prefix has to score every matching row, ~160 ms at 1M). Results come in
tiers, each an index range scan or an unranked FTS5 scan with a LIMIT:

1. exact hits: an email address, a phone number (digits compared), a ticket or order number;
2. names that start with what was typed (B-tree range on ``name COLLATE NOCASE``);
3. words in a name that start with the typed words (FTS5 column filter, prefix indexes);
4. the typed words anywhere: company, email, phone, city (FTS5), ranked by bm25 only when the
   match set is small enough to score cheaply;
5. substrings of an email or phone number (trigram index), for fragments like ``@acme`` or ``5512``.

The total ("n of N") counts FTS matches up to a cap, reported as a lower bound beyond it.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cache.schema import phone_key_sql

if TYPE_CHECKING:
    from cache.replica import Replica

COUNT_CAP = 1000
RANK_BELOW = 300  # score with bm25 only when no more than this many rows match
MAX_QUERY = 200  # characters considered; the rest of a pasted novel is ignored
MAX_TERMS = 8

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_TICKET = re.compile(r"^(?:#|t-?|ticket\s*#?)?\s*(\d{1,12})$", re.IGNORECASE)
_ORDER = re.compile(r"^(?:so-?)(\d{1,12})$", re.IGNORECASE)
_PHONEISH = re.compile(r"^[+\d\s().\-/]{5,}$")


@dataclass(frozen=True)
class SearchHit:
    kind: str  # customer, contact, ticket, order
    id: str
    customer_id: str | None
    title: str
    detail: str
    match: str  # what matched: email, phone, number, name, text, fragment


@dataclass
class SearchResult:
    query: str
    hits: list[SearchHit] = field(default_factory=list)
    total: int = 0
    capped: bool = False  # the true total is at least ``total``

    @property
    def summary(self) -> str:
        if not self.query:
            return ""
        total = f"{self.total:,}{'+' if self.capped else ''}"
        return f"{len(self.hits)} of {total}"


def words(text: str) -> list[str]:
    """The words FTS5's unicode61 tokenizer would see, lower-cased, at most MAX_TERMS."""
    return [w.lower() for w in _WORD.findall(text[:MAX_QUERY])][:MAX_TERMS]


def fts_prefix_query(terms: list[str]) -> str:
    """A MATCH expression: every term as a quoted prefix, all required. Never FTS5 syntax from users."""
    return " AND ".join('"' + t.replace('"', '""') + '"*' for t in terms)


def _fts_phrase(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


class Search:
    def __init__(self, replica: Replica):
        self.replica = replica
        self.conn = replica.conn

    def __call__(self, text: str, limit: int = 50) -> SearchResult:
        """Search the replica. Never raises for any input text."""
        query = (text or "").strip()[:MAX_QUERY]
        result = SearchResult(query=query)
        if not query:
            return result
        hits: list[SearchHit] = []
        seen: set[tuple[str, str]] = set()

        def add(batch: list[SearchHit]) -> None:
            for h in batch:
                if len(hits) >= limit:
                    return
                if (h.kind, h.id) not in seen:
                    seen.add((h.kind, h.id))
                    hits.append(h)

        terms = words(query)
        try:
            add(self._exact(query, limit))
            if terms and len(hits) < limit:
                add(self._name_prefix(query, limit - len(hits)))
            total, capped = self._count(terms)
            if terms and len(hits) < limit:
                add(self._fts("name", terms, limit - len(hits) + len(seen)))
            if terms and len(hits) < limit:
                add(self._fts(None, terms, limit - len(hits) + len(seen), rank=total <= RANK_BELOW))
            if len(hits) < limit and len(query) >= 3:
                add(self._fragment(query, limit - len(hits) + len(seen)))
        except sqlite3.Error:
            # A search box must never take the app down; whatever was found so far stands.
            total, capped = len(hits), False
        result.hits = hits
        result.total = max(total, len(hits))
        result.capped = capped
        return result

    # ------------------------------------------------------------------ tiers

    def _exact(self, query: str, limit: int) -> list[SearchHit]:
        out: list[SearchHit] = []
        if "@" in query:
            out += self._customers("c.email = ? COLLATE NOCASE", (query,), limit, "email")
            out += self._contacts("ct.email = ? COLLATE NOCASE", (query,), limit, "email")
        if _PHONEISH.match(query):
            digits = re.sub(r"\D", "", query)
            if len(digits) >= 5:
                out += self._customers(f"{phone_key_sql('c.phone')} = ?", (digits,), limit, "phone")
                out += self._contacts(f"{phone_key_sql('ct.phone')} = ?", (digits,), limit, "phone")
        m = _TICKET.match(query)
        if m:
            number = int(m.group(1))
            for rid, cust, num, subject, status in self.conn.execute(
                "SELECT id, customer_id, number, subject, status FROM tickets WHERE number = ? LIMIT ?", (number, limit)
            ):
                out.append(SearchHit("ticket", rid, cust, f"#{num} {subject}", status, "number"))
        m = _ORDER.match(query)
        if m or query.upper().startswith("SO-"):
            lo = query.upper()
            for rid, cust, num, date, status in self.conn.execute(
                "SELECT id, customer_id, number, order_date, status FROM orders WHERE number >= ? AND number < ? "
                "ORDER BY number LIMIT ?",
                (lo, lo + "\uffff", limit),
            ):
                out.append(SearchHit("order", rid, cust, num, f"{date} · {status}", "number"))
        return out

    def _name_prefix(self, query: str, limit: int) -> list[SearchHit]:
        lo, hi = query, query + "\U0010ffff"
        out = self._customers(
            "c.name >= ? COLLATE NOCASE AND c.name < ? COLLATE NOCASE", (lo, hi), limit, "name",
            order="c.name COLLATE NOCASE")
        out += self._contacts(
            "ct.name >= ? COLLATE NOCASE AND ct.name < ? COLLATE NOCASE", (lo, hi), limit - len(out), "name",
            order="ct.name COLLATE NOCASE")
        return out

    def _fts(self, column: str | None, terms: list[str], limit: int, rank: bool = False) -> list[SearchHit]:
        expr = fts_prefix_query(terms)
        if column:
            expr = f"{{{column}}} : ({expr})"
        order = ""
        if rank:
            order = "ORDER BY bm25(customers_fts, 10.0, 5.0, 3.0, 3.0, 1.0)"
        rowids = [r[0] for r in self.conn.execute(
            f"SELECT rowid FROM customers_fts WHERE customers_fts MATCH ? {order} LIMIT ?", (expr, limit))]
        out = self._customers_by_rowid(rowids, "name" if column else "text")
        if len(out) < limit:
            order = "ORDER BY bm25(contacts_fts, 10.0, 2.0, 3.0, 3.0)" if rank else ""
            rowids = [r[0] for r in self.conn.execute(
                f"SELECT rowid FROM contacts_fts WHERE contacts_fts MATCH ? {order} LIMIT ?", (expr, limit - len(out)))]
            out += self._contacts_by_rowid(rowids, "name" if column else "text")
        return out

    def _fragment(self, query: str, limit: int) -> list[SearchHit]:
        needles = []
        lowered = query.lower()
        if "@" in lowered or "." in lowered or len(words(query)) == 1:
            needles.append(lowered)
        digits = re.sub(r"\D", "", query)
        if len(digits) >= 3 and _PHONEISH.match(query):
            needles.append(digits)
        out: list[SearchHit] = []
        for needle in needles:
            if len(needle) < 3:
                continue
            phrase = _fts_phrase(needle)
            rowids = [r[0] for r in self.conn.execute(
                "SELECT rowid FROM customers_tri WHERE customers_tri MATCH ? LIMIT ?", (phrase, limit))]
            out += self._customers_by_rowid(rowids, "fragment")
            rowids = [r[0] for r in self.conn.execute(
                "SELECT rowid FROM contacts_tri WHERE contacts_tri MATCH ? LIMIT ?", (phrase, limit))]
            out += self._contacts_by_rowid(rowids, "fragment")
        return out

    def _count(self, terms: list[str]) -> tuple[int, bool]:
        if not terms:
            return 0, False
        expr = fts_prefix_query(terms)
        n = 0
        for table in ("customers_fts", "contacts_fts"):
            n += self.conn.execute(
                f"SELECT count(*) FROM (SELECT 1 FROM {table} WHERE {table} MATCH ? LIMIT ?)", (expr, COUNT_CAP + 1)
            ).fetchone()[0]
        return (min(n, COUNT_CAP), n > COUNT_CAP)

    # ------------------------------------------------------------------ row fetching

    _CUSTOMER_COLS = "c.rowid, c.id, c.name, c.company, c.email, c.phone, c.city"
    _CONTACT_COLS = "ct.rowid, ct.id, ct.customer_id, ct.name, ct.title, ct.email, c.name, c.company"

    def _customer_hit(self, row: tuple, match: str) -> SearchHit:
        _, rid, name, company, email, phone, city = row
        detail = " · ".join(x for x in (company, email or phone, city) if x)
        return SearchHit("customer", rid, rid, name or rid, detail, match)

    def _contact_hit(self, row: tuple, match: str) -> SearchHit:
        _, rid, cust, name, title, email, cname, ccompany = row
        who = cname or ccompany or cust
        detail = " · ".join(x for x in (title, f"contact at {who}", email) if x)
        return SearchHit("contact", rid, cust, name or rid, detail, match)

    def _customers(self, where: str, params: tuple, limit: int, match: str, order: str = "c.rowid") -> list[SearchHit]:
        if limit <= 0:
            return []
        rows = self.conn.execute(
            f"SELECT {self._CUSTOMER_COLS} FROM customers c WHERE {where} ORDER BY {order} LIMIT ?", (*params, limit)
        ).fetchall()
        return [self._customer_hit(r, match) for r in rows]

    def _contacts(self, where: str, params: tuple, limit: int, match: str, order: str = "ct.rowid") -> list[SearchHit]:
        if limit <= 0:
            return []
        rows = self.conn.execute(
            f"SELECT {self._CONTACT_COLS} FROM contacts ct LEFT JOIN customers c ON c.id = ct.customer_id "
            f"WHERE {where} ORDER BY {order} LIMIT ?", (*params, limit)
        ).fetchall()
        return [self._contact_hit(r, match) for r in rows]

    def _customers_by_rowid(self, rowids: list[int], match: str) -> list[SearchHit]:
        if not rowids:
            return []
        marks = ",".join("?" * len(rowids))
        rows = {r[0]: r for r in self.conn.execute(
            f"SELECT {self._CUSTOMER_COLS} FROM customers c WHERE c.rowid IN ({marks})", rowids)}
        return [self._customer_hit(rows[i], match) for i in rowids if i in rows]

    def _contacts_by_rowid(self, rowids: list[int], match: str) -> list[SearchHit]:
        if not rowids:
            return []
        marks = ",".join("?" * len(rowids))
        rows = {r[0]: r for r in self.conn.execute(
            f"SELECT {self._CONTACT_COLS} FROM contacts ct LEFT JOIN customers c ON c.id = ct.customer_id "
            f"WHERE ct.rowid IN ({marks})", rowids)}
        return [self._contact_hit(rows[i], match) for i in rowids if i in rows]
