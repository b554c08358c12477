"""Customer 360: who the customer is, and everything attached, one paged tab per kind."""

from __future__ import annotations

from typing import Any, ClassVar

from textual import on
from textual.binding import Binding, BindingType
from textual.content import Content
from textual.widgets import DataTable, Static, TabbedContent, TabPane

from crm_tui.core.text import grouped, plural
from screens.base import CrmScreen
from screens.customer_lists import TABS, customer_sources
from screens.display import MARK_LABELS, MARK_TONES, MARKS, money, totals
from screens.exporting import ExportPlan, table_plan
from screens.form_specs import (
    activity_form,
    contact_form,
    customer_form,
    deal_form,
    edit_activity_form,
    ticket_form,
)
from screens.navigation import open_order, open_ticket
from screens.tables import ListPanel, WindowTable
from screens.task_forms import follow_up, set_done, task_form


class Customer360Screen(CrmScreen):
    LABEL = "Customer"
    HELP = ("One customer and everything attached: contacts, orders, tickets, deals, tasks and the activity "
            "timeline. enter opens an order or a ticket, or edits the row. n logs a note, c a call and v a visit "
            "(with what came of it, how long, and who you spoke to). f makes a follow-up task (about the "
            "highlighted ticket or deal on those tabs); on the Tasks tab (its count is of open tasks) x marks the "
            "highlighted task done or reopens it. Each list is the whole of it: g and G go to the first and last "
            "row, / filters all of it. Changes you make show at once with a ● pending marker until the next sync "
            "carries them to the server.")
    DEFAULT_CSS = """
    Customer360Screen #c360-tabs {
        height: 1fr;
        & TabPane {
            padding: 0;
        }
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("n", "note", "Note", id="c360.note"),
        Binding("c", "call", "Call", id="c360.call"),
        Binding("v", "visit", "Visit", id="c360.visit"),
        Binding("f", "follow_up", "Follow-up", id="c360.follow_up"),
        Binding("e", "edit", "Edit", id="c360.edit"),
        Binding("t", "ticket", "Ticket", id="c360.ticket"),
        Binding("d", "deal", "Deal", id="c360.deal"),
        Binding("a", "contact", "Contact", id="c360.contact"),
        Binding("x", "task_done", "Task done/reopen", show=False, id="c360.task_done"),
        Binding("l,right_square_bracket", "tab(1)", "Next tab", show=False, id="c360.next_tab"),
        Binding("h,left_square_bracket", "tab(-1)", "Previous tab", show=False, id="c360.prev_tab"),
    ]

    def __init__(self, customer_id: str, tab: str = "contacts") -> None:
        super().__init__()
        self.customer_id = customer_id
        self.initial_tab = tab if tab in TABS else "contacts"
        self.c360: dict[str, Any] | None = None
        self.currency: str | None = None

    def compose_body(self):
        yield Static(id="c360-header", classes="record-header")
        sources = customer_sources(self.crm, self.customer_id)
        with TabbedContent(initial=f"tab-{self.initial_tab}", id="c360-tabs"):
            for key, (label, empty) in TABS.items():
                with TabPane(label, id=f"tab-{key}"):
                    yield ListPanel(sources[key], empty=empty, table_id=f"c360-{key}")

    def on_mount(self) -> None:
        super().on_mount()
        self._focus_tab()

    # ------------------------------------------------------------------ data

    def refresh_data(self) -> None:
        self.c360 = self.replica.reads.customer_360(self.customer_id)
        # Its lifetime value is in the currency it trades in (no decimals for JPY, KRW ...).
        self.currency = self.replica.reads.customer_currency(self.customer_id)
        self._show_header()
        for panel in self.query(ListPanel):
            panel.reload()

    def _show_header(self) -> None:
        header = self.query_one("#c360-header", Static)
        tabs = self.query_one("#c360-tabs", TabbedContent)
        if self.c360 is None:
            header.update(Content("This customer is no longer in your replica (deleted, or it left your "
                                  "territory). esc goes back."))
            return
        c = self.c360["customer"]
        counts = self.c360["counts"]
        state = self.replica.outbox.record_state("customer", self.customer_id)
        first: list[str | tuple[str, str]] = [(c.get("name") or c["id"], "bold")]
        if c.get("company"):
            first.append(f" · {c['company']}")
        if c.get("tier"):
            first.append((f"  {c['tier']}", "$text-accent"))
        if state:
            first.append((f"  {MARKS[state]} {MARK_LABELS[state]}", f"bold $text-{MARK_TONES[state]}"))
        second = " · ".join(x for x in (
            f"owner {self.c360.get('owner_name') or '-'}",
            f"territory {self.c360.get('territory_name') or '-'}",
            f"lifetime value {money(c.get('lifetime_value'), self.currency) or '-'}",
            plural(counts["open_tickets"], "open ticket"),
            f"orders {totals(self.c360.get('order_totals') or {})}",
        ) if x)
        contact_line = " · ".join(x for x in (c.get("email"), c.get("phone"), c.get("city"), c.get("country")) if x)
        header.update(Content.assemble(*first, "\n", (second, "$text-muted"), "\n", (contact_line, "$text-muted")))
        for key, count_key in (("contacts", "contacts"), ("orders", "orders"), ("tickets", "tickets"),
                               ("deals", "deals"), ("tasks", "open_tasks"), ("activity", "activities")):
            tab = tabs.get_tab(f"tab-{key}")
            tab.label = Content(f"{TABS[key][0]} {grouped(counts.get(count_key, 0))}")

    # ------------------------------------------------------------------ tabs

    @property
    def active_tab(self) -> str:
        return self.query_one("#c360-tabs", TabbedContent).active.removeprefix("tab-")

    def _focus_tab(self) -> None:
        pane = self.query_one(f"#tab-{self.active_tab}", TabPane)
        focused = self.focused
        if focused is not None and pane in focused.ancestors:
            return  # already there (the filter box, say): leave the focus where the user put it
        self.query_one(f"#c360-{self.active_tab}", WindowTable).focus()

    def action_tab(self, step: int) -> None:
        keys = list(TABS)
        index = (keys.index(self.active_tab) + step) % len(keys)
        self.query_one("#c360-tabs", TabbedContent).active = f"tab-{keys[index]}"
        self.call_after_refresh(self._focus_tab)

    def show_tab(self, key: str) -> None:
        self.query_one("#c360-tabs", TabbedContent).active = f"tab-{key}"
        self.call_after_refresh(self._focus_tab)

    @on(TabbedContent.TabActivated)
    def _tab_changed(self, event: TabbedContent.TabActivated) -> None:
        self.call_after_refresh(self._focus_tab)

    # ------------------------------------------------------------------ actions

    def _open_form(self, form, tab: str | None = None) -> None:
        def saved(result: dict[str, Any] | None) -> None:
            if result is None:
                return
            self.app.notify("Saved. It goes to the server with the next sync.", timeout=3)
            self.crm.data_changed()
            if tab:
                self.show_tab(tab)

        self.app.push_screen(form, saved)

    def _exists(self) -> bool:
        if self.c360 is None:
            self.app.notify("This customer is no longer in your replica.", severity="warning")
            return False
        return True

    def action_note(self) -> None:
        if self._exists():
            self._open_form(activity_form(self.crm, self.customer_id, kind="note", title="Log a note"), "activity")

    def action_call(self) -> None:
        if self._exists():
            self._open_form(activity_form(self.crm, self.customer_id, kind="call", title="Log a call"), "activity")

    def action_visit(self) -> None:
        if self._exists():
            self._open_form(activity_form(self.crm, self.customer_id, kind="visit", title="Log a visit"), "activity")

    def action_ticket(self) -> None:
        if self._exists():
            self._open_form(ticket_form(self.crm, self.customer_id), "tickets")

    def action_edit(self) -> None:
        if self._exists():
            record = self.replica.get("customer", self.customer_id)
            if record is not None:
                self._open_form(customer_form(self.crm, record))

    def action_deal(self) -> None:
        if self._exists():
            self._open_form(deal_form(self.crm, self.customer_id), "deals")

    def export_plan(self) -> ExportPlan:
        """`:export`: the whole list of the tab in front (its `/` filter too), for this customer."""
        tab = self.active_tab
        name = ((self.c360 or {}).get("customer") or {}).get("name") or self.customer_id
        return table_plan(self, self.query_one(f"#c360-{tab}", WindowTable), f"{tab} of {name}",
                          f"customer {self.customer_id}, tab {tab}")

    def action_follow_up(self) -> None:
        """A follow-up on the customer; on the Tickets or Deals tab, about the highlighted one."""
        if not self._exists():
            return
        tab = self.active_tab
        row = self.query_one(f"#c360-{tab}", WindowTable).current_row() if tab in ("tickets", "deals") else None
        if tab == "tickets" and row is not None:
            follow_up(self.crm, self.customer_id, ticket=self.replica.get("ticket", row["id"]))
        elif tab == "deals" and row is not None:
            follow_up(self.crm, self.customer_id, deal=self.replica.get("deal", row["id"]))
        else:
            follow_up(self.crm, self.customer_id)

    def action_task_done(self) -> None:
        if self.active_tab != "tasks":
            self.app.notify("x completes a task on the Tasks tab.")
            return
        row = self.query_one("#c360-tasks", WindowTable).current_row()
        task = self.replica.get("task", row["id"]) if row else None
        if task is None:
            self.app.notify("No task selected.", severity="warning")
            return
        set_done(self.crm, task, task.get("status") != "done")

    def action_contact(self) -> None:
        if self._exists():
            self._open_form(contact_form(self.crm, self.customer_id), "contacts")

    @on(DataTable.RowSelected)
    def _open_row(self, event: DataTable.RowSelected) -> None:
        table = event.data_table
        if not isinstance(table, WindowTable):
            return
        row = table.current_row()
        if row is None:
            return
        tab = self.active_tab
        if tab == "tickets":
            open_ticket(self.crm, row["id"])
        elif tab == "orders":
            open_order(self.crm, row["id"])
        elif tab == "contacts":
            self._open_form(contact_form(self.crm, self.customer_id, row))
        elif tab == "deals":
            self._open_form(deal_form(self.crm, self.customer_id, row))
        elif tab == "activity":
            self._open_form(edit_activity_form(self.crm, row))
        elif tab == "tasks":
            self._open_form(task_form(self.crm, self.customer_id, record=self.replica.get("task", row["id"]) or row))
