"""What a support agent and a sales rep tripped over in a day in the app (issue 10), each as a user
would notice it: keys, focus, forms, the pipeline's outcomes, navigation and the frame."""

from __future__ import annotations

import pytest

from screens.customer import Customer360Screen
from screens.forms import RecordForm
from screens.help import HelpScreen
from screens.pickers import ChoicePicker, ConfirmModal
from screens.pipeline import PipelineScreen
from screens.reports import ReportsScreen
from screens.search import SearchScreen
from screens.sync_screen import SyncScreen
from screens.ticket_detail import TicketDetailScreen
from screens.tickets import TicketQueueScreen
from support.pilot import command, settle, visible_text

pytestmark = pytest.mark.anyio

SIZE = (120, 36)


def notes(app) -> list[str]:
    return app.notified


# ----------------------------------------------------------------------------- new customer


async def test_new_customer_on_an_empty_replica_does_not_crash(make_app):
    app = make_app("empty")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert app.is_running
        assert not isinstance(app.screen, RecordForm)
        assert any("territor" in n for n in notes(app))


async def test_new_customer_offers_only_territories_the_rep_can_write(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+n")
        await pilot.pause()
        form = app.screen
        assert isinstance(form, RecordForm)
        select = form.query_one("#field-territory")
        offered = [value for _label, value in select._options if value != select.BLANK]
        assert offered == ["te_north", "te_south"]  # ME's own; never West
        assert select.value == "te_north"  # the rep's first territory, not the first alphabetically


# ----------------------------------------------------------------------------- q and esc, one rule


async def test_q_asks_before_quitting_from_any_screen(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("escape", "2")
        await app.push_screen(Customer360Screen("cu_001"))
        await pilot.pause()
        await pilot.press("q")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmModal) and app.is_running
        await pilot.press("n")
        await pilot.pause()
        assert isinstance(app.screen, Customer360Screen) and app.is_running
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, TicketQueueScreen)
        await pilot.press("q")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmModal)
        await pilot.press("y")
        await settle(pilot)
        assert not app.is_running


async def test_the_footer_says_the_same_about_q_on_every_screen(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("escape")
        for screen in (None, Customer360Screen("cu_001"), TicketDetailScreen("ti_001")):
            if screen is not None:
                await app.push_screen(screen)
                await pilot.pause()
            q = app.screen.active_bindings.get("q")
            assert q is not None and q.binding.description == "Quit"


async def test_help_title_names_the_screen_not_its_class(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await app.push_screen(Customer360Screen("cu_001"))
        await pilot.pause()
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        assert app.screen.title_text == "Customer"


# ----------------------------------------------------------------------------- sections


async def test_a_section_key_shows_the_section_not_what_was_opened_from_it(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("escape", "7")
        await pilot.pause()
        await app.push_screen(TicketDetailScreen("ti_001"))
        await pilot.pause()
        await pilot.press("1")
        await pilot.pause()
        await pilot.press("escape", "7")
        await pilot.pause()
        assert isinstance(app.screen, ReportsScreen)


async def test_section_keys_do_nothing_under_a_form(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await app.push_screen(Customer360Screen("cu_005"))
        await pilot.press("e")
        await pilot.pause()
        form = app.screen
        assert isinstance(form, RecordForm)
        form.query_one("#field-tier").focus()  # a Select: digits are not typed anywhere
        await pilot.press("2")
        await pilot.pause()
        assert app.screen is form and app.current_mode == "search"


# ----------------------------------------------------------------------------- focus on the search screen


async def test_letters_type_into_the_box_after_esc_cleared_it_from_the_results(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(*"anna")
        await pilot.pause()
        await pilot.press("down")
        await pilot.pause()
        assert app.screen.results.has_focus
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press(*"bruno")
        await pilot.pause()
        assert app.screen.search_box.value == "bruno"


@pytest.mark.parametrize("opener", ["colon", "question_mark"])
async def test_after_a_modal_closes_section_keys_still_switch_sections(make_app, opener):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("escape")  # leave the box: single keys are commands now
        await pilot.pause()
        assert app.focused is None or app.focused.id != "search-input"
        await pilot.press(opener)
        await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, SearchScreen)
        await pilot.press("2")
        await pilot.pause()
        assert app.current_mode == "tickets"
        app.switch_mode("search")
        await pilot.pause()
        assert app.screen.search_box.value == ""


# ----------------------------------------------------------------------------- pipeline outcomes


async def _pipeline_on(pilot, stage: str, deal_id: str) -> PipelineScreen:
    app = pilot.app
    await pilot.press("escape", "3")
    await pilot.pause()
    screen = app.screen
    assert isinstance(screen, PipelineScreen)
    table = screen.table(stage)
    table.focus()
    table.move_cursor(row=table.get_row_index(deal_id), animate=False)
    await pilot.pause()
    return screen


async def test_next_stage_on_a_won_deal_does_not_make_it_lost(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await _pipeline_on(pilot, "won", "de_011")
        await pilot.press("greater_than_sign")
        await settle(pilot)
        assert app.replica.get("deal", "de_011")["stage"] == "won"


async def test_prev_stage_on_a_lost_deal_asks_to_reopen_it_never_makes_it_won(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await _pipeline_on(pilot, "lost", "de_012")
        await pilot.press("less_than_sign")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmModal)
        await pilot.press("n")
        await pilot.pause()
        assert app.replica.get("deal", "de_012")["stage"] == "lost"
        await pilot.press("less_than_sign")
        await pilot.pause()
        await pilot.press("y")
        await settle(pilot)
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.replica.get("deal", "de_012")["stage"] == "negotiation"


@pytest.mark.parametrize(("stage", "deal_id"), [("lost", "de_012"), ("won", "de_011")])
async def test_a_reopened_deal_is_no_longer_closed_its_close_date_and_lost_reason_go(make_app, stage, deal_id):
    app = make_app()
    if stage == "lost":
        app.replica.writes.update("deal", deal_id, {"lost_reason": "went with a competitor"})
    async with app.run_test(size=SIZE) as pilot:
        await _pipeline_on(pilot, stage, deal_id)
        assert app.replica.get("deal", deal_id)["close_date"]
        await pilot.press("less_than_sign", "y")
        await settle(pilot)
        await app.workers.wait_for_complete()
        await pilot.pause()
        deal = app.replica.get("deal", deal_id)
        assert deal["stage"] == "negotiation"
        assert deal["close_date"] is None and deal["lost_reason"] is None
        [op] = [op for op in app.replica.outbox.pending() if op.record_id == deal_id and op.op == "update"]
        assert op.fields["close_date"] is None and "stage" in op.fields  # the server hears it too


async def test_next_stage_from_negotiation_is_not_won(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await _pipeline_on(pilot, "negotiation", "de_010")
        await pilot.press("greater_than_sign")
        await settle(pilot)
        assert app.replica.get("deal", "de_010")["stage"] == "negotiation"
        assert any("w marks it won" in n for n in notes(app))


async def test_marking_won_asks_first(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await _pipeline_on(pilot, "negotiation", "de_010")
        await pilot.press("w")
        await pilot.pause()
        assert isinstance(app.screen, RecordForm) and app.screen.fixed == {"stage": "won"}  # asks when it closed
        await pilot.press("escape")
        await pilot.pause()
        assert app.replica.get("deal", "de_010")["stage"] == "negotiation"


# ----------------------------------------------------------------------------- the frame


@pytest.mark.parametrize("key", ["5", "6"])
async def test_status_line_sits_at_the_bottom_of_an_empty_screen(make_app, key):
    app = make_app("empty")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("escape", key)
        await pilot.pause()
        status = app.screen.query_one(".status-line")
        assert status.region.y == 24 - 2  # above the footer, not under the empty message


async def test_sync_screen_names_the_server_and_its_tabs_have_keys(make_app, runners, open_replica):
    from screens.app import CrmApp
    app = CrmApp(open_replica("full"), make_app().settings, sync_runner=runners.daemon,
                 server_label="http://127.0.0.1:8765")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("escape", "4")
        await app.workers.wait_for_complete()
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, SyncScreen)
        assert "http://127.0.0.1:8765" in str(screen.query_one("#sync-state").render())
        tabs = screen.query_one("#sync-tabs")
        await pilot.press("l")
        await pilot.pause()
        assert tabs.active == "sync-pending-tab"
        await pilot.press("l")
        await pilot.pause()
        assert tabs.active == "sync-quarantine-tab"
        await pilot.press("h")
        await pilot.pause()
        assert tabs.active == "sync-pending-tab"


async def test_counts_are_said_in_the_singular_when_there_is_one(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        # cu_021 has exactly one open ticket in the seeded data
        target = next(cid for cid in (f"cu_{i:03d}" for i in range(1, 31))
                      if app.replica.reads.customer_360(cid)["counts"]["open_tickets"] == 1)
        await app.push_screen(Customer360Screen(target))
        await pilot.pause()
        header = str(app.screen.query_one("#c360-header").render())
        assert "1 open ticket " in header + " " and "1 open tickets" not in header


# ----------------------------------------------------------------------------- :customer with many matches


async def test_customer_command_with_several_matches_offers_a_choice(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("escape")
        await command(pilot, "customer an")
        assert isinstance(app.screen, ChoicePicker)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, Customer360Screen)


async def test_customer_command_with_one_match_opens_it(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("escape")
        await command(pilot, "customer elena petrova")
        assert isinstance(app.screen, Customer360Screen) and app.screen.customer_id == "cu_005"


# ----------------------------------------------------------------------------- forms


async def test_esc_on_a_filled_form_asks_before_discarding(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await app.push_screen(Customer360Screen("cu_005"))
        await pilot.press("n")
        await pilot.pause()
        form = app.screen
        form.query_one("#field-subject").value = "Half a thought"
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmModal)
        await pilot.press("n")
        await pilot.pause()
        assert app.screen is form and form.query_one("#field-subject").value == "Half a thought"
        await pilot.press("escape", "y")
        await settle(pilot)
        assert isinstance(app.screen, Customer360Screen)


async def test_esc_on_an_untouched_form_just_closes_it(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await app.push_screen(Customer360Screen("cu_005"))
        await pilot.press("e")
        await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, Customer360Screen)


async def test_a_call_needs_a_subject_or_a_body(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await app.push_screen(Customer360Screen("cu_005"))
        await pilot.press("c")
        await pilot.pause()
        form = app.screen
        await pilot.press("f2")
        await settle(pilot)
        assert app.screen is form
        assert "subject or" in str(form.query_one("#error-subject").render())
        assert not [o for o in app.replica.outbox.pending() if o.record_id.startswith("ac_")
                    and o.fields.get("customer_id") == "cu_005"]


async def test_a_new_customer_like_an_existing_one_is_flagged_before_it_is_saved(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+n")
        await pilot.pause()
        form = app.screen
        form.query_one("#field-name").value = "anna schmidt"
        form.query_one("#field-email").value = "someone@else.example"
        await pilot.press("f2")
        await settle(pilot)
        assert app.screen is form
        warning = str(form.query_one("#form-error").render())
        assert "Anna Schmidt" in warning and "again" in warning
        await pilot.press("f2")  # saving again means: yes, a different customer of that name
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert isinstance(app.screen, Customer360Screen)
        assert app.replica.get("customer", app.screen.customer_id)["name"] == "anna schmidt"


# ----------------------------------------------------------------------------- theme


async def test_a_theme_chosen_in_the_app_is_kept_in_the_config_file(make_app, tmp_path):
    from crm_tui.config import load_settings

    config = tmp_path / "config.toml"
    config.write_text('# my settings\ntheme = "nord"\n\n[sync]\ninterval = 60\n')
    app = make_app(theme="nord")
    app.config_path = config
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("escape")
        await command(pilot, "theme gruvbox")
        assert app.theme == "gruvbox"
    text = config.read_text()
    assert "# my settings" in text and "interval = 60" in text
    assert load_settings(config).theme == "gruvbox"


async def test_the_command_line_goes_to_a_section_the_same_way(make_app):
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("escape", "7")
        await app.push_screen(TicketDetailScreen("ti_001"))
        await pilot.pause()
        await pilot.press("1")
        await pilot.pause()
        await pilot.press("escape")
        await command(pilot, "reports")
        assert isinstance(app.screen, ReportsScreen)


# ----------------------------------------------------------------------------- counts say what they count


async def test_search_count_says_what_it_counts_and_which_rows_are_shown(make_app):
    """Not "50 of 76": how many matches there are, and which of them the list shows."""
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(*"example")  # every customer's and contact's mail domain: 76 matches
        await settle(pilot)
        summary = str(app.screen.query_one("#search-summary").render())
        # Which rows: those in view (the list holds all 76; G or the page keys reach the rest).
        in_view = len([line for line in visible_text(app.screen.results).splitlines()[1:] if line.strip()])
        assert 0 < in_view < 76
        assert summary.startswith(f"76 matches · showing 1–{in_view}"), summary
        await pilot.press(*" weber")
        await settle(pilot)
        assert str(app.screen.query_one("#search-summary").render()).startswith("2 matches")


async def test_customer_picker_title_says_what_it_counts(make_app):
    from screens.commands import run_command

    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("escape")
        run_command(app, "customer example")
        await pilot.pause()
        assert isinstance(app.screen, ChoicePicker)
        assert "customers" in app.screen.title_text and " of " not in app.screen.title_text
