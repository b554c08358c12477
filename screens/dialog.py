"""The frame the app's dialogs share: one bordered box, centred over the dimmed screen behind it, with
a bold title on top and a line of keys at the bottom. Each dialog sizes its box with a class of its own.

Its look is its own (DEFAULT_CSS), so a dialog looks the same in any Textual app. The backdrop is
Textual's ModalScreen one ($background 60%), kept in ANSI themes too.
"""

from __future__ import annotations

from typing import TypeVar

from textual.screen import ModalScreen

ResultT = TypeVar("ResultT")


class CrmModal(ModalScreen[ResultT]):
    """A modal whose one child is ``Vertical(classes="dialog <its own class>")``: a ``dialog-title``
    Static first, a ``dialog-hint`` Static (the keys) last."""

    DEFAULT_CSS = """
    CrmModal {
        align: center middle;
        &:ansi {
            /* The backdrop of every theme (Textual's default for ANSI themes is none). */
            background: $background 60%;
        }
        & > .dialog {
            width: 76;
            max-width: 100%;
            height: auto;
            max-height: 100%;
            padding: 0 1;
            border: round $primary;
            background: $surface;
        }
        & .dialog-title {
            height: auto;
            text-style: bold;
            color: $text-accent;
        }
        & .dialog-hint {
            height: 1;
            color: $text-muted;
        }
    }
    """
