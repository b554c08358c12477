"""Exports (CSV and the like) without plaintext left behind: the encrypted-or-refuse hook every
export goes through.

An export is written only where the user asked, as one atomic rename at the end. While it is
being produced, which for a big export takes a while, the rows go to a spool file in the
replica's directory, sealed chunk by chunk (AES-GCM) under a key that exists only in this
process's memory. A crash, a kill or a full disk mid-export leaves no plaintext anywhere: the
spool is unreadable once the process is gone, and the next export sweeps it away. Only when the
producer finished does the spool get opened into ``<destination>.part`` next to the destination
(0600) and renamed over it.

    with export_file(replica_dir, Path("~/customers.csv")) as out:   # a text stream
        csv.writer(out).writerows(rows)
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import json
import os
import struct
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from cache.errors import ReplicaError
from cache.sealing import KEY_BYTES, Sealer

SPOOL_DIR = "exports-in-progress"
CHUNK = 256 * 1024
_LENGTH = struct.Struct(">I")


class ExportError(ReplicaError):
    """An export could not be written; nothing was left at the destination."""


class _SealedSpool(io.RawIOBase):
    """A write-only binary stream that seals every CHUNK bytes into the spool file."""

    def __init__(self, fh: io.BufferedWriter, sealer: Sealer):
        self._fh, self._sealer = fh, sealer
        self._buffer = bytearray()
        self._chunks = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self._buffer += data
        while len(self._buffer) >= CHUNK:
            self._emit(bytes(self._buffer[:CHUNK]))
            del self._buffer[:CHUNK]
        return len(data)

    def _emit(self, chunk: bytes) -> None:
        sealed = self._sealer.seal(chunk, _LENGTH.pack(self._chunks))
        self._fh.write(_LENGTH.pack(len(sealed)) + sealed)
        self._chunks += 1

    def finish(self) -> None:
        if self._buffer:
            self._emit(bytes(self._buffer))
            self._buffer.clear()
        self._fh.flush()


def _unseal(spool: Path, sealer: Sealer, out: io.BufferedWriter) -> None:
    with spool.open("rb") as fh:
        index = 0
        while header := fh.read(_LENGTH.size):
            (size,) = _LENGTH.unpack(header)
            out.write(sealer.open(fh.read(size), _LENGTH.pack(index)))
            index += 1


def sweep(replica_dir: Path) -> None:
    """Remove spools left by exports that never finished (their keys died with their process)."""
    spool_dir = Path(replica_dir) / SPOOL_DIR
    if spool_dir.is_dir():
        for leftover in spool_dir.iterdir():
            with contextlib.suppress(OSError):
                leftover.unlink()


@contextlib.contextmanager
def export_file(replica_dir: Path, destination: Path, *, overwrite: bool = False,
                encoding: str = "utf-8", newline: str = "") -> Iterator[io.TextIOBase]:
    """A text stream whose contents land at ``destination`` (0600) when the block ends cleanly.

    Raises ExportError (before anything is written) when ``destination`` exists and ``overwrite``
    is false or its directory is missing; an exception inside the block leaves the destination
    untouched and removes the spool. ``newline=""`` suits the csv module."""
    destination = Path(destination).expanduser()
    if not destination.parent.is_dir():
        raise ExportError(f"cannot export to {destination}: {destination.parent} is not a directory")
    if destination.exists() and not overwrite:
        raise ExportError(f"{destination} exists; choose another name or allow overwriting it")
    spool_dir = Path(replica_dir) / SPOOL_DIR
    spool_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    sweep(replica_dir)
    sealer = Sealer(os.urandom(KEY_BYTES))
    fd, spool_name = tempfile.mkstemp(dir=spool_dir, prefix="export-")
    spool = Path(spool_name)
    part = destination.with_name(destination.name + ".part")
    try:
        with os.fdopen(fd, "wb") as raw:
            sealed = _SealedSpool(raw, sealer)
            text = io.TextIOWrapper(io.BufferedWriter(sealed, CHUNK), encoding=encoding, newline=newline)
            yield text
            text.flush()
            sealed.finish()
        out_fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(out_fd, "wb") as out:
            _unseal(spool, sealer, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(part, destination)
    except OSError as exc:
        part.unlink(missing_ok=True)
        raise ExportError(f"could not write the export to {destination}: {exc.strerror or exc}") from None
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    finally:
        spool.unlink(missing_ok=True)


def _flat(row: dict[str, Any]) -> dict[str, Any]:
    """A list's row as CSV fields: a record as it is; a row holding an object (a conflict, an
    outbox op) with that object's fields in its place."""
    out: dict[str, Any] = {}
    for name, value in row.items():
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            for inner, inner_value in dataclasses.asdict(value).items():
                out.setdefault(inner if inner not in out else f"{name}_{inner}", inner_value)
        else:
            out.setdefault(name, value)
    return out


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, sort_keys=True, default=str)
    return value


def write_csv(out: io.TextIOBase, comments: Iterable[str], batches: Iterable[Iterable[dict[str, Any]]],
              names: Callable[[list[dict[str, Any]]], list[dict[str, Any]]] | None = None) -> int:
    """Write ``comments`` (each as a ``# `` line: what was exported and the filter that produced
    it), a header line and every row of ``batches`` as CSV, one batch at a time (the raw stored
    values, as the protocol has them, and with ``names`` (``ExportNames.named``) the names the
    screen shows beside the ids). Columns are the first row's fields. Returns the rows written."""
    for line in comments:
        out.write(f"# {line}\n")
    writer = csv.writer(out)
    columns: list[str] | None = None
    written = 0
    for batch in batches:
        flats = [_flat(row) for row in batch]
        for flat in names(flats) if names is not None else flats:
            if columns is None:
                columns = list(flat)
                writer.writerow(columns)
            writer.writerow([_cell(flat.get(name)) for name in columns])
            written += 1
    return written
