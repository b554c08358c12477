"""Conflicts: changes of yours the server could not merge, each field shown mine / theirs / base.

Nothing is decided for the user: until they apply a choice the conflict stays, and the record
keeps their value on screen.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.widgets import DataTable, Static

from cache.conflicts import Conflict
from cache.errors import ReplicaError
from crm_tui.core.domain import entity, format_money, format_value
from screens.counted_list import CountedListScreen
from screens.dialog import CrmModal
from screens.display import ago, plain, record_title
from screens.form_specs import record_currency
from screens.tables import Column, CrmTable, ListSource, RowContext, tone


def _show(entity_name: str, field_name: str, value: Any, currency: str | None = None) -> str:
    f = entity(entity_name).by_name.get(field_name)
    if value is None:
        return "(empty)"
    if f is None:
        return json.dumps(value) if not isinstance(value, str) else value
    if f.kind == "money":
        return format_money(value, currency)  # in the record's currency: no decimals for JPY
    return format_value(f, value)


class ConflictsScreen(CountedListScreen):
    LABEL = "Conflicts"
    HELP = ("Changes you made that clashed with a change saved on the server to the same field. enter opens one: "
            "for each field choose yours (m) or the server's (t), then apply (a). Choosing yours queues it "
            "again against the server's latest version.")
    PREFIX = "conflicts"
    NOUN = "conflict"
    INTRO = "{count} · enter opens one to choose what stays"
    NONE_INTRO = "No conflicts"
    EMPTY = "No conflicts: everything you changed merged cleanly."

    def list_source(self) -> ListSource:
        def cells(row: dict[str, Any], ctx: RowContext) -> list[Any]:
            c: Conflict = row["conflict"]
            record = self.replica.get(c.entity, c.record_id)
            kind = "you deleted" if c.kind == "delete" else "both changed"
            fields = "the whole record" if c.kind == "delete" else ", ".join(sorted(c.fields))
            return [plain(kind), plain(f"{c.entity} {record_title(c.entity, c.record_id, record)}"), plain(fields)]

        return ListSource(columns=lambda wide: [Column("kind", "kind", 12), Column("record", "record"),
                                                Column("fields", "fields", 40 if wide else 24)],
                          cells=cells, window=self.replica.lists.conflicts)

    @on(DataTable.RowSelected, "#conflicts-table")
    def _open(self, event: DataTable.RowSelected) -> None:
        row = self.table.current_row()
        if row is None:
            return
        conflict: Conflict = row["conflict"]

        def done(applied: bool | None) -> None:
            if applied:
                self.crm.data_changed()

        self.app.push_screen(ConflictResolveScreen(conflict), done)


class ConflictResolveScreen(CrmModal[bool]):
    """Choose, field by field, whose value stays; apply settles the conflict."""

    DEFAULT_CSS = """
    ConflictResolveScreen {
        & > .conflict-dialog {
            width: 100;
        }
        & .conflict-explain {
            height: auto;
            padding-bottom: 1;
        }
        & #conflict-fields {
            height: auto;
            max-height: 12;
        }
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("m", "choose('mine')", "Mine", id="conflict.mine"),
        Binding("t", "choose('theirs')", "Theirs", id="conflict.theirs"),
        Binding("M", "choose_all('mine')", "All mine", id="conflict.all_mine"),
        Binding("T", "choose_all('theirs')", "All theirs", id="conflict.all_theirs"),
        Binding("a,f2", "apply", "Apply", id="conflict.apply"),
        Binding("escape", "cancel", "Cancel", id="conflict.cancel"),
    ]

    def __init__(self, conflict: Conflict) -> None:
        super().__init__()
        self.conflict = conflict
        if conflict.kind == "delete":
            self.choices = {"record": "mine"}
        else:
            self.choices = dict.fromkeys(conflict.fields, "mine")

    def compose(self) -> ComposeResult:
        c = self.conflict
        app: Any = self.app
        record = app.replica.get(c.entity, c.record_id)
        with Vertical(classes="dialog conflict-dialog"):
            yield Static(Content(f"Conflict on {c.entity} {record_title(c.entity, c.record_id, record)}"),
                         classes="dialog-title")
            if c.kind == "delete":
                explain = ("You deleted this record, but the server changed it since. Mine deletes it anyway; "
                           "theirs keeps the server's copy.")
            else:
                # The server's records carry no author of a change, only when it was saved and
                # its version: that is what the user is told.
                when = record.get("updated_at") if record else None
                saved = f", saved there {ago(when, app.now())}" if when else ""
                version = f" (version {c.server_version}{saved})" if c.server_version is not None else saved
                explain = (f"The same fields were changed on the server{version} and by you. Choose per field: "
                           "m keeps yours, t takes the server's. Fields you did not both change were merged already.")
            yield Static(Content(explain), classes="conflict-explain")
            yield CrmTable(id="conflict-fields")
            yield Static(Content("m mine · t theirs · M/T all · a apply · esc cancel"), classes="dialog-hint")

    def on_mount(self) -> None:
        table = self.query_one("#conflict-fields", CrmTable)
        table.add_columns("field", "before (base)", "mine", "theirs (server)", "keep")
        self._fill()
        table.focus()

    def _fill(self) -> None:
        table = self.query_one("#conflict-fields", CrmTable)
        row = table.cursor_row
        table.clear()
        c = self.conflict
        chosen = tone(table, "text-success")
        app: Any = self.app
        record = app.replica.get(c.entity, c.record_id)
        stored = record_currency(app, c.entity, c.record_id, record)
        currency_change = c.fields.get("currency") or {}

        def show(name: str, values: dict[str, Any], side: str) -> str:
            # An amount in its side's currency: no decimals for JPY, KRW ...
            return _show(c.entity, name, values.get(side), currency_change.get(side) or stored)

        if c.kind == "delete":
            keep = self.choices["record"]
            table.add_row(plain("record"), plain("(exists)"), Text("delete it", style=chosen if keep == "mine" else ""),
                          Text("keep it", style=chosen if keep == "theirs" else ""), plain(keep), key="record")
            # What the server changed, so "keep" is an informed choice.
            for name, values in c.fields.items():
                f = entity(c.entity).by_name.get(name)
                table.add_row(plain(f"  {f.label if f else name}"), plain(show(name, values, "base")),
                              plain("(deleted)"), plain(show(name, values, "theirs")), plain(""),
                              key=f"info:{name}")
        else:
            for name, values in c.fields.items():
                keep = self.choices[name]
                f = entity(c.entity).by_name.get(name)
                table.add_row(
                    plain(f.label if f else name), plain(show(name, values, "base")),
                    Text(show(name, values, "mine"), style=chosen if keep == "mine" else ""),
                    Text(show(name, values, "theirs"), style=chosen if keep == "theirs" else ""),
                    plain(keep), key=name)
        if table.row_count:
            table.move_cursor(row=min(max(row, 0), table.row_count - 1), animate=False)

    def action_choose(self, side: str) -> None:
        key = self.query_one("#conflict-fields", CrmTable).current_key
        if key in self.choices:
            self.choices[key] = side
            self._fill()

    def action_choose_all(self, side: str) -> None:
        for key in self.choices:
            self.choices[key] = side
        self._fill()

    def action_apply(self) -> None:
        c = self.conflict
        if c.kind == "delete":
            choices = {"record": "delete" if self.choices["record"] == "mine" else "keep"}
        else:
            choices = dict(self.choices)
        app: Any = self.app
        try:
            app.save("resolve", c.entity, choices, record_id=str(c.id))
        except ReplicaError as exc:
            self.app.notify(str(exc), severity="error")
            self.dismiss(False)
            return
        mine = [k for k, v in self.choices.items() if v == "mine"]
        self.app.notify("Conflict settled" + (": your values go out with the next sync" if mine else "."),
                        timeout=3)
        self.dismiss(True)

    def action_cancel(self) -> None:
        self.dismiss(False)
