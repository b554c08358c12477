"""The crm-server command line (serve itself is exercised by every loopback fixture)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import trustme
from click.testing import CliRunner

from crm_server.auth import token_hash
from crm_server.cli import main
from crm_server.store import open_store
from crm_tui.core.domain import ENTITIES
from support.certs import write_server_cert


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_seed_users_grants_tokens_and_compaction(tmp_path):
    db = str(tmp_path / "cli.db")
    code, out, _ = _run("seed", "--db", db, "--customers", "40", "--now", "2026-11-25T09:00:00Z")
    assert code == 0 and "seeded 40 customers" in out

    code, token, err = _run("user", "add", "Rita Rep", "--role", "sales", "--territory", "dach", "--db", db)
    assert code == 0 and "not shown again" in err
    token = token.strip()
    store = open_store(db)
    try:
        with store.read() as tx:
            assert tx.user_id_for_token(token_hash(token)) == "rita-rep", "only the token's hash is stored"
    finally:
        store.close()

    assert _run("user", "grant", "Rita Rep", "--territory", "france", "--db", db)[1].strip() == "rita-rep: territories dach, france"
    assert _run("user", "revoke", "rita-rep", "--territory", "dach", "--db", db)[1].strip() == "rita-rep: territories france"
    code, fresh, _ = _run("user", "token", "rita-rep", "--revoke-others", "--db", db)
    assert code == 0 and fresh.strip() != token
    store = open_store(db)
    try:
        with store.read() as tx:
            assert tx.user_id_for_token(token_hash(token)) is None
            assert tx.user_id_for_token(token_hash(fresh.strip())) == "rita-rep"
            user = tx.get(ENTITIES["user"], "rita-rep")
            assert user.record["territories"] == ["france"]
    finally:
        store.close()
    assert "rita-rep\tsales\tRita Rep\tfrance" in _run("user", "list", "--db", db)[1]

    code, out, _ = _run("compact", "--db", db, "--before-seq", "5")
    assert code == 0 and "purged" in out

    # --keep-days counts whole seconds of commit time: wait until the clock is past the second of
    # the last write (the compact above), so every commit so far is older than "0 days".
    last_write = int(time.time())
    while int(time.time()) <= last_write:
        time.sleep(0.01)
    code, out, _ = _run("compact", "--db", db, "--keep-days", "0")
    store = open_store(db)
    try:
        with store.read() as tx:
            info = tx.info()
    finally:
        store.close()
    assert code == 0 and info.horizon <= info.head


def test_errors_are_one_line_and_a_nonzero_exit(tmp_path):
    db = str(tmp_path / "err.db")
    _run("seed", "--db", db, "--customers", "0")
    for args in (
        ("user", "add", "X", "--role", "sales", "--territory", "atlantis", "--db", db),
        ("user", "grant", "nobody", "--territory", "dach", "--db", db),
        ("user", "revoke", "u-admin", "--territory", "dach", "--db", db),
        ("seed", "--db", db, "--customers", "1"),
        ("seed", "--db", db, "--now", "yesterday"),
    ):
        code, _, err = _run(*args)
        assert code != 0, args
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("Error: "), (args, err)
    code, _, err = _run("compact", "--db", db)
    assert code == 2 and "exactly one of" in err


def test_serve_reports_an_unusable_database(tmp_path):
    bad = tmp_path / "not-a-db.db"
    bad.write_bytes(b"this is not sqlite" * 100)
    proc = subprocess.run([sys.executable, "-m", "crm_server.cli", "serve", "--db", str(bad), "--port", "0"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines()[-1].startswith("Error: ")


def test_an_unknown_territory_is_named_with_the_ones_that_exist(tmp_path):
    db = str(tmp_path / "terr.db")
    _run("seed", "--db", db, "--customers", "0")
    for args in (("user", "add", "X", "--role", "sales", "--territory", "narnia", "--db", db),
                 ("user", "grant", "u-admin", "--territory", "narnia", "--db", db)):
        code, _, err = _run(*args)
        assert code != 0
        [line] = [x for x in err.splitlines() if x.strip()]
        assert "narnia" in line and "dach" in line and "known territories" in line, line


def _serve(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "crm_server.cli", "serve", *args], capture_output=True, text=True,
                          timeout=60)


def _one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "Traceback" not in stderr, stderr
    return lines[0]


def test_serve_says_in_one_line_what_is_wrong_with_its_tls_files_or_its_port(tmp_path):
    db = str(tmp_path / "serve.db")
    code, _, err = _run("serve", "--db", db, "--port", "0", "--ssl-certfile", str(tmp_path / "missing.crt"))
    assert code == 2 and "does not exist" in _one_error_line(err)
    (tmp_path / "bad.crt").write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    code, _, err = _run("serve", "--db", db, "--port", "0", "--ssl-certfile", str(tmp_path / "bad.crt"))
    assert code == 1 and "cannot use the TLS certificate" in _one_error_line(err)
    ca = trustme.CA()
    files = write_server_cert(ca, tmp_path, "127.0.0.1")
    other = write_server_cert(ca, tmp_path, "127.0.0.1", name="other")
    code, _, err = _run("serve", "--db", db, "--port", "0", "--ssl-certfile", str(files.cert), "--ssl-keyfile", str(other.key))
    assert code == 1 and "cannot use the TLS certificate and key" in _one_error_line(err)
    code, _, err = _run("serve", "--db", db, "--port", "0", "--ssl-keyfile", str(files.key))
    assert code == 1 and "needs --ssl-certfile" in _one_error_line(err)

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        done = _serve("--db", db, "--port", str(taken.getsockname()[1]))
    assert done.returncode == 1 and "address already in use" in _one_error_line(done.stderr)


def test_an_unreachable_postgresql_is_one_line_without_the_password():
    code, _, err = _run("user", "list", "--db", "postgresql://crm:s3cret@127.0.0.1:1/crm")
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 1 and len(lines) == 1 and lines[0].startswith("Error: cannot use database")
    assert "s3cret" not in err


def test_the_cli_works_on_postgresql(postgres_url):
    code, out, _ = _run("seed", "--db", postgres_url, "--customers", "30", "--now", "2026-11-25T09:00:00Z")
    assert code == 0 and "seeded 30 customers" in out
    code, token, _ = _run("user", "add", "Rita Rep", "--role", "sales", "--territory", "dach", "--db", postgres_url)
    assert code == 0
    assert _run("user", "grant", "rita-rep", "--territory", "france", "--db", postgres_url)[1].strip() == (
        "rita-rep: territories dach, france")
    assert "rita-rep\tsales\tRita Rep\tdach,france" in _run("user", "list", "--db", postgres_url)[1]
    code, out, _ = _run("compact", "--db", postgres_url, "--keep-days", "0")
    assert code == 0 and "purged" in out
    store = open_store(postgres_url)
    try:
        with store.read() as tx:
            assert tx.user_id_for_token(token_hash(token.strip())) == "rita-rep"
    finally:
        store.close()
