"""Starting a gateway: the upstream token, the mirror's territory, the first scan, the pull thread."""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crm_server.gateway.puller import Puller
from crm_server.gateway.upstream import BottleCRM, UpstreamError
from crm_server.gateway.writethrough import BottleWriteThrough
from crm_server.store import Store
from crm_tui.core.domain import ENTITIES, ID_RE

log = logging.getLogger("crm_server.gateway")

TOKEN_ENV = "CRM_SERVER_UPSTREAM_TOKEN"
UPSTREAMS = ("bottlecrm",)


class GatewayError(Exception):
    """The gateway cannot start; the message says what to fix."""


def read_token(token_file: str | None) -> str:
    """The upstream token: from ``token_file`` if given, else from $CRM_SERVER_UPSTREAM_TOKEN.

    Never from the command line (it would show in ``ps`` and shell history). Raises GatewayError.
    """
    if token_file:
        try:
            token = Path(token_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise GatewayError(f"cannot read the upstream token file {token_file}: {exc.strerror}") from exc
    else:
        token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        raise GatewayError(f"no upstream token: set {TOKEN_ENV} or give --upstream-token-file")
    if any(c.isspace() for c in token) or len(token) > 4096:
        raise GatewayError("the upstream token is malformed (whitespace inside, or too long)")
    return token


@dataclass
class Gateway:
    """A running gateway's parts; :meth:`start` runs the first scan and the pull thread.

    Every server process serving the database writes through to the upstream, but only one
    polls it: the one holding the store's poller lock (a PostgreSQL advisory lock, or a file
    lock beside a SQLite file). The others check on every tick and take over, with a full scan,
    when the holder is gone."""

    store: Store
    upstream: BottleCRM
    write_through: BottleWriteThrough
    puller: Puller
    _stop: threading.Event
    _thread: threading.Thread | None = None
    _lock: Any = None
    polling: bool = False  # whether this process holds the poller lock

    def start(self) -> None:
        """Scan BottleCRM once if this process is the poller (the mirror is complete before the
        first client asks), then keep pulling in a background thread. Raises GatewayError if
        BottleCRM cannot be read."""
        self._lock = self.store.poller_lock()
        if self._lock.try_acquire():
            self.polling = True
            try:
                report = self.puller.full_scan()
            except UpstreamError as exc:
                raise GatewayError(f"cannot read BottleCRM at {self.upstream.url}: {exc}") from exc
            log.warning("gateway: first scan of %s done (%s)", self.upstream.url, report.counts)
        else:
            log.warning("gateway: another server process polls %s; this one serves and writes through",
                        self.upstream.url)
        self._thread = threading.Thread(target=self.puller.run, args=(self._stop, self._may_poll),
                                        name="bottlecrm-puller", daemon=True)
        self._thread.start()

    def _may_poll(self) -> bool:
        held = self._lock.try_acquire()
        if held and not self.polling:
            log.warning("gateway: this process now polls %s", self.upstream.url)
            self.puller.scan_soon()  # another process polled until now: catch up in full
        self.polling = held
        return held

    def stop(self) -> None:
        """Stop the pull thread (waits for the pull in progress), give up the poller lock and
        close the upstream client."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(60)
        if self._lock is not None:
            self._lock.release()
        self.upstream.close()


def open_gateway(store: Store, kind: str, url: str, token: str, *, territory: str = "bottlecrm",
                 poll_interval: float = 5.0, scan_interval: float = 300.0, timeout: float = 30.0) -> Gateway:
    """Build a gateway over ``store`` (its mirror) in front of the upstream CRM at ``url``.

    Creates the mirror's territory when missing. Raises GatewayError for an unknown upstream kind,
    a bad URL or territory name.
    """
    if kind not in UPSTREAMS:
        raise GatewayError(f"unknown upstream {kind!r}; supported: {', '.join(UPSTREAMS)}")
    if not url.startswith(("http://", "https://")):
        raise GatewayError(f"the upstream URL must start with http:// or https://, got {url!r}")
    if not ID_RE.match(territory):
        raise GatewayError(f"territory {territory!r} is not a valid id (letters, digits, - and _)")
    ensure_territory(store, territory)
    # httpx logs every request at INFO; the gateway logs what matters itself.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLogger().level))
    upstream = BottleCRM(url, token, read_timeout=timeout)
    return Gateway(
        store=store,
        upstream=upstream,
        write_through=BottleWriteThrough(store, upstream, territory),
        puller=Puller(store, upstream, territory, poll_interval=poll_interval, scan_interval=scan_interval),
        _stop=threading.Event(),
    )


def ensure_territory(store: Store, territory: str) -> None:
    """The one territory every mirrored customer is in (sales reps are granted it to see them)."""
    ent = ENTITIES["territory"]
    with store.write() as tx:
        if tx.get(ent, territory) is None:
            tx.insert(ent, {"id": territory, "name": "BottleCRM", "region": None})
