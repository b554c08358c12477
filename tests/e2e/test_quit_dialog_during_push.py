"""`q` during a push to a server that holds its answer brings up the quit question, every time
(issue 10, seen once: after F5 then `q` no dialog showed, `8` and `?` did nothing, until esc).
The real app and server; a FaultProxy holds the push's answer. Many timings of `q` after F5, as a
fast typist's keys arrive (in one read) and as separate presses."""

from __future__ import annotations

import pytest

from screens.help import HelpScreen
from screens.pickers import ConfirmModal
from support.app import open_app
from support.client import ClientReplica
from support.faultproxy import FaultProxy, gate
from support.pilot import type_at_once

pytestmark = pytest.mark.anyio
SIZE = (120, 36)


@pytest.fixture
def anyio_backend():
    return "asyncio"


def on_screen(app) -> str:
    """The text the terminal shows now."""
    return app.export_screenshot().replace("&#160;", " ")


async def until(pilot, condition, what: str, pauses: int = 400) -> None:
    for _ in range(pauses):
        if condition():
            return
        await pilot.pause(0.05)
    raise AssertionError(what)


async def test_q_while_a_push_is_held_shows_the_quit_question_whatever_the_timing(server, tmp_path):
    with FaultProxy(server.url) as proxy:
        client = ClientReplica(tmp_path / "alex", server, "alex", url=proxy.url, read_timeout=600.0)
        assert client.sync().ok
        app = open_app(client)
        try:
            async with app.run_test(size=SIZE) as pilot:
                await until(pilot, lambda: app.sync_state == "online", "the start-up sync never finished")
                await pilot.press("escape")
                for round_ in range(12):
                    app.replica.writes.update("customer", "cus-0000003", {"city": f"Bergen {round_}"})
                    held = gate(after_upstream=True)
                    proxy.add_rule(held, method="POST", path="/v1/batch", times=1)
                    at_once, pauses = round_ % 2 == 0, round_ // 2
                    if at_once and pauses == 0:
                        await type_at_once(pilot, "f5", "q", workers=False)
                    else:
                        await pilot.press("f5")
                        for _ in range(pauses):
                            await pilot.pause(0.05 * pauses)
                        if at_once:
                            await type_at_once(pilot, "q", workers=False)
                        else:
                            await pilot.press("q")
                    await pilot.pause()
                    assert isinstance(app.screen, ConfirmModal), f"round {round_}: {app.screen}"
                    assert "Quit crm-tui?" in on_screen(app), f"round {round_}: the question is not on screen"
                    await pilot.press("n")
                    await pilot.pause()
                    assert not isinstance(app.screen, ConfirmModal)
                    await pilot.press("question_mark")
                    await pilot.pause()
                    assert isinstance(app.screen, HelpScreen), f"round {round_}: ? shows no help"
                    await pilot.press("escape")
                    held.open()
                    await until(pilot, lambda: app.sync_state == "online" and not app._sync_worker.is_running,
                                f"round {round_}: the held push never ended")
        finally:
            app.replica.close()
