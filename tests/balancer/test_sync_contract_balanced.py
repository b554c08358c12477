"""The sync contract end to end through a real HAProxy in front of two crm-server processes on
one PostgreSQL (tests/support/balancer.py): consecutive requests of one client land on different
processes, and every promise still holds. The tests are those of tests/e2e/test_sync_contract.py
that talk to the server; only the ``backend`` differs."""

from __future__ import annotations

import pytest
from e2e.test_sync_contract import (  # noqa: F401 - collected here, run through the balancer
    test_a_customer_moved_away_disappears_and_a_granted_territory_arrives,
    test_a_pull_never_overwrites_a_pending_field,
    test_a_rejected_op_is_kept_with_its_reason_and_later_ops_still_go,
    test_bootstrap_then_incremental_sync_equals_the_server_projection,
    test_many_writes_are_pushed_in_few_requests,
    test_resync_required_replaces_the_replica_and_keeps_the_outbox,
    test_two_offline_clients_merge_different_fields_and_conflict_on_the_same_one,
)


@pytest.fixture(scope="module")
def backend() -> str:
    return "balanced"
