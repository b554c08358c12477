"""The `crm-tui` command: the app, plus login, sync, status and demo for terminals and scripts.

Every failure ends as one line on stderr and a non-zero exit code; tracebacks are for bugs.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import click

from cache.errors import ReplicaError, ReplicaKeyError
from crm_tui import __version__, credentials
from crm_tui.config import ConfigError, Settings, load_settings
from crm_tui.paths import Paths
from crm_tui.progress import terminal_progress

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NOT_CONFIGURED = 3
EXIT_OFFLINE = 4
EXIT_LOCKED = 5


def open_failure(exc: Exception) -> None:
    """End the command for a replica that cannot be opened, with the exit code for why."""
    from crm_tui.replicas import ReplicaInUse, UnlockError

    if isinstance(exc, ReplicaInUse):
        fail(str(exc), EXIT_LOCKED)
    fail(str(exc), EXIT_NOT_CONFIGURED if isinstance(exc, UnlockError | ReplicaKeyError) else EXIT_FAILED)


def unlock_replica(obj: Context) -> None:
    """Get the replica's key now, asking for a passphrase if this is a terminal, so nothing later
    (a worker, the daemon loop) has to ask."""
    from crm_tui.replicas import UnlockError, replica_key_for

    try:
        replica_key_for(obj.paths, obj.settings, interactive=sys.stdin.isatty())
    except (UnlockError, ReplicaError) as exc:
        open_failure(exc)


class Context:
    def __init__(self, data_dir: str | None, cache_dir: str | None, config: str | None):
        self.paths = Paths.resolve(data_dir, cache_dir)
        self.config_file = Path(config) if config else None
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            try:
                self._settings = load_settings(self.config_file or self.paths.config_file)
            except ConfigError as exc:
                fail(str(exc), EXIT_USAGE)
        return self._settings  # type: ignore[return-value]


def fail(message: str, code: int = EXIT_FAILED) -> None:
    click.echo(f"crm-tui: {message}", err=True)
    sys.exit(code)


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--data-dir", envvar="CRM_TUI_DATA_DIR", type=click.Path(file_okay=False),
              help="where the replica lives (default: the user data dir); env CRM_TUI_DATA_DIR")
@click.option("--cache-dir", envvar="CRM_TUI_CACHE_DIR", type=click.Path(file_okay=False),
              help="where the hot cache lives (default: inside --data-dir, or the user cache dir)")
@click.option("--config", envvar="CRM_TUI_CONFIG", type=click.Path(dir_okay=False),
              help="config file (default: <config dir>/config.toml); env CRM_TUI_CONFIG")
@click.version_option(__version__, prog_name="crm-tui")
@click.pass_context
def cli(ctx: click.Context, data_dir: str | None, cache_dir: str | None, config: str | None) -> None:
    """A terminal CRM that answers from a local replica. With no command, opens the app."""
    ctx.obj = Context(data_dir, cache_dir, config)
    ctx.obj.settings  # a broken config file is reported before anything runs  # noqa: B018
    if ctx.invoked_subcommand is None:
        ctx.invoke(app_command)


@cli.command("app")
@click.pass_obj
def app_command(obj: Context) -> None:
    """Open the app (the default command)."""
    from crm_tui.launch import run_app

    code = run_app(obj.paths, obj.settings, config_file=obj.config_file)
    sys.exit(code)


@cli.command()
@click.option("--server", required=True, help="the server URL, e.g. http://127.0.0.1:8080")
@click.option("--token-stdin", is_flag=True, help="read the token from standard input")
@click.pass_obj
def login(obj: Context, server: str, token_stdin: bool) -> None:
    """Store the server and API token for this replica (token from CRM_TUI_TOKEN, stdin or a prompt)."""
    from sync.client import CrmClient
    from sync.errors import SyncError

    if token_stdin:
        token = sys.stdin.readline().strip()
    elif os.environ.get("CRM_TUI_TOKEN"):
        token = os.environ["CRM_TUI_TOKEN"].strip()
    elif sys.stdin.isatty():
        token = getpass.getpass("API token: ").strip()
    else:
        token = sys.stdin.readline().strip()
    if not token:
        fail("no token given (use CRM_TUI_TOKEN, --token-stdin, or type it at the prompt)", EXIT_USAGE)
    if not server.startswith(("http://", "https://")):
        fail(f"{server!r} is not an http:// or https:// URL", EXIT_USAGE)
    try:
        with CrmClient(server, token, obj.settings.sync.model_copy(update={"max_retries": 1})) as client:
            me = client.me()
    except SyncError as exc:
        fail(f"login failed: {exc}", EXIT_NOT_CONFIGURED)
    owner = _replica_owner(obj)
    if owner and owner.get("id") != me.get("id"):
        fail(f"this replica ({obj.paths.data_dir}) belongs to {owner.get('name') or owner.get('id')}; "
             "log in with another --data-dir for another account", EXIT_USAGE)
    from crm_tui.keyring_store import KeyringUnavailable

    try:
        where = credentials.save(obj.paths, credentials.Credentials(server=server.rstrip("/"), token=token),
                                 store=obj.settings.security.token_store)
    except KeyringUnavailable as exc:
        fail(f"cannot store the token: {exc}; set security.token_store = \"file\" to keep it in a 0600 file, "
             "or give it to each command in CRM_TUI_TOKEN", EXIT_NOT_CONFIGURED)
    click.echo(f"logged in to {server} as {me.get('name')} ({me.get('role')}); token stored in {where}")


def _replica_owner(obj: Context) -> dict | None:
    if not obj.paths.replica.exists():
        return None
    from crm_tui.replicas import UnlockError, open_replica

    unlock_replica(obj)
    try:
        with open_replica(obj.paths, obj.settings) as replica:
            me = replica.get_meta("me")
    except (UnlockError, ReplicaError) as exc:
        open_failure(exc)
    return me if isinstance(me, dict) else None


@cli.command()
@click.pass_obj
def logout(obj: Context) -> None:
    """Forget the stored token for this replica (the replica and its outbox stay)."""
    if credentials.forget(obj.paths):
        click.echo("logged out")
    else:
        click.echo("not logged in")


@cli.command()
@click.option("--once", "mode", flag_value="once", help="sync once and exit (0 on success)")
@click.option("--daemon", "mode", flag_value="daemon", help="keep syncing until SIGTERM/SIGINT")
@click.option("--interval", type=click.FloatRange(1, 86400), help="daemon: seconds between syncs")
@click.option("--quiet", "-q", is_flag=True, help="no progress bar")
@click.pass_obj
def sync(obj: Context, mode: str | None, interval: float | None, quiet: bool) -> None:
    """Sync the replica with the server: push pending writes, then pull changes."""
    from crm_tui.replicas import UnlockError
    from sync.errors import LockHeld, NotConfigured
    from sync.runner import run_daemon, sync_once

    if mode is None:
        fail("say --once or --daemon", EXIT_USAGE)
    obj.paths.ensure()
    settings = obj.settings
    unlock_replica(obj)
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if mode == "daemon":
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
        try:
            code = run_daemon(obj.paths, settings, stop, interval)
        except LockHeld as exc:
            fail(str(exc), EXIT_LOCKED)
        except NotConfigured as exc:
            fail(str(exc), EXIT_NOT_CONFIGURED)
        except (UnlockError, ReplicaError) as exc:
            open_failure(exc)
        sys.exit(code)
    try:
        report = sync_once(obj.paths, settings, terminal_progress(sys.stderr.isatty() and not quiet), stop)
    except NotConfigured as exc:
        fail(str(exc), EXIT_NOT_CONFIGURED)
    except (UnlockError, ReplicaError) as exc:
        open_failure(exc)
    if report.by_daemon:
        click.echo("a sync daemon holds this replica; asked it to sync now")
        return
    for message in report.messages:
        click.echo(message, err=True)
    if not report.ok:
        fail(report.summary, EXIT_OFFLINE if report.offline else EXIT_FAILED)
    click.echo(report.summary)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@click.pass_obj
def status(obj: Context, as_json: bool) -> None:
    """What the replica holds and how its sync stands."""
    from crm_tui.status import collect_status, format_status

    if obj.paths.replica.exists():
        from crm_tui.replicas import UnlockError, replica_key_for

        # A passphrase is asked for in a terminal; a replica that cannot be opened is reported below.
        with contextlib.suppress(UnlockError, ReplicaError):
            replica_key_for(obj.paths, obj.settings, interactive=sys.stdin.isatty())
    info = collect_status(obj.paths, obj.settings)
    if as_json:
        click.echo(json.dumps(info, indent=2, sort_keys=True))
    else:
        click.echo(format_status(info))


@cli.command()
@click.pass_obj
def encrypt(obj: Context) -> None:
    """Encrypt an existing plaintext replica in place, keeping pending edits."""
    from crm_tui.encrypt import encrypt_replica
    from crm_tui.replicas import ReplicaInUse, UnlockError
    from sync.errors import LockHeld

    try:
        result = encrypt_replica(obj.paths, obj.settings, interactive=sys.stdin.isatty())
    except (LockHeld, ReplicaInUse) as exc:
        fail(f"{exc}; stop it (the app, `crm-tui sync --daemon`) and run `crm-tui encrypt` again", EXIT_LOCKED)
    except (UnlockError, ReplicaError) as exc:
        open_failure(exc)
    if result.already:
        click.echo(f"the replica at {obj.paths.replica} is already encrypted")
        return
    where = "the OS keyring" if result.key_store == "keyring" else "your passphrase"
    click.echo(f"encrypted the replica at {obj.paths.replica} in place: {result.records:,} records, "
               f"{result.pending:,} pending edits kept; its key is protected by {where}")


@cli.command()
@click.option("--customers", type=click.IntRange(10, 2_000_000), default=20_000, show_default=True,
              help="how many customers to seed")
@click.option("--dir", "work_dir", type=click.Path(file_okay=False), help="keep the demo's files here")
@click.pass_obj
def demo(obj: Context, customers: int, work_dir: str | None) -> None:
    """Start a seeded server on a free loopback port, bootstrap a replica, open the app."""
    from crm_tui.demo import run_demo

    sys.exit(run_demo(customers=customers, work_dir=Path(work_dir) if work_dir else None))


def main() -> None:
    cli(prog_name="crm-tui")


if __name__ == "__main__":
    main()
