"""The `crm-tui` command: the app, plus login, sync, status and demo for terminals and scripts.

Every failure ends as one line on stderr and a non-zero exit code (the README's table); details,
tracebacks included, go to the log file (``Paths.log_file``), never to the terminal.
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
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import click

from cache.errors import ReplicaError, ReplicaKeyError
from crm_tui import __version__, credentials
from crm_tui.config import ConfigError, Settings, load_settings
from crm_tui.core.syncstate import EXIT_WIPED, SyncEvent, SyncReport
from crm_tui.logs import setup_logging, to_log_file_only
from crm_tui.paths import DataDirError, Paths
from crm_tui.progress import terminal_progress

log = logging.getLogger("crm_tui.cli")

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NOT_CONFIGURED = 3
EXIT_OFFLINE = 4
EXIT_LOCKED = 5


def open_failure(exc: Exception) -> NoReturn:
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


def exit_code(report: SyncReport) -> int:
    """The exit code a sync run's outcome gets (the README's table)."""
    if report.ok:
        return 0
    if report.revoked:
        return EXIT_WIPED
    if report.refused:
        return EXIT_NOT_CONFIGURED
    if report.offline:
        return EXIT_OFFLINE
    if report.busy:
        return EXIT_LOCKED
    return EXIT_FAILED


class Context:
    def __init__(self, data_dir: str | None, cache_dir: str | None, config: str | None):
        self.paths = Paths.resolve(data_dir, cache_dir)
        self.config_file = Path(config) if config else None
        self._settings: Settings | None = None
        if self.config_file is not None and not self.config_file.is_file():
            # A named config file that is not there is a typo to report, not defaults to use.
            fail(f"config file {self.config_file} does not exist", EXIT_USAGE)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            try:
                self._settings = load_settings(self.config_file or self.paths.config_file)
            except ConfigError as exc:
                fail(str(exc), EXIT_USAGE)
        return self._settings


def fail(message: str, code: int = EXIT_FAILED, *, keep_in_log: bool = True) -> NoReturn:
    """The one line a failure is on stderr, also kept in the log file (with the exit code) unless
    ``keep_in_log`` is false: a command that only reads, on a data dir that does not exist, must
    not create one (with a log directory in it) to say so."""
    if keep_in_log:
        to_log_file_only(log, logging.WARNING, f"{message} (exit {code})")
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
    settings = ctx.obj.settings  # a broken config file is reported before anything runs
    setup_logging(ctx.obj.paths.log_file, settings.log_level)
    if ctx.invoked_subcommand is None:
        ctx.invoke(app_command)


@cli.command("app")
@click.pass_obj
def app_command(obj: Context) -> None:
    """Open the app (the default command)."""
    from crm_tui.launch import run_app

    _ensure(obj.paths)
    code = run_app(obj.paths, obj.settings, config_file=obj.config_file)
    sys.exit(code)


@cli.command()
@click.option("--server", help="the server URL, e.g. http://127.0.0.1:8080 (not with --renew)")
@click.option("--token-stdin", is_flag=True, help="read the token from standard input")
@click.option("--renew", is_flag=True, help="renew the stored token now (nothing to type); sync does it by itself "
                                            "when two thirds of the token's lifetime are gone")
@click.pass_obj
def login(obj: Context, server: str | None, token_stdin: bool, renew: bool) -> None:
    """Store the server and API token for this replica (token from CRM_TUI_TOKEN, stdin or a prompt)."""
    from crm_tui.device import device_id, device_name
    from crm_tui.wipe import clear_marker
    from sync.client import CrmClient
    from sync.errors import AuthError, CertificateRefused, DeviceRevoked, ServerUnavailable, SyncError

    if renew:
        if server or token_stdin:
            fail("--renew renews the stored token: give it alone", EXIT_USAGE)
        _renew(obj)
        return
    if not server:
        fail("give the server's URL: crm-tui login --server URL", EXIT_USAGE)
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
        clear_marker(obj.paths)  # a device wiped earlier starts afresh, with a new device id
    except OSError as exc:
        fail(f"cannot use {obj.paths.data_dir}: {exc.strerror or exc}", EXIT_USAGE)
    device = device_id(obj.paths)
    try:
        with CrmClient(server, token, obj.settings.sync.model_copy(update={"max_retries": 1}),
                       device=(device, device_name()) if device else None) as client:
            me = client.me()
    except DeviceRevoked:
        _wiped(obj.paths)
    except (AuthError, CertificateRefused) as exc:  # the server, or its certificate, refused
        fail(f"login failed: {exc}", EXIT_NOT_CONFIGURED)
    except ServerUnavailable as exc:
        fail(f"login failed: the server cannot be reached: {exc}", EXIT_OFFLINE)
    except SyncError as exc:
        fail(f"login failed: {exc}", EXIT_FAILED)
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
    except OSError as exc:
        fail(f"cannot store the login in {obj.paths.config_dir}: {exc.strerror or exc}", EXIT_USAGE)
    expires = (me.get("token") or {}).get("expires_at") if isinstance(me.get("token"), dict) else None
    click.echo(f"logged in to {server} as {me.get('name')} ({me.get('role')}); token stored in {where}"
               + (f"; it expires {expires} and is renewed before then" if expires else ""))


def _wiped(paths: Paths) -> None:
    """The server said this device is revoked: delete its data, say so, exit 6."""
    from crm_tui.wipe import wipe_device, wipe_message

    fail(wipe_message(paths, wipe_device(paths)), EXIT_WIPED)


def _renew(obj: Context) -> None:
    from crm_tui.device import device_id, device_name
    from crm_tui.keyring_store import KeyringUnavailable
    from sync.client import CrmClient
    from sync.errors import AuthError, CertificateRefused, DeviceRevoked, ServerUnavailable, SyncError

    try:
        creds = credentials.load(obj.paths)
    except credentials.TokenUnavailable as exc:
        fail(str(exc), EXIT_NOT_CONFIGURED)
    if creds is None:
        fail("not logged in: run `crm-tui login --server URL` first", EXIT_NOT_CONFIGURED)
    if creds.store == "env":
        fail("the token comes from CRM_TUI_TOKEN: it cannot be renewed in place; ask an admin for a new one",
             EXIT_USAGE)
    device = device_id(obj.paths)
    try:
        with CrmClient(creds.server, creds.token, obj.settings.sync.model_copy(update={"max_retries": 1}),
                       device=(device, device_name()) if device else None) as client:
            renewed = client.renew_token()
    except DeviceRevoked:
        _wiped(obj.paths)
    except (AuthError, CertificateRefused) as exc:
        fail(f"renewal failed: {exc}", EXIT_NOT_CONFIGURED)
    except ServerUnavailable as exc:
        fail(f"renewal failed: the server cannot be reached: {exc}", EXIT_OFFLINE)
    except SyncError as exc:
        fail(f"renewal failed: {exc}", EXIT_FAILED)
    try:
        where = credentials.save(obj.paths, credentials.Credentials(server=creds.server, token=renewed["token"]))
    except (KeyringUnavailable, OSError) as exc:
        fail(f"the token was renewed but the new one could not be stored ({exc}); the old one works for another "
             "hour", EXIT_FAILED)
    expires = renewed.get("expires_at")
    click.echo(f"renewed the API token; the new one {'expires ' + expires if expires else 'never expires'} and is "
               f"stored in {where}")


def _replica_owner(obj: Context) -> dict[str, Any] | None:
    if not obj.paths.replica.exists():
        return None
    from crm_tui.replicas import UnlockError, open_replica

    unlock_replica(obj)
    try:
        with open_replica(obj.paths, obj.settings, read_only=True) as replica:
            return replica.reads.me()
    except (UnlockError, ReplicaError) as exc:
        open_failure(exc)


@cli.command()
@click.pass_obj
def logout(obj: Context) -> None:
    """Forget the stored token for this replica (the replica and its outbox stay)."""
    if credentials.forget(obj.paths):
        click.echo("logged out")
    else:
        click.echo("not logged in")


@cli.command()
@click.option("--once", is_flag=True, help="sync once and exit (0 on success)")
@click.option("--daemon", is_flag=True, help="keep syncing until SIGTERM/SIGINT")
@click.option("--interval", type=click.FloatRange(1, 86400), help="daemon: seconds between syncs")
@click.option("--quiet", "-q", is_flag=True, help="no progress bar")
@click.pass_obj
def sync(obj: Context, once: bool, daemon: bool, interval: float | None, quiet: bool) -> None:
    """Sync the replica with the server: push pending writes, then pull changes."""
    from crm_tui.replicas import UnlockError
    from sync.errors import DeviceWiped, LockHeld, NotConfigured
    from sync.runner import run_daemon, sync_once

    if once == daemon:
        fail("say either --once or --daemon", EXIT_USAGE)
    if once and interval is not None:
        fail("--interval is for --daemon", EXIT_USAGE)
    _ensure(obj.paths)
    settings = obj.settings
    unlock_replica(obj)
    stop, wake = threading.Event(), threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        stop.set()
        wake.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if daemon:
        setup_logging(obj.paths.log_file, settings.log_level, stderr=True)  # and the journal
        signal.signal(signal.SIGUSR1, lambda _signum, _frame: wake.set())  # "sync now"
        try:
            code = run_daemon(obj.paths, settings, stop, interval, wake=wake)
        except DeviceWiped as exc:
            fail(str(exc), EXIT_WIPED)
        except LockHeld as exc:
            fail(f"{exc}; it already serves this replica", EXIT_LOCKED)
        except NotConfigured as exc:
            fail(str(exc), EXIT_NOT_CONFIGURED)
        except (UnlockError, ReplicaError) as exc:
            open_failure(exc)
        sys.exit(code)
    report = sync_once(obj.paths, settings, _progress(quiet), stop)
    for message in report.messages:
        click.echo(message, err=True)
    if not report.ok:
        fail(report.summary, exit_code(report))
    click.echo(report.summary)


def _progress(quiet: bool) -> Callable[[SyncEvent], None]:
    """The progress bar on a terminal; and, for logs of cron jobs, a line when the run has to
    wait for another process's sync."""
    show = terminal_progress(sys.stderr.isatty() and not quiet)

    def on_event(event: SyncEvent) -> None:
        if event.phase == "wait" and not quiet and not sys.stderr.isatty():
            click.echo(event.message, err=True)
        show(event)

    return on_event


def _ensure(paths: Paths) -> None:
    try:
        paths.ensure()
    except DataDirError as exc:
        fail(str(exc), EXIT_USAGE)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@click.option("--all", "show_all", is_flag=True, help="every conflict and rejected write, not the first 20")
@click.pass_obj
def status(obj: Context, as_json: bool, show_all: bool) -> None:
    """What the replica holds and how its sync stands (reads only: works on a read-only data dir)."""
    from cache.errors import ReplicaError
    from crm_tui.replicas import UnlockError, replica_key_for
    from crm_tui.status import collect_status, format_status

    if obj.paths.replica.exists():
        # A passphrase is asked for in a terminal, before anything else.
        with contextlib.suppress(UnlockError, ReplicaError):
            replica_key_for(obj.paths, obj.settings, interactive=sys.stdin.isatty())
    try:
        info = collect_status(obj.paths, obj.settings, limit=None if show_all else 20)
    except (ReplicaError, UnlockError) as exc:
        open_failure(exc)
    if as_json:
        click.echo(json.dumps(info, indent=2, sort_keys=True))
    else:
        click.echo(format_status(info))


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@click.option("--all", "everyone", is_flag=True, help="everyone's tasks, not only yours")
@click.option("--days", type=click.IntRange(0, 366), default=7, show_default=True,
              help="how far ahead 'upcoming' reaches, in days after today")
@click.option("--quiet", "-q", is_flag=True, help="print nothing when nothing is due (for a cron mail)")
@click.pass_obj
def agenda(obj: Context, as_json: bool, everyone: bool, days: int, quiet: bool) -> None:
    """Today's tasks: overdue, due today and upcoming, from the replica (reads only)."""
    from crm_tui.agenda_report import collect_agenda, format_agenda, is_empty
    from crm_tui.replicas import UnlockError, replica_key_for

    if not obj.paths.replica.exists():
        fail(f"there is no replica at {obj.paths.replica} yet: `crm-tui login` and `crm-tui sync --once` make one",
             EXIT_NOT_CONFIGURED, keep_in_log=obj.paths.data_dir.is_dir())
    with contextlib.suppress(UnlockError, ReplicaError):
        replica_key_for(obj.paths, obj.settings, interactive=sys.stdin.isatty())
    now = obj.settings.make_clock()()  # the one clock (settings.clock / CRM_TUI_CLOCK, else the wall clock)
    try:
        info = collect_agenda(obj.paths, obj.settings, now, everyone=everyone, days=days)
    except (ReplicaError, UnlockError) as exc:
        open_failure(exc)
    if quiet and is_empty(info):
        return
    if as_json:
        click.echo(json.dumps(info, indent=2, sort_keys=True))
    else:
        click.echo(format_agenda(info, now))


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
    """The console entry point: a failure nobody foresaw is still one line and an exit code;
    its traceback goes to the log file."""
    try:
        cli(prog_name="crm-tui")
    except DataDirError as exc:
        click.echo(f"crm-tui: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    except Exception as exc:
        log.exception("unexpected error")
        where = _log_file_in_use()
        click.echo(f"crm-tui: unexpected error: {type(exc).__name__}: {exc}"
                   + (f" (details in {where})" if where else ""), err=True)
        sys.exit(EXIT_FAILED)


def _log_file_in_use() -> Path | None:
    for handler in logging.getLogger().handlers:
        if getattr(handler, "_crm_tui", False) and hasattr(handler, "baseFilename"):
            return Path(handler.baseFilename)
    return None


if __name__ == "__main__":
    main()
