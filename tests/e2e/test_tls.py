"""HTTPS end to end: the real client logs in and syncs against `crm-server serve --ssl-certfile`,
trusting our own CA from its config file, and refuses every certificate it should not trust with
one line (login and sync alike), never a traceback."""

from __future__ import annotations

import pytest
import trustme

from support.certs import tls_server_options, write_ca, write_server_cert
from support.client import ClientReplica, assert_replica_matches_server

pytestmark = pytest.mark.slow  # make test-slow: HTTPS servers and the real CLI in a subprocess


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def _logged_out(tmp_path, server, ca_bundle=None) -> ClientReplica:
    client = ClientReplica(tmp_path / "c", server, "alex")
    client.paths.credentials.unlink()
    if ca_bundle is not None:
        (client.data_dir / "config.toml").write_text(f'[sync]\nca_bundle = "{ca_bundle}"\n')
    return client


def _one_line(text: str) -> str:
    assert "Traceback" not in text, text
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    return lines[0]


def test_login_and_sync_over_tls_trusting_the_ca_named_in_the_config(server_factory, tmp_path, ca):
    files = write_server_cert(ca, tmp_path, "127.0.0.1", "localhost")
    srv = server_factory(**tls_server_options(ca, files))
    assert srv.url.startswith("https://127.0.0.1:")
    client = _logged_out(tmp_path, srv, write_ca(ca, tmp_path / "company-ca.pem"))

    done = client.cli("login", "--server", srv.url, "--token-stdin", input=srv.tokens["alex"] + "\n")
    assert done.returncode == 0, done.stderr
    done = client.cli("sync", "--once")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("synced: pushed 0, pulled ")
    assert_replica_matches_server(client, srv)


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("untrusted", "unable to get local issuer certificate"),
        ("expired", "certificate has expired"),
        ("wrong-host", "IP address mismatch"),
    ],
)
def test_a_certificate_that_cannot_be_trusted_is_refused_in_one_line(server_factory, tmp_path, ca, case, reason):
    signer = trustme.CA() if case == "untrusted" else ca
    hosts = ("crm.example.com",) if case == "wrong-host" else ("127.0.0.1",)
    files = write_server_cert(signer, tmp_path, *hosts, expired=case == "expired")
    srv = server_factory(**{**tls_server_options(signer, files), "verify": False})  # only its own start-up check
    bundle = write_ca(ca, tmp_path / "company-ca.pem")
    client = _logged_out(tmp_path, srv, bundle)

    done = client.cli("login", "--server", srv.url, "--token-stdin", input=srv.tokens["alex"] + "\n")
    line = _one_line(done.stderr)
    assert done.returncode == 3 and line.startswith("crm-tui: login failed: refused the TLS certificate of https://")
    assert reason in line, line
    assert not client.paths.credentials.exists()

    # Logged in earlier; the certificate changed since. Nothing is retried, nothing is offline.
    stored = ClientReplica(tmp_path / "stored", srv, "alex", ca_bundle=bundle)
    report = stored.sync()
    assert not report.ok and not report.offline and reason in report.error
    assert report.error.startswith("refused the TLS certificate of https://")
    if case == "untrusted":
        # Trusting only the public CAs, the same certificate is refused with a hint at ca_bundle.
        (stored.data_dir / "config.toml").write_text("")
        done = stored.cli("sync", "--once")
        line = _one_line(done.stderr)
        assert done.returncode == 1 and line.startswith("crm-tui: sync failed: refused the TLS certificate")
        assert reason in line and "ca_bundle" in line, line


def test_a_ca_bundle_that_is_missing_or_not_pem_is_a_config_error(tmp_path, server):
    client = _logged_out(tmp_path, server, tmp_path / "nowhere.pem")
    done = client.cli("status")
    assert done.returncode == 2 and "sync.ca_bundle" in _one_line(done.stderr) and "no such file" in done.stderr
    (tmp_path / "garbage.pem").write_text("not a certificate\n")
    (client.data_dir / "config.toml").write_text(f'[sync]\nca_bundle = "{tmp_path / "garbage.pem"}"\n')
    done = client.cli("status")
    assert done.returncode == 2 and "not a PEM file of CA certificates" in _one_line(done.stderr)


def test_https_to_a_plain_http_server_is_one_line_too(tmp_path, server):
    client = _logged_out(tmp_path, server)
    done = client.cli("login", "--server", server.url.replace("http://", "https://"), input=server.tokens["alex"] + "\n")
    assert done.returncode == 3 and "is it an https:// server?" in _one_line(done.stderr)
