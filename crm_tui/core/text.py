"""Small wording helpers shared by the CLI and the screens."""

from __future__ import annotations


def grouped(n: int) -> str:
    """A count as people read it, thousands grouped: ``1418`` -> ``1,418``."""
    return f"{n:,}"


def plural(n: int, word: str, many: str | None = None) -> str:
    """``n`` and the noun in the right number: 1 open ticket, 2 open tickets, 1,200 customers."""
    return f"{grouped(n)} {word if n == 1 else (many or word + 's')}"


def verb(n: int, one: str, many: str) -> str:
    """The verb agreeing with ``n`` things: 1 change stays, 2 changes stay."""
    return one if n == 1 else many


def counted(total: int, word: str, shown: int | None = None, *, many: str | None = None,
            at_least: bool = False) -> str:
    """How many rows a list has, and which of them it shows, the same way in every list:
    ``580 tickets · showing 1–50``, or ``12 tickets`` when all are shown (``at_least``: the
    true total may be higher, ``1,000+ matches``)."""
    text = plural(total, word, many)
    if at_least:
        number = grouped(total)
        text = f"{number}+{text[len(number):]}"
    if shown is None or (shown >= total and not at_least):
        return text
    return f"{text} · showing 1–{grouped(shown)}" if shown else f"{text} · none shown"


def span(seconds: float) -> str:
    """A duration a person reads at a glance: '45 s', '12 min', '5 h', '3 d' (a wait, a limit, an
    age; the one duration wording of the app, its CLI and its sync messages)."""
    seconds = abs(seconds)
    if seconds < 60:
        return f"{int(seconds)} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min"
    if seconds < 172_800:
        return f"{int(seconds // 3600)} h"
    return f"{int(seconds // 86_400)} d"
