"""The gateway against a real Mosquitto: PUBACK deletion, birth/death, bdseq, seq, commands, counters."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import paho.mqtt.publish as publish
import pytest
import yaml
from gwtools import (
    COMPOUND,
    GATEWAY,
    GatewayThread,
    Recorder,
    config,
    device_readings,
    first_arrivals,
    read_journal,
    wait_for,
)

from sitewatch.contract import Channel, DeviceInfo, DeviceKind, Event, Sample, decode_stats, now_ms, topic
from sitewatch.devtools.services import LocalService, MosquittoService
from sitewatch.gateway.connectors.base import Sink
from sitewatch.gateway.runtime import Gateway

pytestmark = pytest.mark.integration

CMD = topic(COMPOUND, GATEWAY, Channel.CMD)


def _recorder(broker: MosquittoService, name: str) -> Recorder:
    return Recorder(broker.port, f"sitewatch/v1/{COMPOUND}/#", f"rec-{name}-{os.getpid()}")


def test_everything_arrives_and_leaves_the_queue_only_on_puback(
    service_factory: Callable[..., LocalService], tmp_path: Path
) -> None:
    broker = service_factory("mosquitto")
    assert isinstance(broker, MosquittoService) and broker.proc is not None
    recorder = _recorder(broker, "puback")
    gw = Gateway(config(tmp_path, broker.port))
    runner = GatewayThread(gw)
    try:
        wait_for(lambda: gw.publisher.connected and gw.counters.get("acknowledged") > 0, 20, "first PUBACKs")
        # Freeze the broker: publishes still leave (TCP), PUBACKs stop. Nothing may leave the queue.
        os.kill(broker.proc.pid, signal.SIGSTOP)
        try:
            time.sleep(0.5)  # PUBACKs already on their way are read
            acked = gw.counters.get("acknowledged")
            wait_for(lambda: gw.counters.get("sent") > acked, 10, "publishes while the broker is frozen")
            time.sleep(1.0)
            unacked = gw.counters.get("sent") - acked
            assert gw.counters.get("acknowledged") == acked  # no PUBACK, no deletion
            assert gw.queue.readings >= unacked > 0  # published, not acknowledged: still on disk
        finally:
            os.kill(broker.proc.pid, signal.SIGCONT)
        journal = tmp_path / "journal.tsv"
        wait_for(lambda: len(read_journal(journal)) == 800, 30, "all samples produced")
        wait_for(lambda: gw.queue.rows == 0, 30, "queue drained")
        snap = gw.snapshot()
        assert snap["read"] == snap["buffered"] == snap["acknowledged"] == 800 * 6
        assert snap["dropped"] == snap["rejected"] == 0
    finally:
        runner.stop()
    produced = {(d, ts) for d, _, ts in read_journal(tmp_path / "journal.tsv")}
    wait_for(lambda: len(first_arrivals(device_readings(recorder.readings()))) == 800 * 6, 10, "arrivals")
    arrived = {(r.device, r.ts) for r in device_readings(recorder.readings())}
    assert arrived == produced
    recorder.close()


def test_birth_death_bdseq_and_seq(mosquitto: MosquittoService, tmp_path: Path) -> None:
    recorder = _recorder(mosquitto, "birth")
    cfg = config(tmp_path, mosquitto.port)
    bdseqs = []
    for _ in range(2):  # two boots on the same queue file
        gw = Gateway(cfg)
        runner = GatewayThread(gw)
        wait_for(lambda gw=gw: gw.queue.rows == 0 and gw.counters.get("acknowledged") == 800 * 6, 30, "drain")
        bdseqs.append(gw.publisher.bdseq)
        runner.stop()
    assert bdseqs[1] > bdseqs[0] >= 0
    wait_for(lambda: len([s for s in recorder.states() if not s.online]) >= 2, 10, "deaths")
    states = recorder.states()
    births = [s for s in states if s.online]
    assert [s.bdseq for s in births] == bdseqs
    assert [s.bdseq for s in states if not s.online] == bdseqs  # graceful deaths, same bdseq
    devices = {d.device: d.kind for d in births[0].devices}
    assert devices[GATEWAY] is DeviceKind.GATEWAY
    assert sorted(d for d, k in devices.items() if k is DeviceKind.WATER_METER) == [
        f"{COMPOUND}-SYNWM{i:04d}" for i in range(1, 5)
    ]
    # seq: 0, 1, 2 ... (mod 256) over the data and event messages of one bdseq, restarting at birth
    for bdseq in bdseqs:
        seqs = []
        for t, payload, _ in recorder.snapshot():
            body = orjson.loads(payload)
            if t.endswith(("/data", "/event")) and body["bdseq"] == bdseq:
                seqs.append(body["seq"])
        assert seqs and seqs == [i % 256 for i in range(len(seqs))]
    recorder.close()


def test_will_announces_death_when_the_gateway_vanishes(mosquitto: MosquittoService, tmp_path: Path) -> None:
    """A killed connection makes the broker publish the will: offline, with the session's bdseq."""
    recorder = _recorder(mosquitto, "will")
    gw = Gateway(config(tmp_path, mosquitto.port, connectors=[]))
    runner = GatewayThread(gw)
    try:
        wait_for(lambda: gw.publisher.connected, 10, "connected")
        bdseq = gw.publisher.bdseq
        session = gw.publisher._session
        assert session is not None
        sock = session.client.socket()
        assert sock is not None
        sock.close()  # the network drops without a DISCONNECT
        wait_for(lambda: any(not s.online and s.bdseq == bdseq for s in recorder.states()), 10, "will")
        wait_for(lambda: gw.publisher.connected and gw.publisher.bdseq > bdseq, 10, "reconnect, new bdseq")
        new = gw.publisher.bdseq  # its birth follows the CONNACK: wait until the recorder has it
        wait_for(lambda: any(s.online and s.bdseq == new for s in recorder.states()), 10, "the new birth")
        births = [s.bdseq for s in recorder.states() if s.online]
        assert births[-1] == gw.publisher.bdseq
    finally:
        runner.stop()
        recorder.close()


def test_commands_rebirth_reload_and_garbage(mosquitto: MosquittoService, tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    data = {
        "compound": COMPOUND,
        "gateway": GATEWAY,
        "mqtt": {"url": mosquitto.url},
        "queue": {"path": "queue.db"},
        "counters_interval_s": 60,
        "connectors": [{"type": "synthetic", "name": "m", "devices": 3, "interval_s": 0.5}],
    }
    path.write_text(yaml.safe_dump(data))
    from sitewatch.gateway.config import load_config

    recorder = _recorder(mosquitto, "cmd")
    gw = Gateway(load_config(path), config_path=path)
    runner = GatewayThread(gw)
    try:
        wait_for(lambda: len(recorder.states()) == 1, 10, "birth")

        def send(payload: bytes) -> None:
            publish.single(CMD, payload, qos=1, hostname="127.0.0.1", port=mosquitto.port)

        for garbage in (
            b"not json",
            b"[1]",
            b'{"command": "selfdestruct"}',
            b'{"v": 9, "command": "rebirth"}',
        ):
            send(garbage)
        wait_for(lambda: gw.counters.get("commands_rejected") == 4, 10, "garbage refused")
        send(b'{"command": "rebirth"}')
        wait_for(lambda: len(recorder.states()) == 2, 10, "rebirth")
        first, again = recorder.states()
        assert again.online and again.bdseq == first.bdseq and len(again.devices) == 4

        data["connectors"][0]["devices"] = 1  # type: ignore[index]
        path.write_text(yaml.safe_dump(data))
        send(b'{"command": "reload"}')
        wait_for(lambda: len(recorder.states()) == 3, 10, "birth after reload")
        assert len(recorder.states()[-1].devices) == 2  # the gateway and one meter

        path.write_text("compound: [")  # a broken file: refused, the running set-up stays
        send(b'{"command": "reload"}')
        wait_for(lambda: gw.counters.get("reloads_failed") == 1, 10, "reload refused")
        assert gw.counters.get("commands") == 2 and len(gw.connectors) == 1
        assert gw.publisher.connected
    finally:
        runner.stop()
        recorder.close()


def test_counters_are_published_as_contract_valid_gateway_samples(
    mosquitto: MosquittoService, tmp_path: Path
) -> None:
    recorder = _recorder(mosquitto, "counters")
    gw = Gateway(config(tmp_path, mosquitto.port, counters_interval_s=0.3))
    runner = GatewayThread(gw)
    try:
        wait_for(lambda: gw.queue.rows == 0 and gw.counters.get("acknowledged") == 800 * 6, 30, "drain")
        wait_for(
            lambda: any(r.metric == "acked_total" and r.value == 800 * 6 for r in recorder.readings()),
            10,
            "a counter sample after the drain",
        )
    finally:
        runner.stop()
        recorder.close()
    stats = [
        decode_stats(t, payload)
        for t, payload, _ in recorder.snapshot()
        if t == topic(COMPOUND, GATEWAY, Channel.STATS)
    ]
    assert stats and all(d.ok for d in stats)
    last = stats[-1].message
    assert last is not None and last.counters["meters.reads"] > 0 and last.counters["bdseq"] == last.bdseq
    assert {"read", "acknowledged", "dropped", "replayed", "connector_errors", "queue_readings"} <= set(
        last.counters
    )
    own = [r for r in recorder.readings() if r.device == GATEWAY]  # decode_data accepted them all
    metrics = {r.metric for r in own}
    assert {"read_total", "acked_total", "queue_depth", "dropped_total", "devices_online"} <= metrics
    assert max(r.value for r in own if r.metric == "devices_online") == 4
    assert gw.queue.load_meta is not None


class _FlakyConnector:
    """Raises on its first run, then hands over a few samples and reports its own counters."""

    name = "flaky"

    def __init__(self) -> None:
        self.runs = 0

    def devices(self) -> list[DeviceInfo]:
        return [DeviceInfo(f"{COMPOUND}-FL0001", DeviceKind.STREETLIGHT, "test")]

    def counters(self) -> dict[str, int]:
        return {"reads": self.runs, "errors": 3}

    async def run(self, sink: Sink, stop: asyncio.Event) -> None:
        self.runs += 1
        if self.runs == 1:
            raise RuntimeError("device bus exploded")
        ts = now_ms()
        sink.samples(
            [Sample(f"{COMPOUND}-FL0001", DeviceKind.STREETLIGHT, ts + i, {"power": 40.0}) for i in range(5)]
        )
        await stop.wait()


def test_a_crashing_connector_is_counted_and_restarted(mosquitto: MosquittoService, tmp_path: Path) -> None:
    flaky = _FlakyConnector()
    gw = Gateway(config(tmp_path, mosquitto.port, connectors=[]), connectors=[flaky])
    gw.restart_delay_s = 0.1
    runner = GatewayThread(gw)
    try:
        wait_for(lambda: gw.counters.get("acknowledged") == 5, 10, "samples after the restart")
        snap = gw.snapshot()
    finally:
        runner.stop()
    assert flaky.runs == 2 and snap["connector_crashes"] == 1
    assert snap["connector_errors"] == 1 + 3  # the crash plus the connector's own errors
    assert snap["flaky.reads"] == 2 and snap["flaky.errors"] == 3


def test_samples_and_events_keep_their_order_across_channels(
    mosquitto: MosquittoService, tmp_path: Path
) -> None:
    """A batch mixing samples and events goes out as data, event, data messages, in queue order."""
    recorder = _recorder(mosquitto, "mixed")
    mosquitto_port = mosquitto.port
    gw = Gateway(config(tmp_path, mosquitto_port, connectors=[]))
    dev = f"{COMPOUND}-EL0001"
    t0 = now_ms()
    gw.sink.samples([Sample(dev, DeviceKind.ELEVATOR, t0 + i, {"car_load": 10.0 + i}) for i in range(3)])
    gw.sink.events([Event(dev, DeviceKind.ELEVATOR, t0 + 3, "door_fault")])
    gw.sink.samples([Sample(dev, DeviceKind.ELEVATOR, t0 + 4 + i, {"car_load": 20.0 + i}) for i in range(2)])
    runner = GatewayThread(gw)  # everything above is backlog: one claimed batch
    try:
        wait_for(lambda: gw.queue.rows == 0, 10, "drain")
    finally:
        runner.stop()
    wait_for(lambda: len(recorder.events()) == 1, 10, "the event")
    sequence = []
    for t, payload, _ in recorder.snapshot():
        if t.endswith(("/data", "/event")):
            body = orjson.loads(payload)
            items = body.get("samples") or body.get("events")
            if items and items[0]["device"] == dev:
                sequence.append(
                    (t.rsplit("/", 1)[1], [i["ts"] - t0 for i in items], body["seq"], body["replay"])
                )
    recorder.close()
    assert [(channel, offsets) for channel, offsets, _, _ in sequence] == [
        ("data", [0, 1, 2]),
        ("event", [3]),
        ("data", [4, 5]),
    ]
    seqs = [s for _, _, s, _ in sequence]
    assert seqs == [seqs[0], seqs[0] + 1, seqs[0] + 2] and all(r for *_, r in sequence)


class _GrowingConnector:
    """A connector that discovers a second device after a while (as the MQTT bridge does)."""

    name = "growing"

    def __init__(self) -> None:
        self.known = [DeviceInfo(f"{COMPOUND}-SL0001", DeviceKind.STREETLIGHT, "mqtt")]

    def devices(self) -> list[DeviceInfo]:
        return list(self.known)

    def counters(self) -> dict[str, int]:
        return {"reads": 0, "errors": 0}

    async def run(self, sink: Sink, stop: asyncio.Event) -> None:
        await stop.wait()


def test_a_changed_device_list_is_announced_with_a_new_birth(
    mosquitto: MosquittoService, tmp_path: Path
) -> None:
    recorder = _recorder(mosquitto, "growing")
    growing = _GrowingConnector()
    gw = Gateway(
        config(tmp_path, mosquitto.port, connectors=[], counters_interval_s=0.2), connectors=[growing]
    )
    runner = GatewayThread(gw)
    try:
        wait_for(lambda: len(recorder.states()) == 1, 10, "first birth")
        time.sleep(0.6)  # a few counter ticks with nothing new: no extra birth
        assert len(recorder.states()) == 1
        growing.known.append(DeviceInfo(f"{COMPOUND}-SL0002", DeviceKind.STREETLIGHT, "mqtt"))
        wait_for(lambda: len(recorder.states()) == 2, 10, "birth with the new device")
    finally:
        runner.stop()
        recorder.close()
    first, second = recorder.states()[:2]
    assert second.bdseq == first.bdseq
    assert {d.device for d in second.devices} - {d.device for d in first.devices} == {f"{COMPOUND}-SL0002"}


def test_the_gateway_speaks_mqtt_311_where_the_broker_has_no_mqtt_5(tmp_path: Path) -> None:
    # the demo's embedded amqtt broker speaks MQTT 3.1.1 only: mqtt.protocol "3.1.1" keeps the whole
    # path (disk queue, birth, deletion on PUBACK) working there
    from sitewatch.devtools.amqtt_broker import EmbeddedBroker

    broker = EmbeddedBroker()
    broker.start()
    try:
        gw5 = Gateway(config(tmp_path / "v5", broker.port))
        runner5 = GatewayThread(gw5)
        try:  # MQTT 5, the default, is refused by this broker: nothing leaves the queue
            wait_for(lambda: gw5.counters.get("connect_failures") > 0, 20, "a refused MQTT 5 connection")
            assert not gw5.publisher.connected and gw5.counters.get("acknowledged") == 0
        finally:
            runner5.stop()
        recorder = Recorder(broker.port, f"sitewatch/v1/{COMPOUND}/#", f"rec-311-{os.getpid()}", mqtt5=False)
        gw = Gateway(config(tmp_path, broker.port, mqtt={"protocol": "3.1.1"}))
        runner = GatewayThread(gw)
        try:
            wait_for(lambda: len(read_journal(tmp_path / "journal.tsv")) == 800, 30, "all samples produced")
            wait_for(lambda: gw.queue.rows == 0, 30, "queue drained")
            snap = gw.snapshot()
            assert snap["read"] == snap["acknowledged"] == 800 * 6 and snap["dropped"] == 0
        finally:
            runner.stop()
        produced = {(d, ts) for d, _, ts in read_journal(tmp_path / "journal.tsv")}
        wait_for(lambda: len(first_arrivals(device_readings(recorder.readings()))) == 800 * 6, 10, "arrivals")
        assert {(r.device, r.ts) for r in device_readings(recorder.readings())} == produced
        assert any(s.online for s in recorder.states())  # the birth came too
        recorder.close()
    finally:
        broker.stop()
