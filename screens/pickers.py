"""Small modals: pick one of a few choices, confirm a step that loses work, type a `:` command."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from screens.dialog import CrmModal
from screens.inputs import CrmInput


class ChoicePicker(CrmModal[str | None]):
    """Choose one value; dismisses with it, or None on esc."""

    DEFAULT_CSS = """
    ChoicePicker {
        & > .picker-dialog {
            width: 50;
        }
        & .picker-options {
            height: auto;
            max-height: 12;
        }
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="picker.cancel"),
        Binding("j", "down", "Down", show=False, id="picker.down"),
        Binding("k", "up", "Up", show=False, id="picker.up"),
    ]

    def __init__(self, title: str, choices: list[tuple[str, str]], *, current: str | None = None,
                 hint: str = "") -> None:
        """``choices`` are (value, label) pairs."""
        super().__init__()
        self.title_text = title
        self.choices = choices
        self.current = current
        self.hint = hint

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog picker-dialog"):
            yield Static(Content(self.title_text), classes="dialog-title")
            options = [Option(Content(label), id=value) for value, label in self.choices]
            yield OptionList(*options, classes="picker-options")
            yield Static(Content(self.hint or "enter chooses · esc cancels"), classes="dialog-hint")

    def on_mount(self) -> None:
        # As wide as the longest entry (each on one line), at least the usual 50, within the screen.
        longest = max([len(label) for _value, label in self.choices] + [len(self.title_text)], default=0)
        self.query_one(".picker-dialog").styles.width = max(50, min(longest + 8, self.app.size.width - 4))
        options = self.query_one(OptionList)
        values = [v for v, _ in self.choices]
        options.highlighted = values.index(self.current) if self.current in values else 0
        options.focus()

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)

    def action_down(self) -> None:
        self.query_one(OptionList).action_cursor_down()

    def action_up(self) -> None:
        self.query_one(OptionList).action_cursor_up()


class ConfirmModal(CrmModal[bool]):
    """A yes/no question about a step that cannot be undone."""

    DEFAULT_CSS = """
    ConfirmModal .confirm-detail {
        height: auto;
        padding: 1 0;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes", id="confirm.yes"),
        Binding("n,escape", "answer(False)", "No", id="confirm.no"),
    ]

    def __init__(self, question: str, detail: str = "") -> None:
        super().__init__()
        self.question = question
        self.detail = detail

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog confirm-dialog"):
            yield Static(Content(self.question), classes="dialog-title")
            if self.detail:
                yield Static(Content(self.detail), classes="confirm-detail")
            yield Static(Content("y yes · n no"), classes="dialog-hint")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class CommandLine(ModalScreen[str | None]):
    """The `:` command line at the bottom of the screen; enter runs, esc closes."""

    DEFAULT_CSS = """
    CommandLine {
        align: center bottom;
        background: $background 0%;
        &:ansi {
            background: $background 0%;  /* ANSI themes too */
        }
        & > .command-line {
            height: auto;
            width: 100%;
            background: $panel;
        }
        & .command-hint {
            height: auto;
            padding: 0 1;
            color: $text-muted;
        }
        & .command-row {
            height: 1;
        }
        & .command-prompt {
            width: 2;
            padding-left: 1;
            text-style: bold;
        }
        & #command-input {
            width: 1fr;
            height: 1;
        }
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="command.cancel"),
    ]

    def compose(self) -> ComposeResult:
        with Vertical(classes="command-line"):
            yield Static(
                Content("search <text> · customer <id|name> · ticket <number> · tickets [mine|team|all] · "
                        "pipeline · sync · sync now · conflicts · rejected · reports · export <file> · theme <name> · q"),
                classes="command-hint")
            with Horizontal(classes="command-row"):
                yield Static(":", classes="command-prompt")
                yield CrmInput(placeholder="command (esc closes)", id="command-input", compact=True)

    def on_mount(self) -> None:
        self.query_one(CrmInput).focus()

    @on(CrmInput.Submitted)
    def _run(self, event: CrmInput.Submitted) -> None:
        event.stop()
        self.dismiss(event.value.strip() or None)

    def action_cancel(self) -> None:
        self.dismiss(None)
