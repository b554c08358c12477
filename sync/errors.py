"""The sync engine's errors: a small hierarchy; the CLI and the app turn each into one line."""

from __future__ import annotations

from crm_tui.core.text import span


class SyncError(Exception):
    """A sync could not complete; the message says why, for a person."""


class NotConfigured(SyncError):
    """No server or token: run `crm-tui login` first."""


class AuthError(SyncError):
    """The server refused the token (401)."""


class TokenExpired(AuthError):
    """The token's lifetime is over (401 ``token_expired``): a new one is needed from an admin."""


class DeviceRevoked(SyncError):
    """An admin revoked this device (403 ``device_revoked``): its local data must be deleted."""


class DeviceWiped(SyncError):
    """This device was revoked and its local data deleted (crm_tui/wipe.py); the message says so."""


class ServerUnavailable(SyncError):
    """The server could not be reached, kept failing after every retry, or asked us to come back
    later than we wait (``retry_after``: seconds, when it said). ``reason``: the last failure when
    the server did answer (an HTTP 503), None when no answer came at all."""

    def __init__(self, message: str, retry_after: float | None = None, *, reason: str | None = None):
        self.retry_after = retry_after
        self.reason = reason
        super().__init__(message)


class Redirected(ServerUnavailable):
    """The server's address answered with a redirect: a captive portal, or a server that moved."""


class DeadlineExceeded(ServerUnavailable):
    """The sync run reached its deadline (``sync.run_timeout``); it resumes where it stopped."""

    @classmethod
    def after(cls, run_timeout: float, detail: str = "") -> DeadlineExceeded:
        return cls(f"the sync did not finish within {span(run_timeout)} (sync.run_timeout); "
                   f"it resumes where it stopped{detail}")


class CertificateRefused(SyncError):
    """The server's TLS certificate is untrusted, expired or for another host; retrying cannot help."""


class ProtocolError(SyncError):
    """The server answered something that is not the protocol (HTML, truncated, wrong types)."""


class ResponseTooLarge(ProtocolError):
    """An answer was larger than ``sync.max_response_mb``; it was not read to the end."""


class FeedStalled(ProtocolError):
    """The change feed does not move forward (same cursor again, more than it announced ...)."""


class RequestRejected(SyncError):
    """The server refused a request as malformed (4xx); retrying the same request cannot help.
    ``code`` is the protocol's error code, when the answer had one."""

    def __init__(self, status: int, message: str, code: str | None = None):
        self.status = status
        self.code = code
        super().__init__(message)


class ResyncRequired(SyncError):
    """The server cannot continue from our cursor (410, or 400 invalid_cursor): the replica must
    be replaced by a new snapshot (which keeps unsynced work)."""


class Stopped(SyncError):
    """The sync was asked to stop (SIGTERM, app quitting); it stopped between two steps."""


class LockHeld(SyncError):
    """Another process holds the lock (a sync run, or the daemon); ``pid`` names it if known."""

    def __init__(self, message: str, pid: int | None = None):
        self.pid = pid
        super().__init__(message)
