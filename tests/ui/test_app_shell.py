"""The shell: esc layering, q, the keymap, `:` commands, the palette and sync in a worker."""

from __future__ import annotations

import pytest

from crm_tui.core.syncstate import SyncReport
from screens.customer import Customer360Screen
from screens.forms import RecordForm
from screens.keys import all_binding_ids, binding_table
from screens.pickers import ConfirmModal
from screens.search import SearchScreen
from screens.tickets import TicketQueueScreen
from support.pilot import settle

pytestmark = pytest.mark.anyio

SIZE = (120, 36)


def notes(app) -> list[str]:
    return app.notified


async def command(pilot, text: str) -> None:
    app = pilot.app
    await pilot.press("colon")
    await pilot.pause()
    app.screen.query_one("#command-input").value = text
    await pilot.press("enter")
    await pilot.pause()


async def test_esc_backs_out_one_layer_and_never_quits(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        box = app.screen.query_one("#search-input")
        await pilot.press(*"anna")
        await settle(pilot)
        await pilot.press("escape")  # leaves the box, the search kept
        await pilot.pause()
        assert box.value == "anna" and not box.has_focus
        await pilot.press("escape")  # clears the search
        await pilot.pause()
        assert box.value == ""
        await app.push_screen(Customer360Screen("cu_001"))
        await pilot.press("slash")
        await pilot.pause()
        await pilot.press(*"maya")
        await pilot.pause()
        await pilot.press("escape")  # clears the filter
        await pilot.pause()
        assert isinstance(app.screen, Customer360Screen)
        assert app.screen.query_one("#c360-contacts").row_count == 3
        await pilot.press("e")
        await pilot.pause()
        assert isinstance(app.screen, RecordForm)
        await pilot.press("escape")  # closes the modal
        await pilot.pause()
        assert isinstance(app.screen, Customer360Screen)
        await pilot.press("escape")  # pops the screen
        await pilot.pause()
        assert isinstance(app.screen, SearchScreen)
        await pilot.press("escape", "escape", "escape")
        await pilot.pause()
        assert app.is_running and isinstance(app.screen, SearchScreen)
        await pilot.press("2", "escape")  # a section's first screen goes home
        await pilot.pause()
        assert app.current_mode == "search"


async def test_esc_goes_back_on_an_opened_screen_and_q_quits_after_a_yes(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("escape", "2")
        await app.push_screen(Customer360Screen("cu_001"))
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, TicketQueueScreen) and app.is_running
        await pilot.press("q", "y")
        await pilot.pause()
        assert not app.is_running


async def test_a_key_rebound_in_settings_keymap_works(make_app):
    app = make_app(keymap={"app.tickets": "f9", "queue.view": "ctrl+v"})
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("escape", "2")
        await pilot.pause()
        assert app.current_mode == "search"  # "2" no longer goes there
        await pilot.press("f9")
        await pilot.pause()
        assert app.current_mode == "tickets"
        assert app.key_for("app.tickets") == "f9"
        assert "f9 Tickets" in str(app.screen.query_one(".nav-bar").render())
        await pilot.press("ctrl+v")
        await pilot.pause()
        assert app.screen.queue_view == "team"


async def test_unknown_keymap_ids_are_reported_not_fatal(make_app):
    app = make_app(keymap={"app.nope": "f9"})
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert any("app.nope" in n for n in notes(app))


async def test_every_binding_has_an_id():
    ids = all_binding_ids()
    assert len(ids) == len(set(ids)) == len(binding_table())
    assert {"app.search", "app.quit", "app.help", "app.command", "app.palette", "app.sync_now", "nav.back",
            "list.filter", "ticket.assign_me", "pipeline.forward", "conflict.apply", "rejected.fix",
            "form.save"} <= set(ids)


async def test_colon_commands(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("escape")
        await command(pilot, "tickets all")
        assert app.current_mode == "tickets" and app.screen.queue_view == "all"
        await command(pilot, "customer cu_002")
        assert isinstance(app.screen, Customer360Screen) and app.screen.customer_id == "cu_002"
        await command(pilot, "customer zoe martin")
        assert app.screen.customer_id == "cu_026"
        await command(pilot, "frobnicate")
        assert any("Unknown command" in n for n in notes(app))
        await command(pilot, "search keller")
        assert app.current_mode == "search" and app.screen.query_one("#search-input").value == "keller"
        await pilot.press("escape")  # out of the box, the search kept: `:` is a command again
        await command(pilot, "q")
        assert isinstance(app.screen, ConfirmModal) and app.is_running  # asks, as q does
        await pilot.press("y")
        await settle(pilot)
        assert not app.is_running


async def test_palette_goes_to_a_customer(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+p")
        await pilot.pause()
        app.screen.query_one("CommandInput").value = "larsen"
        await settle(pilot)  # the palette's search worker has gathered every hit
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, Customer360Screen)
        assert app.screen.customer_id in ("cu_019",)


async def test_no_runner_means_offline_and_sync_now_says_so(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        assert app.status_info().state == "offline (no server)"
        await pilot.press("f5")
        await pilot.pause()
        assert any("offline" in n for n in notes(app))


async def test_a_sync_that_raises_shows_the_error_and_the_app_goes_on(make_app, runners):
    app = make_app(sync_runner=runners.raising)
    async with app.run_test(size=SIZE) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.is_running
        assert app.sync_state == "sync failed"
        assert any("connection reset by peer" in n for n in notes(app))
        await pilot.press("escape", "2")  # still answers keys
        await pilot.pause()
        assert app.current_mode == "tickets"
        await pilot.press("f5")  # and can try again
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.is_running and app.sync_state == "sync failed"


async def test_sync_reports_update_the_status_and_refresh_the_screen(make_app, runners):
    app = make_app(sync_runner=runners.ok)
    async with app.run_test(size=SIZE) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.sync_state == "online" and app.data_gen >= 1

    for runner, state in ((runners.daemon, "sync by daemon"), (runners.offline, "offline"),
                          (runners.failing, "sync failed")):
        app = make_app(sync_runner=runner)
        async with app.run_test(size=SIZE) as pilot:
            await app.workers.wait_for_complete()
            await pilot.pause()
            assert app.status_info().state == state


async def test_sync_in_app_off_never_starts_the_runner(make_app):
    calls = []

    def runner(on_event, periodic=False):
        calls.append(1)
        raise AssertionError("must not run")

    app = make_app(sync_runner=runner, sync_in_app=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert calls == [] and app.status_info().state == "sync by daemon"


async def test_sync_in_app_off_says_whether_a_daemon_really_syncs(make_app):
    def runner(on_event, periodic=False):
        raise AssertionError("must not run")

    daemon: list[int | None] = [None]
    app = make_app(sync_runner=runner, sync_in_app=False, daemon_probe=lambda: daemon[0], sync={"interval": 1})
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        info = app.status_info()
        assert info.state == "no background sync" and "f5" in info.detail.lower()
        daemon[0] = 4242  # a daemon starts: the next check (every sync interval) says so
        for _ in range(100):
            await pilot.pause(0.05)
            if app.status_info().state != "no background sync":
                break
        info = app.status_info()
        assert info.state == "sync by daemon" and info.detail == "pid 4242"


async def test_a_daemon_that_goes_away_hands_background_sync_back_to_the_app(make_app):
    """With sync_in_app on, the app leaves its runs to a daemon while one serves; once it is gone
    the status does not say "sync by daemon" until the next interval: the next clock tick starts
    the app's own run."""
    daemon: list[int | None] = [4242]
    calls: list[bool] = []

    def runner(on_event, periodic=False):
        calls.append(periodic)
        if periodic and daemon[0]:
            return SyncReport(ok=True, by_daemon=True, daemon_pid=daemon[0])
        return SyncReport(ok=True)

    app = make_app(sync_runner=runner, daemon_probe=lambda: daemon[0], sync={"interval": 3600})
    async with app.run_test(size=SIZE) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.status_info().state == "sync by daemon" and app.status_info().detail == "pid 4242"
        daemon[0] = None  # the daemon stops
        app.clock_tick()
        for _ in range(100):
            await pilot.pause(0.05)
            if app.status_info().state == "online":
                break
        assert app.status_info().state == "online"
        assert calls == [True]  # the one run after the daemon went: none while it served


async def test_while_a_daemon_serves_the_status_never_flickers_to_syncing(make_app):
    """The app's background runs are left to the daemon: the status says "sync by daemon" from
    the start and at every interval, never "syncing" for a run the app does not do."""
    runs: list[bool] = []

    def runner(on_event, periodic=False):
        runs.append(periodic)
        return SyncReport(ok=True, by_daemon=True, daemon_pid=4242)

    app = make_app(sync_runner=runner, daemon_probe=lambda: 4242, sync={"interval": 1})
    states: list[str] = []
    async with app.run_test(size=SIZE) as pilot:
        app.status_changed.subscribe(app, lambda info: states.append(info.state), immediate=True)
        for _ in range(60):  # a few intervals
            await pilot.pause(0.05)
        await app.workers.wait_for_complete()
        assert app.status_info().state == "sync by daemon"
    assert "syncing" not in states, states
    assert states and set(states) == {"sync by daemon"}
    assert runs == []  # nothing for the app to run


async def test_theme_from_settings_and_command(make_app):
    app = make_app(theme="nord")
    async with app.run_test(size=SIZE) as pilot:
        assert app.theme == "nord"
        await pilot.press("escape")
        await command(pilot, "theme gruvbox")
        assert app.theme == "gruvbox"


async def test_brackets_in_data_and_errors_are_text_not_markup(make_app, replica):
    evil = replica.writes.create("customer", {"name": "[bold]Evil[/] Corp [/x]", "company": "[link=x]", "territory":
                                              "te_north"}, record_id="cu_evil")

    def runner(on_event, periodic=False):
        raise OSError("[Errno 111] Connection refused [/]")

    app = make_app(replica=replica, sync_runner=runner)
    async with app.run_test(size=SIZE) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert any("[Errno 111]" in n for n in notes(app))
        app.screen.query_one("#search-input").value = "evil"
        await settle(pilot)
        await pilot.press("enter", "enter")
        await pilot.pause()
        assert isinstance(app.screen, Customer360Screen) and app.screen.customer_id == evil["id"]
        assert "[bold]Evil[/] Corp [/x]" in str(app.screen.query_one("#c360-header").render())
        await command(pilot, "customer [/]")
        assert app.is_running
