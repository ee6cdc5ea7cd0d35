"""An MQTT 3.1.1 broker inside this process (amqtt), for the demo on machines without Mosquitto."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

from .services import free_port

log = logging.getLogger(__name__)


def _broker_class() -> Any:
    """amqtt's Broker, sending a retained message only to sessions subscribed to it.

    amqtt 0.12.1, when a client connects, publishes to it the retained messages of every topic
    filter any session subscribed to, not only its own: a consumer of findings that connected
    after another subscribed to the gateways' retained ``state`` received birth messages it never
    asked for. Here a retained message goes to a session only for a filter that session holds. And a
    connection's socket is closed when its handler ends (amqtt leaves it to the garbage collector,
    which warns).
    """
    from amqtt.broker import Broker

    class SubscribedOnlyBroker(Broker):
        async def _publish_retained_messages_for_subscription(
            self, subscription: tuple[str, int], session: Any
        ) -> None:
            holders = self._subscriptions.get(subscription[0], [])
            if any(holder is session for holder, _ in holders):
                await super()._publish_retained_messages_for_subscription(subscription, session)

        async def stream_connected(
            self, reader: Any, writer: asyncio.StreamWriter, listener_name: str
        ) -> None:
            try:
                await super().stream_connected(reader, writer, listener_name)
            finally:  # amqtt does not close a connection's socket when its handler ends or is cancelled
                writer.close()

    return SubscribedOnlyBroker


async def _cancel_others() -> None:
    """Cancel every task of the running loop but this one and wait for them (a connection's handler
    closes its socket as it ends: ``stream_connected`` above)."""
    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.sleep(0)  # closed transports' callbacks run


class EmbeddedBroker:
    """amqtt on 127.0.0.1:<port>, run by an asyncio loop in a daemon thread."""

    name = "amqtt"

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._broker: Any = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        """Broker URL for settings."""
        return f"mqtt://127.0.0.1:{self.port}"

    def _config(self) -> dict[str, Any]:
        return {
            "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{self.port}"}},
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
        }

    def start(self, timeout: float = 20.0) -> None:
        """Start the broker thread and wait until the port answers."""
        broker_class = _broker_class()

        # amqtt logs every connection at INFO; the demo's own display says what matters
        for name in ("amqtt", "transitions"):
            logging.getLogger(name).setLevel(logging.WARNING)
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()

        def main() -> None:
            assert self._loop is not None
            asyncio.set_event_loop(self._loop)
            try:
                self._broker = broker_class(self._config(), loop=self._loop)
                self._loop.run_until_complete(self._broker.start())
            except BaseException as exc:  # reported by start()
                self._error = exc
                ready.set()
                return
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=main, name="amqtt-broker", daemon=True)
        self._thread.start()
        ready.wait(timeout)
        if self._error is not None:
            raise RuntimeError(f"embedded MQTT broker failed to start: {self._error}") from self._error
        if not ready.is_set():
            raise RuntimeError(f"embedded MQTT broker not ready after {timeout:.0f} s")

    @property
    def running(self) -> bool:
        """Whether the broker thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float = 10.0) -> None:
        """Shut the broker down and end its thread."""
        if self._loop is None or self._broker is None:
            return
        loop = self._loop
        future = asyncio.run_coroutine_threadsafe(self._broker.shutdown(), loop)
        try:
            future.result(timeout)
        except Exception as exc:  # shutting down: say so, go on
            log.warning("embedded broker shutdown: %s", exc)
        # amqtt leaves each connection's handler task pending after its shutdown: cancelled and awaited
        # here, so their sockets are closed now rather than warned about when the loop is collected
        rest = asyncio.run_coroutine_threadsafe(_cancel_others(), loop)
        try:
            rest.result(timeout)
        except Exception as exc:
            log.warning("embedded broker shutdown: %s", exc)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout)
        if not loop.is_running():
            loop.close()
        self._loop = None
