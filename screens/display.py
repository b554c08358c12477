"""How CRM values look on screen: relative times, SLA marks, money, unsynced markers.

Pure functions over values and a "now" the caller passes in (the app's clock), so the same
record always renders the same way under a frozen clock. Cell texts are Rich ``Text`` built
from plain strings: user data is never parsed as markup.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from rich.text import Text

from crm_tui.core.domain import ACTIVE_TICKET_STATUSES, format_money, parse_datetime, stage_label
from crm_tui.core.domain import record_title as record_title  # how the screens name a record
from crm_tui.core.text import grouped, span

# Unsynced states from ``outbox.record_state`` / ``outbox.unsynced_ids``.
MARKS = {"pending": "●", "conflict": "!", "rejected": "✗"}
MARK_LABELS = {"pending": "pending sync", "conflict": "conflict", "rejected": "rejected by server"}
MARK_TONES = {"pending": "warning", "conflict": "error", "rejected": "error"}


def parse_ts(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    try:
        return parse_datetime(value)
    except ValueError:
        return None


def ago(value: str | None, now: dt.datetime) -> str:
    """'3 min ago', 'in 2 h', 'never' (for no value), or the raw text if it is not a time."""
    when = parse_ts(value)
    if when is None:
        return "never" if not value else str(value)
    delta = (now - when).total_seconds()
    if abs(delta) < 30:
        return "just now"
    return f"{span(delta)} ago" if delta > 0 else f"in {span(delta)}"


def short_time(value: str | None) -> str:
    """'2026-11-24 07:00' for a wire datetime."""
    when = parse_ts(value)
    return when.strftime("%Y-%m-%d %H:%M") if when else (value or "")


# The longest SLA cell ('overdue 59 min', 'overdue 9999 d') and team name ('onboarding').
SLA_WIDTH = 14
TEAM_WIDTH = 10
ORDER_NUMBER_WIDTH = 11  # 'SO-00010042'


def sla_text(ticket: dict[str, Any], now: dt.datetime) -> tuple[str, bool]:
    """The SLA cell of a ticket and whether it is overdue (active and past due)."""
    due = parse_ts(ticket.get("sla_due"))
    if due is None:
        return "", False
    if ticket.get("status") not in ACTIVE_TICKET_STATUSES:
        return due.strftime("%m-%d %H:%M"), False
    delta = (due - now).total_seconds()
    if delta < 0:
        return f"overdue {span(delta)}", True
    return f"in {span(delta)}", False


def count_axis(top: int, steps: int = 4) -> tuple[list[int], list[str]]:
    """Ticks for an axis of counts from 0 to at least ``top``: whole, round numbers, grouped
    ('0', '2,000', '4,000'), never '1421.8'."""
    if top <= 0:
        return [0], ["0"]
    step = 1
    while step * steps < top:
        step = _next_round(step)
    ticks = list(range(0, top + 1, step))
    return ticks, [grouped(t) for t in ticks]


def _next_round(step: int) -> int:
    """1, 2, 5, 10, 20, 50, ...: the next round step after ``step``."""
    lead = int(str(step)[0])
    scale = 10 ** (len(str(step)) - 1)
    return {1: 2, 2: 5}.get(lead, 10) * scale


def stage_name(stage: str | None) -> str:
    """A deal stage as the pipeline's columns name it: 'Negotiation' for ``negotiation``."""
    return stage_label(stage)


def money(minor: int | None, currency: str | None = None) -> str:
    return format_money(minor, currency) if minor is not None else ""


def totals(by_currency: dict[str, int]) -> str:
    """'238,000.00 USD + 12.00 EUR' for a per-currency total, or '-' for none; in the order given
    (the replica gives the currency of most records first)."""
    parts = [money(v, c or None) for c, v in by_currency.items() if v]
    return " + ".join(parts) if parts else "-"


def plain(value: Any) -> Text:
    """A table cell showing ``value`` literally (never as markup)."""
    return Text("" if value is None else str(value), no_wrap=True, overflow="ellipsis")


def figure(value: int | None) -> Text:
    """A table cell showing a count, thousands grouped (``1,418``)."""
    return Text("" if value is None else grouped(value), no_wrap=True)


def first_name(name: str | None) -> str:
    return (name or "").split(" ")[0]


def compact_money(minor: int | None, currency: str | None = None) -> str:
    """'238k USD', '1.2M EUR': an amount that fits a narrow pipeline column."""
    if minor is None:
        return ""
    major = minor / 100
    if abs(major) >= 1_000_000:
        text = f"{major / 1_000_000:.1f}M"
    elif abs(major) >= 10_000:
        text = f"{major / 1000:.0f}k"
    elif abs(major) >= 1000:
        text = f"{major / 1000:.1f}k"
    else:
        text = f"{major:.0f}"
    return f"{text} {currency}" if currency else text


def money_axis(top: float, currency: str) -> tuple[list[float], list[str]]:
    """The ticks of a money axis from 0 to ``top`` (major units): a round step (1, 2 or 5 times a
    power of ten) giving at most four ticks above 0, read as money: '0', '500k EUR', '1M EUR'."""
    if top <= 0:
        return [0.0], ["0"]
    magnitude = 10 ** math.floor(math.log10(top / 4))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= top / 4)
    ticks = [i * step for i in range(int(top // step) + 1)]
    return ticks, ["0"] + [f"{_round_figure(t)} {currency}" for t in ticks[1:]]


def _round_figure(value: float) -> str:
    for size, suffix in ((1e9, "bn"), (1e6, "M"), (1e3, "k")):
        if value >= size:
            return f"{round(value / size, 3):g}{suffix}"
    return f"{round(value, 2):g}"


def compact_totals(by_currency: dict[str, int]) -> str:
    """'238k USD + 1.2M AED': ``totals`` for a narrow column, in the order given."""
    parts = [compact_money(v, c or None) for c, v in by_currency.items() if v]
    return " + ".join(parts) if parts else "-"
