"""The gateway's one mapping table: docs/gateway.md shows the same rows as the code, and the
converters keep a record's mapped fields through a round trip to BottleCRM's shape."""

from __future__ import annotations

import re
from pathlib import Path

from crm_server.gateway.mapping import (
    ENUMS,
    FIELDS,
    doc_rows,
    enum_doc_rows,
    from_upstream,
    mapped_fields,
    same_upstream,
    to_upstream,
    writable_upstream,
)
from crm_tui.core.domain import ENTITIES

DOC = Path(__file__).resolve().parents[2] / "docs" / "gateway.md"


def _table(marker: str) -> list[tuple[str, ...]]:
    text = DOC.read_text()
    body = re.search(rf"<!-- {marker}:start -->\n(.*?)<!-- {marker}:end -->", text, re.S)
    assert body, f"docs/gateway.md has no {marker} table"
    lines = [ln for ln in body.group(1).splitlines() if ln.startswith("|")][2:]  # header, rule
    return [tuple(cell.strip() for cell in ln.strip("|").split(" | ")) for ln in lines]


def test_the_doc_shows_the_field_table_of_the_code():
    assert _table("mapping") == doc_rows()


def test_the_doc_shows_the_enum_tables_of_the_code():
    assert _table("enums") == enum_doc_rows()


def test_every_field_of_a_mirrored_entity_has_a_row():
    for entity in ("customer", "contact", "ticket", "deal"):
        named = {r.field for r in FIELDS if r.entity == entity}
        assert named == {f.name for f in ENTITIES[entity].fields}, entity


def test_every_enum_value_maps_both_ways_onto_a_valid_value():
    for (entity, name), (to_up, from_up) in ENUMS.items():
        assert set(to_up) == set(ENTITIES[entity].by_name[name].choices)
        assert set(from_up.values()) <= set(to_up)
        for ours in to_up:
            # whatever is written comes back as a value that stands for it
            assert same_upstream(entity, name, ours, from_up[to_up[ours]])


def test_written_fields_come_back_unchanged_from_bottlecrm_shape():
    ids = {"cus-1": "u-acc-1"}
    record = {"customer_id": "cus-1", "title": "Fleet", "stage": "won", "amount": 123456, "currency": "EUR",
              "probability": 90, "close_date": "2027-01-31"}
    body = to_upstream("deal", record, lambda entity, local: ids.get(local))
    assert body == {"account": "u-acc-1", "name": "Fleet", "stage": "CLOSED_WON", "amount": "1234.56",
                    "currency": "EUR", "probability": 90, "closed_on": "2027-01-31"}
    row = {"id": "u-deal", **body, "account": {"id": "u-acc-1", "name": "x"}, "created_at": "2026-12-01T05:46:43.366171Z"}
    back = from_upstream("deal", row, lambda entity, upstream: "cus-1" if upstream == "u-acc-1" else None)
    assert back == {**record, "created_at": "2026-12-01T05:46:43Z"}
    assert set(back) == set(mapped_fields("deal"))


def test_a_contact_name_splits_on_the_last_word():
    body = to_upstream("contact", {"name": "Mary Ann Smith", "email": None}, lambda *a: None)
    assert body == {"first_name": "Mary Ann", "last_name": "Smith", "email": ""}
    assert "name" in writable_upstream("contact")


def test_a_record_without_an_account_is_not_mirrored():
    row = {"id": "u", "name": "Lost case", "status": "New", "priority": "Low", "account": None}
    assert from_upstream("ticket", row, lambda *a: None) is None


def test_the_readme_names_every_gateway_option_of_serve():
    from crm_server.cli import serve

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for option in ("--upstream", "--upstream-url", "--upstream-token-file", "--territory", "--poll-interval",
                   "--scan-interval"):
        assert option in [o for p in serve.params for o in p.opts], option
        assert option in readme, option
    assert "CRM_SERVER_UPSTREAM_TOKEN" in readme


def test_a_paused_sla_has_no_due_time_in_the_mirror():
    """BottleCRM serves a paused SLA's deadline as now + what is left: mirrored, it would change
    on every read (and make deleting a pending ticket a conflict)."""
    row = {"id": "u", "name": "Waiting", "status": "Pending", "priority": "Low", "account": {"id": "a"},
           "resolution_sla_deadline": "2026-12-01T10:29:25.361018Z", "sla_paused_at": "2026-12-01T06:29:25Z"}
    assert from_upstream("ticket", row, lambda *a: "cus-1")["sla_due"] is None
    running = {**row, "status": "New", "sla_paused_at": None}
    assert from_upstream("ticket", running, lambda *a: "cus-1")["sla_due"] == "2026-12-01T10:29:25Z"
