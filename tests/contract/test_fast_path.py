"""The validator's hot path (known devices, range-only metrics) decides exactly as the full checks do."""

from __future__ import annotations

import itertools
import json
import math

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from sitewatch.contract import KINDS, Channel, Checker, MetricType, Sample, decode_data, topic
from sitewatch.contract import validate as validate_module
from sitewatch.contract.validate import Limits, Rejection
from sitewatch.store import StoredSample
from sitewatch.store.checks import sample_problem, store_checker

NOW = 1_790_000_000_000
C, GW = "330102-0001", "330102-0001-GW01"
OTHER = "330102-0002"
LIMITS = Limits(max_future_ms=300_000, max_age_ms=86_400_000)


def payload(compound: str, samples: list[object]) -> bytes:
    head = {"v": 1, "compound": compound, "gateway": f"{compound}-GW01", "bdseq": 1, "seq": 0, "sent": NOW}
    return orjson.dumps({**head, "samples": samples})


def awkward_samples(compound: str) -> list[object]:
    """Valid and invalid samples of every kind: boundary values, wrong types, stale and future times."""
    out: list[object] = []
    for kind, spec in KINDS.items():
        device = f"{compound}-{spec.code}0001"
        for metric in spec.metrics.values():
            lo, hi = metric.minimum, metric.maximum
            values: list[object] = [lo, hi, (lo + hi) / 2, lo - 1, hi + 1, int(lo), True, "x", None, [1]]
            if metric.type is MetricType.STATE and metric.states:
                values.append(metric.states[0])
            for value in values:
                out.append({"device": device, "kind": kind.value, "ts": NOW, "values": {metric.name: value}})
        for ts in (NOW + 300_000, NOW + 300_001, NOW - 86_400_000, NOW - 86_400_001, "1", True, 1.5):
            first = next(iter(spec.metrics))
            out.append({"device": device, "kind": kind.value, "ts": ts, "values": {first: 0.0}})
        out.append({"device": device, "kind": kind.value, "ts": NOW, "values": {"no_such_metric": 1.0}})
        out.append({"device": device, "kind": kind.value, "ts": NOW, "values": {}})
        out.append({"device": device, "kind": "toaster", "ts": NOW, "values": {"x": 1.0}})
        out.append({"device": device, "kind": ["elevator"], "ts": NOW, "values": {"x": 1.0}})
    out += [
        {"device": f"{OTHER}-EL0001", "kind": "elevator", "ts": NOW, "values": {"car_load": 1.0}},
        {"device": f"{compound}-bad id", "kind": "elevator", "ts": NOW, "values": {"car_load": 1.0}},
        {"device": 7, "kind": "elevator", "ts": NOW, "values": {"car_load": 1.0}},
        "not an object",
    ]
    return out


def test_known_devices_decide_as_unknown_ones() -> None:
    samples = awkward_samples(C)
    data_topic = topic(C, GW, Channel.DATA)
    expected_samples: list[Sample] = []
    expected_rejections: list[Rejection] = []
    for item in samples:  # each alone, no device known beforehand (a new checker): the full checks decide
        alone = decode_data(data_topic, payload(C, [item]), limits=LIMITS, now=NOW, checker=Checker())
        expected_samples += alone.message.samples if alone.message else ()
        expected_rejections += alone.rejections
    checker = Checker()
    decode_data(data_topic, payload(C, samples), limits=LIMITS, now=NOW, checker=checker)  # all known
    warm = decode_data(data_topic, payload(C, samples), limits=LIMITS, now=NOW, checker=checker)
    assert warm.message is not None
    assert list(warm.message.samples) == expected_samples
    assert list(warm.rejections) == expected_rejections
    kept = sum(len(s.values) for s in warm.message.samples)
    assert kept > 0 and kept + len(warm.rejections) == len(samples)  # one value per sample


def test_every_refusal_is_kept_with_its_reason_when_devices_are_known() -> None:
    data = payload(C, awkward_samples(C))
    checker = Checker()
    decode_data(topic(C, GW, Channel.DATA), data, limits=LIMITS, now=NOW, checker=checker)
    reasons = [
        str(r.reason)
        for r in decode_data(
            topic(C, GW, Channel.DATA), data, limits=LIMITS, now=NOW, checker=checker
        ).rejections
    ]
    for reason in ("out_of_range", "bad_value", "ts_future", "ts_past", "bad_timestamp", "unknown_metric",
                   "unknown_kind", "foreign_device", "bad_device_id", "bad_shape"):  # fmt: skip
        assert reason in reasons, reason


def test_a_device_known_in_one_compound_is_foreign_in_another() -> None:
    checker = Checker()
    item = {"device": f"{C}-EL0001", "kind": "elevator", "ts": NOW, "values": {"car_load": 1.0}}
    first = decode_data(
        topic(C, GW, Channel.DATA), payload(C, [item]), limits=LIMITS, now=NOW, checker=checker
    )
    assert first.ok
    other = decode_data(
        topic(OTHER, f"{OTHER}-GW01", Channel.DATA),
        payload(OTHER, [item]),
        limits=LIMITS,
        now=NOW,
        checker=checker,
    )
    assert other.message is None
    assert [r.reason.value for r in other.rejections] == ["foreign_device"]


def test_integers_in_range_become_floats_and_ranges_are_inclusive() -> None:
    spec = KINDS[next(iter(KINDS))]
    gauges = [m for m in spec.metrics.values() if m.type in (MetricType.GAUGE, MetricType.COUNTER)]
    for metric, value in itertools.product(gauges[:3], ("min", "max")):
        raw = metric.minimum if value == "min" else metric.maximum
        item = {
            "device": f"{C}-{spec.code}0001",
            "kind": spec.kind.value,
            "ts": NOW,
            "values": {metric.name: int(raw)},
        }
        decoded = decode_data(topic(C, GW, Channel.DATA), payload(C, [item]), limits=LIMITS, now=NOW)
        if int(raw) == raw:
            assert decoded.ok and decoded.message is not None
            stored = decoded.message.samples[0].values[metric.name]
            assert type(stored) is float and stored == raw


# --- the typed decode (msgspec) against the full path ------------------------------------------


def both_paths(data_topic: str, data: bytes) -> None:
    """decode_data (typed path first) and the full path give equal results, in either device state
    (nothing known: a new checker each; every valid device known: one checker that saw them)."""
    warm = Checker()
    decode_data(data_topic, data, limits=LIMITS, now=NOW, checker=warm)
    for checker in (lambda: Checker(), lambda: warm):
        full = validate_module._decode_data_full(data_topic, data, LIMITS, NOW, checker())
        assert decode_data(data_topic, data, limits=LIMITS, now=NOW, checker=checker()) == full


def test_every_awkward_sample_alone_decodes_as_the_full_path_does() -> None:
    data_topic = topic(C, GW, Channel.DATA)
    for item in awkward_samples(C):
        both_paths(data_topic, payload(C, [item]))


HEADER_VARIANTS: list[tuple[str, object]] = [
    ("v", 1.0), ("v", 2), ("v", "1"), ("v", True), ("bdseq", True), ("bdseq", -1), ("bdseq", 2**53 + 1),
    ("seq", 256), ("seq", 255), ("seq", 1.0), ("sent", None), ("replay", "yes"), ("replay", True),
    ("compound", OTHER), ("gateway", f"{C}-GW02"), ("samples", {}), ("samples", []), ("extra", [1, 2]),
]  # fmt: skip


def test_header_variants_decode_as_the_full_path_does() -> None:
    data_topic = topic(C, GW, Channel.DATA)
    item = {"device": f"{C}-EL0001", "kind": "elevator", "ts": NOW, "values": {"car_load": 1.0}}
    good = orjson.loads(payload(C, [item]))
    for name, value in HEADER_VARIANTS:
        both_paths(data_topic, orjson.dumps({**good, name: value}))
    for name in good:
        both_paths(data_topic, orjson.dumps({k: v for k, v in good.items() if k != name}))
    for other_topic in (topic(C, f"{C}-GW02", Channel.DATA), topic(C, GW, Channel.EVENT), "x/y"):
        both_paths(other_topic, orjson.dumps(good))
    for raw in (b"", b"[]", b"{", b'{"v":1,"samples":[NaN]}', b"\xff\xfe", orjson.dumps(good) + b"x"):
        both_paths(data_topic, raw)


_metric_items = [(kind, name, spec) for kind, kspec in KINDS.items() for name, spec in kspec.metrics.items()]


@st.composite
def sample_items(draw: st.DrawFn) -> object:
    """A sample item near the edges: most parts valid, any part possibly not."""
    kind, name, spec = draw(st.sampled_from(_metric_items))
    lo = spec.minimum if math.isfinite(spec.minimum) else -1e6
    hi = spec.maximum if math.isfinite(spec.maximum) else 1e6
    value = draw(
        st.one_of(
            st.floats(lo, hi),
            st.floats(allow_nan=False),
            st.integers(int(lo) - 2, int(hi) + 2),
            st.sampled_from([True, None, "x", *spec.states, 10**30, -0.0]),
        )
    )
    code = KINDS[kind].code
    devices = [f"{C}-{code}0001", f"{C}-{code}0002", f"{OTHER}-EL0001", f"{C}-", "x" * 200, f"{C}-a b"]
    device = draw(st.sampled_from(devices))
    ts = draw(st.one_of(st.integers(NOW - 86_400_100, NOW + 300_100), st.just(NOW)))
    values = {
        name: value,
        **draw(st.dictionaries(st.sampled_from(list(KINDS[kind].metrics)), st.floats(lo, hi), max_size=2)),
    }
    kind_name = draw(st.sampled_from([kind.value, kind.value, "toaster"]))
    return {"device": device, "kind": kind_name, "ts": ts, "values": values}


@settings(max_examples=300, deadline=None)
@given(st.lists(sample_items(), max_size=6))
def test_random_samples_decode_as_the_full_path_does(items: list[object]) -> None:
    # the standard encoder: it writes integers beyond 64 bits and Infinity, as some gateways would
    body = json.loads(payload(C, []))
    both_paths(topic(C, GW, Channel.DATA), json.dumps({**body, "samples": items}).encode())


def store_refusals(data_topic: str, data: bytes, checker: Checker | None = None) -> list[str]:
    """Why the store would refuse any sample the validator accepted from ``data`` (none, we expect)."""
    decoded = decode_data(data_topic, data, limits=LIMITS, now=NOW, checker=checker)
    samples = decoded.message.samples if decoded.message else ()
    return [p for s in samples if (p := sample_problem(StoredSample(s, C), store_checker())) is not None]


def test_the_store_accepts_every_metric_name_and_value_the_validator_accepts() -> None:
    # ingest's store skips the checks the validator made (check_batch(validated=True)): its rules
    # must be the narrower ones, for every kind and metric, at the edges of every range
    store = store_checker()
    assert [m for kind in KINDS.values() for m in kind.metrics if store.metric_problem(m)] == []
    data_topic = topic(C, GW, Channel.DATA)
    known = Checker()
    for _ in range(2):  # nothing known, then every valid device known
        assert store_refusals(data_topic, payload(C, awkward_samples(C)), known) == []


@settings(max_examples=300, deadline=None)
@given(st.lists(sample_items(), max_size=6))
def test_the_store_accepts_every_random_sample_the_validator_accepts(items: list[object]) -> None:
    body = json.loads(payload(C, []))
    assert store_refusals(topic(C, GW, Channel.DATA), json.dumps({**body, "samples": items}).encode()) == []
