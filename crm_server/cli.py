"""``crm-server``: serve the API, seed demo data, manage users and tokens, compact the change log.

Every command takes ``--db PATH`` (default ``./crm-server.db``; the SQLite file is created with
zero configuration when missing) or ``--db postgresql://...`` (an existing, possibly empty,
PostgreSQL database). Opening a database creates or migrates its schema. Errors print one line on stderr and exit non-zero.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Callable, Iterator
from functools import wraps
from typing import Any

import click

from crm_server.accounts import (
    AccountError,
    add_user,
    find_user,
    issue_token,
    revoke_device,
    set_territories,
)
from crm_server.announce import announcement
from crm_server.seed import SeedError, seed_database
from crm_server.serving import ServeError
from crm_server.store import Store, StoreError, open_store
from crm_server.store.tokens import DEFAULT_TOKEN_DAYS
from crm_tui.core.domain import ENTITIES, ROLES, parse_datetime

USER = ENTITIES["user"]

DEFAULT_DB = "./crm-server.db"

expires_option = click.option(
    "--expires-days", default=float(DEFAULT_TOKEN_DAYS), show_default=True, type=click.FloatRange(0, 3650),
    help="days until the token expires (clients renew it before then); 0 = never",
)

db_option = click.option(
    "--db", "db_path", default=DEFAULT_DB, show_default=True, metavar="PATH|URL",
    help="a SQLite database file, or a postgresql://user@host:port/dbname URL",
)


def _friendly(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn the errors a user can cause into one line on stderr and exit status 1."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (AccountError, SeedError, ServeError, StoreError, ValueError) as exc:
            raise click.ClickException(str(exc)) from exc

    return wrapper


def _open(db_path: str) -> Store:
    return open_store(db_path)


class _OneLineUsage(click.Group):
    """Usage errors as one line ("Error: ..."), like every other error of crm-server."""

    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        try:
            return super().make_context(*args, **kwargs)
        except click.UsageError as exc:
            exc.ctx = None  # without a context click prints no usage block and no hint
            raise

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            exc.ctx = None
            raise


@click.group(cls=_OneLineUsage, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """The reference crm-tui server."""


@main.command()
@db_option
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535), help="0 picks a free port")
@click.option("--rate-limit", default=100.0, show_default=True, type=click.FloatRange(0), help="requests/s per token; 0 = off")
@click.option("--ssl-certfile", type=click.Path(exists=True, dir_okay=False), help="serve HTTPS with this PEM certificate (chain)")
@click.option("--ssl-keyfile", type=click.Path(exists=True, dir_okay=False), help="its private key (if not in the certificate file)")
@click.option("--header-timeout", default=10.0, show_default=True, type=click.FloatRange(0.1, 600),
              help="seconds a client has to send the request line and headers (and the TLS handshake)")
@click.option("--body-timeout", default=60.0, show_default=True, type=click.FloatRange(0.1, 3600),
              help="seconds a client has to send a request body, after its headers")
@click.option("--send-timeout", default=60.0, show_default=True, type=click.FloatRange(0.1, 3600),
              help="seconds in which a client must take in 64 KiB of a pending answer, else it is dropped")
@click.option("--max-connections", type=click.IntRange(1), help="open connections in all [default: 1000, or fewer if the open-files limit is lower]")
@click.option("--max-connections-per-client", default=64, show_default=True, type=click.IntRange(0),
              help="open connections per client address (IPv6: per /64); 0 = no cap (behind a proxy)")
@click.option("--log-level", default="warning", show_default=True, type=click.Choice(["debug", "info", "warning", "error"]))
@click.option("--access-log", is_flag=True, help="log every request")
@click.option("--upstream", type=click.Choice(["bottlecrm"]), help="be a sync gateway in front of this CRM (the db is its mirror)")
@click.option("--upstream-url", help="the upstream CRM's base URL, e.g. https://crm.example.com")
@click.option("--upstream-token-file", type=click.Path(dir_okay=False),
              help="file holding the upstream API token (default: $CRM_SERVER_UPSTREAM_TOKEN)")
@click.option("--territory", default="bottlecrm", show_default=True, help="the territory mirrored customers are put in")
@click.option("--poll-interval", default=5.0, show_default=True, type=click.FloatRange(0.05),
              help="seconds between quick refreshes from the upstream's audit log")
@click.option("--scan-interval", default=300.0, show_default=True, type=click.FloatRange(1),
              help="seconds between full scans of the upstream")
@click.option("--op-retention-days", default=30.0, show_default=True, type=click.FloatRange(1),
              help="how long op results are kept for idempotent re-sends (purged hourly)")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="server processes sharing the port (PostgreSQL: writes in parallel; SQLite: they take turns)")
@click.option("--compact-days", default=0.0, show_default=True, type=click.FloatRange(0),
              help="purge tombstones older than this every hour (clients offline longer resync); 0 = keep them")
@click.option("--read-db", metavar="URL", help="a PostgreSQL hot standby of --db that serves the change feed and "
              "record reads (writes still go to --db)")
@click.option("--read-wait", default=1.0, show_default=True, type=click.FloatRange(0, 30),
              help="seconds a read waits for the standby to replay what it must show before the primary serves it")
@_friendly
def serve(db_path: str, host: str, port: int, rate_limit: float, ssl_certfile: str | None, ssl_keyfile: str | None,
          header_timeout: float, body_timeout: float, send_timeout: float, max_connections: int | None, max_connections_per_client: int,
          log_level: str, access_log: bool, upstream: str | None, upstream_url: str | None, upstream_token_file: str | None,
          territory: str, poll_interval: float, scan_interval: float, op_retention_days: float, workers: int,
          compact_days: float, read_db: str | None, read_wait: float) -> None:
    """Serve the HTTP API; prints "listening on http(s)://HOST:PORT" once ready."""
    from crm_server.connections import ConnectionLimits
    from crm_server.gateway.service import GatewayError, read_token
    from crm_server.reads import open_reads
    from crm_server.serving import ServeOptions, default_max_connections
    from crm_server.serving import serve as run_server

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(process)d %(name)s: %(message)s")
    if (upstream is None) != (upstream_url is None):
        raise click.UsageError("--upstream and --upstream-url go together")
    limits = ConnectionLimits(
        header_timeout=header_timeout,
        body_timeout=body_timeout,
        send_timeout=send_timeout,
        max_connections=max_connections or default_max_connections(),
        max_per_client=max_connections_per_client,
    )
    options = ServeOptions(host=host, port=port, certfile=ssl_certfile, keyfile=ssl_keyfile, limits=limits,
                           log_level=log_level, access_log=access_log)
    try:
        token = read_token(upstream_token_file) if upstream is not None else None
    except GatewayError as exc:
        raise click.ClickException(str(exc)) from exc
    # Opened (created or migrated) once here, so a bad --db or --read-db is one line before anything forks.
    _check = _open(db_path)
    try:
        open_reads(_check, read_db, wait=read_wait).close()
    finally:
        _check.close()

    @contextlib.contextmanager
    def service() -> Iterator[Any]:
        """One process's app: its own database pools (primary and standby), housekeeping and (as a
        gateway) poller."""
        from crm_server.app import create_app
        from crm_server.gateway.service import open_gateway
        from crm_server.maintenance import Maintenance

        store = _open(db_path)
        try:
            reads = open_reads(store, read_db, wait=read_wait)
        except StoreError:
            store.close()
            raise
        gateway = None
        if upstream is not None:
            try:
                assert upstream_url is not None and token is not None  # checked with --upstream above
                gateway = open_gateway(store, upstream, upstream_url, token, territory=territory,
                                       poll_interval=poll_interval, scan_interval=scan_interval)
                gateway.start()
            except GatewayError as exc:
                if gateway is not None:
                    gateway.stop()
                reads.close()
                store.close()
                raise click.ClickException(str(exc)) from exc
        maintenance = Maintenance(store, op_retention_days=op_retention_days, compact_days=compact_days or None)
        maintenance.start()
        try:
            yield create_app(store, rate_limit=rate_limit or None,
                             write_through=gateway.write_through if gateway else None, reads=reads)
        finally:
            maintenance.stop()
            if gateway is not None:
                gateway.stop()
            reads.close()
            store.close()

    run_server(service, options, _announce, workers=workers)


def _announce(url: str) -> None:
    click.echo(announcement(url))
    sys.stdout.flush()


@main.command()
@db_option
@click.option("--customers", default=1000, show_default=True, type=click.IntRange(0, 10_000_000))
@click.option("--seed", "seed_value", default=1, show_default=True, type=int, help="same seed, same data")
@click.option("--now", default=None, help="reference time for dates, e.g. 2026-11-25T09:00:00Z (default: now)")
@_friendly
def seed(db_path: str, customers: int, seed_value: int, now: str | None) -> None:
    """Fill an empty database with realistic, reproducible demo data."""
    reference = parse_datetime(now) if now else None
    store = _open(db_path)
    try:
        step = max(customers // 10, 5000)

        def progress(done: int) -> None:
            if done % step < 5000 or done == customers:
                click.echo(f"  {done:,} customers", err=True)

        report = seed_database(store, customers=customers, seed=seed_value, now=reference, progress=progress)
    finally:
        store.close()
    rate = report.records / report.seconds if report.seconds else 0
    click.echo(f"seeded {report.customers:,} customers ({report.records:,} records) in {report.seconds:.1f} s ({rate:,.0f} records/s)")


@main.command()
@db_option
@click.option("--before-seq", type=click.IntRange(1), help="purge tombstones and moves below this sequence")
@click.option("--keep-days", type=click.FloatRange(0), help="purge tombstones and moves older than this")
@_friendly
def compact(db_path: str, before_seq: int | None, keep_days: float | None) -> None:
    """Purge old tombstones and moves; cursors older than the new horizon get 410 (resync)."""
    if (before_seq is None) == (keep_days is None):
        raise click.UsageError("give exactly one of --before-seq or --keep-days")
    store = _open(db_path)
    try:
        result = store.compact(before_seq=before_seq, keep_days=keep_days)
    finally:
        store.close()
    click.echo(f"purged {result.purged:,} change rows; cursors from before them must resync")


@main.group()
def user() -> None:
    """Add users, grant and revoke territories, issue tokens."""


@user.command("add")
@click.argument("name")
@click.option("--role", required=True, type=click.Choice(ROLES))
@click.option("--territory", "territories", multiple=True, help="repeat for several")
@click.option("--team")
@click.option("--email")
@click.option("--id", "user_id", help="the user's id (default: made from the name)")
@expires_option
@db_option
@_friendly
def user_add(name: str, role: str, territories: tuple[str, ...], team: str | None, email: str | None,
             user_id: str | None, expires_days: float, db_path: str) -> None:
    """Create a user and print their API token (shown once; only its hash is stored)."""
    store = _open(db_path)
    try:
        record, token = add_user(store, name, role=role, territories=territories, team=team, email=email,
                                 user_id=user_id, expires_days=expires_days)
    finally:
        store.close()
    click.echo(f"created {record['role']} {record['id']} ({record['name']}); keep this token, it is not shown again "
               f"(it {_expiry_text(expires_days)}):", err=True)
    click.echo(token)


def _expiry_text(expires_days: float) -> str:
    from crm_server.accounts import expiry
    from crm_server.auth import utc_text

    expires_at, _ = expiry(expires_days)
    return "never expires" if expires_at is None else f"expires {utc_text(expires_at)}"


@user.command("grant")
@click.argument("name")
@click.option("--territory", "territories", multiple=True, required=True)
@db_option
@_friendly
def user_grant(name: str, territories: tuple[str, ...], db_path: str) -> None:
    """Give a user more territories (their replica backfills them on its next pull)."""
    _territories(db_path, name, grant=territories)


@user.command("revoke")
@click.argument("name")
@click.option("--territory", "territories", multiple=True, required=True)
@db_option
@_friendly
def user_revoke(name: str, territories: tuple[str, ...], db_path: str) -> None:
    """Take territories away (their replica drops those customers on its next pull)."""
    _territories(db_path, name, revoke=territories)


def _territories(db_path: str, name: str, **change: tuple[str, ...]) -> None:
    store = _open(db_path)
    try:
        record = set_territories(store, name, **change)
    finally:
        store.close()
    click.echo(f"{record['id']}: territories {', '.join(record.get('territories') or []) or '(none)'}")


@user.command("token")
@click.argument("name")
@click.option("--revoke-others", is_flag=True, help="invalidate the user's existing tokens")
@expires_option
@db_option
@_friendly
def user_token(name: str, revoke_others: bool, expires_days: float, db_path: str) -> None:
    """Issue a fresh API token for a user and print it."""
    store = _open(db_path)
    try:
        token = issue_token(store, find_user(store, name).record["id"], revoke_others=revoke_others,
                            expires_days=expires_days)
    finally:
        store.close()
    click.echo(f"this token {_expiry_text(expires_days)}", err=True)
    click.echo(token)


@user.command("devices")
@click.argument("name")
@db_option
@_friendly
def user_devices(name: str, db_path: str) -> None:
    """Print a user's devices: id, name, first and last seen (UTC), and whether revoked."""
    from crm_server.auth import utc_text

    store = _open(db_path)
    try:
        user_id = find_user(store, name).record["id"]
        with store.read() as tx:
            devices = tx.devices(user_id)
    finally:
        store.close()
    if not devices:
        click.echo(f"{user_id} has no devices yet (a device is recorded when its crm-tui first syncs)", err=True)
    for d in devices:
        state = f"revoked {utc_text(d.revoked_at)}" if d.revoked_at is not None else "active"
        click.echo(f"{d.device_id}\t{d.name or '-'}\tfirst seen {utc_text(d.first_seen)}\t"
                   f"last seen {utc_text(d.last_seen)}\t{state}")


@user.command("revoke-device")
@click.argument("name")
@click.argument("device")
@db_option
@_friendly
def user_revoke_device(name: str, device: str, db_path: str) -> None:
    """Mark a user's device lost: at its next contact it deletes its local data (DEVICE: its id
    from `user devices`, or the first 6 or more characters of it)."""
    store = _open(db_path)
    try:
        user_id = find_user(store, name).record["id"]
        found, tokens = revoke_device(store, user_id, device)
    finally:
        store.close()
    click.echo(f"revoked device {found.device_id} ({found.name or 'unnamed'}) of {user_id}: at its next contact with "
               f"the server it deletes its replica, hot cache and stored credentials; {tokens} token(s) used on it "
               "no longer work anywhere")


@user.command("list")
@db_option
@_friendly
def user_list(db_path: str) -> None:
    """Print every user: id, role, name, territories."""
    store = _open(db_path)
    try:
        with store.read() as tx:
            users = tx.list_records(USER, after=None, limit=100_000, filters={}, territories=None)
    finally:
        store.close()
    for u in users:
        flag = "" if u.get("active") is not False else "  (inactive)"
        click.echo(f"{u['id']}\t{u['role']}\t{u['name']}\t{','.join(u.get('territories') or [])}{flag}")


if __name__ == "__main__":
    main()
