"""Keys typed ahead are handled one after another, each where the focus is once the key before
it has been handled.

Textual hands a key to the widget focused when the app reads it, and runs a widget's bindings
(tab moving on, enter choosing in a dropdown) only once the key has bubbled back up to the app.
Keys that arrive together (a quick typist, a paste of keystrokes, ``tmux send-keys``) were all
handed to the widget focused before the first of them: "tab 2 5" in a form typed 25 into the
field being left, and after a dropdown choice the minutes typed next went into the dropdown
(which swallows letters to search) and were never saved. Here the app holds each key read from
the terminal until the one before it has been handled: stopped by a widget (a letter typed into a
box), or back at the app with its bindings run.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from textual import events
from textual._context import active_message_pump
from textual.app import App
from textual.message import Message
from textual.timer import Timer

# A key that neither stops nor comes back (its widget went away before reading it) must not hold
# the keys after it for ever: it is let go after one to two of these.
LOST_KEY_SECONDS = 1.0
FOCUS_WAITS = 3  # turns of the app's queue a key waits for a new screen to focus something


class TypedKey(events.Key):
    """A key read from the terminal, that tells the app once it has been handled."""

    def __init__(self, key: str, character: str | None, handled: Any) -> None:
        super().__init__(key, character)
        self._handled = handled

    def stop(self, stop: bool = True) -> Message:
        stopped = super().stop(stop)
        if stop:
            # After the handler that stopped it has finished (a letter is in its box).
            try:
                pump = active_message_pump.get()
            except LookupError:
                self._handled(self)
            else:
                pump.call_next(self._handled, self)
        return stopped


TypedKey.handler_name = events.Key.handler_name  # handled by every on_key / _on_key as a Key


class KeysInOrder(App[Any]):
    """An App whose terminal keys are handled one at a time, in the order they were typed."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._key_in_flight: TypedKey | None = None
        self._key_reserved = False  # the next waiting key is on its way to being sent
        self._keys_waiting: deque[events.Key] = deque()
        self._lost_key_watch: Timer | None = None
        self._key_seen_in_flight: TypedKey | None = None  # in flight at the last look

    async def on_event(self, event: events.Event) -> None:
        if type(event) is events.Key and not event.is_forwarded:
            if self._key_in_flight is not None or self._key_reserved or self._keys_waiting:
                self._keys_waiting.append(event)
                return
            await self._send_key(event)
            return
        await super().on_event(event)

    async def _on_key(self, event: events.Key) -> None:
        # Back at the app: its bindings run right after this (App._on_key), in this same task,
        # before the next key is sent.
        if isinstance(event, TypedKey):
            self._key_handled(event)

    async def _send_key(self, read: events.Key, waited: int = 0) -> None:
        if self.focused is None and waited < FOCUS_WAITS:
            # A screen that has just opened focuses its first field a moment later: the key
            # typed right after the one that opened it belongs there, not to the bare screen.
            self._key_reserved = True
            self.call_later(self._send_key, read, waited + 1)
            return
        self._key_reserved = False
        key = TypedKey(read.key, read.character, self._key_handled)
        self._key_in_flight = key
        if self._lost_key_watch is None:
            self._lost_key_watch = self.set_interval(LOST_KEY_SECONDS, self._release_lost_key)
        await super().on_event(key)
        if not key.is_forwarded:  # a priority binding took it, or the app is closing
            self._key_handled(key)

    def _key_handled(self, key: TypedKey) -> None:
        if self._key_in_flight is not key:
            return
        self._key_in_flight = None
        if self._keys_waiting:
            self._key_reserved = True
            self.call_later(self._send_key, self._keys_waiting.popleft())

    def _release_lost_key(self) -> None:
        """A key still in flight a whole interval after it was last seen so is let go."""
        key = self._key_in_flight
        if key is not None and key is self._key_seen_in_flight:
            self._key_handled(key)
        self._key_seen_in_flight = self._key_in_flight
