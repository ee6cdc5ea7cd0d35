"""The gateway's own counters: monotonic totals, safe to bump from any thread."""

from __future__ import annotations

import threading
from collections.abc import Mapping

from ..i18n import N_

# name -> meaning (a catalog message); the order is the order of logs and of ``sitewatch gateway status``.
COUNTERS: dict[str, str] = {
    "read": N_("readings handed over by connectors"),
    "buffered": N_("readings written to the disk queue"),
    "rejected": N_("readings refused before queueing (invalid)"),
    "sent": N_("readings published"),
    "acknowledged": N_("readings acknowledged by the broker (PUBACK)"),
    "replayed": N_("readings published from the backlog after an outage"),
    "dropped": N_("readings dropped: disk budget full, or a failed disk write"),
    "events_read": N_("events handed over by connectors"),
    "events_acknowledged": N_("events acknowledged by the broker"),
    "events_dropped": N_("events dropped because the disk budget was full"),
    "events_rejected": N_("events refused before queueing (invalid)"),
    "queue_errors": N_("disk queue writes that failed (disk full, I/O error)"),
    "messages_sent": N_("MQTT messages published (data and event)"),
    "messages_acknowledged": N_("MQTT messages acknowledged"),
    "connects": N_("successful broker connections"),
    "connect_failures": N_("failed connection attempts"),
    "disconnects": N_("connections lost"),
    "refused_by_broker": N_("publishes the broker refused (not authorised)"),
    "births": N_("birth messages published"),
    "host_offline": N_("times the central host went offline (wait_for_host)"),
    "host_state_rejected": N_("invalid central host state messages"),
    "commands": N_("commands executed"),
    "commands_rejected": N_("invalid commands refused"),
    "reloads_failed": N_("reloads refused for an invalid configuration"),
    "connector_errors": N_("connector errors (their own counters plus crashes)"),
    "connector_crashes": N_("connector tasks that raised and were restarted"),
}


class Counters:
    """Named monotonic totals."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, int] = dict.fromkeys(COUNTERS, 0)

    def add(self, name: str, amount: int = 1) -> None:
        """Add ``amount`` to counter ``name``."""
        if amount:
            with self._lock:
                self._values[name] = self._values.get(name, 0) + amount

    def get(self, name: str) -> int:
        """Current value of ``name``."""
        return self._values.get(name, 0)

    def snapshot(self) -> dict[str, int]:
        """A copy of every counter."""
        with self._lock:
            return dict(self._values)


def merge(own: Mapping[str, int], connectors: Mapping[str, Mapping[str, int]]) -> dict[str, int]:
    """One flat map: the gateway's counters plus ``<connector>.<counter>`` for each connector."""
    out = dict(own)
    for name, values in connectors.items():
        for key, value in values.items():
            out[f"{name}.{key}"] = int(value)
    return out
