"""Single-key ticket triage, shared by the queue and the ticket detail screen.

Status changes only offer the moves ``TICKET_TRANSITIONS`` allows; replies and internal notes
are activities on the ticket. Every change is a local write: on screen at once, in the outbox
before the key press returns.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual.binding import Binding, BindingType

from cache.errors import ReplicaError
from crm_tui.core.domain import TICKET_PRIORITIES, TICKET_TRANSITIONS, ValidationError
from screens.form_specs import activity_form, ticket_form
from screens.navigation import open_customer
from screens.pickers import ChoicePicker
from screens.task_forms import follow_up

if TYPE_CHECKING:
    from screens.host import CrmHost

# In the order the footer shows them: what a user does most first (at 80 columns the last are cut).
TRIAGE_BINDINGS: list[BindingType] = [
    Binding("r", "reply", "Reply", id="ticket.reply"),
    Binding("i", "internal_note", "Note", id="ticket.note"),
    Binding("s", "set_status", "Status", id="ticket.status"),
    Binding("a", "assign_me", "Assign me", id="ticket.assign_me"),
    Binding("o", "open_customer", "Customer", id="ticket.customer"),
    Binding("f", "follow_up", "Follow-up", id="ticket.follow_up"),
    Binding("e", "edit_ticket", "Edit", id="ticket.edit"),
    Binding("p", "set_priority", "Priority", id="ticket.priority"),
]


class TicketTriage:
    """Mixin for a screen that has a ``current_ticket()``; the screen lists TRIAGE_BINDINGS in its
    BINDINGS (Textual only collects bindings from widget classes)."""

    crm: CrmHost

    def current_ticket(self) -> dict[str, Any] | None:
        raise NotImplementedError

    def _ticket(self) -> dict[str, Any] | None:
        ticket = self.current_ticket()
        if ticket is None:
            self.crm.notify("No ticket selected.", severity="warning")
        return ticket

    def _update(self, ticket: dict[str, Any], fields: dict[str, Any], done: str) -> bool:
        try:
            self.crm.save("update", "ticket", fields, record_id=ticket["id"])
        except ValidationError as exc:
            self.crm.notify("; ".join(exc.errors.values()), title=f"#{ticket.get('number')}", severity="error")
            return False
        except ReplicaError as exc:
            self.crm.notify(str(exc), severity="error")
            return False
        self.crm.notify(done, timeout=3)
        self.crm.data_changed()
        return True

    def action_follow_up(self) -> None:
        ticket = self._ticket()
        if ticket is not None:
            follow_up(self.crm, ticket.get("customer_id"), ticket=ticket)

    def action_assign_me(self) -> None:
        ticket = self._ticket()
        if ticket is None:
            return
        me = self.crm.replica.reads.me() or {}
        if not me.get("id"):
            self.crm.notify("Not signed in: nobody to assign to.", severity="warning")
            return
        if ticket.get("assignee_id") == me["id"]:
            self.crm.notify(f"#{ticket.get('number')} is already yours.")
            return
        self._update(ticket, {"assignee_id": me["id"]}, f"#{ticket.get('number')} assigned to you")

    def action_set_status(self) -> None:
        ticket = self._ticket()
        if ticket is None:
            return
        status = ticket.get("status") or "new"
        allowed = TICKET_TRANSITIONS.get(status, ())
        if not allowed:
            self.crm.notify(f"#{ticket.get('number')} is {status}: closed tickets are final.", severity="warning")
            return

        def chosen(value: str | None) -> None:
            if value:
                self._update(ticket, {"status": value}, f"#{ticket.get('number')} is now {value}")

        self.crm.push_screen(ChoicePicker(f"#{ticket.get('number')} is {status}; move it to",
                                          [(s, s) for s in allowed]), chosen)

    def action_set_priority(self) -> None:
        ticket = self._ticket()
        if ticket is None:
            return

        def chosen(value: str | None) -> None:
            if value and value != ticket.get("priority"):
                self._update(ticket, {"priority": value}, f"#{ticket.get('number')} priority {value}")

        self.crm.push_screen(ChoicePicker(f"Priority of #{ticket.get('number')}",
                                          [(p, p) for p in reversed(TICKET_PRIORITIES)],
                                          current=ticket.get("priority")), chosen)

    def _activity(self, *, kind: str, internal: bool, title: str, subject: str) -> None:
        ticket = self._ticket()
        if ticket is None:
            return
        form = activity_form(self.crm, ticket["customer_id"], kind=kind, internal=internal, title=title,
                             ticket_id=ticket["id"], subject=subject, fields=("subject", "body"))

        def saved(result: dict[str, Any] | None) -> None:
            if result is not None:
                self.crm.notify(f"{title} saved on #{ticket.get('number')}", timeout=3)
                self.crm.data_changed()

        self.crm.push_screen(form, saved)

    def action_reply(self) -> None:
        ticket = self.current_ticket()
        self._activity(kind="email", internal=False, title="Reply to the customer",
                       subject=f"Re: {ticket.get('subject') or ''}" if ticket else "")

    def action_internal_note(self) -> None:
        self._activity(kind="note", internal=True, title="Internal note", subject="Internal note")

    def action_edit_ticket(self) -> None:
        ticket = self._ticket()
        if ticket is None:
            return

        def saved(result: dict[str, Any] | None) -> None:
            if result is not None:
                self.crm.data_changed()

        self.crm.push_screen(ticket_form(self.crm, ticket["customer_id"], ticket), saved)

    def action_open_customer(self) -> None:
        ticket = self._ticket()
        if ticket is not None:
            open_customer(self.crm, ticket.get("customer_id"), tab="tickets")
