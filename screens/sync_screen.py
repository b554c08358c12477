"""Sync: how the replica stands with the server, the recent runs, what waits to be sent, and the
records the server sent that could not be stored."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.content import Content
from textual.widgets import Static, TabbedContent, TabPane

from crm_tui.core.text import grouped
from screens.base import CrmScreen
from screens.display import ago, parse_ts, plain, record_title, short_time, span
from screens.tables import CrmTable, tone

PENDING_SHOWN = 200
QUARANTINE_SHOWN = 100


class SyncScreen(CrmScreen):
    LABEL = "Sync"
    HELP = ("How this replica stands with the server. s (or f5 anywhere) syncs now: pending changes are "
            "pushed, then the server's changes pulled. l and h (or ] and [) switch tabs: History lists recent runs; Pending lists your "
            "changes waiting to go; Quarantined lists records from the server that failed validation and "
            "were set aside (the rest of the sync went on).")
    DEFAULT_CSS = """
    SyncScreen #sync-tabs {
        height: 1fr;
        & TabPane {
            padding: 0;
        }
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("s", "app.sync_now", "Sync now", show=False, id="sync.now"),
        Binding("l,right_square_bracket", "tab(1)", "Next tab", id="sync.next_tab"),
        Binding("h,left_square_bracket", "tab(-1)", "Previous tab", id="sync.prev_tab"),
    ]
    TABS = ("sync-history-tab", "sync-pending-tab", "sync-quarantine-tab")

    def compose_body(self):
        yield Static(id="sync-state", classes="record-header")
        with TabbedContent(id="sync-tabs"):
            with TabPane("History", id="sync-history-tab"):
                yield CrmTable(id="sync-history")
            with TabPane("Pending", id="sync-pending-tab"):
                yield CrmTable(id="sync-pending")
            with TabPane("Quarantined", id="sync-quarantine-tab"):
                yield CrmTable(id="sync-quarantine")

    def on_mount(self) -> None:
        self.query_one("#sync-history", CrmTable).add_columns(
            "started", "took", "result", "pushed", "pulled", "conflicts", "rejected", "error")
        self.query_one("#sync-pending", CrmTable).add_columns("op", "record", "fields", "sent")
        self.query_one("#sync-quarantine", CrmTable).add_columns("entity", "record id", "why it was set aside")
        super().on_mount()
        self.crm.status_changed.subscribe(self, lambda _info: self._show_state())
        self.query_one("#sync-history", CrmTable).focus()

    def on_screen_resume(self) -> None:
        # The sync state lives in the app, not the replica: always redraw it.
        super().on_screen_resume()
        self._show_state()

    def action_tab(self, step: int) -> None:
        tabs = self.query_one("#sync-tabs", TabbedContent)
        index = (self.TABS.index(tabs.active) + step) % len(self.TABS) if tabs.active in self.TABS else 0
        tabs.active = self.TABS[index]
        table_id = {"sync-history-tab": "#sync-history", "sync-pending-tab": "#sync-pending",
                    "sync-quarantine-tab": "#sync-quarantine"}[self.TABS[index]]
        self.call_after_refresh(self.query_one(table_id, CrmTable).focus)

    def refresh_data(self) -> None:
        self._show_state()
        self._show_history()
        self._show_pending()
        self._show_quarantine()

    def _show_state(self) -> None:
        app = self.crm
        info = app.status_info()
        last = self.replica.get_meta("last_sync_at")
        lines: list[str | tuple[str, str]] = [
            (f"● {info.state}", f"bold ${info.tone}"),
            (f"  {info.detail}" if info.detail else "", "$text-muted"),
            "\n",
            f"last successful sync {ago(last, self.now())}" + (f" ({short_time(last)})" if last else ""),
            "\n",
            ("server " + (app.server_label or "signed in") if app.sync_runner is not None
             else "no server: run `crm-tui login`", "$text-muted"),
        ]
        error = app.last_error or self.replica.get_meta("last_error")
        if error and info.state != "online":
            lines += ["\n", (f"last error: {error}", "$text-error")]
        self.query_one("#sync-state", Static).update(Content.assemble(*lines))
        # How many changes wait: the status line's count, made apart from the UI (it grows
        # with the outbox); the tab follows it whenever it comes.
        tabs = self.query_one("#sync-tabs", TabbedContent)
        tabs.get_tab("sync-pending-tab").label = Content(f"Pending {grouped(info.pending)}")

    def _show_history(self) -> None:
        table = self.query_one("#sync-history", CrmTable)
        table.clear()
        for run in self.replica.reads.sync_runs():
            start, end = run.get("started_at"), run.get("finished_at")
            took = ""
            if start and end:
                a, b = parse_ts(start), parse_ts(end)
                took = span((b - a).total_seconds()) if a and b else ""
            if run.get("ok") is None:
                result = Text("running" if not end else "?", no_wrap=True)
            elif run["ok"]:
                result = Text("ok", style=tone(table, "text-success"), no_wrap=True)
            else:
                result = Text("failed", style=tone(table, "text-error"), no_wrap=True)
            table.add_row(plain(short_time(start)), plain(took), result, plain(run.get("pushed")),
                          plain(run.get("pulled")), plain(run.get("conflicts")), plain(run.get("rejected")),
                          plain(run.get("error") or ""), key=str(run["id"]))

    def _show_pending(self) -> None:
        table = self.query_one("#sync-pending", CrmTable)
        table.clear()
        ops = self.replica.outbox.pending(limit=PENDING_SHOWN)
        for op in ops:
            record = self.replica.get(op.entity, op.record_id)
            what = f"{op.entity} {record_title(op.entity, op.record_id, record or op.base_values)}"
            fields = ", ".join(sorted(op.fields)) if op.op != "delete" else ""
            table.add_row(plain(op.op), plain(what), plain(fields),
                          plain(f"{op.sent_count}×" if op.sent_count else "not yet"), key=str(op.seq))

    def _show_quarantine(self) -> None:
        table = self.query_one("#sync-quarantine", CrmTable)
        table.clear()
        # The newest ones, and whether there are more than are listed ("100+").
        rows = self.replica.reads.quarantined(QUARANTINE_SHOWN + 1)
        more = "+" if len(rows) > QUARANTINE_SHOWN else ""
        rows = rows[:QUARANTINE_SHOWN]
        tabs = self.query_one("#sync-tabs", TabbedContent)
        tabs.get_tab("sync-quarantine-tab").label = Content(f"Quarantined {grouped(len(rows))}{more}")
        for row in rows:
            table.add_row(plain(row.get("entity")), plain(row.get("record_id")), plain(row.get("error")),
                          key=str(row["id"]))
