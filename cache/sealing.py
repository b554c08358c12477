"""Sealing bytes at rest with AES-256-GCM, under keys derived from the replica's key.

Everything outside the SQLCipher file that holds records (hot-cache values, exports in progress)
goes through ``Sealer``: a sealed blob is ``nonce || ciphertext+tag``; opening one with another
key, or one that was altered, raises ``SealBroken``. ``derive`` gives each use its own key
(HKDF-SHA256 over the replica key), so no two uses share one.
"""

from __future__ import annotations

import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

NONCE_BYTES = 12
KEY_BYTES = 32


class SealBroken(Exception):
    """A sealed blob could not be opened: another key, or altered bytes."""


def derive(key: bytes, purpose: str) -> bytes:
    """A 256-bit key for ``purpose`` (e.g. "hot-cache values"), derived from ``key``; one-way."""
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None,
                info=f"crm-tui {purpose}".encode()).derive(key)


class Sealer:
    """AES-256-GCM with a random 96-bit nonce per seal (keys here seal far fewer than the
    2^32 messages where random nonces would start to risk a repeat)."""

    def __init__(self, key: bytes):
        if len(key) != KEY_BYTES:
            raise ValueError("a sealing key is 32 bytes")
        self._aead = AESGCM(key)

    def seal(self, data: bytes, context: bytes = b"") -> bytes:
        """``data`` encrypted and authenticated; ``context`` is bound to it but not stored."""
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, data, context)

    def open(self, blob: bytes, context: bytes = b"") -> bytes:
        """The data sealed in ``blob`` with the same key and ``context``; raises SealBroken."""
        if len(blob) < NONCE_BYTES + 16:
            raise SealBroken("too short to be sealed data")
        try:
            return self._aead.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], context)
        except InvalidTag:
            raise SealBroken("wrong key, or the data was altered") from None


def blind(key: bytes, name: str) -> str:
    """A stable, keyed stand-in for ``name`` (HMAC-SHA256, hex): lets a store index entries by a
    name without the name itself (a customer id, say) being readable on disk."""
    return hmac.new(key, name.encode(), hashlib.sha256).hexdigest()[:40]
