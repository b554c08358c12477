"""Today: the user's open tasks and follow-ups, overdue first, then due today, then upcoming.

One list, soonest due first, so what is late is at the top; the bar counts each group. `x`
completes or reopens the task under the cursor, `v` switches between the user's own tasks and
everyone's, `D` between open and done ones; `enter` edits, `o` opens the customer.
"""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual import on
from textual.binding import Binding, BindingType
from textual.content import Content
from textual.widgets import DataTable, Static

from cache.tasks import AgendaCounts
from crm_tui.core.agenda import UPCOMING_DAYS, bucket, due_text
from crm_tui.core.text import grouped
from screens.base import CrmScreen
from screens.counting import CountApart
from screens.display import plain, short_time
from screens.exporting import ExportPlan, table_plan
from screens.navigation import open_customer
from screens.tables import Column, ListPanel, ListSource, RowContext
from screens.task_forms import set_done, task_form

DUE_TONES = {"overdue": "text-error", "today": "text-warning"}


class TodayScreen(CrmScreen):
    LABEL = "Today"
    HELP = ("Your open tasks and follow-ups, soonest due first: overdue ones (red) at the top, then those due "
            "today (amber), then the upcoming ones. x marks the task done (or reopens a done one), enter edits "
            "it, o opens its customer; v switches between yours and everyone's, D between open and done tasks. "
            "f on a customer, a ticket or a deal makes a new follow-up. When a task of yours falls due while "
            "the app is open, a reminder pops up. Times are UTC.")
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("x", "toggle_done", "Done/reopen", id="today.done"),
        Binding("e", "edit", "Edit", id="today.edit"),
        Binding("o", "open_customer", "Customer", id="today.customer"),
        Binding("v", "cycle_view", "Mine/all", id="today.view"),
        Binding("D", "toggle_status", "Open/done", id="today.status"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.view = "mine"
        self.status = "open"
        self._names: dict[str, str] = {}
        self._customers: dict[str, str] = {}
        self._about: dict[str, str] = {}
        # How many open tasks are overdue, due today...: they look at every task of the view,
        # so they are counted apart; None until the counts for the view shown have come.
        self._counts: AgendaCounts | None = None
        self._counts_of: tuple[str, str] | None = None  # the (view, status) they are of
        self.agenda_counts = CountApart[AgendaCounts](self, "today-counts")

    def compose_body(self):
        yield Static(id="today-bar", classes="toolbar")
        yield ListPanel(self._source(), empty="", table_id="today-table", id="today-panel")

    @property
    def me(self) -> dict[str, Any]:
        return self.replica.reads.me() or {}

    @property
    def panel(self) -> ListPanel:
        return self.query_one("#today-panel", ListPanel)

    def _owner(self) -> str | None:
        return self.me.get("id") if self.view == "mine" else None

    # ------------------------------------------------------------------ source

    def _source(self) -> ListSource:
        def columns(wide: bool) -> list[Column]:
            # When the row does not fit, the owner goes first, then what the task is about.
            return [Column("mark", "", 1), Column("due", "due", 16), Column("title", "task"),
                    Column("customer", "customer", 24 if wide else 18, give_way=1),
                    Column("about", "about", 24, give_way=2), Column("owner", "owner", 18, give_way=3)]

        def cells(row: dict[str, Any], ctx: RowContext) -> list[Any]:
            if row.get("status") == "done":
                due = Text(f"done {short_time(row.get('done_at'))[5:]}", style=ctx.tone("text-success"), no_wrap=True)
            else:
                tone = DUE_TONES.get(bucket(row.get("due_at"), ctx.now))
                due = Text(due_text(row.get("due_at"), ctx.now), style=ctx.tone(tone) if tone else "", no_wrap=True)
            customer = row.get("customer_name") or self._customer(row.get("customer_id"))
            return [ctx.mark(), due, plain(row.get("title")), plain(customer),
                    plain(self._about_text(row)), plain(self._user(row.get("owner_id")) or "-")]

        # The whole list, a window onto it (everyone's tasks may be hundreds of thousands).
        return ListSource(columns=columns, cells=cells, entity="task",
                          window=lambda: self.replica.lists.tasks(self.status, owner_id=self._owner()))

    def _user(self, uid: str | None) -> str:
        if not uid:
            return ""
        if uid not in self._names:
            self._names[uid] = self.replica.reads.user_name(uid)
        return self._names[uid]

    def _customer(self, cid: str | None) -> str:
        if not cid:
            return ""
        if cid not in self._customers:
            record = self.replica.get("customer", cid)
            self._customers[cid] = (record or {}).get("name") or cid
        return self._customers[cid]

    def _about_text(self, row: dict[str, Any]) -> str:
        """'#1042 Delivery is late' or 'deal: Fleet renewal' for a task about a ticket or a deal."""
        key = row.get("ticket_id") or row.get("deal_id")
        if not key:
            return ""
        if key not in self._about:
            if row.get("ticket_id"):
                t = self.replica.get("ticket", key) or {}
                self._about[key] = f"#{t.get('number') or key} {t.get('subject') or ''}".strip()
            else:
                d = self.replica.get("deal", key) or {}
                self._about[key] = f"deal: {d.get('title') or key}"
        return self._about[key]

    # ------------------------------------------------------------------ data

    def refresh_data(self, keep_cursor: bool = True) -> None:
        self._names.clear()
        self._customers.clear()
        self._about.clear()
        if not self.me.get("id") and self.view == "mine":
            self.view = "all"
        self.panel.empty_text = self._empty_text()
        self.panel.table.reload(keep_cursor=keep_cursor)
        if self._counts_of != (self.view, self.status):
            # Another view: its counts, not the last one's, once they come. The same view read
            # again (a save, a sync) keeps its last counts until the new ones come.
            self._counts, self._counts_of = None, (self.view, self.status)
        if self.status == "done":
            self.agenda_counts.drop()
        else:
            now, owner = self.now(), self._owner()
            self.agenda_counts.ask(lambda replica: replica.tasks.counts(now, owner_id=owner), self._counted)
        self._show_bar()

    def _counted(self, counts: AgendaCounts) -> None:
        self._counts = counts
        self._show_bar()

    def on_unmount(self) -> None:
        self.agenda_counts.close()

    def _loading(self) -> bool:
        complete = self.replica.get_meta("complete_entities") or []
        return self.replica.reads.has_customers() and "task" not in complete

    def _empty_text(self) -> str:
        follow = "f on a customer, a ticket or a deal makes a follow-up."
        if self._loading():
            return f"Tasks are still on their way: the first sync brings them after customers and their history. {follow}"
        if not self.replica.reads.has_customers():
            return f"No tasks: your replica is empty. Sign in and sync first ({self.crm.key_for('app.sync_now')})."
        if self.status == "done":
            return "No done tasks in this view. D shows the open ones."
        return f"Nothing due. {follow}"

    def _show_bar(self) -> None:
        who = "mine" if self.view == "mine" else "everyone's"
        parts: list[str | tuple[str, str]] = [(f"Today · {who}", "bold")]
        if self.status == "done":
            parts.append(" · done tasks, most recently due first")
        elif (c := self._counts) is None:
            parts.append((" · counting…", "$text-muted"))
        else:
            roomy = self.size.width >= 100
            parts.append(" · ")
            parts.append((f"{grouped(c.overdue)} overdue", "bold $text-error") if c.overdue else "0 overdue")
            parts.append(" · ")
            today = f"{grouped(c.today)} due today" if roomy else f"{grouped(c.today)} today"
            parts.append((today, "bold $text-warning") if c.today else today)
            parts.append(f" · {grouped(c.upcoming)} in the next {UPCOMING_DAYS} days" if roomy else
                         f" · {grouped(c.upcoming)} next {UPCOMING_DAYS} d")
            if c.later:
                parts.append(f" · {grouped(c.later)} later")
            if c.done_today:
                parts.append((f" · {grouped(c.done_today)} done today" if roomy else f" · {grouped(c.done_today)} done",
                              "$text-success"))
        if self._loading():
            parts.append((" · still loading", "$text-warning"))
        if self.size.width >= 120:
            parts.append(("   x done · v mine/all · D open/done", "$text-muted"))
        self.query_one("#today-bar", Static).update(Content.assemble(*parts))

    def export_plan(self) -> ExportPlan:
        """`:export`: the tasks of this view (mine or everyone's, open or done), `/` filter too."""
        who = "my tasks" if self.view == "mine" else "everyone's tasks"
        plan = table_plan(self, self.panel.table, "tasks (Today)", f"{who}, {'done' if self.status == 'done' else 'open'}")
        plan.noun = "task"
        return plan

    def current_task(self) -> dict[str, Any] | None:
        row = self.panel.table.current_row()
        return self.replica.get("task", row["id"]) if row else None

    def _selected_task(self) -> dict[str, Any] | None:
        task = self.current_task()
        if task is None:
            self.crm.notify("No task selected.", severity="warning")
        return task

    # ------------------------------------------------------------------ actions

    def action_toggle_done(self) -> None:
        task = self._selected_task()
        if task is not None:
            set_done(self.crm, task, task.get("status") != "done")

    def action_edit(self) -> None:
        task = self._selected_task()
        if task is None:
            return

        def saved(result: dict[str, Any] | None) -> None:
            if result is not None:
                self.crm.notify("Saved. It goes to the server with the next sync.", timeout=3)
                self.crm.data_changed()

        self.app.push_screen(task_form(self.crm, task["customer_id"], record=task), saved)

    def action_open_customer(self) -> None:
        task = self._selected_task()
        if task is not None:
            open_customer(self.crm, task.get("customer_id"))

    def action_cycle_view(self) -> None:
        if self.view == "all" and not self.me.get("id"):
            self.crm.notify("Not signed in: every task is shown.")
            return
        self.view = "all" if self.view == "mine" else "mine"
        self.refresh_data(keep_cursor=False)  # another list: start at its top, in sight

    def action_toggle_status(self) -> None:
        self.status = "done" if self.status == "open" else "open"
        self.refresh_data(keep_cursor=False)

    @on(DataTable.RowSelected, "#today-table")
    def _open(self, event: DataTable.RowSelected) -> None:
        self.action_edit()

