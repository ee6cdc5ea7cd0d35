"""OCPP 1.6J central system for the compound's EV chargers (``ocpp`` library over websockets).

Charge points connect to ``ws://<gateway>:<port>/<ocpp_id>`` with the ``ocpp1.6`` subprotocol.
The connection itself is the charger's liveness: online when it opens, offline when it closes
(websockets' ping/pong closes dead connections). A charger that reconnects without sending a
BootNotification is served like any other. Each connection has a token-bucket rate limit; calls
over the limit get a CallError and are counted. Payloads failing the OCPP schema get the library's
CallError and are counted as ``invalid``. Chargers with a password must use HTTP Basic auth, and a
charger silent for ``silence_timeout_s`` is disconnected. The payload mapping lives in
sitewatch/edge/ocpp_payloads.py, the configuration in ocpp_config.py.

What one charge point can make the gateway hold is bounded: a frame is at most
``max_message_bytes``, at most ``QUEUED_FRAMES`` frames wait to be handled (then websockets stops
reading the socket), answers nobody asked for (CallResult / CallError without a call of ours in
flight) are dropped and counted, a CallError echoes at most ``MAX_ECHO`` characters of what it
refuses, and at most ``MAX_OPEN_TRANSACTIONS`` open transactions are kept per device.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import traceback
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote

from ocpp.exceptions import GenericError, NotImplementedError, NotSupportedError, OCPPError
from ocpp.messages import Call, CallError, MessageType, unpack
from ocpp.routing import on
from ocpp.v16 import ChargePoint as _ChargePoint
from ocpp.v16 import call_result
from ocpp.v16.enums import Action, AuthorizationStatus, RegistrationStatus
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from ...contract import (
    OCPP_ERROR_CODES,
    OCPP_STATUSES,
    DeviceInfo,
    DeviceKind,
    Event,
    Sample,
    now_ms,
)
from ...edge.ocpp_payloads import KIND, energy_sample, meter_samples, parse_timestamp, status_update
from .base import ConnectorContext, Sink, TokenBucket, parse_config
from .ocpp_config import ChargerSpec, OcppConfig, authorized, parse_chargers

log = logging.getLogger(__name__)
# The ocpp library logs every frame at INFO; its own logger here stays at WARNING unless lowered.
wire_log = logging.getLogger(__name__ + ".wire")
wire_log.setLevel(logging.WARNING)
SUBPROTOCOL = "ocpp1.6"
QUEUED_FRAMES = 4  # frames received and waiting per connection; beyond, the socket is not read
MAX_ECHO = 200  # characters of a refused call's cause a CallError carries back
MAX_UNIQUE_ID = 36  # OCPP-J: a message's unique id is at most 36 characters
MAX_OPEN_TRANSACTIONS = 8  # per device; the oldest is forgotten beyond (a StopTransaction still maps)


def _iso_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class _CentralChargePoint(_ChargePoint):
    """The central system's side of one charge point connection."""

    def __init__(
        self, spec: ChargerSpec, connection: ServerConnection, owner: OcppConnector, sink: Sink
    ) -> None:
        super().__init__(spec.ocpp_id, connection, logger=wire_log)
        self.spec, self.owner, self.sink = spec, owner, sink
        self.bucket = TokenBucket(owner.rate_per_s, owner.burst)

    async def route_message(self, raw_msg: str | bytes) -> None:
        """Rate-limit, then route; invalid and unsupported calls are counted and answered with a CallError."""
        owner = self.owner
        owner.heard(self.id)
        if not self.bucket.take():
            owner.count("rate_limited", f"{self.id}: over {owner.rate_per_s:g} calls/s, call refused")
            with contextlib.suppress(OCPPError):
                msg = unpack(raw_msg)
                if msg.message_type_id == MessageType.Call:
                    await self._refuse(msg, GenericError(description="rate limit exceeded, slow down"))
            return
        try:
            msg = unpack(raw_msg)
        except OCPPError as exc:
            owner.count(
                "invalid", f"{self.id}: not an OCPP-J message ({exc.description}): {str(raw_msg)[:120]!r}"
            )
            return
        if msg.message_type_id != MessageType.Call:
            # only the answer to a call of ours in flight is wanted (the library's call() takes it
            # from this queue); any other would stay queued for good: drop it
            if self._call_lock.locked() and self._response_queue.empty():
                self._response_queue.put_nowait(msg)
            else:
                owner.count(
                    "unsolicited", f"{self.id}: an answer to no call of ours dropped ({str(raw_msg)[:60]!r})"
                )
            return
        try:
            await self._handle_call(msg)
        except (NotImplementedError, NotSupportedError) as exc:
            owner.count("unsupported", f"{self.id}: {str(msg.action)[:60]} not supported ({exc.description})")
            await self._refuse(msg, exc)
        except OCPPError as exc:
            cause = str(exc.details or "")[:MAX_ECHO]
            owner.count("invalid", f"{self.id}: {str(msg.action)[:60]} refused: {exc.description} {cause}")
            await self._refuse(msg, exc)
            _release(exc)

    async def _refuse(self, msg: Call, exc: OCPPError) -> None:
        """Answer a call with a CallError that echoes at most MAX_ECHO characters of its cause (the
        library's would carry the whole offending message back); a call whose unique id breaks
        OCPP-J (a string of at most 36 characters) gets no answer: it could not be matched anyway."""
        if not isinstance(msg.unique_id, str) or len(msg.unique_id) > MAX_UNIQUE_ID:
            self.owner.count("invalid", f"{self.id}: a call without a valid unique id; not answered")
            return
        cause = exc.details.get("cause") if isinstance(exc.details, dict) else None
        details = {"cause": str(cause)[:MAX_ECHO]} if cause is not None else {}
        error = CallError(msg.unique_id, exc.code, str(exc.description)[:MAX_ECHO], details)
        await self._send(error.to_json())

    @on(Action.boot_notification)
    def on_boot(self, charge_point_vendor: str, charge_point_model: str, **_: Any) -> Any:
        """Accept the charger and tell it the heartbeat interval."""
        self.owner.counters_["boots"] += 1
        log.info(
            "ocpp %s: %s booted (%s %s)",
            self.owner.name,
            self.id,
            charge_point_vendor,
            charge_point_model,
        )
        return call_result.BootNotification(
            current_time=_iso_now(),
            interval=int(self.owner.heartbeat_interval_s),
            status=RegistrationStatus.accepted,
        )

    @on(Action.heartbeat)
    def on_heartbeat(self, **_: Any) -> Any:
        """Answer with the central system's time."""
        self.owner.counters_["heartbeats"] += 1
        return call_result.Heartbeat(current_time=_iso_now())

    @on(Action.authorize)
    def on_authorize(self, id_tag: str, **_: Any) -> Any:
        """Accept every id tag (authorisation is the operator's billing system's business)."""
        return call_result.Authorize(id_tag_info={"status": AuthorizationStatus.accepted})

    @on(Action.status_notification)
    def on_status(self, connector_id: int, error_code: str, status: str, **kw: Any) -> Any:
        """Status and error code → metrics and events."""
        self.owner.status(self.spec, connector_id, status, error_code, kw.get("timestamp"), self.sink)
        return call_result.StatusNotification()

    @on(Action.meter_values)
    def on_meter_values(self, connector_id: int, meter_value: list[Any], **_: Any) -> Any:
        """Sampled values → readings."""
        self.owner.meter(self.spec.device_for(connector_id), meter_value, self.sink)
        return call_result.MeterValues()

    @on(Action.start_transaction)
    def on_start(self, connector_id: int, id_tag: str, meter_start: int, timestamp: str, **_: Any) -> Any:
        """Open a session: energy register reading and a session_started event."""
        tx = self.owner.start(self.spec, connector_id, meter_start, timestamp, self.sink)
        return call_result.StartTransaction(
            transaction_id=tx, id_tag_info={"status": AuthorizationStatus.accepted}
        )

    @on(Action.stop_transaction)
    def on_stop(self, meter_stop: int, timestamp: str, transaction_id: int, **kw: Any) -> Any:
        """Close a session: energy register reading and a session_stopped event."""
        self.owner.stop(self.spec, transaction_id, meter_stop, timestamp, kw, self.sink)
        return call_result.StopTransaction(id_tag_info={"status": AuthorizationStatus.accepted})


class OcppConnector:
    """An OCPP 1.6J central system serving the compound's charge points."""

    def __init__(
        self,
        name: str,
        chargers: list[ChargerSpec],
        *,
        host: str = "0.0.0.0",
        port: int = 9000,
        heartbeat_interval_s: float = 60,
        rate_per_s: float = 5,
        burst: float = 20,
        over_temperature_c: float = 70,
        silence_timeout_s: float | None = None,
        path: str = "/",
        max_message_bytes: int = 65_536,
    ) -> None:
        self.name = name
        self.path = "/" + path.strip("/")  # chargers connect to <path>/<ocpp_id>
        self.max_message_bytes = max_message_bytes
        self.host, self.port = host, port
        self.heartbeat_interval_s = heartbeat_interval_s
        self.rate_per_s, self.burst = rate_per_s, burst
        self.over_temperature_c = over_temperature_c
        # a charger silent this long (no call at all) is disconnected; default: 3 heartbeat intervals
        self.silence_timeout_s = 3 * heartbeat_interval_s if silence_timeout_s is None else silence_timeout_s
        self._last_heard: dict[str, float] = {}
        self.chargers = {c.ocpp_id: c for c in chargers}
        self.counters_: Counter[str] = Counter()
        self.bound_port: int | None = None  # the port actually listened on (``port: 0`` picks one)
        self.listening = asyncio.Event()
        self._connections: dict[str, ServerConnection] = {}
        self._status: dict[str, tuple[str, str]] = {}  # device → last (status, error code)
        self._hot: set[str] = set()
        self._transactions: dict[int, tuple[str, float]] = {}
        self._next_tx = int(time.time()) % 1_000_000_000
        self._logged: Counter[str] = Counter()

    @classmethod
    def from_config(cls, spec: Mapping[str, Any], context: ConnectorContext) -> OcppConnector:
        """Build from a ``type: ocpp`` entry of gateway.yaml (validated by :class:`OcppConfig`)."""
        config = parse_config(OcppConfig, spec)
        silence = config.silence_timeout_s
        return cls(
            config.name,
            parse_chargers(config, context),
            host=config.host,
            port=config.port,
            heartbeat_interval_s=config.heartbeat_interval_s,
            rate_per_s=config.rate_limit_per_s,
            burst=config.rate_burst,
            over_temperature_c=config.over_temperature_c,
            silence_timeout_s=3 * config.heartbeat_interval_s if silence is None else silence,
            path=config.path,
            max_message_bytes=config.max_message_bytes,
        )

    def devices(self) -> list[DeviceInfo]:
        """Every charger device."""
        return [
            DeviceInfo(d, DeviceKind.CHARGER, "ocpp") for c in self.chargers.values() for d in c.all_devices
        ]

    def counters(self) -> Mapping[str, int]:
        """connections, boots, heartbeats, status, meter_values, transactions, readings, invalid,
        unsupported, rate_limited, rejected (values), unknown_charger, wrong_path, auth_failed, silent,
        unsolicited, no_subprotocol, oversized, events."""
        keys = (
            "connections", "boots", "heartbeats", "status", "meter_values", "transactions", "readings",
            "invalid", "unsupported", "rate_limited", "rejected", "unknown_charger", "wrong_path", "auth_failed",
            "silent", "unsolicited", "no_subprotocol", "oversized", "events",
        )  # fmt: skip
        return {k: self.counters_[k] for k in keys}

    def connected(self) -> list[str]:
        """OCPP ids of the chargers connected now."""
        return sorted(self._connections)

    def count(self, counter: str, detail: str) -> None:
        """Count a refusal and log it (the first time and every 100th time per kind)."""
        self.counters_[counter] += 1
        self._logged[counter] += 1
        if self._logged[counter] == 1 or self._logged[counter] % 100 == 0:
            log.warning("ocpp %s: %s (%s #%d)", self.name, detail, counter, self._logged[counter])

    # --- transport ---------------------------------------------------------------------------

    async def run(self, sink: Sink, stop: asyncio.Event) -> None:
        """Listen for charge points until ``stop`` is set."""

        async def handler(connection: ServerConnection) -> None:
            await self._serve(connection, sink)

        async with serve(
            handler,
            self.host,
            self.port,
            # OCPP-J: a client that does not offer ocpp1.6 completes the handshake without a
            # subprotocol and is then closed (1002) by _serve, rather than refused with HTTP 400
            select_subprotocol=lambda _, offered: (
                Subprotocol(SUBPROTOCOL) if SUBPROTOCOL in offered else None
            ),
            process_request=self._check_request,
            max_size=self.max_message_bytes,
            max_queue=QUEUED_FRAMES,
            compression=None,  # OCPP frames are small; a deflate context costs ~300 KB per connection
        ) as server:
            self.bound_port = _port_of(server)
            self.listening.set()
            log.info(
                "ocpp %s: central system listening on %s:%s",
                self.name,
                self.host,
                self.bound_port,
            )
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 1.0)
                await self._close_silent()
        self.listening.clear()

    def heard(self, ocpp_id: str) -> None:
        """Note that a charger sent something (for the silence watchdog)."""
        self._last_heard[ocpp_id] = time.monotonic()

    async def _close_silent(self) -> None:
        if not self.silence_timeout_s:
            return
        limit = time.monotonic() - self.silence_timeout_s
        for ocpp_id, connection in list(self._connections.items()):
            if self._last_heard.get(ocpp_id, limit + 1) < limit:
                self.count(
                    "silent", f"{ocpp_id}: nothing received for {self.silence_timeout_s:g} s; disconnected"
                )
                await connection.close(1001, "silent for too long")

    def _charger_of(self, path: str) -> ChargerSpec | None:
        """The charger of a request path: exactly ``<path>/<ocpp_id>`` (query string ignored)."""
        where, _, ocpp_id = path.split("?", 1)[0].rpartition("/")
        if (where or "/") != self.path:
            return None
        return self.chargers.get(unquote(ocpp_id))

    def _check_request(self, connection: ServerConnection, request: Request) -> Response | None:
        spec = self._charger_of(request.path)
        if spec is None:
            where = request.path.split("?", 1)[0].rpartition("/")[0] or "/"
            counter = "unknown_charger" if where == self.path else "wrong_path"
            self.count(
                counter,
                f"connection for {request.path[:120]!r} refused (chargers use {self.path.rstrip('/')}/<ocpp_id>)",
            )
            return Response(HTTPStatus.NOT_FOUND.value, "Not Found", Headers(), b"unknown charge point\n")
        if spec is not None and spec.password is not None and not authorized(spec, request):
            self.count("auth_failed", f"{spec.ocpp_id}: wrong or missing HTTP Basic credentials; refused")
            headers = Headers([("WWW-Authenticate", 'Basic realm="ocpp", charset="UTF-8"')])
            return Response(HTTPStatus.UNAUTHORIZED.value, "Unauthorized", headers, b"credentials required\n")
        return None

    async def _serve(self, connection: ServerConnection, sink: Sink) -> None:
        spec = self._charger_of(connection.request.path if connection.request else "")
        if spec is None:
            return
        if connection.subprotocol != SUBPROTOCOL:
            self.count("no_subprotocol", f"{spec.ocpp_id}: connected without the ocpp1.6 subprotocol; closed")
            await connection.close(1002, "ocpp1.6 subprotocol required")
            return
        previous = self._connections.get(spec.ocpp_id)
        if previous is not None:  # the charger reconnected before the old socket timed out
            await previous.close(1000, "replaced by a new connection")
        self._connections[spec.ocpp_id] = connection
        self.heard(spec.ocpp_id)
        self.counters_["connections"] += 1
        self._liveness(spec, sink, online=True)
        point = _CentralChargePoint(spec, connection, self, sink)
        try:
            await point.start()
        except ConnectionClosed as exc:
            if exc.sent is not None and exc.sent.code == 1009:  # websockets: "message too big"
                self.count(
                    "oversized", f"{spec.ocpp_id}: a frame over {self.max_message_bytes} bytes; closed"
                )
        finally:
            # the library's route map holds bound methods of the point: a reference cycle that would
            # keep the point, its connection and that connection's buffers until the cyclic
            # collector runs; breaking it frees them as soon as the connection ends
            point.route_map.clear()
            if self._connections.get(spec.ocpp_id) is connection:
                del self._connections[spec.ocpp_id]
                self._liveness(spec, sink, online=False)

    def _liveness(self, spec: ChargerSpec, sink: Sink, *, online: bool) -> None:
        name = "online" if online else "offline"
        log.info("ocpp %s: %s is %s", self.name, spec.ocpp_id, name)
        self._emit(sink, [Event(d, KIND, now_ms(), name) for d in spec.all_devices])

    def _emit(self, sink: Sink, events: list[Event]) -> None:
        if events:
            self.counters_["events"] += len(events)
            sink.events(events)

    def _put(self, sink: Sink, samples: list[Sample]) -> None:
        if samples:
            self.counters_["readings"] += sum(len(s.values) for s in samples)
            sink.samples(samples)

    # --- mapping -----------------------------------------------------------------------------

    def status(
        self, spec: ChargerSpec, connector_id: int, status: str, error_code: str, timestamp: Any, sink: Sink
    ) -> None:
        """Handle a StatusNotification (connector 0 is the whole charge point)."""
        self.counters_["status"] += 1
        if status not in OCPP_STATUSES or error_code not in OCPP_ERROR_CODES:
            self.count("rejected", f"{spec.ocpp_id}: unknown status {status!r} or error code {error_code!r}")
            return
        ts = parse_timestamp(timestamp) or now_ms()
        targets = spec.all_devices if connector_id == 0 else [spec.device_for(connector_id)]
        for device in targets:
            last = self._status.get(device)
            sample, events = status_update(
                device,
                last[0] if last else None,
                status,
                error_code,
                connector_id,
                ts,
                last[1] if last else None,
            )
            self._status[device] = (status, error_code)
            self._put(sink, [sample])
            self._emit(sink, events)

    def meter(self, device: str, meter_value: list[Any], sink: Sink) -> None:
        """Handle the meter values of MeterValues or StopTransaction."""
        self.counters_["meter_values"] += 1
        samples, refused = meter_samples(device, meter_value)
        for bad in refused:
            self.count("rejected", f"{device}: {bad.detail}")
        self._put(sink, samples)
        events: list[Event] = []
        for sample in samples:
            temperature = sample.values.get("temperature")
            if temperature is None:
                continue
            hot = temperature > self.over_temperature_c
            if hot != (device in self._hot):
                (self._hot.add if hot else self._hot.discard)(device)
                attrs = {"temperature": f"{temperature:g}", "limit": f"{self.over_temperature_c:g}"}
                events.append(Event(device, KIND, sample.ts_ms, "over_temperature", hot, attrs))
        self._emit(sink, events)

    def start(
        self, spec: ChargerSpec, connector_id: int, meter_start: int, timestamp: Any, sink: Sink
    ) -> int:
        """Handle StartTransaction; returns the new transaction id."""
        self.counters_["transactions"] += 1
        self._next_tx += 1
        tx = self._next_tx
        device = spec.device_for(connector_id)
        sample, ts = energy_sample(device, meter_start, timestamp, now_ms())
        if sample is None:
            self.count("rejected", f"{device}: meterStart {meter_start!r} Wh out of range")
        else:
            self._put(sink, [sample])
        mine = [t for t, (d, _) in self._transactions.items() if d == device]
        for old in mine[: max(0, len(mine) - MAX_OPEN_TRANSACTIONS + 1)]:  # never stopped: forget the oldest
            del self._transactions[old]
        self._transactions[tx] = (device, meter_start / 1000.0)
        attrs = {
            "transaction_id": str(tx),
            "connector": str(connector_id),
            "meter_start_kwh": f"{meter_start / 1000:g}",
        }
        self._emit(sink, [Event(device, KIND, ts, "session_started", None, attrs)])
        return tx

    def stop(
        self,
        spec: ChargerSpec,
        tx: int,
        meter_stop: int,
        timestamp: Any,
        extra: Mapping[str, Any],
        sink: Sink,
    ) -> None:
        """Handle StopTransaction (a transaction id from before a restart maps to the charger's device)."""
        device, start_kwh = self._transactions.pop(tx, (spec.device, None))
        if extra.get("transaction_data"):
            self.meter(device, extra["transaction_data"], sink)
        sample, ts = energy_sample(device, meter_stop, timestamp, now_ms())
        if sample is None:
            self.count("rejected", f"{device}: meterStop {meter_stop!r} Wh out of range")
        else:
            self._put(sink, [sample])
        attrs = {"transaction_id": str(tx), "reason": str(extra.get("reason") or "Local")}
        if start_kwh is not None:
            attrs["energy_kwh"] = f"{meter_stop / 1000 - start_kwh:.3f}"
        self._emit(sink, [Event(device, KIND, ts, "session_stopped", None, attrs)])


def connection_memory_bound(max_message_bytes: int) -> int:
    """Bytes one charge point connection can make the gateway hold at most: the frames queued and
    the one in hand, each with its parse and the schema error's copies (about four times its size).
    1.5 MiB with the default 64 KiB frames; measured in tests/gateway/test_connector_ocpp_memory.py."""
    return (QUEUED_FRAMES + 2) * 4 * max_message_bytes


def _release(exc: BaseException) -> None:
    """Let go of what a refusal's exceptions hold: the library raises it while handling the schema
    error, whose traceback's frames hold that error again (a cycle) and the offending call with its
    payload, which would then wait for the cyclic collector."""
    seen: BaseException | None = exc
    while seen is not None:
        if seen.__traceback__ is not None:
            traceback.clear_frames(seen.__traceback__)
        seen = seen.__context__
    if isinstance(exc, OCPPError):
        exc.details = {}


def _port_of(server: Server) -> int:
    for sock in server.sockets:
        return int(sock.getsockname()[1])
    raise RuntimeError("the OCPP server has no listening socket")
