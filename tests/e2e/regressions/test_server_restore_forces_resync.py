import shutil
import sqlite3

from support.client import ClientReplica, assert_replica_matches_server
from support.records import admin_update


def test_a_cursor_from_before_a_restore_gets_a_resync_and_nothing_is_skipped(server, tmp_path):
    """The server is restored from a backup (same epoch and secret, lower seq) and then numbers
    new changes with the sequence numbers the lost ones had. The cursor's commit fingerprint no
    longer matches: 410, a replacement snapshot, and the replica equals the restored server."""
    alex = ClientReplica(tmp_path / "alex", server, "alex")
    assert alex.sync().ok
    backup = tmp_path / "backup.db"
    src, dst = sqlite3.connect(server.db_path), sqlite3.connect(backup)
    src.backup(dst)
    src.close()
    dst.close()
    cids = [c["id"] for c in server.client("ada").get("/v1/customers", params={"limit": 10}).json()["items"]]
    for i, cid in enumerate(cids[:5]):
        admin_update(server, "customer", cid, {"city": f"Lost-{i}"})
    assert alex.sync().ok                       # client cursor now past the backup's seq
    server.stop()
    for suffix in ("", "-wal", "-shm"):
        p = type(server.db_path)(str(server.db_path) + suffix)
        if p.exists():
            p.unlink()
    shutil.copy(backup, server.db_path)
    server.start()                             # restored: same epoch/secret, lower seq
    for i, cid in enumerate(cids[5:10]):
        admin_update(server, "customer", cid, {"city": f"After-restore-{i}"})
    rep = alex.sync(url=server.url)
    assert rep.ok, rep.error
    alex.url = server.url
    assert_replica_matches_server(alex, server)
