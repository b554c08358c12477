"""`crm-tui agenda`: today's tasks from the replica, for a shell, a status bar or a cron mail.

It only reads (like `status`): it works while a sync runs and on a read-only data dir. What it
lists is what the replica held at its last sync, and it says when that was.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from crm_tui.config import Settings
from crm_tui.core.agenda import UPCOMING_DAYS, bucket, day_bounds, due_text
from crm_tui.core.text import grouped, plural
from crm_tui.paths import Paths
from crm_tui.replicas import open_replica

GROUPS = (("overdue", "Overdue"), ("today", "Due today"), ("upcoming", "Upcoming"))
TASK_KEYS = ("id", "title", "due_at", "customer_id", "customer_name", "ticket_id", "deal_id", "owner_id", "notes")


def collect_agenda(paths: Paths, settings: Settings, now: dt.datetime, *, everyone: bool = False,
                   days: int = UPCOMING_DAYS) -> dict[str, Any]:
    """The open tasks overdue, due today and due in the next ``days`` days (the signed-in user's,
    or everyone's), as plain data. Raises ReplicaError (no replica, or one that cannot be read)
    and UnlockError (its key cannot be had)."""
    with open_replica(paths, settings, read_only=True) as replica:
        me = replica.reads.me()
        me = me if me and me.get("id") else None
        owner = None if everyone or me is None else me["id"]
        tasks = replica.tasks.agenda(now, owner_id=owner, days=days)
        counts = replica.tasks.counts(now, owner_id=owner, days=days)
        about: dict[str, str] = {}
        for t in tasks:
            if t.get("ticket_id") and t["ticket_id"] not in about:
                ticket = replica.get("ticket", t["ticket_id"]) or {}
                about[t["ticket_id"]] = f"ticket #{ticket.get('number') or t['ticket_id']}"
            if t.get("deal_id") and t["deal_id"] not in about:
                deal = replica.get("deal", t["deal_id"]) or {}
                about[t["deal_id"]] = f"deal {deal.get('title') or t['deal_id']}"
        complete = "task" in (replica.get_meta("complete_entities") or [])
        last_sync = replica.get_meta("last_sync_at")
    groups: dict[str, list[dict[str, Any]]] = {key: [] for key, _ in GROUPS}
    for t in tasks:
        item = {k: t.get(k) for k in TASK_KEYS}
        item["about"] = about.get(t.get("ticket_id") or t.get("deal_id") or "")
        groups[bucket(t["due_at"], now, days)].append(item)
    start, end_of_day, horizon = day_bounds(now, days)
    return {
        "now": start,
        "today_ends": end_of_day,
        "upcoming_until": horizon,
        "days": days,
        "owner": None if owner is None or me is None else {"id": me["id"], "name": me.get("name")},
        "everyone": owner is None,
        **groups,
        "counts": {"overdue": counts.overdue, "today": counts.today, "upcoming": counts.upcoming,
                   "later": counts.later, "done_today": counts.done_today},
        "tasks_loaded": complete,
        "last_sync_at": last_sync,
    }


def format_agenda(info: dict[str, Any], now: dt.datetime) -> str:
    """The agenda as plain text: a heading, then each group that has tasks, soonest first."""
    whose = "everyone" if info["everyone"] else (info["owner"] or {}).get("name") or "you"
    lines = [f"Agenda for {whose} · {now:%a %Y-%m-%d %H:%M} UTC"]
    for key, title in GROUPS:
        items = info[key]
        if not items:
            continue
        label = f"Next {info['days']} days" if key == "upcoming" else title
        lines.append("")
        lines.append(f"{label} ({grouped(len(items))})")
        for t in items:
            when = due_text(t["due_at"], now)
            text = t["title"] or t["id"]
            extra = " · ".join(x for x in (t.get("customer_name") or t["customer_id"], t.get("about")) if x)
            lines.append(f"  {when:<17} {text} · {extra}")
    if not any(info[key] for key, _ in GROUPS):
        lines.append(f"Nothing due: no task overdue, today or in the next {info['days']} days.")
    c = info["counts"]
    tail = []
    if c["later"]:
        tail.append(f"{plural(c['later'], 'task')} due later")
    if c["done_today"]:
        tail.append(f"{grouped(c['done_today'])} done today")
    if tail:
        lines.append("")
        lines.append("; ".join(tail) + ".")
    if not info["tasks_loaded"]:
        lines.append("The first sync has not brought every task yet: this list may be short.")
    lines.append(f"As of the last sync: {info['last_sync_at'] or 'never'}.")
    return "\n".join(lines)


def is_empty(info: dict[str, Any]) -> bool:
    return not any(info[key] for key, _ in GROUPS)

