"""``crm-server serve --upstream``: what a person gets when the gateway cannot start.

Each case is one line on stderr and a non-zero exit, before anything listens. (The gateway
working against a real BottleCRM is tests/bottlecrm/, run by ``make test-bottlecrm``.)
"""

from __future__ import annotations

import socket

from click.testing import CliRunner

from crm_server.cli import main


def _serve(tmp_path, *args: str, env: dict[str, str] | None = None):
    base = ["serve", "--db", str(tmp_path / "mirror.db"), "--port", "0"]
    result = CliRunner().invoke(main, [*base, *args], env={"CRM_SERVER_UPSTREAM_TOKEN": "", **(env or {})})
    return result.exit_code, result.output


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_upstream_and_its_url_go_together(tmp_path):
    code, out = _serve(tmp_path, "--upstream", "bottlecrm")
    assert code == 2 and "--upstream and --upstream-url go together" in out


def test_no_token_is_a_clear_error_and_the_token_is_never_an_option(tmp_path):
    code, out = _serve(tmp_path, "--upstream", "bottlecrm", "--upstream-url", "http://127.0.0.1:9")
    assert code == 1 and "no upstream token: set CRM_SERVER_UPSTREAM_TOKEN or give --upstream-token-file" in out
    code, out = _serve(tmp_path, "--upstream", "bottlecrm", "--upstream-url", "http://127.0.0.1:9", "--upstream-token", "x")
    assert code == 2 and "No such option" in out


def test_an_unreadable_token_file_is_named(tmp_path):
    code, out = _serve(tmp_path, "--upstream", "bottlecrm", "--upstream-url", "http://127.0.0.1:9",
                       "--upstream-token-file", str(tmp_path / "missing"))
    assert code == 1 and "cannot read the upstream token file" in out and "missing" in out


def test_an_unreachable_upstream_stops_the_start_with_one_line(tmp_path):
    url = f"http://127.0.0.1:{_closed_port()}"
    code, out = _serve(tmp_path, "--upstream", "bottlecrm", "--upstream-url", url,
                       env={"CRM_SERVER_UPSTREAM_TOKEN": "bcrm_pat_secret-value"})
    assert code == 1
    assert out.startswith(f"Error: cannot read BottleCRM at {url}") and out.count("\n") == 1
    assert "bcrm_pat_secret-value" not in out


def test_a_bad_upstream_url_or_territory_is_named(tmp_path):
    env = {"CRM_SERVER_UPSTREAM_TOKEN": "t"}
    code, out = _serve(tmp_path, "--upstream", "bottlecrm", "--upstream-url", "crm.example.com", env=env)
    assert code == 1 and "must start with http:// or https://" in out
    code, out = _serve(tmp_path, "--upstream", "bottlecrm", "--upstream-url", "http://x", "--territory", "no spaces", env=env)
    assert code == 1 and "is not a valid id" in out
