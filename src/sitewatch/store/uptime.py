"""Uptime KPIs from the time stateful events were active: 1 - active time / (devices x window).

Uptime is counted the way availability rules count it (for chargers, 23 CFR 680.116: the share of
the period a port was not out of order): every device of the population counts for the whole
window, whether or not anything happened to it, and each device's time with the event active
(``Store.active_time``) is taken off.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .base import ActiveTime, DeviceRef


@dataclass(frozen=True, slots=True)
class UptimeRow:
    """One group's uptime in one window."""

    group: tuple[str, ...]
    ts_ms: int  # the window's start
    devices: int
    active_ms: int  # summed over the group's devices
    covered_ms: int  # devices x the part of the window inside the range

    @property
    def uptime(self) -> float:
        """Share of the covered time without the event active (1.0 for an empty window)."""
        return 1.0 - self.active_ms / self.covered_ms if self.covered_ms else 1.0


def uptime_rows(
    active: Iterable[ActiveTime],
    population: Iterable[DeviceRef],
    spans: Sequence[tuple[int, int]],
    start_ms: int,
    group_by: Sequence[str],
) -> list[UptimeRow]:
    """Uptime per group and window; a device with active time but not in ``population`` joins it.

    ``spans`` are the windows as (label, end) (``windows.windows``); a window that begins before
    ``start_ms`` covers only the part from ``start_ms``. Rows are ordered by group, then window.
    """
    devices: dict[str, DeviceRef] = {d.device: d for d in population}
    by_window: dict[tuple[str, int], int] = defaultdict(int)
    for item in active:
        devices.setdefault(item.device.device, item.device)
        by_window[(item.device.device, item.ts_ms)] += item.active_ms
    members: dict[tuple[str, ...], list[str]] = defaultdict(list)
    for ref in devices.values():
        members[tuple(ref.tag(k) for k in group_by)].append(ref.device)
    rows = []
    for group in sorted(members):
        names = members[group]
        for label, end in spans:
            length = end - max(label, start_ms)
            if length <= 0:
                continue
            spent = sum(by_window.get((name, label), 0) for name in names)
            rows.append(UptimeRow(group, label, len(names), spent, length * len(names)))
    return rows
