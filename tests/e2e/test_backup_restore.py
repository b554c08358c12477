"""A server database restored from an older backup, with the commands docs/deploy.md gives
(``sqlite3 .backup`` / ``pg_dump`` and ``pg_restore``): a client whose cursor is from after the
backup is told to resync (410), never skips the writes made since the restore and never keeps
the records the restore took away; its pending edits are kept and pushed to the restored server."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from support.client import ClientReplica, assert_replica_matches_server
from support.postgres import BACKENDS
from support.server import make_op

pytestmark = pytest.mark.slow  # make test-slow: backups, restores and restarted servers


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request) -> str:
    return request.param


def backup(server, to: Path) -> None:
    """An online backup, as docs/deploy.md says, while the server runs."""
    if server.database:
        subprocess.run(["pg_dump", "--format=custom", f"--file={to}", server.database], check=True, timeout=120)
    else:
        subprocess.run(["sqlite3", str(server.db_path), f".backup '{to}'"], check=True, timeout=120)


def restore(server, backup_file: Path, postgres) -> None:
    """Stop the server, put the backup in place of the database, start it again (same port)."""
    server.serve_args = (*server.serve_args, "--port", str(server.port))
    server.stop()
    if server.database:
        postgres.drop_database(server.database)
        name = server.database.rsplit("/", 1)[1]
        with postgres.connect() as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
        subprocess.run(["pg_restore", "--no-owner", f"--dbname={server.database}", str(backup_file)], check=True,
                       timeout=120)
    else:
        for suffix in ("-wal", "-shm"):
            Path(f"{server.db_path}{suffix}").unlink(missing_ok=True)
        shutil.copyfile(backup_file, server.db_path)
    server.start()


def last_cursor(server, user: str) -> str:
    with server.client(user) as http:
        cursor, more = None, True
        while more:
            page = http.get("/v1/changes", params={"limit": 1000, **({"cursor": cursor} if cursor else {})}).json()
            cursor, more = page["cursor"], page["has_more"]
    return cursor


def test_a_restore_from_an_older_backup_makes_clients_resync_and_keeps_their_pending_edits(
        server, tmp_path, request, backend):
    postgres = request.getfixturevalue("postgres") if backend == "postgresql" else None
    client = ClientReplica(tmp_path / "alex", server, "alex")
    assert client.sync().ok
    with server.client("ada") as http:
        first, second = http.get("/v1/customers", params={"limit": 2}).json()["items"]
    saved = tmp_path / ("crm.dump" if server.database else "backup.db")
    backup(server, saved)

    # After the backup: a ticket and an edit that the restore will take away again.
    [lost] = server.batch([make_op("create", "ticket", "t-after-backup", {
        "customer_id": first["id"], "subject": "Lost in the restore", "status": "new", "priority": "low"})])
    [moved] = server.batch([make_op("update", "customer", first["id"], {"city": "After-Backup"},
                                    base_version=first["version"])])
    assert lost["status"] == "applied" and moved["status"] in ("applied", "merged")
    assert client.sync().ok
    with client.replica() as r:
        assert r.get("ticket", "t-after-backup") is not None
        assert r.get("customer", first["id"])["city"] == "After-Backup"
    stale = last_cursor(server, "ada")

    restore(server, saved, postgres)
    # The restored database moves on: its new writes take sequence numbers the lost ones had.
    # As many as it lost, and one more: the cursor's position is not past the head any more, and
    # only the history mark it carries tells that it comes from a history this database lacks.
    server.batch([make_op("create", "ticket", f"t-after-restore-{i}", {
        "customer_id": first["id"], "subject": "Made after the restore", "status": "new", "priority": "low"})
        for i in range(3)])
    with client.replica() as r:
        r.writes.update("customer", second["id"], {"phone": "+44 20 7946 0000"})  # pending, offline

    with server.client("ada") as http:
        answer = http.get("/v1/changes", params={"cursor": stale})
    assert answer.status_code == 410 and "restored from an older copy" in answer.json()["error"]["message"]

    report = client.sync()
    assert report.ok, report.error
    with client.replica() as r:
        assert r.get("ticket", "t-after-backup") is None
        assert all(r.get("ticket", f"t-after-restore-{i}") is not None for i in range(3))
        assert r.get("customer", first["id"])["city"] == first["city"]
        assert r.outbox.counts() == {"pending": 0, "rejected": 0, "conflicts": 0}
    assert server.get_record("customers", second["id"])["phone"] == "+44 20 7946 0000"
    assert_replica_matches_server(client, server)
    with httpx.Client(base_url=server.url) as http:
        assert http.get("/health").status_code == 200
