"""Rejected ops: changes the server refused, kept with its reason until fixed or discarded.

One rejected op never blocks the others (they were sent and applied); this screen is where the
user decides what becomes of it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from textual import on
from textual.binding import Binding, BindingType
from textual.content import Content
from textual.widget import Widget
from textual.widgets import DataTable, Static

from cache.errors import ReplicaError
from cache.outbox import OutboxOp
from crm_tui.core.domain import entity, format_money, format_value
from screens.counted_list import CountedListScreen
from screens.display import plain, record_title
from screens.form_specs import record_currency, resend_form
from screens.pickers import ConfirmModal
from screens.tables import Column, ListSource, RowContext


class RejectedScreen(CountedListScreen):
    LABEL = "Rejected"
    HELP = ("Changes the server refused, with its reason. f (or enter) opens the change in a form to fix and "
            "re-send it; r re-sends it unchanged (after the server side was fixed); x discards it and puts "
            "back the server's value.")
    DEFAULT_CSS = """
    RejectedScreen .rejected-detail {
        height: auto;
        max-height: 8;
        padding: 0 1;
        border-top: solid $primary-muted;
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f", "fix", "Fix", id="rejected.fix"),
        Binding("r", "resend", "Re-send", id="rejected.resend"),
        Binding("x", "discard", "Discard", id="rejected.discard"),
    ]

    PREFIX = "rejected"
    NOUN = "change"
    INTRO = "{count} refused by the server · f fix · r re-send · x discard"
    NONE_INTRO = "Rejected changes"
    EMPTY = "Nothing was rejected: the server took every change you made."

    def list_source(self) -> ListSource:
        def cells(row: dict[str, Any], ctx: RowContext) -> list[Any]:
            op: OutboxOp = row["op"]
            record = self.replica.get(op.entity, op.record_id)
            return [plain(f"{op.op} {op.entity}"), plain(record_title(op.entity, op.record_id, record or op.base_values)),
                    plain((op.error or {}).get("message") or "rejected")]

        return ListSource(columns=lambda wide: [Column("change", "change", 15), Column("record", "record"),
                                                Column("reason", "reason", 60 if wide else 28)],
                          cells=cells, window=self.replica.lists.rejected)

    def compose_under_list(self) -> Iterable[Widget]:
        yield Static(id="rejected-detail", classes="rejected-detail")

    def count_shown(self, n: int) -> None:
        self.query_one("#rejected-detail").display = bool(n)
        self._show_detail()

    def current_op(self) -> OutboxOp | None:
        row = self.table.current_row()
        return row["op"] if row is not None else None

    @on(DataTable.RowHighlighted, "#rejected-table")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_detail()

    def _show_detail(self) -> None:
        op = self.current_op()
        detail = self.query_one("#rejected-detail", Static)
        if op is None:
            detail.update("")
            return
        ent = entity(op.entity)
        errors = (op.error or {}).get("fields") or {}
        parts: list[str | tuple[str, str]] = [("what was sent", "bold")]
        if op.op == "delete":
            parts.append("\n  delete the record")
        for name, value in op.fields.items():
            f = ent.by_name.get(name)
            if f is not None and f.kind == "money" and value is not None:
                record = {**op.base_values, **(self.replica.get(op.entity, op.record_id) or {}), **op.fields}
                shown = format_money(value, record_currency(self.crm, op.entity, op.record_id, record))
            else:
                shown = format_value(f, value) if f else str(value)
            parts.append(f"\n  {f.label if f else name}: {shown or '(empty)'}")
            if name in errors:
                parts.append((f"  ↳ {errors[name]}", "$text-error"))
        code = (op.error or {}).get("code")
        if code:
            parts.append((f"\nserver said: {code}", "$text-muted"))
        detail.update(Content.assemble(*parts))

    # ------------------------------------------------------------------ actions

    def _op(self) -> OutboxOp | None:
        op = self.current_op()
        if op is None:
            self.app.notify("No rejected change selected.", severity="warning")
        return op

    def action_fix(self) -> None:
        op = self._op()
        if op is None:
            return
        if op.op == "delete":
            self.action_resend()
            return

        def saved(result: dict[str, Any] | None) -> None:
            if result is not None:
                self.app.notify("Fixed: it goes to the server with the next sync.", timeout=3)
                self.crm.data_changed()

        self.app.push_screen(resend_form(self.crm, op), saved)

    def action_resend(self) -> None:
        op = self._op()
        if op is None:
            return
        try:
            self.crm.save("resend", op.entity, {}, record_id=str(op.seq))
        except (ReplicaError, ValueError) as exc:
            self.app.notify(str(exc), severity="error")
            return
        self.app.notify("Queued again for the next sync.", timeout=3)
        self.crm.data_changed()

    def action_discard(self) -> None:
        op = self._op()
        if op is None:
            return

        def answered(yes: bool | None) -> None:
            if not yes:
                return
            try:
                self.crm.save("discard", op.entity, record_id=str(op.seq))
            except ReplicaError as exc:
                self.app.notify(str(exc), severity="error")
                return
            self.app.notify("Discarded: the server's version comes back.", timeout=3)
            self.crm.data_changed()

        self.app.push_screen(ConfirmModal(f"Discard this change ({op.summary})?",
                                          "Your edit is dropped and the record goes back to the server's version."),
                             answered)

    @on(DataTable.RowSelected, "#rejected-table")
    def _selected(self, event: DataTable.RowSelected) -> None:
        self.action_fix()
