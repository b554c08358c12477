"""The client's fast page check and the protocol's models say the same thing.

``cache.pull.check_page`` checks a change page by hand (a bootstrap page holds thousands of
records, too many to build pydantic models for); ``crm_tui.core.protocol.ChangePage`` is the
declaration the server's OpenAPI schema is built from. Every phase and segment op the protocol
declares is accepted, and every page the model refuses (strictly: JSON has types) is refused by
the hand-written check too, so a server that keeps to the published schema is never turned away
and one that breaks it is never applied.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from cache.errors import MalformedPage
from cache.pull import check_page
from crm_tui.core.protocol import OP_STATUSES, PHASES, SEGMENT_OPS, ChangePage, OpResult


def segment(op: str) -> dict[str, Any]:
    if op == "upsert":
        return {"op": op, "entity": "customer", "columns": ["id", "version", "name"], "rows": [["c1", 1, "Ada"]]}
    if op == "exit_territory":
        return {"op": op, "territory": "north"}
    return {"op": op, "entity": "customer", "ids": ["c1"]}


def page(**changes: Any) -> dict[str, Any]:
    base = {"cursor": "abc.def", "has_more": False, "phase": "feed", "segments": [segment("upsert")],
            "progress": {"entity": "customer", "done": 1, "total": 2, "complete": []}}
    base.update(changes)
    return base


@pytest.mark.parametrize("phase", PHASES)
@pytest.mark.parametrize("op", SEGMENT_OPS)
def test_every_declared_phase_and_segment_op_is_accepted_by_both(phase, op):
    sample = page(phase=phase, segments=[segment(op)])
    ChangePage.model_validate(copy.deepcopy(sample), strict=True)
    assert check_page(sample) is sample


MALFORMED = {
    "not an object": ["cursor"],
    "no cursor": {k: v for k, v in page().items() if k != "cursor"},
    "has_more not a bool": page(has_more="yes"),
    "unknown phase": page(phase="replay"),
    "segments not a list": page(segments={"op": "upsert"}),
    "unknown segment op": page(segments=[{"op": "truncate", "entity": "customer", "ids": []}]),
    "segment not an object": page(segments=["upsert"]),
    "rows not lists": page(segments=[{**segment("upsert"), "rows": [{"id": "c1"}]}]),
    "ids not a list": page(segments=[{**segment("delete"), "ids": "c1"}]),
    "progress not an object": page(progress=[1, 2]),
    "progress.done not a count": page(progress={"done": "1", "total": 2}),
    "progress.complete not a list": page(progress={"done": 1, "total": 2, "complete": "customer"}),
}


@pytest.mark.parametrize("name", MALFORMED)
def test_a_page_the_model_refuses_is_refused_by_the_fast_check(name):
    sample = MALFORMED[name]
    with pytest.raises(ValidationError):
        ChangePage.model_validate(copy.deepcopy(sample), strict=True)
    with pytest.raises(MalformedPage):
        check_page(sample)


def test_the_outbox_knows_every_result_status_the_protocol_declares():
    for status in OP_STATUSES:
        OpResult.model_validate({"op_id": "op1", "status": status})
    with pytest.raises(ValidationError):
        OpResult.model_validate({"op_id": "op1", "status": "queued"})
