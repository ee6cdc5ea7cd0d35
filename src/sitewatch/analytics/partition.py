"""Partitions: which worker of ``analytics run`` owns which compound.

A device's state (windows, hysteresis, open episodes) must live on one worker, so the workers split
the *compounds* between them, not the messages: worker ``k/n`` owns the compounds whose stable hash
modulo ``n`` is ``k - 1`` and subscribes only to their topics. The hash is CRC-32 of the compound
code (UTF-8), the same in every process and every Python version (Python's own ``hash`` of a string
is salted per process).
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable
from dataclasses import dataclass

from ..contract import Channel, subscription

_SPEC = re.compile(r"([1-9][0-9]{0,3})/([1-9][0-9]{0,3})")
CHANNELS = (Channel.DATA, Channel.EVENT, Channel.STATE)  # what analytics reads of each compound


def bucket(compound: str, count: int) -> int:
    """The 0-based partition of ``compound`` among ``count`` partitions."""
    return zlib.crc32(compound.encode("utf-8")) % count


@dataclass(frozen=True, slots=True)
class Partition:
    """Worker ``index`` (1-based) of ``count``."""

    index: int = 1
    count: int = 1

    @classmethod
    def parse(cls, spec: str) -> Partition:
        """``"2/4"`` → Partition(2, 4); raises ValueError with the reason."""
        match = _SPEC.fullmatch(spec.strip())
        if match is None:
            raise ValueError(f"partition {spec!r} is not K/N (e.g. 2/4)")
        index, count = int(match.group(1)), int(match.group(2))
        if index > count:
            raise ValueError(f"partition {spec!r}: K must be between 1 and N")
        return cls(index, count)

    def owns(self, compound: str) -> bool:
        """Whether this worker handles ``compound``."""
        return self.count == 1 or bucket(compound, self.count) == self.index - 1

    def select(self, compounds: Iterable[str]) -> list[str]:
        """The compounds of ``compounds`` this worker handles, sorted."""
        return sorted(c for c in set(compounds) if self.owns(c))

    @property
    def label(self) -> str:
        """``2of4``: for client ids and checkpoint files."""
        return f"{self.index}of{self.count}"

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def topic_filters(compounds: Iterable[str]) -> list[str]:
    """The topic filters of ``compounds``: data, event and state of every gateway of each."""
    return [subscription(channel, compound) for compound in sorted(set(compounds)) for channel in CHANNELS]
