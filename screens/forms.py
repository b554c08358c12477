"""The record form: a modal generated from the domain's field specs, for creating and editing.

Each field is parsed with ``domain.parse_input``; the values are handed to a ``save``
callable (a local write, or re-sending a rejected op) which validates them for real. Every
``ValidationError`` message is shown next to its field; nothing a user types can crash the
form. Enums and references are Selects; the references a form is opened for (the customer a
note belongs to...) are fixed and not shown.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.widget import Widget
from textual.widgets import Button, Label, Select, Static, TextArea

from cache.errors import ReplicaError
from crm_tui.core.domain import (
    CURRENCY_RE,
    Field,
    ValidationError,
    currency_decimals,
    entity,
    format_value,
    parse_input,
    validate_fields,
    value_label,
)
from screens.dialog import CrmModal
from screens.inputs import CrmInput, CrmTextArea
from screens.pickers import ConfirmModal

Options = list[tuple[str, Any]]  # (label, value)
SaveFn = Callable[[dict[str, Any]], dict[str, Any] | str | None]
CheckFn = Callable[[dict[str, Any]], dict[str, str]]  # values -> field (or "_") -> message
ParseFn = Callable[[str], Any]  # what was typed -> a wire value; ValueError with a one-line message
WarnFn = Callable[[dict[str, Any]], str | None]  # values -> a doubt worth a second look, or None


class RecordForm(CrmModal[dict[str, Any] | None]):
    """Create or edit one record. Dismisses with what ``save`` returned, or None if cancelled.

    ``values`` prefill the fields (the record being edited, or defaults); ``fixed`` values are
    sent but not shown; ``options`` give the choices of reference fields; ``errors`` are shown
    when the form opens (a rejected op's reasons). ``check`` adds rules of this form (errors
    that block the save); ``warn`` raises a doubt (a likely duplicate) that a second save
    overrides; ``parsers`` read a field's text in a way of their own (a due time typed as
    ``tomorrow``) instead of ``domain.parse_input``, and ``formats`` show a field's value (and
    what it is compared with to tell a change). `esc` on a form that was changed asks before throwing the typing away.

    Money fields are in the currency the form's currency field says (as typed), else its fixed
    or prefilled currency, else ``currency`` (a customer's lifetime value: the currency the
    customer trades in): shown in its decimals, and in a currency without decimals (JPY, KRW ...)
    an amount typed with a fractional part is refused under its field; a line above the buttons
    says so while such a currency is in use. An amount left as it was shown is kept as stored.
    """

    DEFAULT_CSS = """
    RecordForm {
        & > .form-dialog {
            width: 80;
        }
        & .form-fields {
            height: auto;
            max-height: 16;
        }
        & .form-row {
            height: auto;
        }
        & .form-label {
            width: 16;
            padding-right: 1;
            color: $text-muted;
        }
        & .form-row Select, & .form-row CrmInput {
            width: 1fr;
        }
        & .form-text {
            width: 1fr;
            height: 3;
        }
        & .field-error {
            height: auto;
            padding-left: 16;
            color: $text-error;
        }
        & .form-error, & .form-note {
            height: auto;
            color: $text-error;
            padding: 0 0 1 0;
        }
        & .form-buttons {
            height: 1;
            margin-top: 1;
        }
        & .form-buttons Button {
            margin-right: 2;
        }
    }
    """

    # The cursor is put in the field to fill as the form is mounted (on_mount, _first_to_fill), so
    # what is typed right after the key that opened it goes there; Textual's own auto-focus (which
    # would select a prefilled field's text, to be typed over) is off.
    AUTO_FOCUS = None

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="form.cancel"),
        Binding("f2,ctrl+s", "save", "Save", id="form.save"),
    ]

    def __init__(
        self,
        entity_name: str,
        *,
        title: str,
        fields: list[str],
        save: SaveFn,
        values: dict[str, Any] | None = None,
        fixed: dict[str, Any] | None = None,
        options: dict[str, Options] | None = None,
        creating: bool = False,
        errors: dict[str, str] | None = None,
        note: str = "",
        only_changes: bool = True,
        check: CheckFn | None = None,
        warn: WarnFn | None = None,
        parsers: dict[str, ParseFn] | None = None,
        formats: dict[str, Callable[[Any], str]] | None = None,
        currency: str | None = None,
    ) -> None:
        super().__init__()
        self.ent = entity(entity_name)
        self.title_text = title
        self.field_names = [n for n in fields if n in self.ent.by_name]
        self.save_fn = save
        self.values = dict(values or {})
        self.fixed = dict(fixed or {})
        self.options = options or {}
        self.creating = creating
        self.initial_errors = dict(errors or {})
        self.note = note
        self.only_changes = only_changes and not creating
        self.check = check
        self.warn = warn
        self.parsers = dict(parsers or {})
        self.formats = dict(formats or {})
        # The currency the money fields were shown in, and each one's text then and value.
        self.currency = self.fixed.get("currency") or self.values.get("currency") or currency
        self._money_shown: dict[str, tuple[str, Any]] = {}
        self._warned: dict[str, Any] | None = None  # the values a warning was shown for
        self._pristine: tuple[dict[str, Any], dict[str, str]] | None = None
        self._flagged: set[str] = set()  # fields once said to be wrong: judged again as they change

    # ------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog form-dialog"):
            yield Static(Content(self.title_text), classes="dialog-title")
            if self.note:
                yield Static(Content(self.note), classes="form-note")
            with VerticalScroll(classes="form-fields"):
                for name in self.field_names:
                    f = self.ent.by_name[name]
                    with Horizontal(classes="form-row"):
                        yield Label(Content(f.label + (" *" if f.required else "")), classes="form-label")
                        yield self._widget(f)
                    yield Static(classes="field-error", id=f"error-{name}")
            if any(self.ent.by_name[n].kind == "money" for n in self.field_names):
                yield Static(classes="form-note money-hint", id="money-hint")
            yield Static(classes="form-error", id="form-error")
            with Horizontal(classes="form-buttons"):
                yield Button("Save", variant="primary", id="form-save", compact=True)
                yield Button("Cancel", id="form-cancel", compact=True)
            yield Static(Content("f2 saves · enter in a field saves · tab moves · esc cancels"),
                         classes="dialog-hint")

    def _widget(self, f: Field) -> Widget:
        wid = f"field-{f.name}"
        current = self.values.get(f.name)
        choices = self._choices(f)
        if choices is not None:
            values = [v for _, v in choices]
            if current is not None and current not in values:
                choices = [*choices, (str(current), current)]
            # A required Select with nothing chosen yet stays blank (Textual would silently pick
            # the first choice, and with no choices at all it cannot be drawn): the save says
            # what is missing.
            return Select(
                [(Text(label), value) for label, value in choices], id=wid, compact=True,
                allow_blank=not f.required or current is None, value=current if current is not None else Select.NULL,
                prompt="(none)" if not f.required else ("choose" if choices else "none available yet"),
            )
        if f.kind == "text":
            return CrmTextArea(current or "", id=wid, compact=True, classes="form-text", soft_wrap=True)
        if f.name in self.formats and current is not None:
            text = self.formats[f.name](current)
        else:
            text = format_value(f, current, self.currency)
        if f.kind == "money":
            self._money_shown[f.name] = (text.strip(), current)
        return CrmInput(text, id=wid, compact=True)

    def _choices(self, f: Field) -> Options | None:
        if f.name in self.options:
            return self.options[f.name]
        if f.kind == "enum":
            return [(value_label(c), c) for c in f.choices]
        if f.kind == "bool":
            return [("yes", True), ("no", False)]
        return None

    def on_mount(self) -> None:
        for error in self.query(".field-error"):
            error.display = False
        self.query_one("#form-error").display = False
        if self.initial_errors:
            self.show_errors(self.initial_errors)
        self._show_money_hint()
        start = self._first_to_fill()
        if isinstance(start, CrmInput):
            start.focus_keeping_text()
        elif start is not None:
            start.focus()
        self.call_after_refresh(self._remember_pristine)

    def _first_to_fill(self) -> Widget | None:
        """Where the cursor starts: the first field the server refused, else the first empty
        required field, else the first empty one, else the first (its text kept, never selected:
        typing into a prefilled subject would replace it)."""
        fields = [(name, self.query_one(f"#field-{name}")) for name in self.field_names]
        if not fields:
            return None
        for name, widget in fields:
            if name in self.initial_errors:
                return widget
        empty = [(name, widget) for name, widget in fields if _blank(widget)]
        for name, widget in empty:
            if self.ent.by_name[name].required:
                return widget
        return empty[0][1] if empty else fields[0][1]

    def _remember_pristine(self) -> None:
        self._pristine = self.collect()

    @property
    def changed(self) -> bool:
        """Whether anything was typed or chosen since the form opened."""
        return self._pristine is not None and self.collect() != self._pristine

    # ------------------------------------------------------------------ values

    def money_currency(self) -> str | None:
        """The currency the money fields are in now: the currency field as typed (or chosen),
        else the form's fixed, prefilled or given one."""
        if "currency" in self.field_names:
            widget = self.query_one("#field-currency")
            value = widget.value if isinstance(widget, Select) else str(getattr(widget, "value", "")).strip().upper()
            return value if isinstance(value, str) and CURRENCY_RE.match(value) else None
        return self.currency

    def collect(self) -> tuple[dict[str, Any], dict[str, str]]:
        """What the fields say, parsed; and a message for each field that could not be read."""
        values: dict[str, Any] = {}
        errors: dict[str, str] = {}
        currency = self.money_currency()
        for name in self.field_names:
            f = self.ent.by_name[name]
            widget = self.query_one(f"#field-{name}")
            try:
                if isinstance(widget, Select):
                    values[name] = None if widget.value == Select.NULL else widget.value
                elif isinstance(widget, TextArea):
                    values[name] = widget.text if widget.text.strip() else None
                elif name in self.parsers and widget.value.strip():  # type: ignore[attr-defined]
                    values[name] = self.parsers[name](widget.value)  # type: ignore[attr-defined]
                elif (name in self._money_shown and currency == self.currency
                      and widget.value.strip() == self._money_shown[name][0]):  # type: ignore[attr-defined]
                    values[name] = self._money_shown[name][1]  # as stored (12,345.50 shown as 12,346 yen)
                else:
                    values[name] = parse_input(f, widget.value, currency)  # type: ignore[attr-defined]
            except ValueError as exc:
                errors[name] = str(exc)
        return values, errors

    def _show_money_hint(self) -> None:
        """While the money fields' currency has no decimals, say so above the buttons."""
        if not self.query("#money-hint"):
            return
        hint = self.query_one("#money-hint", Static)
        currency = self.money_currency()
        whole = currency is not None and currency_decimals(currency) == 0
        hint.update(Content(f"Amounts in {currency} are whole: no decimals (12,000, not 12,000.50)." if whole else ""))
        hint.display = whole

    def show_errors(self, errors: dict[str, str], *, focus: bool = False) -> None:
        """Show each message under its field (the rest above the buttons); ``focus`` moves the
        cursor to the first field that is wrong, where the user fixes it."""
        general = []
        failed = [name for name in self.field_names if errors.get(name)]
        for name in self.field_names:
            self._show_field_error(name, errors.get(name))
        for name, message in errors.items():
            if name == "_":
                general.append(message)
            elif name not in self.field_names:
                f = self.ent.by_name.get(name)
                general.append(f"{f.label if f else name}: {message}")
        box = self.query_one("#form-error", Static)
        box.update(Content("\n".join(general)))
        box.display = bool(general)
        if focus and failed:
            self.query_one(f"#field-{failed[0]}").focus()

    def _show_field_error(self, name: str, message: str | None) -> None:
        if message:
            self._flagged.add(name)
        label = self.query_one(f"#error-{name}", Static)
        label.update(Content(f"↳ {message}") if message else Content(""))
        label.display = bool(message)

    def _field_error(self, name: str) -> str | None:
        """What is wrong with field ``name`` now, judged as a save would (None: nothing)."""
        values, errors = self.collect()
        if name in errors:
            return errors[name]
        try:
            validate_fields(self.ent, {**self.fixed, **values}, creating=self.creating)
        except ValidationError as exc:
            if exc.errors.get(name):
                return exc.errors[name]
        if self.check is not None:
            return self.check({**self.fixed, **values}).get(name)
        return None

    def _recheck(self, widget: Widget | None) -> None:
        """A field once said to be wrong is judged again as it changes: the hint goes once the
        value is right (and comes back saying what is wrong), so no stale hint stays under it."""
        wid = widget.id if widget is not None else None
        if not wid or not wid.startswith("field-"):
            return
        name = wid.removeprefix("field-")
        if self._pristine is None or name not in self._flagged:
            return  # still opening (a Select says its first value), or never said to be wrong
        if name in self.initial_errors:
            values, _ = self.collect()
            if values.get(name) == self._pristine[0].get(name):
                return  # the server's reason stands until the value it refused is changed
        self._show_field_error(name, self._field_error(name))

    @on(CrmInput.Changed)
    @on(Select.Changed)
    @on(TextArea.Changed)
    def _field_changed(self, event: CrmInput.Changed | Select.Changed | TextArea.Changed) -> None:
        self._recheck(event.control)
        if event.control is not None and event.control.id == "field-currency":
            self._show_money_hint()
            for name in self._money_shown:  # an amount's decimals are judged in the currency now typed
                self._recheck(self.query_one(f"#field-{name}"))

    # ------------------------------------------------------------------ actions

    def action_save(self) -> None:
        values, errors = self.collect()
        if errors:
            # Say everything that is wrong at once: check what could be read as well.
            readable = {k: v for k, v in values.items() if k not in errors}
            try:
                validate_fields(self.ent, {**self.fixed, **readable}, creating=self.creating)
            except ValidationError as exc:
                errors = {**{k: v for k, v in exc.errors.items() if k not in errors}, **errors}
            if self.check is not None:
                errors = {**self.check({**self.fixed, **readable}), **errors}
            self.show_errors(errors, focus=True)
            return
        if self.check is not None:
            errors = self.check({**self.fixed, **values})
            if errors:
                self.show_errors(errors, focus=True)
                return
        if self.warn is not None and self._warned != values:
            doubt = self.warn({**self.fixed, **values})
            if doubt:
                self._warned = dict(values)
                self.show_errors({"_": f"{doubt} f2 again saves it anyway."})
                return
        if self.only_changes:
            values = {k: v for k, v in values.items() if v != self.values.get(k)}
            if not values:
                self.app.notify("Nothing changed.")
                self.dismiss(None)
                return
        try:
            result = self.save_fn({**self.fixed, **values})
        except ValidationError as exc:
            self.show_errors(exc.errors, focus=True)
            return
        except (ReplicaError, KeyError) as exc:
            self.show_errors({"_": str(exc)})
            return
        except Exception as exc:  # a form must never take the app down with it
            self.show_errors({"_": f"could not save: {exc}"})
            return
        self.dismiss(result if isinstance(result, dict) else {"result": result})

    def action_cancel(self) -> None:
        if not self.changed:
            self.dismiss(None)
            return
        def answered(yes: bool | None) -> None:
            if yes:
                self.dismiss(None)

        self.app.push_screen(ConfirmModal("Discard this form?", "What you typed here is not saved."), answered)

    @on(Button.Pressed, "#form-save")
    def _save_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_save()

    @on(Button.Pressed, "#form-cancel")
    def _cancel_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_cancel()

    @on(CrmInput.Submitted)
    def _submitted(self, event: CrmInput.Submitted) -> None:
        event.stop()
        self.action_save()


def _blank(widget: Widget) -> bool:
    """Whether a form field holds nothing yet (a Select with no choice, an empty box)."""
    if isinstance(widget, Select):
        return widget.value == Select.NULL
    if isinstance(widget, TextArea):
        return not widget.text.strip()
    return not str(getattr(widget, "value", "")).strip()
