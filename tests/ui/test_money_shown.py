"""Money in currencies without decimals (JPY, KRW, HUF ...) reads as it is paid: the reports
showed "2,632,204 JPY" while the customer's lifetime value and the deal form still showed yen
with cents (issue 10). Every place an amount is shown uses the one formatter
(crm_tui.core.domain.format_amount / screens.display.money), in the record's currency; an amount
typed with decimals in such a currency is refused in one line that says what to type."""

from __future__ import annotations

import pytest

from crm_tui.core.domain import ENTITIES, format_value, parse_input, parse_money
from screens import form_specs
from screens.conflicts import _show
from screens.customer import Customer360Screen
from screens.forms import RecordForm
from support import ui_data
from support.pilot import settle

pytestmark = pytest.mark.anyio

SIZE = (120, 36)
JP = "cu_jp"
YEN_DEAL = "de_jp"


def add_a_yen_customer(replica) -> None:
    """A customer in Osaka who buys in yen: ¥12,000 lifetime value, two orders, one deal of
    ¥1,200,000 and one stored with hundredths (12,345.50 yen, as another system may send it)."""
    base = ui_data.customers()[1]
    ui_data.add_records(replica, "customer", [{**base, "id": JP, "name": "Kenji Sato", "company": "Sato Shoji",
                                               "email": "kenji@sato.example", "city": "Osaka", "country": "JP",
                                               "lifetime_value": 12_000_00}])
    order = ui_data.orders()[1]
    ui_data.add_records(replica, "order", [
        {**order, "id": "or_jp1", "customer_id": JP, "number": "SO-00090001", "amount": 8_000_00, "currency": "JPY"},
        {**order, "id": "or_jp2", "customer_id": JP, "number": "SO-00090002", "amount": 4_000_00, "currency": "JPY"},
    ])
    deal = ui_data.deals()[0]
    ui_data.add_records(replica, "deal", [
        {**deal, "id": YEN_DEAL, "customer_id": JP, "title": "Forklift fleet", "amount": 1_200_000_00, "currency": "JPY"},
        {**deal, "id": "de_jp_odd", "customer_id": JP, "title": "Spare parts", "amount": 1_234_550, "currency": "JPY"},
    ])


@pytest.fixture
def app(make_app, replica):
    add_a_yen_customer(replica)
    return make_app(replica=replica)


def header_text(screen) -> str:
    return str(screen.query_one("#c360-header").render())


async def test_the_lifetime_value_of_a_yen_customer_has_no_decimals(app):
    async with app.run_test(size=SIZE) as pilot:
        await app.push_screen(Customer360Screen(JP))
        await settle(pilot)
        assert "lifetime value 12,000 JPY" in header_text(app.screen), header_text(app.screen)


async def test_a_euro_customer_keeps_its_cents(app):
    async with app.run_test(size=SIZE) as pilot:
        await app.push_screen(Customer360Screen(ui_data.RICH_CUSTOMER))
        await settle(pilot)
        ltv = app.replica.get("customer", ui_data.RICH_CUSTOMER)["lifetime_value"]
        currency = app.replica.reads.customer_currency(ui_data.RICH_CUSTOMER)
        assert currency in ("EUR", "USD")
        assert f"lifetime value {ltv // 100:,}.{ltv % 100:02d} {currency}" in header_text(app.screen)


async def open_form(pilot, form: RecordForm) -> RecordForm:
    await pilot.app.push_screen(form)
    await pilot.pause()
    return form


def field(form: RecordForm, name: str) -> str:
    return form.query_one(f"#field-{name}").value


async def test_forms_show_yen_amounts_without_decimals(app):
    async with app.run_test(size=SIZE) as pilot:
        deal = await open_form(pilot, form_specs.deal_form(app, JP, app.replica.get("deal", YEN_DEAL)))
        assert field(deal, "amount") == "1,200,000"
        await pilot.press("escape")
        customer = await open_form(pilot, form_specs.customer_form(app, app.replica.get("customer", JP)))
        assert field(customer, "lifetime_value") == "12,000"


async def test_a_yen_amount_typed_with_decimals_is_refused_in_one_line(app):
    async with app.run_test(size=SIZE) as pilot:
        form = await open_form(pilot, form_specs.deal_form(app, JP, app.replica.get("deal", YEN_DEAL)))
        assert "whole" in str(form.query_one("#money-hint").render()) and form.query_one("#money-hint").display
        form.query_one("#field-amount").value = "1,250,000.50"
        await pilot.press("f2")
        await settle(pilot)
        assert app.screen is form
        error = str(form.query_one("#error-amount").render())
        assert error == "↳ JPY has no decimals: type a whole amount, like 1,250,001", error
        assert not [o for o in app.replica.outbox.pending() if o.record_id == YEN_DEAL]
        form.query_one("#field-amount").value = "1,250,000"
        await pilot.press("f2")
        await settle(pilot)
        assert app.screen is not form
        assert app.replica.get("deal", YEN_DEAL)["amount"] == 1_250_000_00


async def test_a_new_deal_in_yen_judges_the_amount_in_the_currency_typed(app):
    async with app.run_test(size=SIZE) as pilot:
        form = await open_form(pilot, form_specs.deal_form(app, JP))
        assert not form.query_one("#money-hint").display  # EUR until changed: cents are fine
        form.query_one("#field-title").value = "Pallets"
        form.query_one("#field-amount").value = "99.50"
        form.query_one("#field-currency").value = "JPY"
        await pilot.pause()
        assert form.query_one("#money-hint").display
        await pilot.press("f2")
        await settle(pilot)
        assert app.screen is form
        assert "JPY has no decimals" in str(form.query_one("#error-amount").render())
        form.query_one("#field-currency").value = "EUR"
        await pilot.press("f2")
        await settle(pilot)
        assert app.screen is not form
        [op] = [o for o in app.replica.outbox.pending() if o.entity == "deal" and o.fields.get("title") == "Pallets"]
        assert (op.fields["amount"], op.fields["currency"]) == (99_50, "EUR")


async def test_an_amount_left_as_shown_is_kept_as_stored(app):
    """A yen deal stored with hundredths (12,345.50) shows as 12,346; changing its title does not
    change its amount behind the user's back."""
    async with app.run_test(size=SIZE) as pilot:
        form = await open_form(pilot, form_specs.deal_form(app, JP, app.replica.get("deal", "de_jp_odd")))
        assert field(form, "amount") == "12,346"
        form.query_one("#field-title").value = "Spare parts 2027"
        await pilot.press("f2")
        await settle(pilot)
        [op] = [o for o in app.replica.outbox.pending() if o.record_id == "de_jp_odd"]
        assert op.fields == {"title": "Spare parts 2027"}


def test_a_conflict_on_a_yen_amount_shows_whole_yen():
    assert _show("deal", "amount", 1_200_000_00, "JPY") == "1,200,000 JPY"
    assert _show("deal", "amount", 1_234_50, "EUR") == "1,234.50 EUR"


@pytest.mark.parametrize(("text", "currency", "minor"), [
    ("12,000", "JPY", 12_000_00), ("12000", "KRW", 12_000_00), ("1,234.50", "EUR", 1_234_50), ("1234.5", None, 1_234_50),
])
def test_amounts_typed_are_read_in_their_currency(text, currency, minor):
    assert parse_money(text, currency) == minor
    assert parse_input(ENTITIES["deal"].by_name["amount"], text, currency) == minor


@pytest.mark.parametrize(("text", "currency", "says"), [
    ("12,000.50", "JPY", "JPY has no decimals: type a whole amount, like 12,001"),
    ("0.4", "HUF", "HUF has no decimals: type a whole amount, like 0"),
    ("1.234", "EUR", "at most two decimal places"),
    ("lots", "JPY", "not an amount; type digits like 12000"),
])
def test_amounts_with_decimals_the_currency_has_not_are_refused(text, currency, says):
    with pytest.raises(ValueError, match=says):
        parse_money(text, currency)


def test_a_form_shows_an_amount_in_its_currency_decimals():
    amount = ENTITIES["deal"].by_name["amount"]
    assert format_value(amount, 1_200_000_00, "JPY") == "1,200,000"
    assert format_value(amount, 1_234_50, "EUR") == "1,234.50"
    assert format_value(amount, 1_234_50) == "1,234.50"
