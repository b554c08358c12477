"""A replica holds one user's data and queued writes: another user's token is refused, by the
sync engine (before anything is pushed under the wrong name) and by `crm-tui login`."""

from crm_tui import credentials
from support.client import ClientReplica
from support.records import first_customer


def test_another_users_token_is_refused_and_nothing_is_pushed_as_them(server, tmp_path):
    sam = ClientReplica(tmp_path / "d", server, "sam")
    assert sam.sync().ok
    cid = first_customer(server, "dach", user="sam")["id"]
    before = server.get_record("customers", cid)["city"]
    with sam.replica() as r:
        r.writes.update("customer", cid, {"city": "Sam's edit"})
    credentials.save(sam.paths, credentials.Credentials(server.url, server.tokens["alex"]))
    alex = ClientReplica.__new__(ClientReplica)
    alex.__dict__.update(sam.__dict__, user="alex")
    report = alex.sync()
    assert not report.ok and "belongs to sam" in report.error
    assert server.get_record("customers", cid)["city"] == before
    with sam.replica() as r:
        assert r.outbox.counts()["pending"] == 1  # still sam's, still queued

    done = sam.cli("login", "--server", server.url, input=server.tokens["alex"] + "\n")
    assert done.returncode == 2 and "belongs to sam" in done.stderr
