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
