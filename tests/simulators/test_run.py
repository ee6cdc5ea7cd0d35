"""Live publishing against a real Mosquitto: birth, data, events, seq, death and will per the contract."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from click.testing import CliRunner
from paho.mqtt.enums import CallbackAPIVersion

from sitewatch.assets.workbook import write_xlsx
from sitewatch.cli import main
from sitewatch.contract import (
    SEQ_MODULUS,
    Channel,
    DeviceKind,
    decode_data,
    decode_events,
    decode_state,
    now_ms,
    parse_topic,
)
from sitewatch.contract.messages import StateMessage
from sitewatch.devtools.services import MosquittoService
from sitewatch.settings import MqttSettings
from sitewatch.simulators.city import generate_city
from sitewatch.simulators.live import LiveSite
from sitewatch.simulators.publisher import CityRunner
from sitewatch.simulators.site import Site

pytestmark = pytest.mark.integration


class Recorder:
    """A subscriber that keeps every message under sitewatch/v1/ with the time it arrived."""

    def __init__(self, broker: MosquittoService) -> None:
        self.messages: list[tuple[str, bytes, bool, int]] = []
        self.lock = threading.Lock()
        self.ready = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"rec-{time.monotonic_ns()}")
        self.client.on_connect = lambda c, *_: (c.subscribe("sitewatch/v1/#", qos=1), None)[1]
        self.client.on_subscribe = lambda *_: self.ready.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()
        assert self.ready.wait(10)

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.messages.append((msg.topic, bytes(msg.payload), bool(msg.retain), now_ms()))

    def of(self, channel: Channel, compound: str | None = None) -> list[tuple[str, bytes, bool, int]]:
        with self.lock:
            out = []
            for t, p, r, ts in self.messages:
                parts = parse_topic(t)
                if parts and parts.channel is channel and compound in (None, parts.compound):
                    out.append((t, p, r, ts))
            return out

    def wait_for(self, check: Any, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return
            time.sleep(0.05)
        raise AssertionError("condition not met in time")

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def recorder(mosquitto: MosquittoService) -> Iterator[Recorder]:
    rec = Recorder(mosquitto)
    yield rec
    rec.close()


def test_compounds_publish_as_their_gateways(
    mosquitto: MosquittoService, recorder: Recorder, sites: list[Site]
) -> None:
    chosen = sites[1:3]
    start = now_ms() - 240_000  # four simulated minutes in two wall seconds, ending now
    lives = [LiveSite(s, seed=2, faults="all", start_ms=start) for s in chosen]
    meter = next(d.device for d in chosen[0].devices if d.kind is DeviceKind.WATER_METER)
    lives[0].inject(meter, "reverse_flow", start, start + 600_000)  # events at its start
    runner = CityRunner(lives, MqttSettings(url=mosquitto.url), speed=120.0, step_s=0.2, sim_start_ms=start)
    runner.connect(timeout=10)
    stats = runner.run(2.0)
    runner.close()
    assert stats.messages > 0 and stats.dropped == 0 and stats.acked == stats.messages + stats.state_messages
    recorder.wait_for(
        lambda: len(recorder.of(Channel.DATA)) + len(recorder.of(Channel.EVENT)) >= stats.messages
    )
    for site in chosen:
        recorder.wait_for(
            lambda c=site.compound: any(b'"offline"' in p for _, p, _, _ in recorder.of(Channel.STATE, c))
        )
        states = recorder.of(Channel.STATE, site.compound)
        births = [decode_state(t, p) for t, p, _, _ in states]
        assert all(b.ok for b in births)
        online = [b.message for b in births if b.message and b.message.online]
        offline = [b.message for b in births if b.message and not b.message.online]
        assert len(online) == 1 and len(offline) == 1
        assert online[0].gateway == site.gateway and online[0].bdseq == offline[0].bdseq
        assert {d.device for d in online[0].devices} == {d.device for d in site.devices} | {site.gateway}
        readings, seqs, own = 0, [], []
        for t, p, retained, arrived in recorder.of(Channel.DATA, site.compound):
            assert not retained
            decoded = decode_data(t, p, now=arrived)
            assert decoded.ok, decoded.rejections[:3]
            assert decoded.message is not None and decoded.message.envelope.bdseq == online[0].bdseq
            readings += decoded.message.reading_count
            own += [x for x in decoded.message.samples if x.kind is DeviceKind.GATEWAY]
            seqs.append((arrived, decoded.message.envelope.seq))
        for t, p, _, arrived in recorder.of(Channel.EVENT, site.compound):
            decoded_ev = decode_events(t, p, now=arrived)
            assert decoded_ev.ok, decoded_ev.rejections[:3]
            assert decoded_ev.message is not None
            seqs.append((arrived, decoded_ev.message.envelope.seq))
        assert readings > len(site.devices) * 3  # the first report of every device, and more
        assert len(own) >= 3 and all(x.device == site.gateway for x in own)  # its own metrics every minute
        uptimes = [x.values["uptime"] for x in own]
        assert uptimes == sorted(uptimes) and uptimes[-1] >= 100
        last = own[-1].values
        assert last["read_total"] >= last["sent_total"] >= last["acked_total"] > 0
        assert last["devices_online"] <= len(site.devices) and last["dropped_total"] == 0
        ordered = [s for _, s in sorted(seqs, key=lambda x: x[0])]  # stable: arrival order within a ms
        assert sorted(ordered) == sorted((ordered[0] + i) % SEQ_MODULUS for i in range(len(ordered)))
        assert len(ordered) < SEQ_MODULUS  # so that the check above means: no gap, no repeat
    received = [decode_data(t, p, now=a).message for t, p, _, a in recorder.of(Channel.DATA)]
    assert stats.readings == sum(m.reading_count for m in received if m is not None)


def test_a_gateway_that_drops_off_leaves_its_will(
    mosquitto: MosquittoService, recorder: Recorder, sites: list[Site]
) -> None:
    live = LiveSite(sites[2], seed=1, faults="none")
    runner = CityRunner([live], MqttSettings(url=mosquitto.url), step_s=0.2)
    runner.connect(timeout=10)
    runner.run(0.5)
    gateway = runner.gateways[0]
    bdseq = gateway.session.bdseq
    sock = gateway.client.socket()
    assert isinstance(sock, socket.socket)
    sock.shutdown(socket.SHUT_RDWR)  # the uplink dies without a DISCONNECT: the broker sends the will

    def states() -> list[StateMessage]:
        decoded = (decode_state(t, p).message for t, p, _, _ in recorder.of(Channel.STATE, live.compound))
        return [m for m in decoded if m is not None]

    recorder.wait_for(lambda: any(not m.online and m.bdseq == bdseq for m in states()))
    sock.close()
    assert any(m.online and m.bdseq == bdseq for m in states())  # the birth of the session that died
    deadline = time.monotonic() + 30  # a loaded machine may take several reconnect rounds
    while time.monotonic() < deadline:  # the gateway reconnects with a new bdseq and a new birth
        runner.run(0.1)
        if any(m.online and m.bdseq > bdseq for m in states()):
            break
    assert any(m.online and m.bdseq > bdseq for m in states())
    runner.close()


def test_simulate_run_command(mosquitto: MosquittoService, recorder: Recorder, tmp_path: Path) -> None:
    ledger = tmp_path / "one.xlsx"
    records = generate_city(1, seed=11)
    write_xlsx(records, ledger)
    code = records["compounds"][0]["code"]
    result = CliRunner().invoke(main, ["--lang", "en", "simulate", "run", "--ledger", str(ledger), "--broker", mosquitto.url,
                                       "--duration", "1.5", "--step", "0.2"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "done:" in result.output and "0 dropped" in result.output
    recorder.wait_for(lambda: len(recorder.of(Channel.DATA, code)) > 0)
    bad = CliRunner().invoke(
        main, ["simulate", "run", "--ledger", str(ledger), "--broker", "http://x", "--duration", "1"]
    )
    assert bad.exit_code != 0 and "mqtt://" in bad.output


def test_readings_published_during_a_broker_outage_are_delivered_after_it(
    service_factory: Any, sites: list[Site]
) -> None:
    broker = service_factory("mosquitto")
    assert isinstance(broker, MosquittoService)
    start = now_ms() - 600_000
    live = LiveSite(sites[2], seed=1, faults="none", start_ms=start)
    runner = CityRunner([live], MqttSettings(url=broker.url), speed=60.0, step_s=0.2, sim_start_ms=start)
    runner.connect(timeout=10)
    runner.run(1.0)
    gateway = runner.gateways[0]
    first_bdseq = gateway.session.bdseq
    broker.kill()  # a crash: no clean goodbye
    runner.run(2.0)  # the simulated devices go on reporting; paho keeps the messages queued
    during = runner.stats.messages
    assert not gateway.connected and runner.stats.dropped == 0
    broker.start()
    for _ in range(200):
        runner.run(0.1)
        if gateway.connected and runner.stats.acked >= during + runner.stats.state_messages - 1:
            break
    assert gateway.connected and gateway.session.bdseq > first_bdseq and runner.stats.disconnects == 1
    runner.close()
    # Every data and event message got its PUBACK: those queued during the outage were delivered.
    assert runner.stats.acked == runner.stats.messages + runner.stats.state_messages
