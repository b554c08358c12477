"""Helpers for driving the app with Textual's pilot."""

from __future__ import annotations


async def settle(pilot) -> None:
    """Wait until the app's workers are done (the save worker has applied what was saved, a
    sync or a report has finished), then until the screen has handled what they posted."""
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def visible_text(widget) -> str:
    """The lines a Line-API widget (a list) shows now, as plain text: what the user reads."""
    height = widget.scrollable_content_region.height
    return "\n".join(widget.render_line(y).text for y in range(height))
