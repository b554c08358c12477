"""Encryption at rest, file by file: what a stranger holding the laptop can read.

A real SQLCipher replica with its WAL and a real diskcache directory; the raw bytes on disk are
searched for a seeded customer's name, email and a note typed by the user. The plaintext runs
are the controls: the same search finds everything there, so the encrypted runs can fail.
"""

from __future__ import annotations

import csv
import os
import stat

import pytest

from cache.errors import ReplicaKeyError, ReplicaNotEncrypted
from cache.exports import SPOOL_DIR, ExportError, export_file
from cache.hot import HotCache
from cache.replica import Replica
from crm_tui.core.domain import CUSTOMER
from support.keys import TEST_KEY, raw_bytes_under

NAME, EMAIL, NOTE = "Zebulon Quartermaine", "zebulon.quartermaine@example.org", "Prefers calls after 4pm, Quarterly"
SECRETS = (NAME.encode(), EMAIL.encode(), NOTE.encode(), b"Quartermaine", b"Quixotetown")


def customer_page(cid: str, name: str, email: str) -> dict:
    rec = dict.fromkeys(CUSTOMER.columns)
    rec.update(id=cid, name=name, email=email, territory="t1", tags=[], version=1)
    return {"cursor": "c1", "has_more": False, "phase": "feed", "segments": [
        {"op": "upsert", "entity": "customer", "columns": list(CUSTOMER.columns), "rows": [list(rec.values())]}]}


def seeded(tmp_path, key):
    """A replica holding a customer, a pending note and a built 360 view, its WAL not yet folded in."""
    replica = Replica(tmp_path / "replica.db", tmp_path / "hot", key=key)
    replica.set_meta("me", {"id": "u1", "name": "Ada", "role": "agent"})
    replica.server_apply.apply_page(customer_page("c1", NAME, EMAIL))
    replica.writes.create("activity", {"customer_id": "c1", "kind": "note", "body": NOTE,
                                       "occurred_at": "2026-11-25T10:00:00Z"})
    assert replica.reads.customer_360("c1") is not None  # stored in the hot cache
    replica.saves.submit("update", "customer", "c1", {"city": "Quixotetown"})  # a save queued by the UI
    return replica


@pytest.mark.parametrize("encrypted", [True, False], ids=["encrypted", "plaintext-control"])
def test_no_file_on_disk_holds_a_customers_name_email_or_note(tmp_path, encrypted):
    replica = seeded(tmp_path, TEST_KEY if encrypted else None)
    try:
        wal = tmp_path / "replica.db-wal"
        assert wal.stat().st_size > 0  # the changes are (also) in the WAL right now
        disk = {"replica": raw_bytes_under(tmp_path / "replica.db"), "wal": raw_bytes_under(wal),
                "hot cache": raw_bytes_under(tmp_path / "hot"),
                "save journal": b"".join(raw_bytes_under(f) for f in tmp_path.glob("replica-saves.db*"))}
        found = {where: [s.decode() for s in SECRETS if s in data] for where, data in disk.items()}
        if encrypted:
            assert found == {"replica": [], "wal": [], "hot cache": [], "save journal": []}
            # nor does the hot cache's index name a customer
            assert b"c360:c1" not in disk["hot cache"] and b"c1" not in raw_bytes_under(tmp_path / "hot" / "cache.db")
        else:
            # the control: plaintext is found where it is
            assert found["wal"] and found["hot cache"] and found["save journal"]
    finally:
        replica.close()


def test_the_replica_reads_back_after_reopening_with_its_key(tmp_path):
    seeded(tmp_path, TEST_KEY).close()
    with Replica(tmp_path / "replica.db", tmp_path / "hot", key=TEST_KEY) as again:
        assert again.get("customer", "c1")["email"] == EMAIL
        assert again.outbox.counts()["pending"] == 1
        assert again.reads.customer_360("c1") is not None and again.hot.hits == 1
        assert [h.title for h in again.search("quartermaine").hits][:1] == [NAME]


def test_a_wrong_key_or_no_key_is_refused_with_a_clear_message(tmp_path, capfd):
    seeded(tmp_path, TEST_KEY).close()
    with pytest.raises(ReplicaKeyError) as wrong:
        Replica(tmp_path / "replica.db", tmp_path / "hot", key=bytes(32))
    assert str(wrong.value) == (f"the key does not open the replica at {tmp_path / 'replica.db'} "
                                "(a wrong key or passphrase, or a damaged file)")
    with pytest.raises(ReplicaKeyError) as missing:
        Replica(tmp_path / "replica.db", tmp_path / "hot")
    assert "is encrypted and no key was given" in str(missing.value)
    assert "file is not a database" not in str(wrong.value) + str(missing.value)
    _out, err = capfd.readouterr()
    assert "hmac" not in err.lower() and "ERROR" not in err  # SQLCipher's own diagnostics stay quiet


def test_a_key_for_a_plaintext_replica_says_to_run_encrypt(tmp_path):
    seeded(tmp_path, None).close()
    with pytest.raises(ReplicaNotEncrypted, match="run `crm-tui encrypt`"):
        Replica(tmp_path / "replica.db", tmp_path / "hot", key=TEST_KEY)


def test_hot_cache_entries_sealed_under_another_key_are_misses(tmp_path):
    first = HotCache(tmp_path / "hot", secret=TEST_KEY)
    assert first.get_or_build("c360:c1", 1, lambda: {"name": NAME}) == {"name": NAME}
    assert first.get_fresh("c360:c1", 1) == {"name": NAME}
    first.close()
    other = HotCache(tmp_path / "hot", secret=bytes(32))
    assert other.get_fresh("c360:c1", 1) is None
    assert other.get_or_build("c360:c1", 1, lambda: {"name": "rebuilt"}) == {"name": "rebuilt"}
    other.close()


def test_an_export_in_progress_is_sealed_and_lands_only_where_asked(tmp_path):
    dest = tmp_path / "out" / "customers.csv"
    dest.parent.mkdir()
    rows = [[f"c{i}", NAME, EMAIL] for i in range(20_000)]  # several sealed chunks
    with export_file(tmp_path, dest) as out:
        csv.writer(out).writerows(rows)
        out.flush()
        in_progress = raw_bytes_under(tmp_path / SPOOL_DIR)
        assert len(in_progress) > 256 * 1024 and EMAIL.encode() not in in_progress
        assert not dest.exists()
    with dest.open(newline="") as fh:
        assert list(csv.reader(fh)) == rows
    assert stat.S_IMODE(os.stat(dest).st_mode) == 0o600
    assert os.listdir(tmp_path / SPOOL_DIR) == [] and os.listdir(dest.parent) == ["customers.csv"]


def test_a_failed_export_leaves_nothing_behind_and_refuses_to_overwrite(tmp_path):
    dest = tmp_path / "customers.csv"
    with pytest.raises(RuntimeError), export_file(tmp_path, dest) as out:
        out.write(f"{NAME},{EMAIL}\n" * 1000)
        raise RuntimeError("the producer failed")
    assert not dest.exists() and os.listdir(tmp_path / SPOOL_DIR) == []
    dest.write_text("keep me")
    with pytest.raises(ExportError, match="exists"), export_file(tmp_path, dest):
        pass
    assert dest.read_text() == "keep me"
