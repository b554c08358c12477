"""The `:` command mode (k9s style): `:q`, `:tickets mine`, `:customer <id|name>`, `:sync now`..."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from crm_tui.core.text import counted, plural
from screens.exporting import export_screen
from screens.navigation import customer_matches, find_ticket, open_customer, open_ticket
from screens.pickers import ChoicePicker

if TYPE_CHECKING:
    from screens.host import CrmHost

SECTION_WORDS = {
    "search": "search", "s": "search", "home": "search",
    "tickets": "tickets", "queue": "tickets", "t": "tickets",
    "pipeline": "pipeline", "deals": "pipeline", "p": "pipeline",
    "sync": "sync",
    "conflicts": "conflicts",
    "rejected": "rejected",
    "reports": "reports",
    "today": "today", "tasks": "today", "agenda": "today",
}


def run_command(app: CrmHost, text: str) -> bool:
    """Run one command line; an unknown or failing command is reported, never raised."""
    text = text.strip().lstrip(":").strip()
    if not text:
        return False
    word, _, rest = text.partition(" ")
    word, rest = word.lower(), rest.strip()
    handler = _HANDLERS.get(word)
    if handler is not None:
        return handler(app, rest)
    if word in SECTION_WORDS:
        return _section(app, SECTION_WORDS[word], rest)
    app.notify(f"Unknown command {word!r}. Try :help.", severity="error")
    return False


def _quit(app: CrmHost, _rest: str) -> bool:
    """`:q` asks as `q` does (what waits to be sent); `:q!` is the vim way to quit without asking
    (nothing is lost either way: unsent changes stay in the replica)."""
    app.call_later(app.action_quit)
    return True


def _quit_now(app: CrmHost, _rest: str) -> bool:
    app.exit()
    return True


def _section(app: CrmHost, mode: str, rest: str) -> bool:
    if mode == "sync" and rest.lower() in ("now", "!"):
        app.action_sync_now()
        return True
    if mode == "tickets" and rest and rest.lower() not in ("mine", "team", "all", "unassigned"):
        app.notify("tickets takes mine, team, all or unassigned", severity="error")
        return False
    app.show_section(mode)
    if mode == "search" and rest:
        app.call_later(_on_screen, app, "search_for", rest)
    if mode == "tickets" and rest:
        app.call_later(_on_screen, app, "set_view", rest.lower())
    return True


def _on_screen(app: CrmHost, method: str, arg: str) -> None:
    handler = getattr(app.screen, method, None)
    if handler is not None:
        handler(arg)


def _customer(app: CrmHost, rest: str) -> bool:
    """One match opens; several are offered to choose from (never one picked silently)."""
    if not rest:
        app.notify("customer needs an id or a name", severity="error")
        return False
    matches, total, capped = customer_matches(app, rest)
    if not matches:
        app.notify(f"No customer matches {rest!r}.", severity="error")
        return False
    if len(matches) == 1:
        return open_customer(app, matches[0][0])
    def chosen(customer_id: str | None) -> None:
        if customer_id:
            open_customer(app, customer_id)

    # Say what is listed: customers found by their own name, and those found through a contact.
    via_contact = sum(label.split(" · ")[0].endswith(" (contact)") for _cid, label in matches)
    parts = [plural(len(matches) - via_contact, "customer")] if len(matches) > via_contact else []
    if via_contact:
        parts.append(f"{via_contact} through a contact")
    if total > len(matches) or capped:
        # The search counts up to a bound: past it, "1,000+", never a round number that is not true.
        parts.append(f"{counted(total, 'match', many='matches', at_least=capped)} in all")
    app.push_screen(
        ChoicePicker(f"“{rest}”: {' · '.join(parts)}", matches,
                     hint="enter opens · esc cancels · more words narrow it (:customer schmidt berlin)"),
        chosen,
    )
    return True


def _ticket(app: CrmHost, rest: str) -> bool:
    ticket_id = find_ticket(app, rest)
    if ticket_id is None:
        app.notify(f"No ticket matches {rest!r}." if rest else "ticket needs a number or an id",
                   severity="error")
        return False
    return open_ticket(app, ticket_id)


def _theme(app: CrmHost, rest: str) -> bool:
    if not rest:
        app.search_themes()
        return True
    if rest not in app.available_themes:
        app.notify(f"No theme {rest!r}. Known: {', '.join(sorted(app.available_themes))}", severity="error")
        return False
    app.theme = rest
    return True


def _export(app: CrmHost, rest: str) -> bool:
    """`:export FILE`: what the screen in front shows, to CSV: a report (its own export), or any
    list, whole and with its filter (screens.exporting)."""
    if not rest:
        app.notify("export needs a file name: :export tickets.csv", severity="error")
        return False
    export = getattr(app.screen, "export_csv", None)
    if export is not None:
        return bool(export(rest))
    return export_screen(app, rest)


def _help(app: CrmHost, _rest: str) -> bool:
    app.action_help()
    return True


_HANDLERS: dict[str, Callable[[CrmHost, str], bool]] = {
    "q": _quit, "quit": _quit, "exit": _quit, "q!": _quit_now,
    "customer": _customer, "c": _customer, "cust": _customer,
    "ticket": _ticket,
    "theme": _theme,
    "export": _export,
    "help": _help, "h": _help,
    "sync!": lambda app, rest: _section(app, "sync", "now"),
}
