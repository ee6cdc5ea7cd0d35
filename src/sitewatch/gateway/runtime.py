"""One site gateway: connectors → disk queue → broker, with liveness, commands and counters."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..contract import Channel, DeviceInfo, DeviceKind, Event, Sample, StatsMessage, now_ms
from .commands import CommandError, CommandName, parse_command
from .config import GatewayConfig, GatewayConfigError, build_connectors, load_config
from .connectors.base import Connector
from .counters import Counters, merge
from .publisher import Publisher
from .queue import DiskQueue
from .sink import QueueSink

log = logging.getLogger(__name__)

_STATIC_FIELDS = ("compound", "gateway", "mqtt", "queue")


class Gateway:
    """Runs connectors, the disk queue and the publisher until told to stop.

    ``connectors`` overrides the ones built from ``config`` (for embedding and tests);
    ``config_path`` is what the ``reload`` command re-reads.
    """

    restart_delay_s = 5.0  # pause before restarting a connector whose task raised

    def __init__(
        self,
        config: GatewayConfig,
        *,
        config_path: Path | None = None,
        connectors: Sequence[Connector] | None = None,
    ) -> None:
        self.config = config
        self.config_path = config_path
        self.connectors: list[Connector] = (
            list(connectors) if connectors is not None else build_connectors(config)
        )
        self.counters = Counters()
        self.queue = DiskQueue(config.queue.path, config.queue.budget_bytes, config.queue.sync)
        self.publisher = Publisher(config, self.queue, self.counters, self.devices, self._command_received)
        self.sink = QueueSink(self.queue, self.counters, config.compound, self.publisher.wake)
        self.started = time.monotonic()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connector_stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._last_dropped = 0
        self._wake_counters = asyncio.Event()

    # ---- what the gateway reports ----------------------------------------------------------------
    def devices(self) -> list[DeviceInfo]:
        """The gateway itself plus every connector's devices (listed in the birth message)."""
        out = [DeviceInfo(self.config.device, DeviceKind.GATEWAY, "internal")]
        for connector in self.connectors:
            try:
                out.extend(connector.devices())
            except Exception:
                log.exception("connector %s could not list its devices", connector.name)
        return out

    def connector_counters(self) -> dict[str, dict[str, int]]:
        """Each connector's own counters."""
        out: dict[str, dict[str, int]] = {}
        for connector in self.connectors:
            try:
                out[connector.name] = {k: int(v) for k, v in connector.counters().items()}
            except Exception:
                out[connector.name] = {"errors": -1}
        return out

    def snapshot(self) -> dict[str, int]:
        """Every counter (the gateway's and ``<connector>.<name>``) plus the queue's gauges."""
        own = self.counters.snapshot()
        per_connector = self.connector_counters()
        own["connector_errors"] += sum(max(0, c.get("errors", 0)) for c in per_connector.values())
        out = merge(own, per_connector)
        out.update(
            queue_rows=self.queue.rows,
            queue_readings=self.queue.readings,
            queue_events=self.queue.events,
            queue_bytes=self.queue.bytes,
            budget_bytes=self.queue.budget_bytes,
            bdseq=self.publisher.bdseq,
            connected=int(self.publisher.connected),
            uptime_s=int(time.monotonic() - self.started),
        )
        if self.config.wait_for_host:
            host = self.publisher.host_online
            out["host_online"] = -1 if host is None else int(host)  # -1: not heard yet
        latencies = sorted(self.publisher.live_latency_ms)
        if latencies:  # the last 10,000 live batches: queued -> acknowledged
            out["live_latency_p50_ms"] = latencies[len(latencies) // 2]
            out["live_latency_max_ms"] = latencies[-1]
        return out

    def _counter_sample(self, snap: dict[str, int]) -> Sample:
        devices = [d for d in self.devices() if d.kind is not DeviceKind.GATEWAY]
        online = sum(1 for d in devices if d.device not in self.sink.offline)
        values = {
            "uptime": snap["uptime_s"],
            "queue_depth": snap["queue_readings"],
            "queue_bytes": snap["queue_bytes"],
            "read_total": snap["read"],
            "sent_total": snap["sent"],
            "acked_total": snap["acknowledged"],
            "replayed_total": snap["replayed"],
            "dropped_total": snap["dropped"],
            "connector_errors_total": snap["connector_errors"],
            "devices_online": online,
        }
        return Sample(
            self.config.device, DeviceKind.GATEWAY, now_ms(), {k: float(v) for k, v in values.items()}
        )

    # ---- running -----------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Serve until ``stop`` is set; then stop connectors, flush, publish the death, close."""
        self._loop = asyncio.get_running_loop()
        self.publisher.start()
        self._start_connectors()
        reporter = asyncio.create_task(self._report_counters(stop))
        log.info(
            "gateway %s of compound %s running with %s connectors",
            self.config.gateway,
            self.config.compound,
            len(self.connectors),
        )
        try:
            await stop.wait()
        finally:
            await self._stop_connectors()
            reporter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reporter
            await asyncio.to_thread(self.publisher.stop, self.config.drain_timeout_s)
            self._save_counters()
            self.queue.close()

    def _start_connectors(self) -> None:
        self._connector_stop = asyncio.Event()
        self._tasks = [
            asyncio.create_task(self._supervise(c, self._connector_stop), name=f"connector-{c.name}")
            for c in self.connectors
        ]

    async def _stop_connectors(self) -> None:
        self._connector_stop.set()
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=10)
            for task in pending:
                log.warning("connector task %s did not stop in 10 s; cancelling", task.get_name())
                task.cancel()
        self._tasks = []

    async def _supervise(self, connector: Connector, stop: asyncio.Event) -> None:
        """Run a connector; if it raises, count, log and start it again after a pause."""
        while not stop.is_set():
            try:
                await connector.run(self.sink, stop)
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                self.counters.add("connector_crashes")
                self.counters.add("connector_errors")
                log.exception(
                    "connector %s failed; restarting in %.0f s",
                    connector.name,
                    self.restart_delay_s,
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.restart_delay_s)

    async def _report_counters(self, stop: asyncio.Event) -> None:
        wait = min(5.0, self.config.counters_interval_s)  # a first report soon after start
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake_counters.wait(), wait)
            wait = self.config.counters_interval_s
            self._wake_counters.clear()
            if stop.is_set():
                return
            self.report()

    def report(self) -> dict[str, int]:
        """Log the counters, keep them in the queue file, publish them, flag new drops."""
        snap = self.snapshot()
        self._save_counters(snap)
        log.info(
            "counters: read %s, buffered %s, sent %s, acknowledged %s, replayed %s, dropped %s, "
            "rejected %s, connector errors %s, queue %s readings / %s bytes; connectors: %s",
            snap["read"],
            snap["buffered"],
            snap["sent"],
            snap["acknowledged"],
            snap["replayed"],
            snap["dropped"],
            snap["rejected"],
            snap["connector_errors"],
            snap["queue_readings"],
            snap["queue_bytes"],
            {k: v for k, v in snap.items() if "." in k},
        )
        if self.publisher.connected:
            if self.publisher.birth_devices and frozenset(self.devices()) != self.publisher.birth_devices:
                log.info("the device list changed; publishing a new birth")
                self.publisher.rebirth()
            self.publisher.send_direct([self._counter_sample(snap)])
            stats = StatsMessage(
                self.config.compound, self.config.gateway, max(0, snap["bdseq"]), now_ms(), snap
            )
            self.publisher.send_message(Channel.STATS, stats.encode(), retain=True)
        dropped = snap["dropped"] - self._last_dropped
        if dropped > 0 and self.publisher.connected:  # one event per outage, not one the budget eats
            self._last_dropped = snap["dropped"]
            overflow = Event(
                self.config.device,
                DeviceKind.GATEWAY,
                now_ms(),
                "queue_overflow",
                None,
                {"dropped_readings": str(dropped), "budget_bytes": str(self.queue.budget_bytes)},
            )
            self.sink.events([overflow])
        return snap

    def _save_counters(self, snap: dict[str, Any] | None = None) -> None:
        try:
            self.queue.save_meta("counters", {"at_ms": now_ms(), **(snap or self.snapshot())})
        except Exception:
            log.debug("could not save counters", exc_info=True)

    # ---- commands ----------------------------------------------------------------------------
    def _command_received(self, payload: bytes) -> None:
        """Called from the MQTT thread: hand the command to the event loop."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(lambda: asyncio.ensure_future(self.handle_command(payload)))

    async def handle_command(self, payload: bytes) -> bool:
        """Execute one command; invalid ones are logged and counted, never raised."""
        try:
            command = parse_command(payload)
        except CommandError as exc:
            self.counters.add("commands_rejected")
            log.warning("command refused: %s", exc)
            return False
        log.info("command received: %s", command.name)
        if command.name is CommandName.REBIRTH:
            self.publisher.rebirth()
        elif not await self.reload():
            return False
        self.counters.add("commands")
        return True

    async def reload(self) -> bool:
        """Re-read the configuration file and restart the connectors with it."""
        if self.config_path is None:
            self.counters.add("reloads_failed")
            log.warning("reload refused: this gateway was not started from a file")
            return False
        try:
            new = load_config(self.config_path)
            connectors = build_connectors(new)
        except GatewayConfigError as exc:
            self.counters.add("reloads_failed")
            log.error("reload refused, the running configuration stays: %s", exc)
            return False
        for name in _STATIC_FIELDS:
            if getattr(new, name) != getattr(self.config, name):
                log.warning("reload: %r changed; it takes effect after a restart", name)
        await self._stop_connectors()
        self.config = self.config.model_copy(
            update={"connectors": new.connectors, "counters_interval_s": new.counters_interval_s}
        )
        self.connectors = connectors
        self._start_connectors()
        self.publisher.rebirth()
        log.info("reloaded: %s connectors", len(connectors))
        return True


class GatewayThread:
    """A gateway running in a background thread with its own event loop (for embedding and benches)."""

    def __init__(self, gateway: Gateway) -> None:
        import threading

        self.gateway = gateway
        self.loop = asyncio.new_event_loop()
        self._stop = asyncio.Event()
        self.error: BaseException | None = None

        def target() -> None:
            asyncio.set_event_loop(self.loop)
            try:
                self.loop.run_until_complete(gateway.run(self._stop))
            except BaseException as exc:  # re-raised by stop()
                self.error = exc
            finally:
                self.loop.close()

        self.thread = threading.Thread(target=target, name="gateway", daemon=True)
        self.thread.start()

    def stop(self, timeout: float = 60.0) -> None:
        """Stop the gateway (flush, death, close) and wait for the thread; re-raise its error."""
        if self.thread.is_alive():
            self.loop.call_soon_threadsafe(self._stop.set)
            self.thread.join(timeout)
        if self.error is not None:
            raise self.error
