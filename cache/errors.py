"""The replica's errors: a small hierarchy the screens and the CLI turn into messages."""

from __future__ import annotations

from crm_tui.core.domain import ValidationError

__all__ = ["MalformedPage", "RecordNotFound", "ReplicaBusy", "ReplicaError", "ReplicaKeyError", "ReplicaNotEncrypted",
           "SchemaTooNew", "ValidationError"]


class ReplicaError(Exception):
    """Something about the local replica went wrong; the message says what to do."""


class ReplicaBusy(ReplicaError):
    """Another connection held the replica's write lock longer than this one would wait."""


class ReplicaKeyError(ReplicaError):
    """The replica is encrypted and the key given does not open it (or none was given)."""


class ReplicaNotEncrypted(ReplicaError):
    """A key was given for a replica that is a plaintext file (it predates encryption)."""


class RecordNotFound(ReplicaError):
    def __init__(self, entity: str, record_id: str):
        self.entity = entity
        self.record_id = record_id
        super().__init__(f"no {entity} {record_id!r} in the local replica")


class SchemaTooNew(ReplicaError):
    """The replica was written by a newer crm-tui; opening it would risk damaging it."""


class MalformedPage(ReplicaError):
    """A change-feed page is not of the protocol's shape; nothing of it was applied."""
