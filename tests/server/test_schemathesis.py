"""A bounded schemathesis run over /openapi.json against the live server: no 5xx, and every
answer conforms to the schema (status codes, content types, bodies)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from support.server import UserSpec

pytestmark = pytest.mark.slow  # make test-slow: thousands of generated requests against the live server

# Schema-valid requests may still be refused: a cursor is opaque (any string fits the schema, few
# are cursors) and a well-formed op may name a record that does not exist.
EXCLUDED = "positive_data_acceptance"


def test_schemathesis_finds_no_server_errors(server_factory, tmp_path):
    srv = server_factory(seed_customers=15, users=[UserSpec("ada", "admin")])
    cmd = [
        sys.executable, "-m", "schemathesis.cli", "run", srv.url + "/openapi.json",
        "--header", f"Authorization: Bearer {srv.tokens['ada']}",
        "--checks", "all", "--exclude-checks", EXCLUDED,
        "--max-examples", "15", "--seed", "20261125", "--generation-deterministic",
        "--workers", "1", "--request-timeout", "20", "--no-color",
        "--report-dir", str(tmp_path),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    # 2 per entity (list, get) for 10 entities, and health, me, token renew, changes, batch
    assert "25 selected" in proc.stdout, proc.stdout[-2000:]
