"""Deterministic, realistic demo data: the same ``seed`` and ``now`` always give the same rows.

Per customer, on average: 2 contacts, 3 orders over the last 24 months, 0.5 tickets (every status
and priority, SLA due times, some overdue), 0.3 deals (every stage; lost ones with a reason), 2
activities (every kind; calls and visits with an outcome, a duration and mostly the contact spoken
to) plus the first reply to most tickets, and 0.4 tasks (follow-ups, some about a ticket or a
deal; overdue, due today, upcoming and done). Orders of the last 90 days have their status history
(every status they went through, and the cancellation and refund requests that preceded a
cancelled or refunded order; a few open requests). Tasks, ticket replies, and what was added for
orders, calls and deals, draw from random streams of their own. Rows go in through the store's
bulk loader (one transaction, indexes built at the end), and still get versions and change rows,
so the feed and snapshots work on seeded data.

The data is coherent as a person reads it (tests/server/test_seed_coherence.py): created <=
updated <= now for every record; about one order in seven is still on its way (pending, paid,
shipped) or just delivered; an order's history fits between its placing and now; won and lost
deals closed between their creation and today, open ones close ahead; follow-ups come after what
they are about and fall due after they are made, from a few days ago to two weeks ahead. Tickets
are answered as in a healthy queue: every ticket that was worked on (pending, solved, closed, most
open ones) has a first reply, an email from its agent, in hours, mostly within its SLA; new ones
are not given one.
"""

from __future__ import annotations

import datetime as dt
import random
import re
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

from crm_server import seed_data as words
from crm_server.store import Store
from crm_tui.core.domain import (
    ACTIVE_TICKET_STATUSES,
    ACTIVITY_OUTCOMES,
    CONVERSATION_KINDS,
    ENTITIES,
    SLA_HOURS,
    format_datetime,
    parse_datetime,
    utcnow,
)

FLUSH_EVERY = 5000  # customers per bulk insert round
HISTORY_DAYS = 90  # orders this recent have their status history
RECENT_ORDERS = 0.14  # share of orders still on their way (pending, paid, shipped) or just delivered
# How many days ago (from, to) an order in that status was placed.
RECENT_DAYS = {"pending": (0, 2), "paid": (0, 4), "shipped": (2, 9), "delivered": (5, 14)}

# The seed builds rows as tuples in wire column order (fast); fail loudly if the domain changes.
_EXPECTED = {
    "territory": ("id", "name", "region"),
    "user": ("id", "name", "email", "role", "team", "territories", "active"),
    "customer": ("id", "name", "company", "email", "phone", "city", "country", "tier", "territory", "owner_id",
                 "tags", "lifetime_value", "created_at", "updated_at"),
    "contact": ("id", "customer_id", "name", "title", "email", "phone", "is_primary", "created_at", "updated_at"),
    "ticket": ("id", "customer_id", "number", "subject", "description", "status", "priority", "assignee_id", "team",
               "sla_due", "created_at", "updated_at"),
    "deal": ("id", "customer_id", "title", "stage", "amount", "currency", "probability", "close_date", "owner_id",
             "created_at", "updated_at", "lost_reason"),
    "order": ("id", "customer_id", "number", "order_date", "amount", "currency", "status", "created_at", "updated_at"),
    "activity": ("id", "customer_id", "kind", "subject", "body", "ticket_id", "deal_id", "author_id", "internal",
                 "occurred_at", "created_at", "updated_at", "outcome", "duration_min", "contact_id"),
    "order_event": ("id", "customer_id", "order_id", "kind", "status", "reason", "author_id", "occurred_at",
                    "created_at", "updated_at"),
    "task": ("id", "customer_id", "title", "notes", "due_at", "owner_id", "status", "ticket_id", "deal_id", "done_at",
             "created_at", "updated_at"),
}
ATTACHED = ("customer", "contact", "ticket", "deal", "order", "activity", "task", "order_event")
for _name, _cols in _EXPECTED.items():
    if ENTITIES[_name].columns[:-1] != _cols:
        raise RuntimeError(f"crm_server.seed is out of date with the {_name} entity")

TIER_AMOUNTS = {"bronze": (20, 500), "silver": (100, 2_000), "gold": (500, 10_000), "platinum": (2_000, 50_000)}
DEAL_PROBABILITY = {"lead": 10, "qualified": 25, "proposal": 50, "negotiation": 75, "won": 100, "lost": 0}


class SeedError(Exception):
    """The database cannot be seeded (it already has data)."""


@dataclass(frozen=True)
class SeedReport:
    customers: int
    records: int
    seconds: float


def ascii_word(text: str) -> str:
    """'Müller' -> 'muller': for email addresses and domains."""
    return re.sub(r"[^a-z0-9]", "", unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower())


class _Clock:
    """Date and date-time strings relative to a fixed reference "now", cheap to make in bulk."""

    def __init__(self, now: dt.datetime):
        self.now = now.astimezone(dt.UTC).replace(microsecond=0)
        today = self.now.date()
        self.days = [(today - dt.timedelta(days=i)).isoformat() for i in range(0, 2000)]
        self.future = [(today + dt.timedelta(days=i)).isoformat() for i in range(0, 400)]

    def stamp(self, rng: random.Random, days_ago: int) -> str:
        """A date-time ``days_ago`` days back at a working-hours time (never after now); for
        today, earlier today (so a date and its time agree, even just after midnight)."""
        if days_ago <= 0:
            since_midnight = self.now.hour * 3600 + self.now.minute * 60 + self.now.second
            limit = min(8 * 3600, since_midnight)
            seconds = rng.randrange(60, limit) if limit > 60 else 0
            return format_datetime(self.now - dt.timedelta(seconds=seconds))
        return f"{self.days[days_ago]}T{rng.randrange(7, 19):02d}:{rng.randrange(60):02d}:{rng.randrange(60):02d}Z"


def seed_database(
    store: Store,
    *,
    customers: int,
    seed: int = 1,
    now: dt.datetime | None = None,
    progress: Callable[[int], None] | None = None,
) -> SeedReport:
    """Fill an empty database with territories, users and ``customers`` customers with history.

    Deterministic for a given (customers, seed, now). Raises SeedError if the database already
    has territories, users or customers.
    """
    started = time.perf_counter()
    with store.read() as tx:
        if any(tx.count(ENTITIES[e], None) for e in ("territory", "user", "customer")):
            raise SeedError("the database already has data; seed a new database file")
    gen = _Generator(random.Random(seed), _Clock(now or utcnow()), task_rng=random.Random(f"tasks-{seed}"),
                     later=random.Random(f"crm-tui history {seed}"), replies=random.Random(f"replies-{seed}"))
    records = 0
    with store.bulk_load() as loader:
        records += loader.add(ENTITIES["territory"], gen.territories())
        records += loader.add(ENTITIES["user"], gen.users())
        done = 0
        while done < customers:
            batch = min(FLUSH_EVERY, customers - done)
            rows = gen.customers(done, batch)
            for name in ATTACHED:
                records += loader.add(ENTITIES[name], rows[name])
            done += batch
            if progress:
                progress(done)
        loader.set_counter("ticket", gen.ticket_number)
        loader.set_counter("order", gen.order_number)
    return SeedReport(customers=customers, records=records, seconds=time.perf_counter() - started)


class _Generator:
    def __init__(self, rng: random.Random, clock: _Clock, task_rng: random.Random, later: random.Random,
                 replies: random.Random):
        # ``later`` draws what orders, calls and deals gained since, ``replies`` the tickets' first
        # answers, each leaving ``rng``'s stream as it was.
        self.rng, self.clock, self.task_rng, self.later, self.replies = rng, clock, task_rng, later, replies
        # The current customer's tickets: id, opened, status, priority, subject, assignee, team.
        self.opened: list[tuple[str, dt.datetime, str, str, str, str | None, str]] = []
        self.ticket_number = 0
        self.order_number = 0
        self.counts = dict.fromkeys(ATTACHED[1:], 0)
        self.deal_created: dict[str, str] = {}  # the current customer's deals: when each was created
        self.reps: dict[str, list[str]] = {t[0]: [] for t in words.TERRITORIES}
        self.agents: dict[str, list[str]] = {team: [] for team in words.TEAMS}
        self.all_agents: list[str] = []
        weights = [t[3] for t in words.TERRITORIES]
        # A table of territories repeated by weight: one randrange picks a weighted territory.
        self.territory_table = [t for t, w in zip(words.TERRITORIES, weights, strict=True) for _ in range(w)]

    def _person(self) -> tuple[str, str]:
        return self.rng.choice(words.FIRST_NAMES), self.rng.choice(words.LAST_NAMES)

    def territories(self) -> list[tuple]:
        """Territory rows."""
        return [(tid, name, region) for tid, name, region, _, _ in words.TERRITORIES]

    def users(self) -> list[tuple]:
        """An admin, agents in teams, and a sales rep (or two) per territory."""
        rows: list[tuple[str, str, str, str, str | None, list[str], bool]] = [
            ("u-admin", "Morgan Admin", "admin@crm.example.com", "admin", None, [], True)]
        used = {"u-admin"}

        def new_user(role: str, team: str | None, territories: list[str]) -> str:
            while True:
                first, last = self._person()
                uid = f"u-{ascii_word(first)}-{ascii_word(last)}"
                if uid not in used:
                    break
            used.add(uid)
            email = f"{ascii_word(first)}.{ascii_word(last)}@crm.example.com"
            rows.append((uid, f"{first} {last}", email, role, team, territories, True))
            return uid

        for team in words.TEAMS:
            for _ in range(4):
                uid = new_user("agent", team, [])
                self.agents[team].append(uid)
                self.all_agents.append(uid)
        ids = [t[0] for t in words.TERRITORIES]
        for i, tid in enumerate(ids):
            # Every territory has its own rep; every third rep also covers the next territory.
            covered = [tid, ids[(i + 1) % len(ids)]] if i % 3 == 0 else [tid]
            uid = new_user("sales", "field-sales", covered)
            for t in covered:
                self.reps[t].append(uid)
        return rows

    def customers(self, start: int, n: int) -> dict[str, list[tuple]]:
        """Customers ``start`` .. ``start + n`` and their records, rows by entity name."""
        rng, clock = self.rng, self.clock
        out: dict[str, list[tuple]] = {k: [] for k in ATTACHED}
        tiers = ("bronze",) * 5 + ("silver",) * 3 + ("gold",) * 2 + ("platinum",)
        for i in range(start, start + n):
            cid = f"cus-{i + 1:07d}"
            territory, _, _, _, places = self.territory_table[rng.randrange(len(self.territory_table))]
            country, cities = places[rng.randrange(len(places))]
            phone_prefix, currency, tld = words.COUNTRIES[country]
            city = cities[rng.randrange(len(cities))]
            tier = tiers[rng.randrange(len(tiers))]
            business = rng.random() < 0.75
            if business:
                brand = f"{rng.choice(words.COMPANY_WORDS)} {rng.choice(words.COMPANY_TRADES)}"
                name = brand if rng.random() < 0.7 else f"{brand} {city}"
                company = f"{brand} {words.LEGAL_FORMS[country]}"
                domain = f"{ascii_word(brand)}.{tld}"
                email = f"{rng.choice(('info', 'hello', 'accounts', 'office', 'service'))}@{domain}"
            else:
                first, last = self._person()
                name, company, domain = f"{first} {last}", None, None
                email = f"{ascii_word(first)}.{ascii_word(last)}{rng.randrange(100)}@{rng.choice(words.MAIL_PROVIDERS)}"
            phone = f"{phone_prefix} {rng.randrange(10, 999)} {rng.randrange(100000, 9999999)}"
            reps = self.reps[territory]
            owner = reps[rng.randrange(len(reps))] if reps and rng.random() < 0.9 else None
            tags = sorted(set(rng.sample(words.TAGS, rng.choice((0, 0, 1, 1, 2, 3)))))
            age = rng.randrange(30, 1500)  # days since the customer was created

            self.deal_created.clear()
            ltv = self._orders(out["order"], out["order_event"], cid, territory, tier, currency, age)
            tickets = self._tickets(out["ticket"], cid, territory, age)
            deals = self._deals(out["deal"], cid, territory, tier, currency, reps, age)
            contacts = self._contacts(out["contact"], cid, territory, domain, phone_prefix, age)
            self._activities(out["activity"], cid, territory, tickets, deals, reps, age, contacts)
            self._first_replies(out["activity"], cid, territory)
            self._tasks(out["task"], cid, territory, tickets, deals, owner)
            created = clock.stamp(rng, age)
            updated = clock.stamp(rng, rng.randrange(0, age))
            out["customer"].append(
                (cid, name, company, email, phone, city, country, tier, territory, owner, tags, ltv, created, updated)
            )
        return out

    def _next(self, kind: str, prefix: str) -> str:
        self.counts[kind] += 1
        return f"{prefix}-{self.counts[kind]:07d}"

    def _contacts(self, out: list, cid: str, territory: str, domain: str | None, prefix: str, age: int) -> list[str]:
        rng = self.rng
        ids = []
        for k in range(rng.choice((1, 1, 2, 2, 2, 3, 3))):
            first, last = self._person()
            host = domain or rng.choice(words.MAIL_PROVIDERS)
            email = f"{ascii_word(first)}.{ascii_word(last)}@{host}"
            phone = f"{prefix} {rng.randrange(10, 999)} {rng.randrange(100000, 9999999)}" if rng.random() < 0.8 else None
            created = self.clock.stamp(rng, rng.randrange(0, age))
            ids.append(self._next("contact", "con"))
            out.append((ids[-1], cid, f"{first} {last}", rng.choice(words.TITLES), email, phone,
                        k == 0, created, created, territory))
        return ids

    def _orders(self, out: list, history: list, cid: str, territory: str, tier: str, currency: str, age: int) -> int:
        rng, clock, later = self.rng, self.clock, self.later
        lo, hi = TIER_AMOUNTS[tier]
        ltv = 0
        self.numbers: list[str] = []  # this customer's order numbers, for tickets that mention one
        self.placed: list[str] = []  # when each of them was placed
        for _ in range(rng.choice((0, 1, 2, 3, 3, 4, 5, 6))):
            days = rng.randrange(0, min(age, 730))
            if later.random() < RECENT_ORDERS:
                # An order still on its way: placed recently enough for its status.
                status = later.choice(("pending", "paid", "paid", "shipped", "shipped", "delivered"))
                first, last = RECENT_DAYS[status]
                days = later.randrange(first, min(last, age))
            elif days < 14:
                status = rng.choice(("paid", "shipped", "shipped", "delivered")) if days >= 3 else \
                    rng.choice(("pending", "paid"))
            else:
                r = rng.random()
                status = "delivered" if r < 0.85 else ("cancelled" if r < 0.92 else "refunded")
            amount = rng.randrange(lo * 100, hi * 100)
            if status not in ("cancelled", "refunded"):
                ltv += amount
            self.order_number += 1
            created = clock.stamp(rng, days)
            updated = max(created, clock.stamp(rng, max(0, days - rng.randrange(0, 5))))
            oid = self._next("order", "ord")
            self.numbers.append(f"SO-{self.order_number:08d}")
            self.placed.append(created)
            if days < HISTORY_DAYS:
                # The order was last changed when it reached its status (or a request was made).
                updated = self._history(history, cid, oid, territory, status, created)
            out.append((oid, cid, self.numbers[-1], clock.days[days], amount,
                        currency, status, created, updated, territory))
        return ltv

    def _history(self, out: list, cid: str, oid: str, territory: str, status: str, placed: str) -> str:
        """The status events an order went through up to ``status`` (and the request that led to
        a cancellation or a refund; now and then an open refund request on a delivered order).
        Each step follows the one before within the time since the order was placed; returns
        when the last one happened."""
        later, now = self.later, self.clock.now
        path = {"pending": ["pending"], "paid": ["pending", "paid"], "shipped": ["pending", "paid", "shipped"],
                "delivered": ["pending", "paid", "shipped", "delivered"],
                "cancelled": ["pending", "paid", "cancel_request", "cancelled"],
                "refunded": ["pending", "paid", "shipped", "delivered", "refund_request", "refunded"]}[status]
        if status == "delivered" and later.random() < 0.04:
            path.append("refund_request")
        at = dt.datetime.strptime(placed, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
        step_room = (now - at) / len(path)  # every step fits between the order and now
        stamp = placed
        for i, step in enumerate(path):
            if i:
                gap = dt.timedelta(hours=later.randrange(2, 60), minutes=later.randrange(60))
                at = min(now, at + min(gap, step_room))
            stamp = format_datetime(at)
            self.counts["order_event"] += 1
            eid = f"oev-{self.counts['order_event']:07d}"
            if step.endswith("_request"):
                reason = later.choice(words.ORDER_REQUEST_REASONS[step])
                out.append((eid, cid, oid, step, None, reason, later.choice(self.all_agents), stamp, stamp, stamp,
                            territory))
            else:
                out.append((eid, cid, oid, "status", step, None, None, stamp, stamp, stamp, territory))
        return stamp

    def _tickets(self, out: list, cid: str, territory: str, age: int) -> list[tuple[str, dt.datetime]]:
        rng, clock = self.rng, self.clock
        r = rng.random()
        ids = []
        self.opened.clear()
        for _ in range(2 if r < 0.075 else (1 if r < 0.425 else 0)):
            status = rng.choice(("new", "open", "open", "pending", "pending", "solved", "solved", "closed", "closed", "closed"))
            priority = rng.choice(("low", "low", "normal", "normal", "normal", "normal", "high", "high", "urgent"))
            # Open tickets are recent: most are inside their SLA, about a quarter overdue, as in a
            # healthy queue. Solved and closed ones are older.
            if status in ACTIVE_TICKET_STATUSES:
                hours_ago = max(1, round(SLA_HOURS[priority] * rng.uniform(0.05, 1.33)))
            else:
                hours_ago = rng.randrange(24 * 7, 24 * (min(age, 365) - 1))  # after the customer was created
            created_dt = clock.now - dt.timedelta(hours=hours_ago, minutes=rng.randrange(60))
            created = format_datetime(created_dt)
            sla_due = format_datetime(created_dt + dt.timedelta(hours=SLA_HOURS[priority]))
            team = rng.choice(words.TEAMS)
            assignee = rng.choice(self.agents[team]) if status != "new" else None
            self.ticket_number += 1
            tid = self._next("ticket", "tkt")
            ids.append((tid, created_dt))
            updated = format_datetime(created_dt + (clock.now - created_dt) * rng.random())
            subject, body = rng.choice(words.TICKET_SUBJECTS), rng.choice(words.TICKET_BODIES)
            # A ticket mentions an order placed before it was opened: the latest one.
            before = [(placed, number) for placed, number in zip(self.placed, self.numbers, strict=True)
                      if placed <= created]
            if before and self.later.random() < 0.4:
                body = f"{body} About order {max(before)[1]}."
            out.append((tid, cid, self.ticket_number, subject, body,
                        status, priority, assignee, team, sla_due, created, updated, territory))
            self.opened.append((tid, created_dt, status, priority, subject, assignee, team))
        return ids

    def _first_replies(self, out: list, cid: str, territory: str) -> None:
        """The first answer to each of the customer's tickets that was worked on: an email from its
        agent, within the SLA six times in seven, never after now. New tickets wait for theirs."""
        rng, now = self.replies, self.clock.now
        for tid, created, status, priority, subject, assignee, team in self.opened:
            if status == "new" or (status == "open" and rng.random() < 0.3):
                continue
            agent = assignee or rng.choice(self.agents[team])
            sla = SLA_HOURS[priority]
            hours = sla * (rng.uniform(0.03, 0.9) if rng.random() < 6 / 7 else rng.uniform(1.1, 3.0))
            if created + dt.timedelta(hours=hours) > now:  # a recent ticket: answered since it came in
                hours = (now - created).total_seconds() / 3600 * rng.uniform(0.1, 0.9)
            occurred = format_datetime(created + dt.timedelta(hours=hours))
            out.append((self._next("activity", "act"), cid, "email", f"Re: {subject}", rng.choice(words.TICKET_REPLIES),
                        tid, None, agent, False, occurred, occurred, occurred, None, None, None, territory))

    def _deals(self, out: list, cid: str, territory: str, tier: str, currency: str, reps: list[str], age: int) -> list[str]:
        rng, clock = self.rng, self.clock
        if rng.random() >= 0.3:
            return []
        stage = rng.choice(tuple(DEAL_PROBABILITY))
        lo, hi = TIER_AMOUNTS[tier]
        title = rng.choice(words.DEAL_TITLES).format(year=clock.now.year + 1, n=rng.randrange(5, 200))
        close = clock.days[rng.randrange(1, 180)] if stage in ("won", "lost") else clock.future[rng.randrange(7, 200)]
        created_days = rng.randrange(0, min(age, 365))
        created = clock.stamp(rng, created_days)
        updated = created
        if stage in ("won", "lost"):
            # Closed between its creation and today, and last changed when it closed.
            closed_days = self.later.randrange(0, created_days + 1)
            close = clock.days[closed_days]
            updated = max(created, clock.stamp(self.later, closed_days))
        did = self._next("deal", "del")
        self.deal_created[did] = created
        owner = rng.choice(reps) if reps else None
        lost_reason = self.later.choice(words.LOST_REASONS) if stage == "lost" else None
        out.append((did, cid, title, stage, rng.randrange(lo * 300, hi * 1000), currency, DEAL_PROBABILITY[stage], close,
                    owner, created, updated, lost_reason, territory))
        return [did]

    def _activities(self, out: list, cid: str, territory: str, tickets: list[tuple[str, dt.datetime]], deals: list[str],
                    reps: list[str], age: int, contacts: list[str]) -> None:
        rng, clock, later = self.rng, self.clock, self.later
        for _ in range(rng.choice((0, 1, 2, 2, 3, 4))):
            kind = rng.choice(("note", "call", "email", "visit"))
            author = rng.choice(reps) if kind == "visit" and reps else rng.choice(self.all_agents)
            linked = rng.choice(tickets) if tickets and kind in ("note", "email") and rng.random() < 0.4 else None
            ticket = linked[0] if linked else None
            deal = rng.choice(deals) if deals and kind in ("call", "visit") and rng.random() < 0.4 else None
            if linked:  # work on a ticket happens after it was opened
                occurred = format_datetime(linked[1] + (clock.now - linked[1]) * rng.random())
            else:
                occurred = clock.stamp(rng, rng.randrange(0, min(age, 730)))
            if deal and occurred < self.deal_created[deal]:  # a call about a deal comes after it was made
                start = parse_datetime(self.deal_created[deal])
                occurred = format_datetime(start + (clock.now - start) * later.random())
            outcome = duration = contact = None
            if kind in CONVERSATION_KINDS:
                outcome = later.choice(ACTIVITY_OUTCOMES)
                reached = outcome not in ("voicemail", "no_answer")
                duration = (later.randrange(3, 45) if kind == "call" else later.randrange(20, 120)) if reached else 1
                contact = later.choice(contacts) if contacts and later.random() < 0.85 else None
            out.append((self._next("activity", "act"), cid, kind, rng.choice(words.ACTIVITY_SUBJECTS[kind]),
                        rng.choice(words.ACTIVITY_BODIES), ticket, deal, author, kind == "note" and rng.random() < 0.5,
                        occurred, occurred, occurred, outcome, duration, contact, territory))

    def _tasks(self, out: list, cid: str, territory: str, tickets: list[tuple[str, dt.datetime]], deals: list[str],
               owner: str | None) -> None:
        rng, now = self.task_rng, self.clock.now
        ticket_created = dict(tickets)
        r = rng.random()
        for _ in range(2 if r < 0.06 else (1 if r < 0.34 else 0)):
            about = rng.random()
            ticket = rng.choice(tickets)[0] if tickets and about < 0.5 else None
            deal = rng.choice(deals) if deals and ticket is None and about < 0.8 else None
            kind = "ticket" if ticket else ("deal" if deal else "customer")
            who = rng.choice(self.all_agents) if ticket or owner is None else owner
            # Open follow-ups are due from a few days ago to two weeks ahead (some overdue, some
            # today); done ones were due in the last two months, on a quarter hour of a working day.
            done = rng.random() < 0.25
            days = -rng.randrange(1, 60) if done else rng.randrange(-4, 15)
            day = now.date() + dt.timedelta(days=days)
            due_dt = dt.datetime(day.year, day.month, day.day, rng.randrange(8, 18), 15 * rng.randrange(4), tzinfo=dt.UTC)
            created_dt = due_dt - dt.timedelta(days=rng.randrange(1, 10), hours=rng.randrange(8))
            # A follow-up is made after what it is about, and falls due after it is made.
            since = ticket_created.get(ticket) if ticket else (
                parse_datetime(self.deal_created[deal]) if deal else None)
            if since is not None:
                created_dt = max(created_dt, since)
                if due_dt <= since:
                    due_dt = since + dt.timedelta(hours=24 + 4 * rng.randrange(12))
                    due_dt = due_dt.replace(minute=due_dt.minute // 15 * 15, second=0)
            created_dt = min(now, created_dt)
            done_at = (format_datetime(max(created_dt, min(now, due_dt + dt.timedelta(hours=rng.randrange(-6, 30)))))
                       if done else None)
            created = format_datetime(created_dt)
            notes = rng.choice(words.TASK_NOTES) if rng.random() < 0.4 else None
            out.append((self._next("task", "tsk"), cid, rng.choice(words.TASK_TITLES[kind]), notes,
                        format_datetime(due_dt), who, "done" if done else "open", ticket, deal, done_at, created,
                        done_at or created, territory))
