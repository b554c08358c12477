"""A screen that is one list of all of a kind (your conflicts, your rejected changes): a line over the
list says how many there are, and a text stands in for the list when there are none.

The first rows show at once; a worker counts the whole (the line says ``100+ conflicts (counting…)``
meanwhile) and the line follows its count.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from textual import on
from textual.content import Content
from textual.widget import Widget
from textual.widgets import Static

from crm_tui.core.text import counted
from screens.base import CrmScreen
from screens.tables import ListSource, WindowTable


class CountedListScreen(CrmScreen):
    """Subclasses give the ids' prefix, the noun counted, the texts, and ``list_source``.

    The widgets are ``#<PREFIX>-intro`` (the line), ``#<PREFIX>-table`` (the list), what
    ``compose_under_list`` adds, and ``#<PREFIX>-empty`` (the text in place of an empty list)."""

    PREFIX: ClassVar[str]
    NOUN: ClassVar[str]  # what the list counts, one of it: "conflict"
    INTRO: ClassVar[str]  # the line when there are some; {count} is "3 conflicts"
    NONE_INTRO: ClassVar[str]  # the line when there are none
    EMPTY: ClassVar[str]  # in place of the list when there are none

    def compose_body(self) -> Iterable[Widget]:
        yield Static(id=f"{self.PREFIX}-intro", classes="toolbar")
        yield WindowTable(self.list_source(), id=f"{self.PREFIX}-table")
        yield from self.compose_under_list()
        yield Static(self.EMPTY, classes="empty-state", id=f"{self.PREFIX}-empty")

    def list_source(self) -> ListSource:
        raise NotImplementedError

    def compose_under_list(self) -> Iterable[Widget]:
        """Widgets shown under the list while it has rows (the rejected change's detail)."""
        return ()

    @property
    def table(self) -> WindowTable:
        return self.query_one(f"#{self.PREFIX}-table", WindowTable)

    def on_mount(self) -> None:
        super().on_mount()
        self.table.focus()

    def refresh_data(self) -> None:
        # The first rows at once; a worker counts them all (the line follows its count).
        self.table.reload()
        self.show_count()

    @on(WindowTable.Changed)
    def _counted(self, event: WindowTable.Changed) -> None:
        if event.control is self.table:
            self.show_count()

    def show_count(self) -> None:
        table = self.table
        n = table.total
        count = counted(n, self.NOUN, at_least=table.counting) + (" (counting…)" if table.counting else "")
        self.query_one(f"#{self.PREFIX}-intro", Static).update(
            Content(self.INTRO.format(count=count) if n else self.NONE_INTRO))
        table.display = bool(n)
        self.query_one(f"#{self.PREFIX}-empty").display = not n
        self.count_shown(n)

    def count_shown(self, n: int) -> None:
        """The line says ``n``: anything else that follows the count follows it here."""
