"""Search, the home screen: find a customer, contact, ticket or order as you type."""

from __future__ import annotations

from typing import Any, ClassVar

from textual import events, on, work
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.widgets import DataTable, Static

from cache.search import Matches, SearchWindow
from cache.sqlite import sqlite3
from cache.windows import ListWindow
from crm_tui.core.text import counted, grouped
from screens.base import CrmScreen
from screens.display import plain
from screens.exporting import ExportPlan
from screens.form_specs import customer_form, writable_territories
from screens.inputs import CrmInput
from screens.navigation import open_customer, open_order, open_ticket
from screens.side_connection import SideClosed, SideConnection
from screens.tables import Column, ListSource, RowContext, RowWindow, WindowTable

LIMIT = 50  # matches read per keystroke; the rest are found by a worker
KIND_LABELS = {"customer": "customer", "contact": "contact", "ticket": "ticket", "order": "order"}
HINT = ("Type a name, company, email, phone, city, a ticket number (#1042) or an order number (SO-10042).\n"
        "↓ or enter moves to the results · esc leaves the box, then 1–8 switch sections and q quits · "
        "ctrl+p palette · f1 help")


class SearchBox(CrmInput):
    """The search box. It takes every key typed, digits too (phone and order numbers are searched
    for), so the footer says, while the cursor is in it, how to leave it for the single-key commands."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "screen.back", "Leave box", id="search.leave"),
    ]


class SearchScreen(CrmScreen):
    LABEL = "Search"
    HELP = ("Search the local replica as you type: customers and contacts by name, company, email, "
            "phone or city; tickets by number; orders by number. Nothing waits on the network.\n"
            "The box takes every key, digits too: esc leaves it (the query stays; esc again clears it), "
            "then 1–8 switch sections and q quits. A letter or / goes back to typing in the box.")
    AUTO_FOCUS: ClassVar[str | None] = "#search-input"
    DEFAULT_CSS = """
    SearchScreen {
        & #search-body {
            height: 1fr;
        }
        & #search-input {
            margin: 1 1 0 1;
        }
        & #search-summary {
            height: 1;
            padding: 0 1;
            color: $text-muted;
        }
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "focus_search", "Search", id="search.focus"),
        Binding("down", "results", "Results", show=False, id="search.results"),
        Binding("ctrl+n", "new_customer", "New customer", id="search.new_customer"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.query_text = ""
        self.searches = 0  # searches run (a test counts them per keystroke)
        self.counts_shown = 0  # whole match sets a worker found and the list took (a test counts them)
        self.window: SearchWindow | None = None
        # The worker's own connection, one thread at a time (screens/side_connection.py).
        self._counter = SideConnection(lambda: self.replica.reopen(cache_mb=8))
        self._arriving = False  # customers still arriving (a first sync under way)

    def compose_body(self):
        with Vertical(id="search-body"):
            yield SearchBox(placeholder="Search customers, contacts, #tickets, SO-orders", id="search-input")
            yield Static(id="search-summary")
            yield WindowTable(self._source(), id="search-results")
            yield Static(id="search-empty", classes="empty-state")

    def _source(self) -> ListSource:
        def columns(wide: bool) -> list[Column]:
            return [Column("kind", "kind", 8), Column("title", "name", 36 if wide else 24, ident=True), Column("detail", "detail")]

        def cells(row: dict[str, Any], ctx: RowContext) -> list[Any]:
            return [plain(KIND_LABELS.get(row["kind"], row["kind"])), plain(row["title"]), plain(row["detail"])]

        def window() -> RowWindow:
            return self.window if self.window is not None else ListWindow([], key="key")

        return ListSource(columns=columns, cells=cells, row_key=lambda row: row["key"], window=window)

    def export_plan(self) -> ExportPlan | None:
        """`:export`: every match of the query, not only those in view."""
        if not self.query_text.strip() or self.window is None:
            return None
        return ExportPlan("search results", f"search “{self.query_text}”", [(self.window, "")], noun="match")

    @property
    def results(self) -> WindowTable:
        return self.query_one("#search-results", WindowTable)

    @property
    def search_box(self) -> CrmInput:
        return self.query_one("#search-input", CrmInput)

    # ------------------------------------------------------------------ searching

    def search_for(self, text: str) -> None:
        """Put ``text`` in the box and search now (the `:search` command uses this)."""
        self.search_box.value = text
        self._search_now()

    @on(CrmInput.Changed, "#search-input")
    def _typed(self, event: CrmInput.Changed) -> None:
        # Every keystroke searches at once: the first matches answer in a few milliseconds from
        # the replica, so waiting for the typing to pause would only add latency. A keystroke
        # whose text is already stale (newer keys reached the box while it waited) is dropped:
        # the newest text's own Changed message follows and searches for it.
        if event.value != self.search_box.value:
            return
        if event.value == self.query_text and self.searches:
            return
        self._search_now()

    @on(CrmInput.Submitted, "#search-input")
    def _submitted(self, event: CrmInput.Submitted) -> None:
        self._search_now()
        self.action_results()

    def _search_now(self) -> None:
        self.query_text = self.search_box.value
        self.refresh_data()

    def refresh_data(self) -> None:
        """The first matches at once (bounded reads, no count); when there may be more, a
        worker finds them all on its own connection and the list grows to the whole set."""
        self.searches += 1
        self._stop_finding()
        window = self.replica.search.window(self.query_text, LIMIT)
        self.window = window
        self.results.show(window, total=len(window.keys), counting=not window.complete)
        if not window.complete:
            self._find_all(window)
        self._show_state()

    @work(thread=True, exclusive=True, exit_on_error=False, group="search-count", description="count matches")
    def _find_all(self, window: SearchWindow) -> None:
        def stale() -> bool:
            return window is not self.window or window.complete

        keys: list[Any] | None = None
        try:
            with self._counter.use(stale) as counter:
                for _attempt in range(3):
                    try:
                        keys = counter.search.every(window.query)
                        break
                    except sqlite3.OperationalError:
                        # Interrupted: a newer key stopped the search before this one (SQLite then
                        # also stops statements that start before the stopped one has returned):
                        # search again unless this one is stale too.
                        if stale():
                            return
        except SideClosed:
            return
        # The connection is let go of before the UI thread is asked anything: it may be closing it.
        if keys is not None:
            self.app.call_from_thread(self._found_all, window, keys)
        else:
            self.app.call_from_thread(self.results.finish_count)

    def _found_all(self, window: SearchWindow, keys: Matches) -> None:
        if window is not self.window or window.complete:
            return  # a newer search (or `G`, which counted at once) made this one stale
        window.found_all(keys)
        self.counts_shown += 1
        self.results.count_arrived(window, "", len(keys))

    def _stop_finding(self) -> None:
        """Interrupt the search for every match under way: its result is never shown."""
        if self.window is not None and not self.window.complete:
            self._counter.interrupt()

    def on_unmount(self) -> None:
        self._counter.close()  # interrupts a search under way and waits for its thread to let go

    def on_mount(self) -> None:
        super().on_mount()
        # "showing 31–60" follows the rows in view, however the list was scrolled.
        self.watch(self.results, "scroll_y", lambda _y: self._show_summary(), init=False)

    @on(WindowTable.Changed, "#search-results")
    def _counted(self, event: WindowTable.Changed) -> None:
        self._show_summary()

    def _in_view(self) -> tuple[int, int]:
        table = self.results
        first = int(table.scroll_y) // table.source.row_height
        rows = max(1, table.scrollable_content_region.height - table.header_height)
        return first + 1, min(table.total, first + rows)

    def _summary(self) -> str:
        table = self.results
        if not self.query_text.strip():
            return ""
        total = table.total
        text = counted(total, "match", many="matches", at_least=table.counting)
        first, last = self._in_view()
        if table.counting or first > 1 or last < total:
            text += f" · showing {grouped(first)}–{grouped(last)}" if total else ""
        if table.counting:
            text += " · counting…"
        return text

    def _show_summary(self) -> None:
        parts: list[str | tuple[str, str]] = []
        if text := self._summary():
            parts.append((text, "bold"))
        if self._arriving:
            parts.append((" · " if parts else "", "$text-muted"))
            parts.append(("customers still arriving… results grow as the first sync goes on", "$text-warning"))
        if text:
            # What esc does from here, when the line has room for it.
            esc = " · " + ("esc leaves the box" if self.search_box.has_focus else "esc clears the search")
            if sum(len(p[0]) for p in parts) + len(esc) <= self.size.width:
                parts.append((esc, "$text-muted"))
        self.query_one("#search-summary", Static).update(Content.assemble(*parts))

    def _show_state(self) -> None:
        empty = self.query_one("#search-empty", Static)
        has_customers = self.replica.reads.has_customers()
        complete = self.replica.get_meta("complete_entities") or []
        self._arriving = has_customers and not {"customer", "contact"} <= set(complete)
        self._show_summary()
        if self.results.total:
            empty.display = False
            self.results.display = True
            return
        self.results.display = False
        empty.display = True
        if not has_customers:
            how = ("press f5 to sync" if self.crm.sync_runner is not None
                   else "no server is configured: run `crm-tui login`, then start the app again")
            empty.update(Content(f"The replica is empty: nothing has been synced yet ({how})."))
        elif self.query_text.strip():
            empty.update(Content(f"Nothing in your replica matches “{self.query_text.strip()}”."))
        else:
            empty.update(Content(HINT))

    # ------------------------------------------------------------------ keys

    def action_focus_search(self) -> None:
        self.search_box.focus()

    def action_results(self) -> None:
        if self.results.total:
            self.results.focus()

    def action_back(self) -> None:
        """esc backs out one layer: out of the box (the query and its results kept, so single keys
        like G act on them), then clears the search. Either way the cursor is left out of the box,
        so what follows is a command (a section number, q) — a letter goes back into the box."""
        box = self.search_box
        if box.has_focus:
            # Leave the box so the single-key bindings (section numbers, q, g/G) work.
            if self.results.total:
                self.results.focus()
            else:
                self._leave_box()
        elif box.value:
            box.value = ""
            self._search_now()
            self._leave_box()
        else:
            super().action_back()

    def _leave_box(self) -> None:
        # Coming back from a modal (`:`, `?`, the palette), Textual would put the focus back in
        # the box: the user left it, so digits and q stay commands until they return to it
        # (/, a letter, or a click).
        self.AUTO_FOCUS = ""  # type: ignore[misc]  # Textual reads it per instance
        self.set_focus(None)
        self._show_summary()

    def on_key(self, event: events.Key) -> None:
        """A letter (or any character no key here is bound to) typed outside the box goes into
        it: the user is searching again. Bound keys (1–8, q, j/k/G on the results) keep their
        meaning; they reach their bindings after this."""
        box = self.search_box
        character = event.character or ""
        if box.has_focus or not event.is_printable or not character.strip():
            return
        if event.key in self.active_bindings:
            return
        event.stop()
        event.prevent_default()
        box.cursor_position = len(box.value)
        box.insert_text_at_cursor(character)
        box.focus_keeping_text()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # `/` goes to the box: in the box, it is a character to search for (the footer says so
        # by not offering it).
        if action == "focus_search" and self.is_mounted and self.search_box.has_focus:
            return False
        return super().check_action(action, parameters)

    def section_shown(self) -> None:
        # `1` is for searching: the box takes what is typed next, also after esc had left it.
        self.AUTO_FOCUS = type(self).AUTO_FOCUS  # type: ignore[misc]
        if self.is_mounted:
            self.search_box.focus()

    def on_descendant_focus(self) -> None:
        self.AUTO_FOCUS = type(self).AUTO_FOCUS  # type: ignore[misc]
        self._show_summary()  # what esc does now

    def action_new_customer(self) -> None:
        if not writable_territories(self.crm):
            self.crm.notify("No territory to put a customer in yet: your territories arrive with the first "
                            "sync (f5 syncs).", severity="warning")
            return
        self.app.push_screen(customer_form(self.crm), self._saved)

    def _saved(self, result: dict[str, Any] | None) -> None:
        if result is not None:
            # The new customer opens once the save worker has put it in the replica.
            customer_id = result["id"]

            def open_it(_record: dict[str, Any] | None) -> None:
                open_customer(self.crm, customer_id)

            self.crm.saver.after_save(result, open_it)

    @on(DataTable.RowSelected, "#search-results")
    def _open(self, event: DataTable.RowSelected) -> None:
        row = self.results.current_row()
        if row is None:
            return
        if row["kind"] == "ticket":
            open_ticket(self.crm, row["id"])
        elif row["kind"] == "order":
            open_order(self.crm, row["id"])
        else:
            open_customer(self.crm, row["customer_id"], tab="contacts")
