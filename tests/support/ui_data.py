"""A deterministic replica for the UI tests: fixed ids, names and dates around a fixed clock.

The replica is filled the honest way: server-shaped change pages go through
``replica.server_apply.apply_page``; the pending ops, the conflict and the rejected ops come from local
writes, ``outbox.next_batch`` and ``results.apply`` with server-shaped results. Only the
sync history (which the sync engine writes and no cache API exposes for writing) is inserted
directly.

Everything a screen shows is derived from ``NOW`` so snapshots never move with the wall clock.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cache.replica import Replica
from crm_tui.core.domain import ENTITIES, format_datetime
from support.keys import TEST_KEY

NOW = dt.datetime(2026, 11, 25, 9, 0, 0, tzinfo=dt.UTC)
NOW_ISO = "2026-11-25T09:00:00Z"

ME = {"id": "us_ada", "name": "Ada Lovelace", "role": "agent", "team": "support",
      "territories": ["te_north", "te_south"], "all_territories": False}

TERRITORIES = [
    {"id": "te_north", "name": "North", "region": "EU"},
    {"id": "te_south", "name": "South", "region": "EU"},
    {"id": "te_west", "name": "West", "region": "US"},
]

USERS = [
    {"id": "us_ada", "name": "Ada Lovelace", "email": "ada@crm.example", "role": "agent", "team": "support",
     "territories": ["te_north", "te_south"], "active": True},
    {"id": "us_grace", "name": "Grace Hopper", "email": "grace@crm.example", "role": "agent", "team": "support",
     "territories": ["te_north"], "active": True},
    {"id": "us_alan", "name": "Alan Turing", "email": "alan@crm.example", "role": "agent", "team": "billing",
     "territories": ["te_west"], "active": True},
    {"id": "us_kat", "name": "Katherine Johnson", "email": "kat@crm.example", "role": "sales", "team": "sales",
     "territories": ["te_north", "te_south", "te_west"], "active": True},
    {"id": "us_meg", "name": "Margaret Hamilton", "email": "meg@crm.example", "role": "admin", "team": "ops",
     "territories": [], "active": True},
]

PEOPLE = [
    "Anna Schmidt", "Bruno Keller", "Carla Rossi", "David Okafor", "Elena Petrova", "Farid Haddad",
    "Greta Lindqvist", "Hiro Tanaka", "Ines Duarte", "Jonas Weber", "Kaja Novak", "Luca Bianchi",
    "Maya Cohen", "Nils Berg", "Olga Ivanova", "Pablo Ortega", "Quinn Murphy", "Rosa Jimenez",
    "Sven Larsen", "Tara Singh", "Ugo Moretti", "Vera Horvat", "Wim de Vries", "Xenia Pavlova",
    "Yusuf Demir", "Zoe Martin", "Amir Karimi", "Beatriz Lima", "Conor Walsh", "Dana Levi",
]
TRADES = ["Logistics", "Foods", "Bau", "Systems", "Textiles", "Media"]
CITIES = [("Berlin", "DE"), ("Hamburg", "DE"), ("Milan", "IT"), ("Lagos", "NG"), ("Vienna", "AT"),
          ("Lyon", "FR")]
TIERS = ["gold", "silver", "bronze", "platinum", None]
SUBJECTS = [
    "Invoice shows the wrong VAT", "Cannot log in to the portal", "Delivery arrived damaged",
    "Change of billing address", "Export to CSV fails", "Refund not received", "Password reset loops",
    "Order stuck in pending", "Duplicate charge on card", "Request for a quote",
]
DEAL_TITLES = ["Fleet renewal", "Annual support plan", "Warehouse scanners", "Cloud migration",
               "Onboarding package", "Spare parts contract"]

N_CUSTOMERS = 30
RICH_CUSTOMER = "cu_001"  # many orders and activities: exercises paging
RICH_ORDERS = 120
RICH_ACTIVITIES = 60


def cid(i: int) -> str:
    return f"cu_{i:03d}"


def _iso(value: dt.datetime) -> str:
    return format_datetime(value)


def _row(entity_name: str, rec: dict[str, Any]) -> list[Any]:
    rec = {"version": 1, **rec}
    return [rec.get(c) for c in ENTITIES[entity_name].columns]


def _upsert(entity_name: str, records: list[dict[str, Any]]) -> dict[str, Any]:
    return {"op": "upsert", "entity": entity_name, "columns": list(ENTITIES[entity_name].columns),
            "rows": [_row(entity_name, r) for r in records]}


# ----------------------------------------------------------------------------- records


def customers() -> list[dict[str, Any]]:
    out = []
    for i in range(1, N_CUSTOMERS + 1):
        name = PEOPLE[i - 1]
        surname = name.split()[-1]
        city, country = CITIES[i % len(CITIES)]
        created = NOW - dt.timedelta(days=400 - i * 7)
        out.append({
            "id": cid(i), "name": name, "company": f"{surname} {TRADES[i % len(TRADES)]}",
            "email": f"{name.split()[0].lower()}@{surname.lower()}.example", "phone": f"+49 30 555{i:04d}",
            "city": city, "country": country, "tier": TIERS[i % len(TIERS)],
            "territory": TERRITORIES[i % 3]["id"], "owner_id": ["us_kat", "us_ada", None][i % 3],
            "tags": ["key-account"] if i % 4 == 1 else [], "lifetime_value": (i * 7919 % 500) * 100_00,
            "created_at": _iso(created), "updated_at": _iso(created + dt.timedelta(days=30)),
        })
    return out


def contacts() -> list[dict[str, Any]]:
    out = []
    titles = ["CEO", "Head of Purchasing", "IT Manager", "Accountant"]
    for i in range(1, N_CUSTOMERS + 1):
        n = 3 if i == 1 else 1 + i % 2
        for j in range(1, n + 1):
            first = PEOPLE[(i + j * 11) % len(PEOPLE)].split()[0]
            last = PEOPLE[i - 1].split()[-1]
            out.append({
                "id": f"co_{i:03d}_{j}", "customer_id": cid(i), "name": f"{first} {last}",
                "title": titles[(i + j) % len(titles)], "email": f"{first.lower()}.{last.lower()}@mail.example",
                "phone": f"+49 40 77{i:03d}{j}", "is_primary": j == 1,
                "created_at": _iso(NOW - dt.timedelta(days=300)), "updated_at": _iso(NOW - dt.timedelta(days=200)),
            })
    return out


def orders() -> list[dict[str, Any]]:
    statuses = ["delivered", "shipped", "paid", "pending", "cancelled", "refunded", "delivered"]
    out = []
    n = 0
    for i in range(1, N_CUSTOMERS + 1):
        count = RICH_ORDERS if i == 1 else i % 5
        for j in range(count):
            n += 1
            day = (NOW - dt.timedelta(days=j * 3 + i)).date()
            out.append({
                "id": f"or_{n:04d}", "customer_id": cid(i), "number": f"SO-{10000 + n:08d}", "order_date": day.isoformat(),
                "amount": (n * 3571 % 9000 + 100) * 100 + (n * 37 % 100), "currency": "EUR" if n % 4 else "USD",
                "status": statuses[n % len(statuses)], "created_at": _iso(NOW - dt.timedelta(days=j * 3 + i)),
                "updated_at": _iso(NOW - dt.timedelta(days=j * 3 + i)),
            })
    return out


TICKET_STATUS_CYCLE = ["new", "open", "pending", "open", "new", "solved", "open", "closed", "pending", "open"]
TICKET_PRIORITY_CYCLE = ["urgent", "high", "normal", "low", "normal", "high", "normal"]
ASSIGNEE_CYCLE = ["us_ada", "us_grace", None, "us_alan", "us_ada", "us_grace"]
SLA_OFFSET_HOURS = [-26, -3, 1, 4, 9, 20, 47, -1, 70, 6]
N_TICKETS = 40
# Tickets of cu_001 that mention its order SO-00010001, written as people do.
ORDER_WITH_HISTORY = "or_0001"  # cu_001's newest order, shipped
QUIET_ORDER = "or_0002"  # no history, no ticket mentions it
MENTIONS = {9: "Customer asks where order SO-00010001 is; tracking shows no movement.",
            17: "Two items missing from so-10001, the rest arrived fine."}


def tickets() -> list[dict[str, Any]]:
    out = []
    for i in range(N_TICKETS):
        assignee = ASSIGNEE_CYCLE[i % len(ASSIGNEE_CYCLE)]
        created = NOW - dt.timedelta(hours=i * 5 + 30)
        out.append({
            "id": f"ti_{i + 1:03d}", "customer_id": cid(1 if i % 8 == 0 else (i * 7) % N_CUSTOMERS + 1),
            "number": 1001 + i, "subject": SUBJECTS[(i * 3) % len(SUBJECTS)],
            "description": MENTIONS.get(i + 1, f"Reported by phone. Case {1001 + i}."),
            "status": TICKET_STATUS_CYCLE[i % 10],
            "priority": TICKET_PRIORITY_CYCLE[i % len(TICKET_PRIORITY_CYCLE)], "assignee_id": assignee,
            "team": "billing" if assignee == "us_alan" else "support",
            "sla_due": _iso(NOW + dt.timedelta(hours=SLA_OFFSET_HOURS[i % len(SLA_OFFSET_HOURS)], minutes=i)),
            "created_at": _iso(created), "updated_at": _iso(created + dt.timedelta(hours=2)),
        })
    return out


N_DEALS = 24


def deals() -> list[dict[str, Any]]:
    stages = ["lead", "qualified", "proposal", "negotiation", "won", "lost"]
    out = []
    for i in range(N_DEALS):
        stage = stages[i % len(stages)]
        out.append({
            "id": f"de_{i + 1:03d}", "customer_id": cid(1 if i < 3 else (i * 5) % N_CUSTOMERS + 1),
            "title": f"{DEAL_TITLES[i % len(DEAL_TITLES)]} {2026 + i % 2}", "stage": stage,
            "amount": (i * 2713 % 90 + 10) * 1000_00, "currency": "EUR" if i % 3 else "USD",
            "probability": {"lead": 10, "qualified": 25, "proposal": 50, "negotiation": 75, "won": 100,
                            "lost": 0}[stage],
            "close_date": (NOW + dt.timedelta(days=i * 4 - 30)).date().isoformat(),
            "owner_id": "us_kat" if i % 2 else "us_ada",
            "created_at": _iso(NOW - dt.timedelta(days=90 - i)), "updated_at": _iso(NOW - dt.timedelta(days=10)),
        })
    return out


def activities() -> list[dict[str, Any]]:
    kinds = ["note", "call", "email", "visit"]
    out = []
    n = 0
    for j in range(RICH_ACTIVITIES):
        n += 1
        when = NOW - dt.timedelta(hours=j * 9 + 1)
        out.append({
            "id": f"ac_{n:04d}", "customer_id": RICH_CUSTOMER, "kind": kinds[j % 4],
            "subject": f"{kinds[j % 4].capitalize()} about {SUBJECTS[j % len(SUBJECTS)].lower()}",
            "body": "Discussed next steps.", "author_id": ["us_ada", "us_kat", "us_grace"][j % 3],
            "internal": j % 5 == 0, "occurred_at": _iso(when), "created_at": _iso(when), "updated_at": _iso(when),
        })
    for t in tickets():
        n += 1
        when = NOW - dt.timedelta(hours=int(t["number"]) % 7 + 2)
        out.append({
            "id": f"ac_{n:04d}", "customer_id": t["customer_id"], "ticket_id": t["id"], "kind": "email",
            "subject": f"Re: {t['subject']}", "body": "Thanks, we are looking into it.", "author_id": "us_grace",
            "internal": False, "occurred_at": _iso(when), "created_at": _iso(when), "updated_at": _iso(when),
        })
        if int(t["number"]) % 3 == 0:
            n += 1
            out.append({
                "id": f"ac_{n:04d}", "customer_id": t["customer_id"], "ticket_id": t["id"], "kind": "note",
                "subject": "Checked the logs", "body": "Looks like a sync delay on their side.",
                "author_id": "us_ada", "internal": True, "occurred_at": _iso(when + dt.timedelta(minutes=30)),
                "created_at": _iso(when), "updated_at": _iso(when),
            })
    for d in deals():
        n += 1
        when = NOW - dt.timedelta(days=3)
        out.append({
            "id": f"ac_{n:04d}", "customer_id": d["customer_id"], "deal_id": d["id"], "kind": "visit",
            "subject": f"Visit: {d['title']}", "body": "Walked through the offer.", "author_id": "us_kat",
            "internal": False, "occurred_at": _iso(when), "created_at": _iso(when), "updated_at": _iso(when),
        })
    return out


def order_events() -> list[dict[str, Any]]:
    """The history of ORDER_WITH_HISTORY: placed, paid, shipped, then a refund request."""
    placed = NOW - dt.timedelta(days=1)  # when the order was created
    steps = [("status", "pending", None, None, 0), ("status", "paid", None, None, 3),
             ("status", "shipped", None, None, 18),
             ("refund_request", None, "Two items missing from the delivery; customer wants them refunded.",
              "us_grace", 22)]
    return [{"id": f"oe_{n:03d}", "customer_id": RICH_CUSTOMER, "order_id": ORDER_WITH_HISTORY, "kind": kind,
             "status": status, "reason": reason, "author_id": author, "occurred_at": _iso(placed + dt.timedelta(hours=h)),
             "created_at": _iso(placed + dt.timedelta(hours=h)), "updated_at": _iso(placed + dt.timedelta(hours=h))}
            for n, (kind, status, reason, author, h) in enumerate(steps, start=1)]


def _at(days: int = 0, hours: float = 0, *, hour: int | None = None, minute: int = 0) -> str:
    when = NOW + dt.timedelta(days=days, hours=hours)
    if hour is not None:
        when = when.replace(hour=hour, minute=minute)
    return _iso(when)


def tasks() -> list[dict[str, Any]]:
    """Follow-ups around NOW (a Wednesday, 09:00): overdue, due today, upcoming, later and done;
    Ada's and others'; some about a ticket or a deal of their own customer."""
    rows = [
        ("tk_001", cid(1), "Call back about the VAT invoice", _at(hours=-26), "us_ada", "ti_001", None),
        ("tk_002", cid(3), "Send the revised quote", _at(-3, hour=15), "us_ada", None, None),
        ("tk_003", cid(5), "Confirm the refund arrived", _at(hours=-0.5), "us_ada", None, None),
        ("tk_004", cid(2), "Quarterly check-in call", _at(hour=14), "us_ada", None, None),
        ("tk_005", cid(7), "Book a demo with the buyer", _at(hour=16, minute=30), "us_kat", None, None),
        ("tk_006", cid(1), "Plan the next site visit", _at(1, hour=9), "us_ada", None, "de_001"),
        ("tk_007", cid(16), "Follow up on the proposal", _at(3, hour=10), "us_ada", None, "de_004"),
        ("tk_008", cid(10), "Ask for a reference", _at(20, hour=11), "us_ada", None, None),
        ("tk_010", cid(8), "Chase the courier for an update", _at(2, hour=12), "us_grace", None, None),
    ]
    out = [{"id": tid, "customer_id": c, "title": title, "notes": None, "due_at": due, "owner_id": owner,
            "status": "open", "ticket_id": ticket, "deal_id": deal, "done_at": None,
            "created_at": _at(-7), "updated_at": _at(-7)} for tid, c, title, due, owner, ticket, deal in rows]
    out.append({"id": "tk_009", "customer_id": cid(6), "title": "Send the onboarding guide", "notes": "Sent by mail.",
                "due_at": _at(-2, hour=10), "owner_id": "us_ada", "status": "done", "ticket_id": None, "deal_id": None,
                "done_at": _at(hours=-1), "created_at": _at(-7), "updated_at": _at(hours=-1)})
    return out


# ----------------------------------------------------------------------------- pages


def _page(segments: list[dict[str, Any]], cursor: str, *, has_more: bool, phase: str,
          progress: dict[str, Any] | None = None) -> dict[str, Any]:
    page = {"cursor": cursor, "has_more": has_more, "phase": phase, "segments": segments}
    if progress is not None:
        page["progress"] = progress
    return page


def bad_customer() -> dict[str, Any]:
    """A record the server should never have sent: it is quarantined, never stored."""
    return {**customers()[0], "id": "cu_bad", "name": "Broken Record", "email": "not an email"}


def fill(replica: Replica) -> None:
    """Fill an empty replica with the whole data set, its outbox states and its sync history."""
    replica.set_meta("me", ME)
    replica.server_apply.apply_page(_page(
        [_upsert("territory", TERRITORIES), _upsert("user", USERS), _upsert("customer", [*customers(), bad_customer()]),
         _upsert("contact", contacts())],
        "c1", has_more=True, phase="snapshot",
        progress={"entity": "contact", "done": 1, "total": 2, "complete": ["territory", "user", "customer", "contact"]},
    ))
    replica.server_apply.apply_page(_page(
        [_upsert("ticket", tickets()), _upsert("deal", deals()), _upsert("order", orders()),
         _upsert("order_event", order_events()),
         _upsert("activity", activities()), _upsert("task", tasks())],
        "c2", has_more=False, phase="feed",
    ))
    _make_outbox_states(replica)
    _record_sync_history(replica)
    replica.set_meta("last_sync_at", "2026-11-25T08:57:00Z")


def fill_bootstrapping(replica: Replica) -> None:
    """A replica in the middle of its first sync: a few customers, contacts not yet in."""
    replica.set_meta("me", ME)
    replica.server_apply.apply_page(_page(
        [_upsert("territory", TERRITORIES), _upsert("user", USERS), _upsert("customer", customers()[:10])],
        "b1", has_more=True, phase="snapshot",
        progress={"entity": "customer", "done": 10, "total": 30, "complete": ["territory", "user"]},
    ))


CONFLICT_CUSTOMER = "cu_002"
REJECTED_CONTACT = "co_003_1"
REJECTED_DEAL = "de_005"
PENDING_CUSTOMER = RICH_CUSTOMER
PENDING_NOTE = "ac_pending_note"


def _make_outbox_states(replica: Replica) -> None:
    w = replica.writes
    # Three edits go to the server in one batch: one clashes, two are refused.
    w.update("customer", CONFLICT_CUSTOMER, {"city": "Potsdam", "phone": "+49 30 5550202"})
    w.update("contact", REJECTED_CONTACT, {"email": "carla.rossi@blocked.example"})
    w.update("deal", REJECTED_DEAL, {"stage": "negotiation", "amount": 150_000_00})
    ops = replica.outbox.next_batch(10)
    by_record = {op.record_id: op for op in ops}
    server_customer = {**next(c for c in customers() if c["id"] == CONFLICT_CUSTOMER),
                       "city": "Leipzig", "phone": "+49 30 5550202", "version": 3}
    results = [
        {"op_id": by_record[CONFLICT_CUSTOMER].op_id, "status": "conflict", "version": 3, "record": server_customer,
         "conflicts": [{"field": "city", "server": "Leipzig", "client": "Potsdam"}]},
        {"op_id": by_record[REJECTED_CONTACT].op_id, "status": "rejected",
         "error": {"code": "validation", "message": "email: the mail server refuses this address",
                   "fields": {"email": "the mail server refuses this address"}}},
        {"op_id": by_record[REJECTED_DEAL].op_id, "status": "rejected",
         "error": {"code": "forbidden", "message": "this deal belongs to another owner"}},
    ]
    replica.results.apply(ops, results)
    # Then edits made offline, not yet sent.
    w.update("customer", PENDING_CUSTOMER, {"phone": "+49 30 5559999"})
    w.create("activity", {"customer_id": PENDING_CUSTOMER, "kind": "call", "subject": "Called about the renewal",
                          "body": "Wants a quote by Friday.", "occurred_at": "2026-11-25T08:30:00Z"},
             record_id=PENDING_NOTE)


def add_delete_conflict(replica: Replica, contact_id: str = "co_010_1") -> None:
    """A delete of ours that the server answers with a conflict: it changed the contact since."""
    record = replica.get("contact", contact_id)
    replica.writes.delete("contact", contact_id)
    ops = replica.outbox.next_batch(10)
    [op] = [o for o in ops if o.record_id == contact_id]
    server = {**record, "title": "CFO", "version": 2}
    replica.results.apply(ops, [{"op_id": op.op_id, "status": "conflict", "version": 2, "record": server,
                                        "conflicts": [{"field": "title", "server": "CFO", "client": None}]}])


def _record_sync_history(replica: Replica) -> None:
    # The sync engine writes this history; no cache API writes it, so the fixture does as the engine does.
    runs = [
        ("2026-11-25T08:00:00Z", "2026-11-25T08:00:04Z", 1, 2, 311, 0, 0, None),
        ("2026-11-25T08:30:00Z", "2026-11-25T08:30:05Z", 0, 0, 0, 0, 0, "the server did not answer within 30 s"),
        ("2026-11-25T08:57:00Z", "2026-11-25T08:57:02Z", 1, 3, 12, 1, 2, None),
    ]
    with replica.transaction() as conn:
        conn.executemany(
            "INSERT INTO sync_runs(started_at, finished_at, ok, pushed, pulled, conflicts, rejected, error)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)", runs)


# ----------------------------------------------------------------------------- building


def open_replica(directory: Path, clock: Callable[[], dt.datetime] | None = None) -> Replica:
    """The replica in ``directory``; ``clock`` (default: the wall clock) is its notion of now."""
    return Replica(directory / "replica.db", directory / "hot", key=TEST_KEY, **({"clock": clock} if clock else {}))


def build(directory: Path, kind: str = "full") -> Path:
    """Build a replica of ``kind`` ('full', 'empty', 'bootstrapping') in ``directory``; returns it."""
    directory.mkdir(parents=True, exist_ok=True)
    replica = open_replica(directory)
    try:
        if kind == "full":
            fill(replica)
        elif kind == "bootstrapping":
            fill_bootstrapping(replica)
        elif kind == "empty":
            replica.set_meta("me", ME)
        else:
            raise ValueError(f"unknown replica kind {kind!r}")
        replica.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        replica.close()
    return directory


def copy_replica(template: Path, directory: Path, clock: Callable[[], dt.datetime] | None = None) -> Replica:
    """A private copy of a built replica (the hot cache is left behind: it rebuilds itself),
    opened with ``clock``."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in ("replica.db", "replica.db-wal", "replica.db-shm"):
        if (template / name).exists():
            shutil.copyfile(template / name, directory / name)
    return open_replica(directory, clock)


# ----------------------------------------------------------------------------- a big queue

BIG_QUEUE_MARK = "Printer on fire"  # every 97th added ticket's subject: what a `/` filter looks for


def many_tickets(n: int, start: int = 10_000) -> list[dict[str, Any]]:
    """``n`` active tickets for the queue (numbers from ``start``), SLA due spread over weeks,
    some due at the same instant (ties ordered by id); every 97th is about a printer on fire."""
    out = []
    for i in range(n):
        assignee = ASSIGNEE_CYCLE[i % len(ASSIGNEE_CYCLE)]
        created = NOW - dt.timedelta(hours=30 + i % 500)
        subject = BIG_QUEUE_MARK if i % 97 == 0 else SUBJECTS[i % len(SUBJECTS)]
        out.append({
            "id": f"tb_{i:06d}", "customer_id": cid(i % N_CUSTOMERS + 1), "number": start + i,
            "subject": f"{subject} ({start + i})", "description": "", "status": ("new", "open", "pending")[i % 3],
            "priority": TICKET_PRIORITY_CYCLE[i % len(TICKET_PRIORITY_CYCLE)], "assignee_id": assignee,
            "team": "billing" if assignee == "us_alan" else "support",
            "sla_due": _iso(NOW + dt.timedelta(minutes=(i * 7919) % (60 * 24 * 60))),
            "created_at": _iso(created), "updated_at": _iso(created),
        })
    return out


def add_tickets(replica: Replica, tickets: list[dict[str, Any]], chunk: int = 5000) -> None:
    """Put ``tickets`` in the replica the way a pull does, a page per ``chunk``."""
    for i in range(0, len(tickets), chunk):
        replica.server_apply.apply_page(_page([_upsert("ticket", tickets[i:i + chunk])], f"big{i}", has_more=False,
                                      phase="feed"))


def many_territories(replica: Replica, count: int) -> None:
    """A company with ``count`` territories (North, South, West and more), and a signed-in user
    who may write any of them: the territory dropdown of a new customer is long."""
    extra = [{**TERRITORIES[0], "id": f"te_region_{i:02d}", "name": f"Region {i:02d}"}
             for i in range(1, count - len(TERRITORIES) + 1)]
    replica.set_meta("me", {**ME, "all_territories": True})
    replica.server_apply.apply_page(_page([_upsert("territory", extra)], "c3", has_more=False, phase="feed"))


def many_customers(n: int, name: str = "Quillfeather Holdings") -> list[dict[str, Any]]:
    """``n`` customers called ``name`` and a 4-digit number (their name order is their number
    order), in the first territory."""
    out = []
    for i in range(n):
        created = NOW - dt.timedelta(days=100)
        out.append({
            "id": f"cb_{i:05d}", "name": f"{name} {i:04d}", "company": f"{name} {i:04d}",
            "email": f"office{i}@{name.split()[0].lower()}.example", "phone": f"+49 89 4{i:06d}",
            "city": "Berlin", "country": "DE", "tier": None, "territory": TERRITORIES[0]["id"],
            "owner_id": None, "tags": [], "lifetime_value": 0,
            "created_at": _iso(created), "updated_at": _iso(created),
        })
    return out


def add_customers(replica: Replica, customers: list[dict[str, Any]]) -> None:
    """Put ``customers`` in the replica the way a pull does."""
    replica.server_apply.apply_page(_page([_upsert("customer", customers)], "cust-extra", has_more=False, phase="feed"))


def a_busy_year(replica: Replica, *, overdue_tickets: int = 1418, overdue_tasks: int = 1205,
                leads: int = 1100) -> None:
    """Counts in the thousands: ``overdue_tickets`` of Ada's tickets past their SLA,
    ``overdue_tasks`` of her tasks past due, and ``leads`` of her deals in the first stage."""
    base_ticket, base_task, base_deal = tickets()[0], tasks()[0], deals()[0]
    late = _iso(NOW - dt.timedelta(days=2))
    many_tickets = [{**base_ticket, "id": f"ti_busy_{i:05d}", "number": 50_000 + i, "customer_id": cid(1),
                     "status": "open", "assignee_id": "us_ada", "team": "support", "sla_due": late}
                    for i in range(overdue_tickets)]
    many_tasks = [{**base_task, "id": f"tk_busy_{i:05d}", "customer_id": cid(1), "owner_id": "us_ada",
                   "status": "open", "done_at": None, "due_at": late} for i in range(overdue_tasks)]
    many_deals = [{**base_deal, "id": f"de_busy_{i:05d}", "customer_id": cid(1), "owner_id": "us_ada",
                   "stage": "lead", "title": f"Lead {i}"} for i in range(leads)]
    replica.server_apply.apply_page(_page([_upsert("ticket", many_tickets), _upsert("task", many_tasks),
                                   _upsert("deal", many_deals)], "c4", has_more=False, phase="feed"))


def add_records(replica: Replica, entity_name: str, records: list[dict[str, Any]]) -> None:
    """Put ``records`` of ``entity_name`` in the replica the way a pull does."""
    replica.server_apply.apply_page(_page([_upsert(entity_name, records)], f"add-{entity_name}-{records[0]['id']}",
                                  has_more=False, phase="feed"))
