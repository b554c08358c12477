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
4. the typed words anywhere: company, email, phone, city (FTS5). One unranked MATCH gives both
   the count and the candidates; a small match set is ranked here by where the words are;
5. substrings of an email or phone number (trigram index), for fragments like ``@acme`` or ``5512``.

The total ("n of N") counts FTS matches up to a cap, reported as a lower bound beyond it.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field, replace
from typing import Any

from cache.schema import phone_key_sql
from cache.sqlite import sqlite3
from cache.store import Store
from crm_tui.core.text import counted

COUNT_CAP = 1000
RANK_BELOW = 300  # rank a match set this small by where the words are; bigger ones by name first
MAX_QUERY = 200  # characters considered; the rest of a pasted novel is ignored
MAX_TERMS = 8

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_TICKET = re.compile(r"^(?:#|t-?|ticket\s*#?)?\s*(\d{1,12})$", re.IGNORECASE)
# An order number as people type it: SO-00010042, SO-10042, so10042, so 10042 (or bare digits).
_ORDER = re.compile(r"^so[\s\-]*([0-9]{1,12})$", re.IGNORECASE)
ORDER_DIGITS = 8  # the server numbers orders SO-00000001 ...
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
        return counted(self.total, "match", len(self.hits), many="matches", at_least=self.capped)


def words(text: str) -> list[str]:
    """The words FTS5's unicode61 tokenizer would see, lower-cased, at most MAX_TERMS."""
    return [w.lower() for w in _WORD.findall(text[:MAX_QUERY])][:MAX_TERMS]


# Words that say little in a customer's name: a company's legal form, a mail domain's ending.
# Dropped from a search that has other words (they would make FTS5 walk huge lists for nothing).
WEAK_WORDS = frozenset({
    "inc", "ltd", "llc", "gmbh", "ag", "sa", "sas", "sarl", "srl", "spa", "bv", "nv", "oy", "ab", "as",
    "co", "corp", "plc", "pty", "pvt", "kk", "lda", "the", "and", "of", "com", "net", "org",
})


def fts_query(terms: list[str], *, complete_last: bool = False) -> str:
    """A MATCH expression for typed words, all required. Words the user has finished (a space
    followed) must match whole words; the one being typed matches as a prefix. Never FTS5
    syntax from users: every word is quoted."""
    strong = [t for t in terms if t not in WEAK_WORDS] or terms
    if terms and strong[-1] != terms[-1]:
        complete_last = True  # the word being typed was a weak one and is gone
    parts = []
    for i, t in enumerate(strong):
        quoted = '"' + t.replace('"', '""') + '"'
        parts.append(quoted if (i < len(strong) - 1 or complete_last) else quoted + "*")
    return " AND ".join(parts)


def _fold(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text.lower()) if not unicodedata.combining(c))


def _rank(hit: SearchHit, terms: list[str]) -> tuple[Any, ...]:
    """Where the typed words are: a name that starts with them, then names that contain them
    as words, then the rest (company, email, city); customers before contacts; then by name."""
    title = _fold(hit.title)
    name_words = _WORD.findall(title)
    folded = [_fold(t) for t in terms]
    if title.startswith(" ".join(folded)):
        tier = 0
    elif all(any(w.startswith(t) for w in name_words) for t in folded):
        tier = 1
    else:
        tier = 2
    return (tier, hit.kind != "customer", title)


def _fts_phrase(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


class Search:
    def __init__(self, store: Store):
        self.conn = store.conn

    def __call__(self, text: str, limit: int = 50) -> SearchResult:
        """Search the replica. Never raises for any input text."""
        raw = (text or "")[:MAX_QUERY]
        query = raw.strip()
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

        total, capped = 0, False
        try:
            add(self._exact(query, limit))
            if "@" in query or (_PHONEISH.match(query) and sum(c.isdigit() for c in query) >= 5):
                # An email address or a phone number: its exact hits and its fragments are the
                # answer; the words in it ("com", "1") would only match half the replica.
                add(self._fragment(query, limit))
                total = len(hits)
            else:
                terms = words(query)
                if terms:
                    add(self._name_prefix(query, limit))
                    found, total, capped = self._words(terms, complete_last=raw[-1:].isspace(), limit=limit)
                    add(found)
                if len(hits) < limit and len(query) >= 3:
                    add(self._fragment(query, limit))
        except sqlite3.Error:
            # A search box must never take the app down; whatever was found so far stands.
            capped = False
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
        order = _ORDER.match(query)
        if order:
            out += self._orders(order.group(1), limit, prefix=True)
        elif query.isascii() and query.isdigit() and len(query) <= 12:
            out += self._orders(query, limit, prefix=False)  # a bare number may be an order's too
        return out

    def _orders(self, digits: str, limit: int, *, prefix: bool) -> list[SearchHit]:
        """Orders by number: the exact number with or without its zero padding, then (for a
        typed ``SO``) the numbers that begin with what was typed."""
        exact = list(dict.fromkeys((f"SO-{int(digits):0{ORDER_DIGITS}d}", f"SO-{digits}")))
        sql = "SELECT id, customer_id, number, order_date, status FROM orders WHERE "
        rows = self.conn.execute(
            sql + f"number IN ({', '.join('?' * len(exact))}) ORDER BY number LIMIT ?", (*exact, limit)).fetchall()
        if prefix:
            lo = f"SO-{digits}"
            rows += self.conn.execute(sql + "number >= ? AND number < ? ORDER BY number LIMIT ?",
                                      (lo, lo + "\uffff", limit)).fetchall()
        seen: set[str] = set()
        out = []
        for rid, cust, num, date, status in rows:
            if rid not in seen:
                seen.add(rid)
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

    def _words(self, terms: list[str], *, complete_last: bool, limit: int) -> tuple[list[SearchHit], int, bool]:
        """Customers and contacts with every typed word: (hits, how many match, more than that?).

        One unranked MATCH per table, capped at COUNT_CAP + 1 rows, gives both the count and the
        candidates. A small match set is ranked here by where the words are (name first); a big
        one (a 1-3 letter prefix) shows names whose words start with the typed ones first,
        through a LIMITed name-column MATCH that stops as soon as it has enough."""
        expr = fts_query(terms, complete_last=complete_last)
        rowids = {}
        for table in ("customers", "contacts"):
            rowids[table] = [r[0] for r in self.conn.execute(
                f"SELECT rowid FROM {table}_fts WHERE {table}_fts MATCH ? LIMIT ?", (expr, COUNT_CAP + 1))]
        n = len(rowids["customers"]) + len(rowids["contacts"])
        capped = n > COUNT_CAP
        total = min(n, COUNT_CAP)
        if n <= RANK_BELOW:
            found = self._customers_by_rowid(rowids["customers"], "text")
            found += self._contacts_by_rowid(rowids["contacts"], "text")
            ranked = sorted(((_rank(h, terms), h) for h in found), key=lambda pair: pair[0])[:limit]
            return [replace(h, match="name" if key[0] < 2 else "text") for key, h in ranked], total, capped
        found = []
        for table, fetch in (("customers", self._customers_by_rowid), ("contacts", self._contacts_by_rowid)):
            named = [r[0] for r in self.conn.execute(
                f"SELECT rowid FROM {table}_fts WHERE {table}_fts MATCH ? LIMIT ?", (f"{{name}} : ({expr})", limit))]
            found += fetch(named, "name")
        found += self._customers_by_rowid(rowids["customers"][:limit], "text")
        found += self._contacts_by_rowid(rowids["contacts"][:limit], "text")
        return found, total, capped

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

    # ------------------------------------------------------------------ row fetching

    _CUSTOMER_COLS = "c.rowid, c.id, c.name, c.company, c.email, c.phone, c.city"
    _CONTACT_COLS = "ct.rowid, ct.id, ct.customer_id, ct.name, ct.title, ct.email, c.name, c.company"

    def _customer_hit(self, row: tuple[Any, ...], match: str) -> SearchHit:
        _, rid, name, company, email, phone, city = row
        detail = " · ".join(x for x in (company, email or phone, city) if x)
        return SearchHit("customer", rid, rid, name or rid, detail, match)

    def _contact_hit(self, row: tuple[Any, ...], match: str) -> SearchHit:
        _, rid, cust, name, title, email, cname, ccompany = row
        who = cname or ccompany or cust
        detail = " · ".join(x for x in (title, f"contact at {who}", email) if x)
        return SearchHit("contact", rid, cust, name or rid, detail, match)

    def _customers(self, where: str, params: tuple[Any, ...], limit: int, match: str, order: str = "c.rowid") -> list[SearchHit]:
        if limit <= 0:
            return []
        rows = self.conn.execute(
            f"SELECT {self._CUSTOMER_COLS} FROM customers c WHERE {where} ORDER BY {order} LIMIT ?", (*params, limit)
        ).fetchall()
        return [self._customer_hit(r, match) for r in rows]

    def _contacts(self, where: str, params: tuple[Any, ...], limit: int, match: str, order: str = "ct.rowid") -> list[SearchHit]:
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
