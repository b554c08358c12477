"""Test certificates from our own CA (trustme): for crm-server serve --ssl-certfile/--ssl-keyfile
and for clients that trust that CA.

    ca = trustme.CA()
    files = write_server_cert(ca, tmp_path, "127.0.0.1")          # CertFiles(cert, key)
    srv = server_factory(**tls_server_options(ca, files))   # serves https://127.0.0.1:PORT
"""

from __future__ import annotations

import datetime as dt
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trustme


@dataclass(frozen=True)
class CertFiles:
    cert: Path  # the certificate chain, PEM
    key: Path  # its private key, PEM


def write_server_cert(ca: trustme.CA, directory: Path, *hosts: str, expired: bool = False,
                      name: str = "server") -> CertFiles:
    """A certificate for ``hosts`` signed by ``ca`` (already expired if asked), written as two files."""
    kw: dict[str, Any] = {}
    if expired:
        now = dt.datetime.now(dt.UTC)
        kw = {"not_before": now - dt.timedelta(days=30), "not_after": now - dt.timedelta(days=1)}
    leaf = ca.issue_cert(*hosts, **kw)
    files = CertFiles(directory / f"{name}.crt", directory / f"{name}.key")
    files.cert.write_bytes(b"".join(pem.bytes() for pem in leaf.cert_chain_pems))
    leaf.private_key_pem.write_to_path(str(files.key))
    return files


def write_ca(ca: trustme.CA, path: Path) -> Path:
    """The CA's certificate as a PEM file (a client's ca_bundle)."""
    ca.cert_pem.write_to_path(str(path))
    return path


def trusting(ca: trustme.CA) -> ssl.SSLContext:
    """A client context that trusts ``ca`` only (what httpx's verify= takes)."""
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


def tls_server_options(ca: trustme.CA, files: CertFiles, *more_args: str) -> dict[str, Any]:
    """ServerProcess options that serve HTTPS with ``files`` and trust ``ca`` for its own checks."""
    return {"serve_args": ("--ssl-certfile", str(files.cert), "--ssl-keyfile", str(files.key), *more_args),
            "verify": trusting(ca)}
