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
4. the typed words anywhere: company, email, phone, city (FTS5); a small match set is ranked
   here by where the words are;
5. substrings of an email or phone number (trigram index), for fragments like ``@acme`` or ``5512``.

Each tier is read up to a limit, so the first N matches are the same whatever the limit: a
keystroke reads the first few (``Search.first``, no count), and ``Search.every`` lists the whole
match set in the same order, held compactly (``Matches``: arrays of rowids), for a worker to
count on its own connection (a ``SearchWindow`` holds either). ``Search.__call__`` (the palette, pickers) counts FTS matches up to a cap,
reported as a lower bound beyond it.
"""

from __future__ import annotations

import re
import unicodedata
from array import array
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

from cache.schema import phone_key_sql
from cache.sqlite import sqlite3
from cache.store import Store
from crm_tui.core.domain import format_money
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


@dataclass(frozen=True)
class MatchKey:
    """One match, in the order a search lists it: its kind, its rowid, and what matched."""

    kind: str  # customer, contact, ticket, order
    rowid: int
    match: str


_TABLES = {"customer": "customers", "contact": "contacts", "ticket": "tickets", "order": "orders"}

_BITMAP_ROWIDS = 1 << 27  # rowids below this are remembered one bit each (16 MB at most per kind)


class _Seen:
    """The rowids of one kind a search has listed: a bitmap over rowids (an eighth of a byte
    per row of the table, whatever the match set), a set for rowids too big for it."""

    __slots__ = ("big", "bits")

    def __init__(self) -> None:
        self.bits = bytearray()
        self.big: set[int] = set()

    def add(self, rowid: int) -> bool:
        """Remember ``rowid``; False when it was already there."""
        if not 0 <= rowid < _BITMAP_ROWIDS:
            if rowid in self.big:
                return False
            self.big.add(rowid)
            return True
        byte, bit = rowid >> 3, 1 << (rowid & 7)
        bits = self.bits
        if byte >= len(bits):
            bits.extend(bytes(min(max(byte + 1 - len(bits), len(bits) // 2), (_BITMAP_ROWIDS >> 3) - len(bits))))
        if bits[byte] & bit:
            return False
        bits[byte] |= bit
        return True


Run = tuple[str, str, Iterable[int]]  # kind, what matched, rowids in order


class Matches(Sequence[MatchKey]):
    """A search's matches in order, compactly: runs of one kind and one reason, each an
    ``array`` of rowids (8 bytes a match). ``MatchKey``s are made only for the positions asked
    for. ``add`` lists a rowid once (where it first appears) and stops at ``limit``; ``close``
    drops what it needed to tell that (the matches stay)."""

    def __init__(self, limit: int | None = None) -> None:
        self.limit = limit
        self._runs: list[tuple[str, str, array[int]]] = []
        self._ends: list[int] = []  # matches up to and including each run
        self._seen: dict[str, _Seen] | None = {}

    def full(self) -> bool:
        return self.limit is not None and len(self) >= self.limit

    def add(self, kind: str, match: str, rowids: Iterable[int]) -> None:
        """Append ``rowids`` (of ``kind``, matched by ``match``) not listed yet, up to the limit."""
        if self._seen is None:
            raise ValueError("matches closed: nothing more can be added")
        if self.full():
            return
        seen = self._seen.setdefault(kind, _Seen())
        if self._runs and self._runs[-1][:2] == (kind, match):
            run = self._runs[-1][2]
        else:
            run = array("q")
            self._runs.append((kind, match, run))
            self._ends.append(len(self))
        room = -1 if self.limit is None else self.limit - len(self)
        start = len(run)
        for rowid in rowids:
            if seen.add(rowid):
                run.append(rowid)
                room -= 1
                if room == 0:
                    break
        self._ends[-1] += len(run) - start
        if not run:
            self._runs.pop()
            self._ends.pop()

    def close(self) -> Matches:
        """No more matches: forget which rows were seen (their bitmaps)."""
        self._seen = None
        return self

    def __len__(self) -> int:
        return self._ends[-1] if self._ends else 0

    @overload
    def __getitem__(self, index: int) -> MatchKey: ...

    @overload
    def __getitem__(self, index: slice) -> list[MatchKey]: ...

    def __getitem__(self, index: int | slice) -> MatchKey | list[MatchKey]:
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            if step != 1:
                return [self[i] for i in range(start, stop, step)]
            return list(self._keys(start, stop))
        i = index + len(self) if index < 0 else index
        if not 0 <= i < len(self):
            raise IndexError(index)
        return next(self._keys(i, i + 1))

    def _keys(self, start: int, stop: int) -> Iterator[MatchKey]:
        r = bisect_right(self._ends, start)
        while start < stop and r < len(self._runs):
            kind, match, run = self._runs[r]
            begin = self._ends[r] - len(run)
            for rowid in run[start - begin:min(stop, self._ends[r]) - begin]:
                yield MatchKey(kind, rowid, match)
            start = self._ends[r]
            r += 1

    def __iter__(self) -> Iterator[MatchKey]:
        return self._keys(0, len(self))

    def position(self, kind: str, rowid: int) -> int | None:
        """Where the match of ``kind`` ``rowid`` is listed, or None."""
        for (k, _match, run), end in zip(self._runs, self._ends, strict=True):
            if k == kind:
                try:
                    return end - len(run) + run.index(rowid)
                except ValueError:
                    continue
        return None


class Search:
    """Search tiers over one connection. ``limit`` None everywhere means every match."""

    def __init__(self, store: Store | None = None, *, conn: sqlite3.Connection | None = None):
        """Search ``store``'s replica, or the one ``conn`` is a connection to."""
        if conn is None:
            if store is None:
                raise ValueError("Search needs a store or a connection")
            conn = store.conn
        self.conn = conn

    def __call__(self, text: str, limit: int = 50) -> SearchResult:
        """Search the replica: the first ``limit`` hits and how many match (counted up to
        COUNT_CAP). Never raises for any input text."""
        raw = (text or "")[:MAX_QUERY]
        result = SearchResult(query=raw.strip())
        if not result.query:
            return result
        keys = Matches(limit)
        total, capped = 0, False
        try:
            self._collect(raw, keys)
            total, capped = self._bounded_count(raw)
        except sqlite3.Error:
            # A search box must never take the app down; whatever was found so far stands.
            capped = False
        result.hits = self.hits(keys.close())
        result.total = max(total, len(result.hits))
        result.capped = capped
        return result

    def first(self, text: str, limit: int) -> tuple[Matches, bool]:
        """The first ``limit`` matches of ``text`` in order, read without counting the rest, and
        whether they are all (fewer than ``limit`` found). Bounded reads only: what a keystroke
        costs. Never raises for any input text (what was found before an error stands, as all)."""
        keys = Matches(limit)
        try:
            self._collect((text or "")[:MAX_QUERY], keys)
        except sqlite3.Error:
            return keys.close(), True
        return keys.close(), len(keys) < limit

    def window(self, text: str, first: int) -> SearchWindow:
        """The matches of ``text`` as a list window holding the first ``first`` of them (all,
        when that is all there are): bounded reads only, what a keystroke costs."""
        keys, complete = self.first(text, first)
        return SearchWindow(self, (text or "")[:MAX_QUERY], keys, complete)

    def every(self, text: str) -> Matches:
        """Every match of ``text``, in the order ``first`` lists them (its first rows are those
        ``first`` returns), held compactly (8 bytes a match; rows are streamed from SQLite, never
        a Python object per match). Reads the whole match set: run it apart from the UI (a
        worker, its own connection). Raises sqlite3.OperationalError when interrupted."""
        keys = Matches()
        self._collect((text or "")[:MAX_QUERY], keys)
        return keys.close()

    def _collect(self, raw: str, keys: Matches) -> None:
        """Add the matches of ``raw`` to ``keys`` in order, tier by tier, each tier read up to
        ``keys.limit`` (so the first ``limit`` keys are the same whatever the limit)."""
        query = raw.strip()
        if not query:
            return
        limit = keys.limit

        def add(runs: list[Run]) -> None:
            for run in runs:
                keys.add(*run)

        add(self._exact(query, limit))
        if "@" in query or (_PHONEISH.match(query) and sum(c.isdigit() for c in query) >= 5):
            # An email address or a phone number: its exact hits and its fragments are the
            # answer; the words in it ("com", "1") would only match half the replica.
            add(self._fragment(query, limit))
            return
        terms = words(query)
        if terms:
            add(self._name_prefix(query, limit))
            add(self._words(terms, complete_last=raw[-1:].isspace(), limit=limit))
        if not keys.full() and len(query) >= 3:
            add(self._fragment(query, limit))

    def _bounded_count(self, raw: str) -> tuple[int, bool]:
        """How many customers and contacts have the typed words, counted up to COUNT_CAP (and
        whether there are more). Email and phone searches count their hits instead (0 here)."""
        query = raw.strip()
        terms = words(query)
        if not terms or "@" in query or (_PHONEISH.match(query) and sum(c.isdigit() for c in query) >= 5):
            return 0, False
        expr = fts_query(terms, complete_last=raw[-1:].isspace())
        n = sum(self.conn.execute(f"SELECT count(*) FROM (SELECT rowid FROM {table}_fts WHERE {table}_fts MATCH ? "
                                  "LIMIT ?)", (expr, COUNT_CAP + 1)).fetchone()[0]
                for table in ("customers", "contacts"))
        return min(n, COUNT_CAP), n > COUNT_CAP

    # ------------------------------------------------------------------ tiers
    # Each tier is a list of runs (kind, what matched, rowids). With a limit the rowids are read
    # at once (a bounded list); without one (every match) they are streamed from the statement
    # as ``Matches`` takes them, so no tier holds a whole match set in Python.

    def _rowids(self, sql: str, params: tuple[Any, ...], limit: int | None) -> Iterable[int]:
        if limit is None:
            return self._stream(f"{sql} LIMIT -1", params)
        if limit <= 0:
            return []
        return [r[0] for r in self.conn.execute(f"{sql} LIMIT ?", (*params, limit))]

    def _stream(self, sql: str, params: tuple[Any, ...]) -> Iterator[int]:
        """The rowids ``sql`` selects, read as they are taken (the statement runs then)."""
        for (rowid,) in self.conn.execute(sql, params):
            yield rowid

    def _exact(self, query: str, limit: int | None) -> list[Run]:
        out: list[Run] = []
        if "@" in query:
            out.append(self._keys("customer", "SELECT rowid FROM customers WHERE email = ? COLLATE NOCASE "
                                  "ORDER BY rowid", (query,), limit, "email"))
            out.append(self._keys("contact", "SELECT rowid FROM contacts WHERE email = ? COLLATE NOCASE "
                                  "ORDER BY rowid", (query,), limit, "email"))
        if _PHONEISH.match(query):
            digits = re.sub(r"\D", "", query)
            if len(digits) >= 5:
                out.append(self._keys("customer", f"SELECT rowid FROM customers WHERE {phone_key_sql('phone')} = ? "
                                      "ORDER BY rowid", (digits,), limit, "phone"))
                out.append(self._keys("contact", f"SELECT rowid FROM contacts WHERE {phone_key_sql('phone')} = ? "
                                      "ORDER BY rowid", (digits,), limit, "phone"))
        m = _TICKET.match(query)
        if m:
            out.append(self._keys("ticket", "SELECT rowid FROM tickets WHERE number = ?", (int(m.group(1)),), limit,
                                  "number"))
        order = _ORDER.match(query)
        if order:
            out += self._orders(order.group(1), limit, prefix=True)
        elif query.isascii() and query.isdigit() and len(query) <= 12:
            out += self._orders(query, limit, prefix=False)  # a bare number may be an order's too
        return out

    def _keys(self, kind: str, sql: str, params: tuple[Any, ...], limit: int | None, match: str) -> Run:
        return (kind, match, self._rowids(sql, params, limit))

    def _orders(self, digits: str, limit: int | None, *, prefix: bool) -> list[Run]:
        """Orders by number: the exact number with or without its zero padding, then (for a
        typed ``SO``) the numbers that begin with what was typed."""
        exact = list(dict.fromkeys((f"SO-{int(digits):0{ORDER_DIGITS}d}", f"SO-{digits}")))
        out = [self._keys("order", f"SELECT rowid FROM orders WHERE number IN ({', '.join('?' * len(exact))}) "
                          "ORDER BY number", tuple(exact), limit, "number")]
        if prefix:
            lo = f"SO-{digits}"
            out.append(self._keys("order", "SELECT rowid FROM orders WHERE number >= ? AND number < ? "
                                  "ORDER BY number", (lo, lo + "\uffff"), limit, "number"))
        return out

    def _name_prefix(self, query: str, limit: int | None) -> list[Run]:
        lo, hi = query, query + "\U0010ffff"
        sql = ("SELECT rowid FROM {table} WHERE name >= ? COLLATE NOCASE AND name < ? COLLATE NOCASE "
               "ORDER BY name COLLATE NOCASE")
        if limit is None:
            return [self._keys(kind, sql.format(table=_TABLES[kind]), (lo, hi), None, "name")
                    for kind in ("customer", "contact")]
        # The customers first; the contacts fill what they left of the limit.
        customers = list(self._rowids(sql.format(table="customers"), (lo, hi), limit))
        contacts = self._rowids(sql.format(table="contacts"), (lo, hi), limit - len(customers))
        return [("customer", "name", customers), ("contact", "name", contacts)]

    def _words(self, terms: list[str], *, complete_last: bool, limit: int | None) -> list[Run]:
        """Customers and contacts with every typed word.

        A small match set (RANK_BELOW or fewer) is ranked here by where the words are (name
        first); a big one (a 1-3 letter prefix) lists names whose words start with the typed
        ones first, through a name-column MATCH, then the other matches in the index's order.
        Only RANK_BELOW + 1 rows per table are read to tell the two apart: nothing is counted
        (every match of a big set is streamed, read again after the names)."""
        expr = fts_query(terms, complete_last=complete_last)
        probe = {table: list(self._rowids(f"SELECT rowid FROM {table}_fts WHERE {table}_fts MATCH ?", (expr,),
                                          RANK_BELOW + 1))
                 for table in ("customers", "contacts")}
        if len(probe["customers"]) + len(probe["contacts"]) <= RANK_BELOW:
            keys = [MatchKey("customer", r, "text") for r in probe["customers"]]
            keys += [MatchKey("contact", r, "text") for r in probe["contacts"]]
            ranked = sorted(((_rank(h, terms), k) for k, h in zip(keys, self.hits(keys), strict=True)),
                            key=lambda pair: pair[0])
            runs: list[Run] = [(k.kind, "name" if rank[0] < 2 else "text", (k.rowid,)) for rank, k in ranked]
            return runs[:limit]
        out: list[Run] = []
        for table, kind in (("customers", "customer"), ("contacts", "contact")):
            out.append(self._keys(kind, f"SELECT rowid FROM {table}_fts WHERE {table}_fts MATCH ?",
                                  (f"{{name}} : ({expr})",), limit, "name"))
        for table, kind in (("customers", "customer"), ("contacts", "contact")):
            if limit is None:
                out.append(self._keys(kind, f"SELECT rowid FROM {table}_fts WHERE {table}_fts MATCH ?", (expr,),
                                      None, "text"))
            else:
                out.append((kind, "text", probe[table][:limit]))
        return out

    def _fragment(self, query: str, limit: int | None) -> list[Run]:
        needles = []
        lowered = query.lower()
        if "@" in lowered or "." in lowered or len(words(query)) == 1:
            needles.append(lowered)
        digits = re.sub(r"\D", "", query)
        if len(digits) >= 3 and _PHONEISH.match(query):
            needles.append(digits)
        out: list[Run] = []
        for needle in needles:
            if len(needle) < 3:
                continue
            phrase = _fts_phrase(needle)
            out.append(self._keys("customer", "SELECT rowid FROM customers_tri WHERE customers_tri MATCH ?", (phrase,),
                                  limit, "fragment"))
            out.append(self._keys("contact", "SELECT rowid FROM contacts_tri WHERE contacts_tri MATCH ?", (phrase,),
                                  limit, "fragment"))
        return out

    # ------------------------------------------------------------------ rows

    def hits(self, keys: Sequence[MatchKey], conn: sqlite3.Connection | None = None) -> list[SearchHit]:
        """The hits for ``keys``, in their order (a record deleted meanwhile is left out), read
        with one statement per kind; ``conn``: another connection to the same replica."""
        conn = conn or self.conn
        by_kind: dict[str, list[int]] = {}
        for k in keys:
            by_kind.setdefault(k.kind, []).append(k.rowid)
        rows: dict[tuple[str, int], tuple[Any, ...]] = {}
        for kind, rowids in by_kind.items():
            for start in range(0, len(rowids), 500):
                chunk = rowids[start:start + 500]
                sql = _ROWS_SQL[kind].format(marks=",".join("?" * len(chunk)))
                rows.update(((kind, r[0]), r) for r in conn.execute(sql, chunk))
        return [_HIT[k.kind](rows[(k.kind, k.rowid)], k.match) for k in keys if (k.kind, k.rowid) in rows]


def _customer_hit(row: tuple[Any, ...], match: str) -> SearchHit:
    _, rid, name, company, email, phone, city = row
    detail = " · ".join(x for x in (company, email or phone, city) if x)
    return SearchHit("customer", rid, rid, name or rid, detail, match)


def _contact_hit(row: tuple[Any, ...], match: str) -> SearchHit:
    _, rid, cust, name, title, email, cname, ccompany = row
    who = cname or ccompany or cust
    detail = " · ".join(x for x in (title, f"contact at {who}", email) if x)
    return SearchHit("contact", rid, cust, name or rid, detail, match)


def _ticket_hit(row: tuple[Any, ...], match: str) -> SearchHit:
    _, rid, cust, num, subject, status = row
    return SearchHit("ticket", rid, cust, f"#{num} {subject}", status, match)


def _order_hit(row: tuple[Any, ...], match: str) -> SearchHit:
    _, rid, cust, num, date, status, amount, currency, cname, ccompany = row
    # Which order it is at a glance: whose, how much, when, where it stands.
    money = format_money(amount, currency) if amount is not None else ""
    detail = " · ".join(x for x in (cname or ccompany or cust, money, date, status) if x)
    return SearchHit("order", rid, cust, num, detail, match)


_HIT = {"customer": _customer_hit, "contact": _contact_hit, "ticket": _ticket_hit, "order": _order_hit}
_ROWS_SQL = {
    "customer": "SELECT c.rowid, c.id, c.name, c.company, c.email, c.phone, c.city FROM customers c "
                "WHERE c.rowid IN ({marks})",
    "contact": "SELECT ct.rowid, ct.id, ct.customer_id, ct.name, ct.title, ct.email, c.name, c.company "
               "FROM contacts ct LEFT JOIN customers c ON c.id = ct.customer_id WHERE ct.rowid IN ({marks})",
    "ticket": "SELECT rowid, id, customer_id, number, subject, status FROM tickets WHERE rowid IN ({marks})",
    "order": "SELECT o.rowid, o.id, o.customer_id, o.number, o.order_date, o.status, o.amount, o.currency, c.name, "
             "c.company FROM orders o LEFT JOIN customers c ON c.id = o.customer_id WHERE o.rowid IN ({marks})",
}


@dataclass(eq=False)
class SearchWindow:
    """A search's matches as a list window (count, rows at any position, a record's position).

    Made from ``Search.first`` (``complete`` false while more may match): until ``complete``
    it holds only the first matches, and ``count`` finds them all at once on this thread (``G``
    before the count from a worker has come); ``found_all`` takes that count's keys.

    The search box is the list's filter: ``text`` (a `/` filter) is not accepted here."""

    search: Search
    query: str
    keys: Matches
    complete: bool

    @staticmethod
    def _no_filter(text: str) -> None:
        if text.strip():
            raise ValueError("search results are narrowed in the search box, not with a `/` filter")

    def found_all(self, keys: Matches) -> None:
        """Every match, from ``Search.every`` on another connection."""
        self.keys = keys
        self.complete = True

    def count(self, text: str = "") -> int:
        """How many match: all of them (found now when not yet complete)."""
        self._no_filter(text)
        if not self.complete:
            self.found_all(self.search.every(self.query))
        return len(self.keys)

    def rows(self, offset: int, limit: int, text: str = "", *, total: int | None = None) -> list[dict[str, Any]]:
        """The matches at positions ``offset`` .. ``offset + limit - 1`` as rows of the list."""
        self._no_filter(text)
        return [_hit_row(h) for h in self.search.hits(self.keys[max(0, offset):max(0, offset) + max(0, limit)])]

    def batches(self, text: str = "", size: int = 500, *,
                conn: sqlite3.Connection | None = None) -> Iterator[list[dict[str, Any]]]:
        """Every match (all found first), ``size`` at a time, read with ``conn`` if given."""
        self._no_filter(text)
        keys = self.keys if self.complete else Search(conn=conn or self.search.conn).every(self.query)
        for start in range(0, len(keys), size):
            yield [_hit_row(h) for h in self.search.hits(keys[start:start + size], conn)]

    def position(self, record_id: str, text: str = "") -> int | None:
        """Where the match keyed ``kind:id`` sits among those held, or None."""
        self._no_filter(text)
        kind, _, rid = record_id.partition(":")
        table = _TABLES.get(kind)
        if table is None:
            return None
        row = self.search.conn.execute(f"SELECT rowid FROM {table} WHERE id = ?", (rid,)).fetchone()
        if row is None:
            return None
        return self.keys.position(kind, row[0])


def _hit_row(h: SearchHit) -> dict[str, Any]:
    return {"key": f"{h.kind}:{h.id}", "kind": h.kind, "id": h.id, "customer_id": h.customer_id,
            "title": h.title, "detail": h.detail, "match": h.match}
