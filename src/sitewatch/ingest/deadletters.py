"""Watch the dead-letter topic: what ingest refused, one line per message, for a person to read."""

from __future__ import annotations

import json
import queue
import threading
import time

import click

from ..contract import DEADLETTER_TOPIC
from ..i18n import N_, _
from ..mqtt_client import client_for, connect_options
from ..settings import MqttSettings

# what each rejection reason means, for the person reading the dead letters (the code stays as it is)
REASONS: dict[str, str] = {
    "oversized": N_("payload too large"),
    "bad_json": N_("not valid JSON"),
    "bad_shape": N_("message shape wrong"),
    "unknown_version": N_("unknown schema version"),
    "bad_topic": N_("wrong topic"),
    "compound_mismatch": N_("another compound than its topic"),
    "gateway_mismatch": N_("another gateway than its topic"),
    "too_many_samples": N_("too many samples or events"),
    "bad_device_id": N_("invalid device id"),
    "foreign_device": N_("device of another compound"),
    "unknown_device": N_("device not in the registry"),
    "unknown_kind": N_("unknown device kind"),
    "kind_mismatch": N_("kind differs from the registry"),
    "unknown_metric": N_("unknown metric"),
    "unknown_event": N_("unknown event"),
    "bad_value": N_("value not a number"),
    "non_finite": N_("NaN or infinity"),
    "out_of_range": N_("value out of range"),
    "bad_timestamp": N_("invalid timestamp"),
    "ts_future": N_("timestamp in the future"),
    "ts_past": N_("timestamp too old"),
    "store_refused": N_("refused by the store"),
}


SUBSCRIBE_WAIT_S = 10.0  # how long the watcher waits for the broker to confirm its subscription


def describe(body: dict[str, object]) -> str:
    """One line for a person about a dead letter, in the current language."""
    reason = str(body.get("reason", "?"))
    meaning = REASONS.get(reason)
    return _(
        "{reason} ({meaning}) {topic}: {count} rejection(s), {size} bytes: {detail}",
        reason=reason,
        meaning=_(meaning) if meaning else "?",
        topic=body.get("topic", "?"),
        count=body.get("rejection_count", "?"),
        size=body.get("payload_bytes", "?"),
        detail=body.get("detail", ""),
    )


def watch(
    settings: MqttSettings, *, count: int | None, timeout_s: float | None, as_json: bool
) -> int:
    """Print dead letters until ``count`` were shown, ``timeout_s`` passed or Ctrl-C; how many were shown."""
    received: queue.SimpleQueue[bytes] = queue.SimpleQueue()
    client = client_for(settings, "", keep_session=False)  # the broker names it
    client.on_connect = lambda c, u, f, rc, p: c.subscribe(DEADLETTER_TOPIC, qos=1)
    client.on_message = lambda c, u, m: received.put(bytes(m.payload))
    subscribed = threading.Event()
    client.on_subscribe = lambda *args: subscribed.set()
    client.connect(
        settings.host, settings.port, settings.keepalive_s, **connect_options(settings, keep_session=False)
    )
    client.loop_start()
    subscribed.wait(SUBSCRIBE_WAIT_S)  # "watching" once the broker has the subscription
    click.echo(_("watching {topic} on {url} (Ctrl-C to stop)", topic=DEADLETTER_TOPIC, url=settings.url), err=True)
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
            click.echo(json.dumps(body, ensure_ascii=False) if as_json else describe(body))
            shown += 1
    except KeyboardInterrupt:
        pass
    finally:
        client.disconnect()
        client.loop_stop()
    return shown
