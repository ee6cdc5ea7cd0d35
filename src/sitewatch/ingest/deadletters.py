"""Watch the dead-letter topic: what ingest refused, one line per message."""

from __future__ import annotations

import json
import queue
import time

import click

from ..contract import DEADLETTER_TOPIC
from ..mqtt_client import client_for, connect_options
from ..settings import MqttSettings

_LINE = {
    "en": "{reason:<18} {topic}  ({count} rejection(s), {size} bytes): {detail}",
    "zh-CN": "{reason:<18} {topic}（{count} 处被拒，{size} 字节）：{detail}",
}
_CONNECTING = {
    "en": "watching {topic} on {url} (Ctrl-C to stop)",
    "zh-CN": "正在 {url} 上监听 {topic}（Ctrl-C 停止）",
}


def describe(body: dict[str, object], lang: str) -> str:
    """One human line for a dead letter."""
    template = _LINE["zh-CN" if lang.startswith("zh") else "en"]
    return template.format(
        reason=body.get("reason", "?"),
        topic=body.get("topic", "?"),
        count=body.get("rejection_count", "?"),
        size=body.get("payload_bytes", "?"),
        detail=body.get("detail", ""),
    )


def watch(
    settings: MqttSettings, *, count: int | None, timeout_s: float | None, as_json: bool, lang: str
) -> int:
    """Print dead letters until ``count`` were shown, ``timeout_s`` passed or Ctrl-C; how many were shown."""
    received: queue.SimpleQueue[bytes] = queue.SimpleQueue()
    client = client_for(settings, "", keep_session=False)  # the broker names it
    client.on_connect = lambda c, u, f, rc, p: c.subscribe(DEADLETTER_TOPIC, qos=1)
    client.on_message = lambda c, u, m: received.put(bytes(m.payload))
    client.connect(
        settings.host, settings.port, settings.keepalive_s, **connect_options(settings, keep_session=False)
    )
    client.loop_start()
    key = "zh-CN" if lang.startswith("zh") else "en"
    click.echo(_CONNECTING[key].format(topic=DEADLETTER_TOPIC, url=settings.url), err=True)
    shown = 0
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    try:
        while count is None or shown < count:
            wait = 0.5 if deadline is None else deadline - time.monotonic()
            if wait <= 0:
                break
            try:
                payload = received.get(timeout=min(wait, 0.5))
            except queue.Empty:
                continue
            try:
                body = json.loads(payload)
            except ValueError:
                body = {"reason": "?", "detail": payload[:200].decode("utf-8", "replace")}
            click.echo(json.dumps(body, ensure_ascii=False) if as_json else describe(body, lang))
            shown += 1
    except KeyboardInterrupt:
        pass
    finally:
        client.disconnect()
        client.loop_stop()
    return shown
