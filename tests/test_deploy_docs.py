"""The deployment docs, held to the code: the README's two commands that run the server on
PostgreSQL really do (against a real PostgreSQL), deploy/haproxy.cfg is a valid HAProxy
configuration, and every crm-server command line in docs/deploy.md uses options that exist."""

from __future__ import annotations

import re
import shlex
import signal
import subprocess
import sys
import threading
from pathlib import Path

import click
import httpx

from support.balancer import CONFIG, haproxy_binary
from support.readme import README, ROOT

DEPLOY = (ROOT / "docs" / "deploy.md").read_text()


def code_lines(markdown: str) -> list[str]:
    """The lines of the fenced code blocks, continuation lines (``\\``) joined."""
    lines: list[str] = []
    for block in re.findall(r"```\n(.*?)```", markdown, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("  #", 1)[0].strip()
            if line and not line.startswith("#"):
                lines.append(line)
    return lines


def readme_postgres_commands() -> list[str]:
    section = README[README.index("### The server on PostgreSQL"):]
    return code_lines(section[:section.index("\n## ")])[:2]


def test_the_readme_runs_the_server_on_postgresql_in_two_commands(postgres):
    create, serve = readme_postgres_commands()
    assert create.startswith("createdb ") and serve.startswith("crm-server serve ")
    port = str(postgres.port)
    with postgres.connect() as conn:
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'crm'").fetchone():
            conn.execute("CREATE ROLE crm LOGIN CREATEDB")
        conn.execute("DROP DATABASE IF EXISTS crm WITH (FORCE)")
    # As written, only pointed at the test cluster's port (and a free port for the server).
    subprocess.run([*shlex.split(create), "--port", port], check=True, timeout=60, capture_output=True)
    args = shlex.split(serve.replace("@127.0.0.1/", f"@127.0.0.1:{port}/"))
    url = next(a for a in args if a.startswith("postgresql://"))
    proc = subprocess.Popen([sys.executable, "-m", "crm_server.cli", *args[1:], "--port", "0"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first: list[str] = []
        reader = threading.Thread(target=lambda: first.append(proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(60)
        assert first and first[0].startswith("listening on "), proc.stderr.read() if proc.poll() is not None else first
        base = first[0].split()[-1]
        token = subprocess.run([sys.executable, "-m", "crm_server.cli", "user", "add", "ada", "--role", "admin",
                                "--db", url], cwd=ROOT, check=True, capture_output=True, text=True,
                               timeout=60).stdout.strip()
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30) as http:
            assert http.get("/v1/me").json()["role"] == "admin"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
        with postgres.connect() as conn:
            conn.execute("DROP DATABASE IF EXISTS crm WITH (FORCE)")


def test_the_shipped_haproxy_configuration_is_valid():
    done = subprocess.run([haproxy_binary(), "-c", "-f", str(CONFIG)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_crm_server_command_in_the_deploy_doc_uses_options_that_exist():
    from crm_server.cli import main

    commands = [line for line in code_lines(DEPLOY) if line.startswith("crm-server ")]
    assert len(commands) >= 4
    for line in commands:
        words = shlex.split(line)
        command: click.Command = main
        for word in words[1:]:
            if isinstance(command, click.Group) and word in command.commands:
                command = command.commands[word]
        assert not isinstance(command, click.Group), line
        known = {flag for p in command.params for flag in p.opts}
        for word in words:
            if word.startswith("--"):
                assert word.split("=", 1)[0] in known, f"{word} in {line!r}"


def test_the_deploy_doc_is_linked_from_the_readme():
    assert "docs/deploy.md" in README and Path(ROOT / "docs" / "deploy.md").exists()
