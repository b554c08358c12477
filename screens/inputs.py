"""Text inputs that follow the app's animation switch (no blinking cursor in snapshots and demos)."""

from __future__ import annotations

from textual.widgets import Input, TextArea


def _blink(widget: Input | TextArea) -> bool:
    return bool(getattr(widget.app, "cursor_blink", True))


class CrmInput(Input):
    def on_mount(self) -> None:
        self.cursor_blink = _blink(self)


class CrmTextArea(TextArea):
    def on_mount(self) -> None:
        self.cursor_blink = _blink(self)
