"""The gateway's own counters: monotonic totals, safe to bump from any thread."""

from __future__ import annotations

import threading
from collections.abc import Mapping

# name -> (English, 中文); the order is the order of logs and of ``sitewatch gateway status``.
COUNTERS: dict[str, tuple[str, str]] = {
    "read": ("readings handed over by connectors", "采集读数"),
    "buffered": ("readings written to the disk queue", "写入缓存读数"),
    "rejected": ("readings refused before queueing (invalid)", "拒收读数"),
    "sent": ("readings published", "发送读数"),
    "acknowledged": ("readings acknowledged by the broker (PUBACK)", "已确认读数"),
    "replayed": ("readings published from the backlog after an outage", "补发读数"),
    "dropped": ("readings dropped: disk budget full, or a failed disk write", "丢弃读数"),
    "events_read": ("events handed over by connectors", "采集事件"),
    "events_acknowledged": ("events acknowledged by the broker", "已确认事件"),
    "events_dropped": ("events dropped because the disk budget was full", "丢弃事件"),
    "events_rejected": ("events refused before queueing (invalid)", "拒收事件"),
    "queue_errors": ("disk queue writes that failed (disk full, I/O error)", "队列写入失败"),
    "messages_sent": ("MQTT messages published (data and event)", "发送消息"),
    "messages_acknowledged": ("MQTT messages acknowledged", "已确认消息"),
    "connects": ("successful broker connections", "连接次数"),
    "connect_failures": ("failed connection attempts", "连接失败"),
    "disconnects": ("connections lost", "断线次数"),
    "refused_by_broker": ("publishes the broker refused (not authorised)", "被服务器拒绝"),
    "births": ("birth messages published", "上线消息"),
    "host_offline": ("times the central host went offline (wait_for_host)", "中心离线次数"),
    "host_state_rejected": ("invalid central host state messages", "无效中心状态消息"),
    "commands": ("commands executed", "执行命令"),
    "commands_rejected": ("invalid commands refused", "拒绝命令"),
    "reloads_failed": ("reloads refused for an invalid configuration", "重载失败"),
    "connector_errors": ("connector errors (their own counters plus crashes)", "连接器错误"),
    "connector_crashes": ("connector tasks that raised and were restarted", "连接器崩溃"),
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
