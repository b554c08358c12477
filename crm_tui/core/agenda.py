"""Tasks in time: what a person types for a due time, and where a task falls in the day.

Pure functions over values and a "now" the caller passes in (the app's clock, or the CLI's), so
the Today view, the reminder toast and ``crm-tui agenda`` agree on every task, and a frozen clock
gives the same answer every time. Times are UTC, like every time in the CRM.
"""

from __future__ import annotations

import datetime as dt
import re

from crm_tui.core.domain import format_datetime, parse_datetime

UPCOMING_DAYS = 7  # "upcoming" reaches this many days past today
DEFAULT_HOUR = 9  # a due date typed without a time means the start of that working day

# One line, short enough for a form at 80 columns.
DUE_ERROR = "not a time; try tomorrow, fri 10:00, +2d, 2026-12-01"

_DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_WEEKDAYS = {name: i for i, full in enumerate(_DAY_NAMES) for name in (full[:3], full)}
_TIME_RE = re.compile(r"^(\d{1,2})(?::(\d{2}))?\Z")
_RELATIVE_RE = re.compile(r"^\+(\d{1,4})\s*(m|min|h|d|w)\Z")


def _time_of_day(text: str) -> tuple[int, int] | None:
    match = _TIME_RE.match(text)
    if not match:
        return None
    hour, minute = int(match.group(1)), int(match.group(2) or 0)
    if hour > 23 or minute > 59:
        return None
    return hour, minute


def parse_due(text: str, now: dt.datetime) -> str:
    """What a person typed for a due time, as a wire datetime (UTC). Raises ValueError with a
    one-line hint. Accepts an ISO date and time (a date alone is 09:00 that day), ``today`` /
    ``tomorrow`` / a weekday (the next one; ``mon`` on a Monday is a week ahead), each with an
    optional ``HH:MM``, and ``+N`` minutes, hours, days or weeks (``+30m``, ``+2h``, ``+3d``, ``+1w``)."""
    raw = " ".join(text.strip().lower().split())
    if not raw:
        raise ValueError("is required")
    now = now.astimezone(dt.UTC).replace(second=0, microsecond=0)
    relative = _RELATIVE_RE.match(raw)
    if relative:
        n, unit = int(relative.group(1)), relative.group(2)
        step = {"m": dt.timedelta(minutes=n), "min": dt.timedelta(minutes=n), "h": dt.timedelta(hours=n),
                "d": dt.timedelta(days=n), "w": dt.timedelta(weeks=n)}[unit]
        return format_datetime(now + step)
    word, _, rest = raw.partition(" ")
    day: dt.date | None = None
    if word == "today":
        day = now.date()
    elif word == "tomorrow":
        day = now.date() + dt.timedelta(days=1)
    elif word in _WEEKDAYS:
        ahead = (_WEEKDAYS[word] - now.weekday() - 1) % 7 + 1
        day = now.date() + dt.timedelta(days=ahead)
    if day is not None:
        at = _time_of_day(rest) if rest else (DEFAULT_HOUR, 0)
        if at is None:
            raise ValueError(DUE_ERROR)
        return format_datetime(dt.datetime(day.year, day.month, day.day, *at, tzinfo=dt.UTC))
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw):
            date = dt.date.fromisoformat(raw)
            return format_datetime(dt.datetime(date.year, date.month, date.day, DEFAULT_HOUR, tzinfo=dt.UTC))
        return format_datetime(parse_datetime(raw.upper() if raw.endswith("z") else raw))
    except ValueError:
        raise ValueError(DUE_ERROR) from None


def day_bounds(now: dt.datetime, days: int = UPCOMING_DAYS) -> tuple[str, str, str]:
    """(now, the end of today, the end of the upcoming window) as wire datetimes: a task due
    before the first is overdue, before the second due today, before the third upcoming."""
    now = now.astimezone(dt.UTC)
    midnight = dt.datetime(now.year, now.month, now.day, tzinfo=dt.UTC) + dt.timedelta(days=1)
    return format_datetime(now), format_datetime(midnight), format_datetime(midnight + dt.timedelta(days=days))


def bucket(due_at: str | None, now: dt.datetime, days: int = UPCOMING_DAYS) -> str:
    """'overdue', 'today', 'upcoming' or 'later' for an open task's due time."""
    if not due_at:
        return "later"
    start, end_of_day, horizon = day_bounds(now, days)
    due = format_datetime(parse_datetime(due_at))
    if due < start:
        return "overdue"
    if due < end_of_day:
        return "today"
    return "upcoming" if due < horizon else "later"


def due_text(due_at: str | None, now: dt.datetime) -> str:
    """How a due time reads in a list: 'overdue 2 d', 'today 14:00', 'tomorrow 09:00',
    'Mon 12-01 09:00', or the date for anything further off."""
    if not due_at:
        return ""
    due = parse_datetime(due_at)
    when = bucket(due_at, now)
    if when == "overdue":
        seconds = (now - due).total_seconds()
        if seconds < 3600:
            amount = f"{max(1, int(seconds // 60))} min"
        elif seconds < 172_800:
            amount = f"{int(seconds // 3600)} h"
        else:
            amount = f"{int(seconds // 86_400)} d"
        return f"overdue {amount}"
    if when == "today":
        return f"today {due:%H:%M}"
    if due.date() == now.astimezone(dt.UTC).date() + dt.timedelta(days=1):
        return f"tomorrow {due:%H:%M}"
    if when == "upcoming":
        return f"{due:%a %m-%d %H:%M}"
    return f"{due:%Y-%m-%d %H:%M}"


def completion(done: bool, now: dt.datetime) -> dict[str, str | None]:
    """The fields that complete (``done``) or reopen a task."""
    return {"status": "done", "done_at": format_datetime(now)} if done else {"status": "open", "done_at": None}
