"""Malformed server data the shape check must catch: an out-of-range version in one row is set
aside (the rest of the page applies), and an odd progress object is a malformed page (nothing
applied, a clear error), never an exception out of the sync run."""

import pytest

from support.client import ClientReplica
from support.faultproxy import FaultProxy, transform_json
from support.records import admin_update, first_customer


def _bump_version(page):
    for seg in page.get("segments", []):
        if seg.get("op") == "upsert" and seg.get("rows"):
            i = seg["columns"].index("version")
            seg["rows"][0][i] = 2**63  # a valid JSON integer, too large for SQLite
            break
    return page


def test_an_out_of_range_version_is_quarantined_and_the_feed_moves_on(server, tmp_path):
    alex = ClientReplica(tmp_path / "alex", server, "alex")
    assert alex.sync().ok
    first, second = first_customer(server)["id"], "cus-0000007"
    admin_update(server, "customer", first, {"city": "Bad Version"})
    admin_update(server, "customer", second, {"city": "Fine"})
    with FaultProxy(upstream=server.url) as proxy:
        proxy.add_rule(transform_json(_bump_version), method="GET", path="/v1/changes")
        report = alex.sync(url=proxy.url)
    assert report.ok, report.error
    assert any("set aside" in m for m in report.messages)
    with alex.replica() as r:
        assert r.get("customer", second)["city"] == "Fine"
        [q] = r.reads.quarantined()
        assert "version" in q["error"]


@pytest.mark.parametrize("progress", [{"done": "12", "total": 5}, {"done": 1, "total": 2, "complete": [{}]},
                                      {"done": True}, ["not", "an", "object"]])
def test_an_odd_progress_object_is_a_malformed_page(server, tmp_path, progress):
    alex = ClientReplica(tmp_path / "alex", server, "alex")

    def mangle(page):
        page["progress"] = progress
        return page

    with FaultProxy(upstream=server.url) as proxy:
        proxy.add_rule(transform_json(mangle), method="GET", path="/v1/changes")
        report = alex.sync(url=proxy.url)
    assert not report.ok and "progress" in report.error
    with alex.replica() as r:
        assert r.cursor is None and r.count("customer") == 0
    assert alex.sync().ok  # the real server's pages apply
