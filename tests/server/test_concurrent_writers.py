"""Sync-contract promises 1-2 (docs/sync-contract.md) on PostgreSQL: writers in several PROCESSES commit at once, out of sequence
order, while a feed follower pulls; every committed change arrives exactly once.

One writer holds its transaction open on purpose after taking its sequence number, so the other
writers' later numbers commit first — the trap of ``bigserial`` feeds, made deterministic. The
same harness pointed at a naive feed (``seq > cursor ORDER BY seq``) must lose that writer's
change: the control proves the harness can see a skip.
"""

from __future__ import annotations

import datetime as dt

import pytest

from crm_server.seed import seed_database
from crm_server.store import open_store
from support.feedload import CUSTOMER, Delivered, FeedFollower, NaiveFollower, run_harness


@pytest.fixture
def org(postgres_url):
    store = open_store(postgres_url)
    seed_database(store, customers=0, now=dt.datetime(2026, 11, 25, 9, tzinfo=dt.UTC))
    yield store
    store.close()


def test_every_committed_change_arrives_exactly_once(org, postgres_url):
    follower = FeedFollower(org)
    while follower.pull():  # bootstrap: territories and users
        pass
    out = run_harness(postgres_url, follower, follower.pull)
    delivered: Delivered = out["delivered"]
    assert len(delivered) == len(set(delivered)), "no change is delivered twice"
    final = dict(delivered)  # the last version delivered of each customer
    assert final == out["latest"], "every committed change arrives, in its latest state"
    assert out["held"] in delivered, "the change committed out of sequence order is not skipped"
    with org.read() as tx:
        for cid, version in out["latest"].items():
            assert tx.get(CUSTOMER, cid).version == version


def test_control_a_naive_sequence_ordered_feed_skips_the_held_change(org, postgres, postgres_url):
    follower = NaiveFollower(postgres, postgres_url)
    try:
        out = run_harness(postgres_url, follower, follower.pull)
    finally:
        follower.conn.close()
    delivered = set(out["delivered"])
    assert delivered, "the naive feed delivered the changes that committed after the held one"
    # (It may skip others too: the writers commit out of sequence order among themselves.)
    assert out["held"] not in delivered, "the naive feed skipped the change committed out of order"
    assert out["latest"]["held-1"] == out["held"][1]
