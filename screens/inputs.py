"""Text inputs that follow the app's animation switch (no blinking cursor in snapshots and demos),
and that apply editing keys in the order they were typed."""

from __future__ import annotations

from textual import events
from textual.binding import Binding
from textual.widgets import Input, TextArea


def _blink(widget: Input | TextArea) -> bool:
    return bool(getattr(widget.app, "cursor_blink", True))


def _alt(event: events.Key) -> bool:
    """An alt+ key: a command, never text. A terminal sends alt+t with the character "t", which
    Textual's boxes would type before any binding (`alt+t` in the keymap) saw the key. An alt+ key
    that nothing binds never reaches a box: it is esc then the key (screens/typeahead.py)."""
    return event.key.startswith("alt+")


def _editing_keys() -> dict[str, str]:
    """Input's own keys (backspace, delete, cursor moves, enter…) and the action each runs."""
    keys: dict[str, str] = {}
    for binding in Input.BINDINGS:
        if isinstance(binding, Binding):
            for key in binding.key.split(","):
                keys[key.strip()] = binding.action
    return keys


class CrmInput(Input):
    """An Input whose editing keys act at once, in order with the letters around them.

    Textual inserts a printable key as the box handles it, but runs a bound key (backspace,
    delete, the arrows) only after the key has bubbled up to the app. When keys arrive faster
    than the screen handles them (a quick typist while a search runs, a terminal sending a burst),
    eight backspaces followed by "garcia" left an empty box: the letters went in first and the
    backspaces deleted them. Here the box runs its own keys itself, as it reads them."""

    EDITING_KEYS = _editing_keys()
    _keep_text_once = False

    def on_mount(self) -> None:
        self.cursor_blink = _blink(self)

    def focus_keeping_text(self) -> None:
        """Focus with the cursor after the text, nothing selected: what is typed adds to a
        prefilled value instead of replacing it (Input selects all on focus)."""
        self._keep_text_once = True
        self.focus()

    def _on_focus(self, event: events.Focus) -> None:
        # Textual runs Input's own focus handler after this one (handlers run down the classes):
        # it selects all unless told not to, this once.
        if self._keep_text_once:
            self._keep_text_once = False
            self.select_on_focus = False
            self.cursor_position = len(self.value)
            self.call_later(setattr, self, "select_on_focus", True)

    async def _on_key(self, event: events.Key) -> None:
        action = self.EDITING_KEYS.get(event.key)
        if action is None and _alt(event):
            event.prevent_default()  # not typed by Input's own handler: on to the bindings
            return
        if action is None:
            await super()._on_key(event)
            return
        event.stop()
        event.prevent_default()
        await self.run_action(action)


class CrmTextArea(TextArea):
    def on_mount(self) -> None:
        self.cursor_blink = _blink(self)

    async def _on_key(self, event: events.Key) -> None:
        # Textual runs TextArea's own handler after this one, unless told not to.
        if _alt(event):
            event.prevent_default()  # not typed by TextArea's own handler: on to the bindings
