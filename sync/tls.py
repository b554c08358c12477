"""TLS for the client: which certificates it trusts, and the one line it says when it refuses one.

Certificates are always verified. The trusted CAs are the public ones (certifi, or the file in
``SSL_CERT_FILE``) unless ``[sync] ca_bundle`` names a PEM file, for a company's own CA.
"""

from __future__ import annotations

import ssl

from crm_tui.config import SyncSettings

# OpenSSL's X509_V_ERR_* codes that mean "signed by no CA we trust".
_UNTRUSTED = {2, 18, 19, 20, 21}
_WRONG_HOST = {62, 64}  # host name / IP address mismatch
# The connection ended mid-handshake: a network failure like any other, worth a retry.
_CUT_SHORT = (ssl.SSLEOFError, ssl.SSLSyscallError, ssl.SSLZeroReturnError)


def verify_for(settings: SyncSettings) -> ssl.SSLContext | bool:
    """What httpx's ``verify=`` gets: True (public CAs) or a context trusting ``ca_bundle`` only.

    The config check already loaded the file once (crm_tui.config), so this does not fail on it.
    """
    if settings.ca_bundle is None:
        return True
    return ssl.create_default_context(cafile=str(settings.ca_bundle))


def refusal(exc: BaseException, server: str) -> str | None:
    """If ``exc`` (from httpx) is a refused certificate or a failed TLS handshake, what to tell
    the user, in one line; else None (a network error worth retrying)."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, ssl.SSLCertVerificationError):
            return _certificate_refused(cause, server)
        if isinstance(cause, ssl.SSLError) and not isinstance(cause, _CUT_SHORT):
            return f"the TLS handshake with {server} failed ({cause.reason or cause}); is it an https:// server?"
        cause = cause.__cause__ or cause.__context__
    return None


def _certificate_refused(err: ssl.SSLCertVerificationError, server: str) -> str:
    why = (err.verify_message or str(err)).rstrip(".")
    message = f"refused the TLS certificate of {server}: {why}"
    if err.verify_code in _UNTRUSTED:
        message += "; if your company signs its own certificates, set ca_bundle under [sync] in the config file"
    elif err.verify_code in _WRONG_HOST:
        message += "; use the host name the certificate was issued for"
    return message
