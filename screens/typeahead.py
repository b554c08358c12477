"""Keys typed ahead reach the screen they were typed for.

A terminal hands a fast typist's keys (or tmux's, or a paste's) to the app in one read. Textual
routes each key to the widget that has focus *when the app reads it*, before the widget has
handled the key before it: after `1` (a section) or `enter` (open a record), the next letters
went to the old screen's list, or nowhere, while the new screen was still being mounted and
focused. ``TypeAhead`` holds each key until everything the one before it set off has been
handled: the key itself, the messages it posted (a row selected, a screen pushed), the new
screen's mount and focus. Keys are never dropped, only delayed by a few message hops.

A terminal cannot tell `esc` followed quickly by a key from that key with alt held: tmux, and
many terminals, send both as ESC and the key in one read, which Textual reads as `alt+q`. An
`alt+` key that nothing where the focus is binds is taken for what the user typed: `esc`, then
the key, each routed as any key is (``escape_then_key``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from textual import events
from textual.app import ScreenStackError
from textual.keys import key_to_character

if TYPE_CHECKING:
    from textual.app import App
    from textual.message_pump import MessagePump

MAX_ROUNDS = 20  # passes over the screen's widgets before the next key goes on regardless
STUCK_AFTER = 1.0  # seconds: a widget removed with a pass's callback in its queue never answers


class TypeAhead:
    """Routes an app's key events one at a time, each once the previous one has settled."""

    def __init__(self, app: App, route: Callable[[events.Key], Awaitable[None]]) -> None:
        self.app = app
        self.route = route
        self.waiting: deque[events.Key] = deque()
        self.busy = False
        self._pass = 0  # which pass is current: a late answer from an abandoned one is ignored
        self.held = 0  # keys that had to wait for an earlier one (a test counts them)

    async def key(self, event: events.Key) -> None:
        """Take a key the terminal sent; it is routed now or, if one is settling, after it."""
        self.waiting.append(event)
        if self.busy:
            self.held += 1
            return
        await self._route_next()

    async def _route_next(self) -> None:
        if self.busy or not self.waiting:
            return
        self.busy = True
        event = self.waiting.popleft()
        split = escape_then_key(self.app, event)
        if split is not None:
            # The key goes on once what esc set off (a box left, a modal closed) has settled.
            event, key = split
            self.waiting.appendleft(key)
        await self.route(event)
        self._settle(0, [])

    def _settle(self, round_: int, seen: list[MessagePump]) -> None:
        """One pass: a callback in the queue of the app and of every widget of the screen; when
        all have run, the key's effects are handled unless new work appeared meanwhile."""
        self._pass += 1
        this_pass = self._pass
        nodes: list[MessagePump] = [self.app, *self.app.screen.walk_children(with_self=True)]
        count = 0

        def answered() -> None:
            nonlocal count
            count -= 1
            if count or this_pass != self._pass:
                return
            now = [self.app, *self.app.screen.walk_children(with_self=True)]
            # Private to Textual, as its own pilot reads it: is a message still waiting anywhere?
            busy = any(not node._message_queue.empty() for node in now)
            if round_ < MAX_ROUNDS and (busy or now != nodes or nodes != seen):
                self._settle(round_ + 1, nodes)
            else:
                self._release(this_pass)

        for node in nodes:
            if node.call_later(answered):
                count += 1
        if not count:
            self._release(this_pass)
            return
        self.app.set_timer(STUCK_AFTER, lambda: self._release(this_pass))

    def _release(self, this_pass: int) -> None:
        if this_pass != self._pass or not self.busy:
            return
        self._pass += 1
        self.busy = False
        if self.waiting:
            self.app.call_later(self._route_next)


def escape_then_key(app: App, event: events.Key) -> tuple[events.Key, events.Key] | None:
    """``alt+X`` as the `esc` and `X` it was typed as (see the module's doc), when X is a
    character key and no binding where the focus is (the user's keymap applied) takes ``alt+X``;
    else None."""
    modifier, _, key = event.key.partition("+")
    if modifier != "alt" or not key:
        return None
    if key.startswith("shift+") and len(key) == len("shift+") + 1:
        key = key[-1].upper()  # alt+shift+g: the key is G
    character = key_to_character(key)
    if character is None or not character.isprintable():
        return None  # alt+left, alt+enter… are keys of their own
    try:
        # Private to Textual: every binding from the focused widget up to the app, as the key
        # would meet them (priority bindings included), after the keymap.
        chain = app.screen._binding_chain
    except ScreenStackError:
        return None
    if any(event.key in bindings.key_to_bindings for _node, bindings in chain):
        return None
    return events.Key("escape", "\x1b"), events.Key(key, character)
