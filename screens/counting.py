"""Counts a screen shows beside its lists (overdue tickets, a stage's total, the tasks due today)
read apart from the UI: their cost grows with the data, so they never run on the UI thread.

A ``CountApart`` runs a read on a worker thread over a connection of its own (a SideConnection:
one thread at a time); the result reaches
the screen (on the UI thread) only if no newer read was asked for meanwhile. A newer request
interrupts the read under way: a stale count is never shown, and never waited for.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from cache.sqlite import sqlite3
from screens.side_connection import SideClosed, SideConnection

if TYPE_CHECKING:
    from textual.widget import Widget

    from cache.replica import Replica

T = TypeVar("T")


class CountApart(Generic[T]):
    """Reads for ``owner`` (a screen) run apart, newest wins.

    ``ask(read, then)``: ``read(replica)`` runs on a worker over this helper's own connection;
    ``then(value)`` runs on the UI thread unless ``ask`` (or ``drop``) was called again since.
    ``pending`` is true from ``ask`` until its value is shown (a screen says "counting…");
    ``shown`` counts the values shown (a test counts them)."""

    def __init__(self, owner: Widget, name: str, *, cache_mb: int = 2) -> None:
        self.owner = owner
        self.name = name
        self.cache_mb = cache_mb
        self.pending = False
        self.shown = 0
        self._asked = 0  # which request is the newest
        # Its own connection, one read at a time (a newer read interrupts the one under way).
        self._side = SideConnection(self._open)

    def _open(self) -> Replica:
        app: Any = self.owner.app
        return app.replica.reopen(cache_mb=self.cache_mb)

    def ask(self, read: Callable[[Replica], T], then: Callable[[T], None]) -> None:
        """Read apart; ``then`` gets the value unless a newer request came first."""
        self._asked += 1
        self._interrupt()
        self.pending = True
        asked = self._asked
        self.owner.run_worker(lambda: self._run(asked, read, then), thread=True, exclusive=True,
                              exit_on_error=False, group=self.name, description=self.name)

    def drop(self) -> None:
        """Forget what was asked: a read under way is interrupted, its value never shown."""
        self._asked += 1
        self._interrupt()
        self.pending = False

    def close(self) -> None:
        """The screen goes: stop a read under way and close the connection (after it)."""
        self.drop()
        self._side.close()

    def _interrupt(self) -> None:
        if self.pending:
            self._side.interrupt()

    def _run(self, asked: int, read: Callable[[Replica], T], then: Callable[[T], None]) -> None:
        def stale() -> bool:
            return asked != self._asked

        values: list[T] = []
        try:
            with self._side.use(stale) as replica:
                for _attempt in range(3):
                    if stale():
                        return  # a newer request came before this one started (or again)
                    try:
                        values.append(read(replica))
                        break
                    except sqlite3.OperationalError:
                        # Interrupted by a newer request (SQLite may also stop a statement that
                        # starts before an interrupted one has returned): read again unless stale.
                        continue
        except SideClosed:
            return
        if values:  # the connection is let go of first: the UI thread may be closing it
            with contextlib.suppress(RuntimeError):  # the app ended meanwhile
                self.owner.app.call_from_thread(self._arrived, asked, values[0], then)

    def _arrived(self, asked: int, value: T, then: Callable[[T], None]) -> None:
        if asked != self._asked:
            return  # a newer request (a view change, a reload) made it stale
        self.pending = False
        self.shown += 1
        then(value)
