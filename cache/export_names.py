"""Names beside ids in exports: a spreadsheet reads what the screen showed.

A list's rows hold ids where the screen shows names (a ticket's customer and assignee, a deal's
stage and owner, a record's territory). An export keeps each id column (a spreadsheet can join
on it) and puts the name beside it, right after it: ``customer_id, customer_name``, ``owner_id,
owner_name``, ``territory, territory_name``, ``stage, stage_name``, ``record_id, record_name``
(a conflict's or a rejected change's record, as the screen titles it). The rule is the id
column's name without ``_id``, then ``_name``.

Names are looked up one batch at a time, with one query per kind of id for the whole batch:
an export of a million rows never holds more than one batch's names (users and territories,
few, are kept for the whole export).
"""

from __future__ import annotations

from typing import Any

from cache.store import Store
from crm_tui.core.domain import ENTITIES, record_title, stage_label

# id column -> (name column, the entity the id names)
ID_COLUMNS: dict[str, tuple[str, str]] = {
    "customer_id": ("customer_name", "customer"),
    "owner_id": ("owner_name", "user"),
    "assignee_id": ("assignee_name", "user"),
    "author_id": ("author_name", "user"),
    "contact_id": ("contact_name", "contact"),
    "territory": ("territory_name", "territory"),
    "ticket_id": ("ticket_name", "ticket"),
    "deal_id": ("deal_name", "deal"),
    "order_id": ("order_name", "order"),
}
SMALL = ("user", "territory")  # kept for the whole export: a company has few
# The columns a record's title is read from (record_title), per entity.
TITLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "ticket": ("number", "subject"), "order": ("number",), "customer": ("name",), "contact": ("name",),
    "user": ("name",), "territory": ("name",), "deal": ("title",), "task": ("title",),
    "activity": ("subject",), "order_event": ("kind",),
}


class ExportNames:
    """Looks up the names an export puts beside its id columns, a batch at a time."""

    def __init__(self, store: Store):
        self.conn = store.conn
        self._kept: dict[str, dict[str, str]] = {name: {} for name in SMALL}
        self.held = 0  # names of big tables held for the batch being named (a test reads it)

    def _titles(self, entity_name: str, ids: set[str], known: dict[str, str]) -> dict[str, str]:
        wanted = sorted(i for i in ids if i not in known)
        ent = ENTITIES.get(entity_name)
        if ent is None or not wanted:
            return known
        columns = TITLE_COLUMNS.get(entity_name, ("name",))
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            cur = self.conn.execute(
                f"SELECT id, {', '.join(columns)} FROM {ent.table} WHERE id IN ({', '.join('?' * len(chunk))})", chunk)
            for row in cur.fetchall():
                known[row[0]] = record_title(entity_name, row[0], dict(zip(columns, row[1:], strict=True)))
        return known

    def named(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """``rows`` (flat: one value per column) with a name column after each id column."""
        ids: dict[str, set[str]] = {}
        for row in rows:
            for column, (_, entity_name) in ID_COLUMNS.items():
                if row.get(column):
                    ids.setdefault(entity_name, set()).add(str(row[column]))
            if row.get("record_id") and row.get("entity") in ENTITIES:
                ids.setdefault(str(row["entity"]), set()).add(str(row["record_id"]))
        names = {entity_name: self._titles(entity_name, wanted, self._kept[entity_name] if entity_name in SMALL else {})
                 for entity_name, wanted in ids.items()}
        self.held = sum(len(v) for k, v in names.items() if k not in SMALL)
        out = []
        for row in rows:
            named: dict[str, Any] = {}
            for column, value in row.items():
                named.setdefault(column, value)
                if column in ID_COLUMNS:
                    name_column, entity_name = ID_COLUMNS[column]
                    named[name_column] = row.get(name_column) or _name(names.get(entity_name), value)
                elif column == "stage" and "stage_name" not in row:
                    named["stage_name"] = stage_label(value) if value else ""
                elif column == "record_id" and "record_name" not in row:
                    named["record_name"] = _name(names.get(str(row.get("entity"))), value)
            out.append(named)
        return out


def _name(names: dict[str, str] | None, value: Any) -> str:
    """The name of the record ``value`` is the id of; '' for no id or one the replica lacks."""
    if not value or names is None:
        return ""
    return names.get(str(value), "")
