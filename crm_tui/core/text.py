"""Small wording helpers shared by the CLI and the screens."""

from __future__ import annotations


def plural(n: int, word: str, many: str | None = None) -> str:
    """``n`` and the noun in the right number: 1 open ticket, 2 open tickets, 1,200 customers."""
    return f"{n:,} {word if n == 1 else (many or word + 's')}"
