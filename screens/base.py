"""What every CRM screen shares: the frame, the `esc` layering, and re-reading the replica.

A screen shows what the replica holds *now*: whenever the app says the data changed (a sync
finished, a local write was saved) the visible screen re-reads it at once, and a hidden one
does so when it comes back.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import TYPE_CHECKING, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingsMap, BindingType
from textual.containers import Vertical
from textual.dom import DOMNode
from textual.keys import key_to_character
from textual.screen import Screen

from screens.chrome import CrmFooter, NavBar, StatusLine
from screens.tables import ListPanel, WindowTable

if TYPE_CHECKING:
    from cache.replica import Replica
    from screens.host import CrmHost


class CrmScreen(Screen):
    """A full screen of the app. Subclasses implement ``compose_body`` and ``refresh_data``."""

    # The frame and the parts every screen lays out the same way: a one-line toolbar over a list, a
    # record's header, a text standing in for an empty list.
    DEFAULT_CSS = """
    CrmScreen {
        & > .screen-body {
            height: 1fr;
        }
        & .toolbar {
            height: 1;
            padding: 0 1;
            background: $boost;
        }
        & .record-header {
            height: auto;
            max-height: 5;
            padding: 0 1;
            background: $boost;
        }
        & .empty-state {
            height: auto;
            padding: 1 2;
            color: $text-muted;
        }
    }
    """
    HELP: ClassVar[str] = ""  # what the screen is for, shown by `?`
    LABEL: ClassVar[str] = ""  # what people call the screen (help's title)
    AUTO_FOCUS: ClassVar[str | None] = "WindowTable, CrmTable"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", show=False, id="nav.back"),
    ]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._seen_gen = -1

    @property
    def crm(self) -> CrmHost:
        return self.app  # type: ignore[return-value]

    @property
    def replica(self) -> Replica:
        return self.crm.replica

    def now(self) -> dt.datetime:
        return self.crm.now()

    # ------------------------------------------------------------------ frame

    def compose(self) -> ComposeResult:
        yield NavBar(classes="nav-bar")
        # The body takes the height between the bars, however little it shows: the status line
        # stays at the bottom of an empty screen.
        with Vertical(classes="screen-body"):
            yield from self.compose_body()
        yield StatusLine(classes="status-line")
        yield CrmFooter()

    def compose_body(self) -> Iterable:
        return ()

    # ------------------------------------------------------------------ data

    def refresh_data(self) -> None:
        """Re-read everything shown from the replica."""

    def clock_moved(self) -> None:
        """The app's clock ticked: the lists in view say again how long ago their rows were.
        Screens with other clock-dependent text (a header's SLA) say that again too."""
        for table in self.query(WindowTable):
            if table.display:
                table.clock_moved()

    def sync_data(self) -> None:
        """Refresh if the replica changed since this screen last read it (a screen not yet
        mounted reads it when it is)."""
        if self._seen_gen != self.crm.data_gen and self.is_mounted:
            self._seen_gen = self.crm.data_gen
            self.refresh_data()

    def on_mount(self) -> None:
        self._seen_gen = self.crm.data_gen
        self.refresh_data()

    def on_screen_resume(self) -> None:
        self.sync_data()

    # ------------------------------------------------------------------ keys

    @property
    def _binding_chain(self) -> list[tuple[DOMNode, BindingsMap]]:
        """Textual's binding chain (from the focused widget up to the app), with the user's keymap
        applied *before* the keys a focused box types (digits, letters) are left out of the bindings
        around it. Textual leaves them out first, so a binding the keymap moved off such a key
        (`app.tickets` from 2 to f9) was lost while a box had the focus: f9 did nothing."""
        focused = self.focused
        if focused is not None and focused.loading:
            focused = None
        nodes: list[DOMNode] = [self, self.app] if focused is None else list(focused.ancestors_with_self)
        chain = [(node, node._bindings.copy()) for node in nodes]
        keymap = self.app._keymap
        if keymap:
            for node, bindings in chain:
                result = bindings.apply_keymap(keymap)
                if result.clashed_bindings:
                    self.app.handle_bindings_clash(result.clashed_bindings, node)
        typers: list[DOMNode] = []
        for node, bindings in chain:
            for typer in typers:
                for key in list(bindings.key_to_bindings):
                    if typer.check_consume_key(key, key_to_character(key)):
                        del bindings.key_to_bindings[key]
            typers.append(node)
        return chain

    @property
    def is_root(self) -> bool:
        stack = self.app.screen_stack
        return bool(stack) and stack[0] is self

    def section_shown(self) -> None:
        """Its section key was pressed (or `:`/the palette named the section): the screen is
        the section's own again."""

    def action_back(self) -> None:
        """One layer out: clear a filter, else leave this screen, else go home."""
        for panel in self.query(ListPanel):
            if panel.filtering:
                panel.clear_filter()
                return
        if not self.is_root:
            self.dismiss()
        elif self.crm.current_mode != "search":
            self.crm.switch_mode("search")

    def palette_commands(self) -> Iterable[tuple[str, str, object]]:
        """(title, help, callback) for the command palette, from this screen's own bindings."""
        for _key, binding in self._bindings:
            if binding.description and binding.id and binding.show:
                yield (binding.description, binding.tooltip or "", lambda b=binding: self.run_action(b.action))
