"""The analytics worker's checkpoint: the engine's snapshot and the findings already published.

One file per worker (``<state_dir>/<client id>.ckpt``), replaced atomically: written to a temporary
file in the same folder, flushed to disk (``fsync``), renamed over the old one, and the folder
flushed too. A crash leaves either the old checkpoint or the new one, never half of one. The file
carries a SHA-256 of its content; a file that does not match (a disk error, an edit) is refused
with its path, never half-used.

Layout: ``SWCKPT1\\n``, the length of the metadata (8 bytes, big-endian), the metadata (JSON), the
engine's snapshot, and the SHA-256 of everything before it (32 bytes).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

MAGIC = b"SWCKPT1\n"
MAX_PUBLISHED = 200_000  # (finding id, state) pairs remembered: far more than a city's open findings


class CheckpointError(Exception):
    """A checkpoint file that cannot be used (corrupt, another format, another partition)."""


@dataclass
class Published:
    """The (finding id, state) pairs published most recently, oldest first, bounded."""

    limit: int = MAX_PUBLISHED
    keys: OrderedDict[tuple[str, str], None] = field(default_factory=OrderedDict)

    def __contains__(self, key: object) -> bool:
        return key in self.keys

    def add(self, key: tuple[str, str]) -> None:
        """Remember ``key`` (the oldest is forgotten beyond ``limit``)."""
        self.keys[key] = None
        self.keys.move_to_end(key)
        while len(self.keys) > self.limit:
            self.keys.popitem(last=False)

    def __len__(self) -> int:
        return len(self.keys)

    def as_list(self) -> list[list[str]]:
        """JSON-ready form."""
        return [[i, s] for i, s in self.keys]

    @classmethod
    def from_list(cls, items: Iterable[Any], limit: int = MAX_PUBLISHED) -> Published:
        """Read the JSON form back."""
        out = cls(limit)
        for item in items:
            if not (isinstance(item, list) and len(item) == 2 and all(isinstance(x, str) for x in item)):
                raise CheckpointError("the list of published findings is malformed")
            out.add((item[0], item[1]))
        return out


@dataclass
class Checkpoint:
    """What a worker restores from: the engine's state and the findings it already published."""

    engine: bytes
    published: Published
    meta: dict[str, Any] = field(default_factory=dict)


def save(path: Path, checkpoint: Checkpoint) -> int:
    """Write ``checkpoint`` to ``path`` atomically (see the module docstring); returns its size."""
    meta = orjson.dumps(checkpoint.meta | {"published": checkpoint.published.as_list()})
    body = MAGIC + len(meta).to_bytes(8, "big") + meta + checkpoint.engine
    digest = hashlib.sha256(body).digest()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as handle:
        handle.write(body)
        handle.write(digest)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    with contextlib.suppress(OSError):  # flush the rename itself (not possible on every platform)
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
    return len(body) + len(digest)


def load(path: Path) -> Checkpoint | None:
    """Read a checkpoint; None when there is none; CheckpointError when it cannot be used."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read: {exc}") from None
    if len(data) < len(MAGIC) + 8 + 32 or not data.startswith(MAGIC):
        raise CheckpointError(f"{path}: not a sitewatch analytics checkpoint")
    body, digest = data[:-32], data[-32:]
    if hashlib.sha256(body).digest() != digest:
        raise CheckpointError(f"{path}: checksum mismatch (the file is damaged)")
    size = int.from_bytes(body[len(MAGIC) : len(MAGIC) + 8], "big")
    start = len(MAGIC) + 8
    if start + size > len(body):
        raise CheckpointError(f"{path}: truncated metadata")
    try:
        meta = orjson.loads(body[start : start + size])
    except orjson.JSONDecodeError:
        raise CheckpointError(f"{path}: unreadable metadata") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path}: unreadable metadata")
    published = Published.from_list(meta.pop("published", []))
    return Checkpoint(bytes(body[start + size :]), published, meta)
