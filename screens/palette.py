"""The command palette (ctrl+p): go to a section or a customer, sync now, and what the screen in
front can do. Customers come from the replica's search, so the palette finds any of them."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.content import Content

from screens.chrome import SECTIONS
from screens.navigation import open_customer, open_ticket

if TYPE_CHECKING:
    from screens.host import CrmHost

CUSTOMER_HITS = 8


class CrmCommands(Provider):
    def _commands(self) -> list[tuple[str, str, object]]:
        app: CrmHost = self.app  # type: ignore[assignment]
        out: list[tuple[str, str, object]] = []
        for mode, label, binding_id in SECTIONS:
            out.append((f"Go to {label}", f"the {label.lower()} screen ({app.key_for(binding_id)})",
                        partial(app.show_section, mode)))
        out.append(("Sync now", "push pending changes and pull the server's (f5)", app.action_sync_now))
        out.append(("Command line", "type a : command", app.action_command_line))
        screen_commands = getattr(self.screen, "palette_commands", None)
        if screen_commands is not None:
            seen = {title for title, _, _ in out}
            for title, help_text, callback in screen_commands():
                if title not in seen:
                    seen.add(title)
                    out.append((title, help_text, callback))
        return out

    async def discover(self) -> Hits:
        for title, help_text, callback in self._commands():
            yield DiscoveryHit(Content(title), callback, text=title, help=help_text)  # type: ignore[arg-type]

    async def search(self, query: str) -> Hits:
        app: CrmHost = self.app  # type: ignore[assignment]
        matcher = self.matcher(query)
        for title, help_text, callback in self._commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), callback, help=help_text)  # type: ignore[arg-type]
        if len(query.strip()) < 2:
            return
        for hit in app.replica.search(query, limit=CUSTOMER_HITS).hits:
            if hit.kind == "ticket":
                yield Hit(0.5, Content(f"Open ticket {hit.title}"), partial(open_ticket, app, hit.id), help=hit.detail)
            elif hit.customer_id:
                yield Hit(0.5, Content(f"Go to customer {hit.title}"), partial(open_customer, app, hit.customer_id),
                          help=f"{hit.kind} · {hit.detail}")
