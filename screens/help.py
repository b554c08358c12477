"""`?` help: what the screen in front is for, and every key active where the focus is.

The key table is built from the live bindings (after the user's keymap), so help, footer and
docs never disagree.
"""

from __future__ import annotations

from typing import ClassVar

from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Static

from screens.dialog import CrmModal
from screens.display import plain
from screens.tables import CrmTable


def binding_rows(app: App, screen: Screen) -> list[tuple[str, str, str]]:
    """(keys, what it does, binding id) for every enabled binding where the focus is: the
    screen's own keys first, then the focused widget's, then the app's; built-ins last."""
    by_id: dict[str, tuple[list[str], str]] = {}
    rank: dict[str, tuple[int, int]] = {}
    for n, (key, active) in enumerate(screen.active_bindings.items()):
        binding = active.binding
        if not active.enabled or not binding.description:
            continue
        ident = binding.id or f"{binding.action}"
        if ident not in by_id:
            by_id[ident] = ([], binding.tooltip or binding.description)
            owner = 0 if active.node is screen else 2 if active.node is app else 1
            ours = binding.id is not None and not binding.id.startswith(("app.focus", "screen."))
            rank[ident] = (owner if ours else 3, n)
        shown = app.get_key_display(binding.with_key(key))
        if shown not in by_id[ident][0]:
            by_id[ident][0].append(shown)
    order = sorted(by_id, key=lambda i: rank[i])
    return [(", ".join(by_id[i][0]), by_id[i][1], i if "." in i else "") for i in order]


class HelpScreen(CrmModal[None]):
    """A modal listing the keys of the screen behind it."""

    DEFAULT_CSS = """
    HelpScreen {
        & > .help-dialog {
            width: 90;
            height: 90%;
        }
        & .help-text {
            height: auto;
            padding-bottom: 1;
        }
        & .help-keys {
            height: 1fr;
        }
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark,f1", "dismiss", "Close", id="help.close"),
    ]

    def __init__(self, help_text: str, rows: list[tuple[str, str, str]], *, title: str) -> None:
        super().__init__()
        self.help_text = help_text
        self.rows = rows
        self.title_text = title

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog help-dialog"):
            yield Static(f"Keys: {self.title_text}", classes="dialog-title", markup=False)
            if self.help_text:
                yield Static(self.help_text, classes="help-text", markup=False)
            table = CrmTable(classes="help-keys")
            table.add_column("key", width=12)
            table.add_column("does", width=32)
            table.add_column("binding id", width=22)
            for keys, text, ident in self.rows:
                table.add_row(plain(keys), plain(text), plain(ident))
            yield table
            yield Static("esc closes · rebind any id in settings.keymap", classes="dialog-hint")

    def on_mount(self) -> None:
        self.query_one(CrmTable).focus()

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(None)
