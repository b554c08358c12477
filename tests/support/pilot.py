"""Helpers for driving the app with Textual's pilot."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from screens.app import CrmApp


async def command(pilot, text: str) -> None:
    """A `:` command as a user types it: `:`, the text, enter."""
    await pilot.press("colon")
    await pilot.pause()
    pilot.app.screen.query_one("#command-input").value = text
    await pilot.press("enter")
    await pilot.pause()


async def open_call_form(pilot):
    """The rich customer's 360 with "log a call" (`c`) open on it: the form, as a user sees it."""
    from screens.customer import Customer360Screen
    from screens.forms import RecordForm
    from support import ui_data

    await pilot.app.push_screen(Customer360Screen(ui_data.RICH_CUSTOMER))
    await pilot.pause()
    await pilot.press("c")
    await pilot.pause()
    form = pilot.app.screen
    assert isinstance(form, RecordForm)
    return form


async def settle(pilot) -> None:
    """Wait until the app's workers are done (the save worker has applied what was saved, a
    sync or a report has finished), then until the screen has handled what they posted."""
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def lasting_toasts(make: Callable[..., CrmApp]) -> Callable[..., CrmApp]:
    """``make`` whose apps keep every toast until the test ends.

    A toast's timeout runs on the wall clock; on a loaded machine a snapshot taken seconds after
    the notification could miss it. Snapshots show the toast whatever the machine's speed."""

    def lasting(*args: Any, **kwargs: Any) -> CrmApp:
        app = make(*args, **kwargs)
        notify = app.notify

        def notify_lasting(message: str, *, timeout: float | None = None, **rest: Any) -> None:
            notify(message, timeout=3600, **rest)

        app.notify = notify_lasting  # type: ignore[method-assign]
        return app

    return lasting


def visible_text(widget) -> str:
    """The lines a Line-API widget (a list) shows now, as plain text: what the user reads."""
    height = widget.scrollable_content_region.height
    return "\n".join(widget.render_line(y).text for y in range(height))


async def type_at_once(pilot, *keys: str, workers: bool = True) -> None:
    """``keys`` reaching the app in one read, as a terminal hands over a fast typist's (or tmux's,
    or a paste's) keys: none waits for the one before it to be handled, as pilot.press would.
    ``workers=False``: wait only for the keys, not for the workers they started (a sync held by
    a test's FaultProxy)."""
    wait = settle if workers else _no_workers
    from textual import events

    app = pilot.app
    for key in keys:
        event = events.Key(key, " " if key == "space" else key if len(key) == 1 else None)
        event.set_sender(app)
        app._driver.send_message(event)
    await wait(pilot)
    # Until the app has handled every one of them (screens/typeahead.py routes one at a time).
    for _ in range(200):
        if not (app.type_ahead.busy or app.type_ahead.waiting):
            break
        await pilot.pause(0.01)
    else:
        raise AssertionError(f"keys still waiting after 200 pauses: {list(app.type_ahead.waiting)}")
    await wait(pilot)


async def _no_workers(pilot) -> None:
    await pilot.pause()
    await pilot.pause()


def footer_keys(app) -> list[str]:
    """The keys the footer shows in full within the terminal's width ("f Follow-up"), left to
    right: what a user reads at the bottom of the screen."""
    from textual.widgets._footer import FooterKey

    width = app.size.width
    keys = [k for k in app.screen.query(FooterKey) if k.region.width and k.region.right <= width]
    return [f"{k.key_display} {k.description}".strip() for k in sorted(keys, key=lambda k: k.region.x)]


def screen_lines(app) -> list[str]:
    """The terminal's lines as the user reads them now (the app's screenshot, as text)."""
    import html
    import re
    from collections import defaultdict

    svg = app.export_screenshot()
    rows: dict[float, list[tuple[float, str]]] = defaultdict(list)
    for m in re.finditer(r'<text[^>]*?x="([\d.]+)"[^>]*?y="([\d.]+)"[^>]*>(.*?)</text>', svg, re.S):
        text = html.unescape(re.sub(r"<[^>]+>", "", m.group(3))).replace("\xa0", " ")
        rows[round(float(m.group(2)), 1)].append((float(m.group(1)), text))
    lines = []
    for y in sorted(rows):
        line = ""
        for x, text in sorted(rows[y]):
            col = round(x / 12.2)
            line = line.ljust(col)[:col] + text + line[col + len(text):]
        lines.append(line.rstrip())
    return lines
