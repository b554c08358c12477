"""A message read in full: one reply or note of a ticket's thread, however long, wrapped and scrolled."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.widgets import Static

from screens.dialog import CrmModal


class MessageReader(CrmModal[None]):
    """``heading`` (who, when, what kind) over the message's subject and its whole body."""

    DEFAULT_CSS = """
    MessageReader {
        & > .reader-dialog {
            width: 100;
            height: auto;
            max-height: 90%;
        }
        & .reader-heading {
            height: auto;
            color: $text-muted;
            padding-bottom: 1;
        }
        & .reader-body {
            height: auto;
            max-height: 1fr;
        }
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,enter,q", "close", "Close", id="reader.close"),
        Binding("j", "scroll(1)", "Scroll down", show=False, id="reader.down"),
        Binding("k", "scroll(-1)", "Scroll up", show=False, id="reader.up"),
    ]

    def __init__(self, heading: str, subject: str, body: str) -> None:
        super().__init__()
        self.heading = heading
        self.subject = subject
        self.body = body

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog reader-dialog"):
            yield Static(Content(self.subject or "(no subject)"), classes="dialog-title")
            yield Static(Content(self.heading), classes="reader-heading")
            with VerticalScroll(id="reader-body", classes="reader-body"):
                yield Static(Content(self.body or "(no text)"), id="reader-text")
            yield Static("↑↓ j k pgup pgdn scroll · esc closes", classes="dialog-hint")

    def on_mount(self) -> None:
        self.query_one("#reader-body").focus()

    def action_scroll(self, lines: int) -> None:
        self.query_one("#reader-body", VerticalScroll).scroll_relative(y=lines, animate=False)

    def action_close(self) -> None:
        self.dismiss(None)
