"""What every behaviour model provides: per-device state and a vectorised ``generate`` over a time grid."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from ...contract import DeviceKind
from ..calendar import occupancy
from ..site import Device, Site
from ..view import FaultView, Injected

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

# (position in rows, ts_ms, event name, active, attrs)
RawEvent = tuple[int, int, str, bool | None, dict[str, str]]


@dataclass(slots=True)
class SiteContext:
    """What the models of one compound share: its weather salt, how many residents travel at
    Spring Festival, whether its lamps dim after midnight, and the water network all meters read."""

    site: Site
    seed: tuple[int, int]  # (run seed, site index): models derive their own generators from it
    salt: float
    away: float
    dims_at_night: bool
    shared: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def draw(cls, site: Site, seed: tuple[int, int]) -> SiteContext:
        """A context with the compound's traits drawn from ``seed``."""
        rng = np.random.default_rng([*seed, 55])
        return cls(site, seed, _salt(site.compound), float(rng.uniform(0.2, 0.45)), bool(rng.random() < 0.5))

    def occupancy(self, ts_ms: I64) -> F64:
        """Share of residents at home at ``ts_ms`` (holidays empty the compound somewhat)."""
        return occupancy(ts_ms, self.away)


@dataclass(slots=True)
class Output:
    """Readings of a (rows x times) grid, one array per metric (NaN: not reported), and raised events."""

    values: dict[str, npt.NDArray[Any]]
    events: list[RawEvent] = field(default_factory=list)


class KindModel(ABC):
    """Behaviour of the devices of one kind (and one reporting interval) of one compound.

    ``generate(rows, times, faults)`` returns what devices ``rows`` report at ``times`` (shape
    rows x n, increasing along each row) and advances their state (registers, sessions) past them.
    Each device's times must come after the times of its previous call.
    """

    kind: ClassVar[DeviceKind]
    metrics: ClassVar[tuple[str, ...]]

    def __init__(
        self,
        ctx: SiteContext,
        devices: Sequence[Device],
        interval_s: int,
        rng: np.random.Generator,
        start_ms: int,
    ) -> None:
        self.ctx = ctx
        self.site = ctx.site
        self.devices = list(devices)
        self.n = len(self.devices)
        self.interval_s = interval_s
        self.interval_ms = interval_s * 1000
        self.dt_h = interval_s / 3600.0
        self.rng = rng
        self.start_ms = start_ms
        self.salt = ctx.salt

    @staticmethod
    def interval_for(device: Device) -> int:
        """Reporting interval of ``device`` in seconds."""
        raise NotImplementedError

    @abstractmethod
    def generate(self, rows: I64, times: I64, faults: FaultView) -> Output:
        """Readings and events of devices ``rows`` at ``times``; advances their state.

        ``faults`` has been told the grid (:meth:`FaultView.begin`): ask it for masks by name.
        """

    def window(self, a: int, b: int) -> None:  # noqa: B027 - optional hook
        """Called once per window [a, b) before the block's grids are generated."""

    def fault_ended(self, row: int, fault: Injected) -> None:  # noqa: B027 - optional hook
        """Called once a fault of device ``row`` is over (e.g. a replaced battery is full again)."""

    def describe(self) -> dict[str, F64]:
        """Per-device traits the model drew (residents served, daily water...), for devices.parquet."""
        return {}

    def attr(self, key: str, default: float) -> F64:
        """A numeric device attribute per device, ``default`` where the ledger has none."""
        out = np.full(self.n, default, dtype=np.float64)
        for i, d in enumerate(self.devices):
            value = d.attrs.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool):
                out[i] = float(value)
        return out

    def age_days(self, now_ms: int) -> F64:
        """Days each device has been in service (from its install date, else one year)."""
        out = np.full(self.n, 365.0)
        for i, d in enumerate(self.devices):
            installed = d.attrs.get("install_date")
            if installed is not None and hasattr(installed, "toordinal"):
                epoch_days = installed.toordinal() - 719163  # 1970-01-01
                out[i] = max(1.0, now_ms / 86_400_000 - epoch_days)
        return out


def _salt(text: str) -> float:
    """A stable number per compound (Python's hash() is salted per process)."""
    return float(sum((i + 1) * ord(ch) for i, ch in enumerate(text)) % 997) / 9.97


def cumulative(start: F64, increments: F64) -> F64:
    """Register values: ``start`` per row plus the running sum of ``increments`` along each row."""
    return np.asarray(start[:, None] + np.cumsum(increments, axis=1), dtype=np.float64)
