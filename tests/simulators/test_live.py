"""LiveSite: the first step reports every device, later steps what came due, all accepted by the contract."""

from __future__ import annotations

import itertools

import pytest

from sitewatch.contract import (
    Channel,
    DataMessage,
    DeviceKind,
    Envelope,
    Event,
    EventMessage,
    Sample,
    decode_data,
    decode_events,
    topic,
)
from sitewatch.simulators.faults import BANDS, FAULT_TYPES
from sitewatch.simulators.live import LiveSite
from sitewatch.simulators.site import Site

from .conftest import fits_a_day

T0 = 1_790_000_000_000


def _decode_ok(live: LiveSite, samples: list[Sample], events: list[Event], now: int) -> None:
    env = Envelope(live.compound, live.gateway, 1, 0, now)
    if samples:
        data = decode_data(
            topic(live.compound, live.gateway, Channel.DATA),
            DataMessage(env, tuple(samples)).encode(),
            now=now,
        )
        assert data.ok, data.rejections[:3]
    if events:
        ev = decode_events(
            topic(live.compound, live.gateway, Channel.EVENT),
            EventMessage(env, tuple(events)).encode(),
            now=now,
        )
        assert ev.ok, ev.rejections[:3]


def test_first_step_reports_every_device_then_each_at_its_interval(sites: list[Site]) -> None:
    site = sites[2]
    live = LiveSite(site, seed=1, faults="none", start_ms=T0, anomalies=False)
    assert {d.device for d in live.device_infos()} == {d.device for d in site.devices}
    assert {d.protocol for d in live.device_infos()} == {"modbus", "ocpp", "onvif", "mqtt"}
    first, events = live.step(T0)
    assert sorted(s.device for s in first) == sorted(d.device for d in site.devices)
    assert all(s.ts_ms == T0 for s in first) and events == []
    _decode_ok(live, first, events, T0)
    seen: dict[str, list[int]] = {}
    previous = T0
    for k in range(1, 1801):  # half an hour in steps of one second
        now = T0 + k * 1000
        samples, events = live.step(now)
        assert all(previous < s.ts_ms <= now for s in samples)
        assert [s.ts_ms for s in samples] == sorted(s.ts_ms for s in samples)
        for s in samples:
            seen.setdefault(s.device, []).append(s.ts_ms)
        if k % 300 == 0:
            _decode_ok(live, samples, events, now)
        previous = now
    assert live.step(previous) == ([], [])  # nothing new at the same instant
    intervals = {d.device: (900_000 if d.attrs.get("meter_scope") == "household" else
                            300_000 if d.kind.value in ("streetlight", "water_meter") else 60_000)
                 for d in site.devices}  # fmt: skip
    for device, stamps in seen.items():
        assert all(b - a == intervals[device] for a, b in itertools.pairwise(stamps)), device
        assert len(stamps) == 1_800_000 // intervals[device]
    assert set(seen) == {d.device for d in site.devices}


def test_registers_continue_across_steps_and_seeds_reproduce(sites: list[Site]) -> None:
    def run(seed: int) -> list[tuple[str, int, float]]:
        live = LiveSite(sites[0], seed=seed, faults="none", start_ms=T0)
        out = []
        for k in range(0, 3601, 7):
            samples, _ = live.step(T0 + k * 1000)
            out += [(s.device, s.ts_ms, s.values["trip_count"]) for s in samples if "trip_count" in s.values]
        return out

    a = run(3)
    assert a == run(3) and a != run(4)
    last: dict[str, float] = {}
    for device, _, value in a:
        assert value >= last.get(device, 0.0)
        last[device] = value


def test_injected_fault_shows_up_with_its_events(sites: list[Site]) -> None:
    site = sites[2]
    live = LiveSite(site, seed=1, faults="none", start_ms=T0)
    elevator = site.of_kind(DeviceKind.ELEVATOR)[0].device
    label = live.inject(elevator, "entrapment", T0 + 60_000, T0 + 600_000)
    assert [(lab.device, lab.fault, lab.start_ms, lab.band) for lab in live.labels] == [
        (elevator, "entrapment", T0 + 60_000, "clear")
    ]
    assert label.magnitude >= 30 and label.unit == "min"
    live.step(T0)
    samples, events = [], []
    for k in range(1, 701):
        s, e = live.step(T0 + k * 1000)
        samples += s
        events += e
    mine = [s for s in samples if s.device == elevator]
    assert any(s.values["entrapment"] == 1.0 for s in mine) and any(
        s.values["entrapment"] == 0.0 for s in mine
    )
    names = [(e.name, e.active) for e in events if e.device == elevator]
    assert ("entrapment", True) in names and ("entrapment", False) in names
    final = live.labels[0]
    assert final.announced and final.announced_ms == T0 + 60_000 and final.observable
    _decode_ok(live, samples[-50:], events, T0 + 700_000)


def test_inject_refuses_what_cannot_be(sites: list[Site]) -> None:
    live = LiveSite(sites[2], seed=1, faults="none", start_ms=T0)
    camera = next(d.device for d in sites[2].devices if d.kind.value == "camera")
    with pytest.raises(ValueError, match="unknown fault type"):
        live.inject(camera, "meltdown", T0, T0 + 1)
    with pytest.raises(ValueError, match="not a device"):
        live.inject("nope-CA0001", "video_loss", T0, T0 + 1)
    with pytest.raises(ValueError, match="is for water_meter"):
        live.inject(camera, "leak", T0, T0 + 1)
    with pytest.raises(ValueError, match="end after"):
        live.inject(camera, "video_loss", T0, T0)
    with pytest.raises(ValueError, match="unknown fault mode"):
        LiveSite(sites[2], faults="sometimes")


def test_a_long_pause_does_not_flood(sites: list[Site]) -> None:
    live = LiveSite(sites[2], seed=1, faults="none", start_ms=T0)
    live.step(T0)
    samples, _ = live.step(T0 + 10 * 86_400_000)  # ten days later: only the last hour is generated
    assert samples and min(s.ts_ms for s in samples) > T0 + 10 * 86_400_000 - 3_600_001


def test_live_faults_start_while_watched_and_raise_their_events(sites: list[Site]) -> None:
    live = LiveSite(sites[2], seed=6, faults="all", start_ms=T0)
    live.step(T0)
    events = []
    for k in range(1, 24 * 60 + 1):  # one day in steps of a minute
        _, e = live.step(T0 + k * 60_000)
        events += e
    labels = [lab for lab in live.labels if lab.start_ms < T0 + 86_400_000]
    drawn = {(lab.fault, lab.band) for lab in labels}
    assert {f for f, _ in drawn} == set(FAULT_TYPES)  # "all": every type in the first day,
    assert drawn >= {(f, b.value) for f in FAULT_TYPES for b in BANDS if fits_a_day(f, b)}  # in every band that fits
    assert all(lab.start_ms > T0 for lab in labels)  # and watched
    seen = {(e.device, e.name, e.ts_ms) for e in events}
    assert any(lab.announced for lab in labels) and not all(lab.announced for lab in labels)
    for lab in labels:
        name = FAULT_TYPES[lab.fault].event
        if name is not None and lab.announced:
            assert (lab.device, name, lab.announced_ms) in seen, lab


def test_every_door_fault_of_the_register_is_reported_as_an_event(sites: list[Site]) -> None:
    site = sites[2]
    live = LiveSite(site, seed=1, faults="none", start_ms=T0)
    elevator = site.of_kind(DeviceKind.ELEVATOR)[0].device
    live.inject(elevator, "door_fault_burst", T0 + 60_000, T0 + 3_600_000, magnitude=300.0)
    first, _ = live.step(T0)
    start = next(s.values["door_faults"] for s in first if s.device == elevator)
    last, faults = start, 0
    for k in range(1, 3901):
        samples, events = live.step(T0 + k * 1000)
        last = next((s.values["door_faults"] for s in samples if s.device == elevator), last)
        faults += sum(1 for e in events if e.device == elevator and e.name == "door_fault")
    assert last - start >= 5 and faults == last - start
