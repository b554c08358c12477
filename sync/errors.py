"""The sync engine's errors: a small hierarchy; the CLI and the app turn each into one line."""

from __future__ import annotations


class SyncError(Exception):
    """A sync could not complete; the message says why, for a person."""


class NotConfigured(SyncError):
    """No server or token: run `crm-tui login` first."""


class AuthError(SyncError):
    """The server refused the token (401)."""


class ServerUnavailable(SyncError):
    """The server could not be reached or kept failing after every retry."""


class CertificateRefused(SyncError):
    """The server's TLS certificate is untrusted, expired or for another host; retrying cannot help."""


class ProtocolError(SyncError):
    """The server answered something that is not the protocol (HTML, truncated, wrong types)."""


class RequestRejected(SyncError):
    """The server refused a request as malformed (4xx); retrying the same request cannot help."""

    def __init__(self, status: int, message: str):
        self.status = status
        super().__init__(message)


class ResyncRequired(SyncError):
    """The server cannot continue from our cursor (410): the replica must be replaced."""


class LockHeld(SyncError):
    """Another process (usually the daemon) is syncing this replica."""
