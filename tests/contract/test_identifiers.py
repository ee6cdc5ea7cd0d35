"""Every identifier and code pattern of the project matches the whole string.

Python's ``$`` also matches before a final newline, so a ``^...$`` pattern with ``re.match`` let
``"<compound>-EL0001\\n"`` through. Each pattern here is fed valid ids with control characters
added at the end, inside and at the start; and the validator and the store's own checks must give
the same verdict on every id generated.
"""

from __future__ import annotations

import string
from collections.abc import Callable

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from sitewatch.assets.api.schemas import Code, DeviceId
from sitewatch.contract import (
    Channel,
    Checker,
    DeviceKind,
    Event,
    Limits,
    Sample,
    decode_data,
    decode_events,
    decode_finding,
    decode_state,
    device_id,
    finding_topic,
    is_code,
    parse_topic,
    shared,
    topic,
)
from sitewatch.contract.checker import (
    METRIC_NAME_PATTERN,
    device_problem,
    metric_name_problem,
    tag_value_problem,
)
from sitewatch.contract.findings import FAULT_PATTERN, FINDING_ID_PATTERN
from sitewatch.contract.topics import CODE_PATTERN, DEVICE_LOCAL_PATTERN
from sitewatch.gateway.config import GatewayConfigError, parse_config
from sitewatch.gateway.connectors.base import (
    ConnectorConfigError,
    ConnectorContext,
    build_connector,
    config_device,
)
from sitewatch.gateway.connectors.mqtt_bridge_map import device_of
from sitewatch.store import StoredEvent, StoredSample
from sitewatch.store.checks import check_batch, store_checker

NOW = 1_790_000_000_000
LIMITS = Limits(max_future_ms=300_000, max_age_ms=86_400_000)
CONTROL = [chr(c) for c in range(0x20)] + ["\x7f"]

codes = st.from_regex(CODE_PATTERN, fullmatch=True)
locals_ = st.from_regex(DEVICE_LOCAL_PATTERN, fullmatch=True)


@st.composite
def poisoned(draw: st.DrawFn, valid: st.SearchStrategy[str]) -> str:
    """A valid id with one to three control characters: at the end, inside or at the start."""
    text = draw(valid)
    for _ in range(draw(st.integers(1, 3))):
        where = draw(st.sampled_from(["end", "end", "inside", "start"]))
        char = draw(st.one_of(st.just("\n"), st.sampled_from(CONTROL)))  # "$" let a final "\n" pass
        at = {"end": len(text), "start": 0, "inside": draw(st.integers(0, len(text)))}[where]
        text = text[:at] + char + text[at:]
    return text


def _raises(call: Callable[[], object], *errors: type[Exception]) -> bool:
    try:
        call()
    except errors:
        return True
    return False


# Every check of a compound code or gateway id in the project: True when it accepts ``value``.
CODE_CHECKS: dict[str, Callable[[str], bool]] = {
    "contract.is_code": is_code,
    "contract.topic": lambda v: not _raises(lambda: topic(v, "GW01", Channel.DATA), ValueError),
    "contract.parse_topic (compound)": lambda v: parse_topic(f"sitewatch/v1/{v}/GW01/data") is not None,
    "contract.parse_topic (gateway)": lambda v: parse_topic(f"sitewatch/v1/C1/{v}/data") is not None,
    "contract.shared (ingest.shared_group)": lambda v: not _raises(lambda: shared(v, "x/#"), ValueError),
    "contract.finding_topic": lambda v: not _raises(lambda: finding_topic(v), ValueError),
    "gateway.yaml compound": lambda v: (
        not _raises(lambda: parse_config({"compound": v, "gateway": "GW01"}), GatewayConfigError)
    ),
    "gateway.yaml gateway": lambda v: (
        not _raises(lambda: parse_config({"compound": "C1", "gateway": v}), GatewayConfigError)
    ),
    "registry API Code": lambda v: not _raises(lambda: TypeAdapter(Code).validate_python(v), ValidationError),
}
# Every check of a device's local name (the part after "<compound>-").
LOCAL_CHECKS: dict[str, Callable[[str], bool]] = {
    "contract.device_id": lambda v: not _raises(lambda: device_id("C1", v), ValueError),
    "contract.checker.device_problem": lambda v: device_problem(f"C1-{v}", "C1") is None,
    "gateway config_device": lambda v: (
        not _raises(lambda: config_device(v, "C1", "connectors.x"), ConnectorConfigError)
    ),
    "mqtt bridge device_of": lambda v: device_of("{0}", [v], "C1") is not None,
    "registry API DeviceId": lambda v: (
        not _raises(lambda: TypeAdapter(DeviceId).validate_python(f"C1-{v}"), ValidationError)
    ),
    "ocpp charger device": lambda v: (
        not _raises(
            lambda: build_connector(
                {"type": "ocpp", "chargers": [{"device": v}]}, ConnectorContext("C1", "GW01")
            ),
            ConnectorConfigError,
        )
    ),
}


@pytest.mark.parametrize("name", sorted(CODE_CHECKS))
@settings(max_examples=40, deadline=None)
@given(good=codes, bad=poisoned(codes))
def test_every_code_check_takes_whole_codes_only(name: str, good: str, bad: str) -> None:
    check = CODE_CHECKS[name]
    assert check(good), f"{name} refused the valid code {good!r}"
    assert not check(bad), f"{name} accepted {bad!r}"


@pytest.mark.parametrize("name", sorted(CODE_CHECKS))
def test_a_code_with_a_final_newline_is_refused(name: str) -> None:
    assert CODE_CHECKS[name]("330102-0007") and not CODE_CHECKS[name]("330102-0007\n")


@pytest.mark.parametrize("name", sorted(LOCAL_CHECKS))
def test_a_device_name_with_a_final_newline_is_refused(name: str) -> None:
    assert LOCAL_CHECKS[name]("EL0001") and not LOCAL_CHECKS[name]("EL0001\n")


@pytest.mark.parametrize("name", sorted(LOCAL_CHECKS))
@settings(max_examples=40, deadline=None)
@given(good=locals_, bad=poisoned(locals_))
def test_every_device_name_check_takes_whole_names_only(name: str, good: str, bad: str) -> None:
    check = LOCAL_CHECKS[name]
    assert check(good), f"{name} refused the valid name {good!r}"
    assert not check(bad), f"{name} accepted {bad!r}"


@settings(max_examples=60, deadline=None)
@given(
    good=st.from_regex(FINDING_ID_PATTERN, fullmatch=True),
    fault=st.from_regex(FAULT_PATTERN, fullmatch=True),
    bad_id=poisoned(st.from_regex(FINDING_ID_PATTERN, fullmatch=True)),
    bad_fault=poisoned(st.from_regex(FAULT_PATTERN, fullmatch=True)),
)
def test_finding_ids_and_names_are_whole(good: str, fault: str, bad_id: str, bad_fault: str) -> None:
    body = {
        "v": 1, "id": good, "compound": "C1", "device": "C1-EL0001", "kind": "elevator",
        "source": "rule:x", "fault": fault, "severity": "warning", "state": "active",
        "started": NOW, "ts": NOW, "message": "m", "params": {}, "evidence": {},
    }  # fmt: skip
    where = finding_topic("C1")
    assert decode_finding(where, orjson.dumps(body)).ok
    for change in ({"id": bad_id}, {"fault": bad_fault}, {"source": "rule:x\n"}, {"device": "C1-EL0001\n"}):
        assert decode_finding(where, orjson.dumps({**body, **change})).message is None, change


@settings(max_examples=60, deadline=None)
@given(good=st.from_regex(METRIC_NAME_PATTERN, fullmatch=True), bad=poisoned(st.just("motor_current")))
def test_metric_names_are_whole(good: str, bad: str) -> None:
    assert metric_name_problem(good) is None
    assert metric_name_problem(bad) is not None
    assert store_checker().metric_problem(bad) is not None


# --- the validator and the store's own checks agree on every generated id ----------------------


@st.composite
def device_ids(draw: st.DrawFn) -> tuple[str, str]:
    """(compound, device id): valid, or poisoned in its compound or its local part."""
    compound, local = draw(codes), draw(locals_)
    if draw(st.booleans()):
        local = draw(poisoned(st.just(local)))
    if draw(st.integers(0, 3)) == 0:
        compound = draw(poisoned(st.just(compound)))
    return compound, f"{compound}-{local}"


def validator_accepts(compound: str, device: str) -> bool:
    """Whether ingest's validator stores a sample and an event of ``device`` sent for ``compound``."""
    if not is_code(compound):
        return False  # no topic can carry it: refused before any sample is looked at
    head = {"v": 1, "compound": compound, "gateway": "GW01", "bdseq": 1, "seq": 0, "sent": NOW}
    item = {"device": device, "kind": "elevator", "ts": NOW}
    data = orjson.dumps({**head, "samples": [{**item, "values": {"car_load": 5.0}}]})
    events = orjson.dumps({**head, "events": [{**item, "event": "door_fault"}]})
    checker = Checker()
    verdicts = {
        decode_data(topic(compound, "GW01", Channel.DATA), data, limits=LIMITS, now=NOW, checker=checker).ok,
        decode_events(
            topic(compound, "GW01", Channel.EVENT), events, limits=LIMITS, now=NOW, checker=checker
        ).ok,
        # a second time, from the checker's memory
        decode_data(topic(compound, "GW01", Channel.DATA), data, limits=LIMITS, now=NOW, checker=checker).ok,
    }
    state = {"v": 1, "compound": compound, "gateway": "GW01", "bdseq": 1, "state": "online", "ts": NOW}
    birth = orjson.dumps({**state, "devices": [{"device": device, "kind": "elevator"}]})
    verdicts.add(decode_state(topic(compound, "GW01", Channel.STATE), birth).ok)
    assert len(verdicts) == 1, f"the decoders disagree on {device!r}"
    return verdicts.pop()


def store_accepts(compound: str, device: str) -> bool:
    """Whether the store's own checks take a sample and an event of ``device`` in ``compound``."""
    sample = StoredSample(Sample(device, DeviceKind.ELEVATOR, NOW, {"car_load": 5.0}), compound)
    event = StoredEvent(Event(device, DeviceKind.ELEVATOR, NOW, "door_fault"), compound)
    try:
        check_batch([sample], [event], checker=store_checker())
    except ValueError:
        return False
    return True


@settings(max_examples=400, deadline=None)
@given(device_ids())
def test_validator_and_store_agree_on_every_generated_id(ids: tuple[str, str]) -> None:
    compound, device = ids
    clean = not any(c in CONTROL for c in device)
    assert validator_accepts(compound, device) == store_accepts(compound, device) == clean


@pytest.mark.parametrize("char", CONTROL)
def test_the_store_refuses_every_control_character_in_a_name(char: str) -> None:
    for value in (f"C1-EL0001{char}", f"C1-{char}EL0001", f"{char}C1-EL0001"):
        assert tag_value_problem("device", value) is not None
        assert not validator_accepts("C1", value)


def test_printable_ascii_ids_outside_the_contract_are_still_refused_by_the_validator() -> None:
    # the validator is narrower than the store (spaces, '#', '/' are names the store can hold):
    # what it accepts the store takes, never the other way round
    for char in set(string.printable) - set(string.ascii_letters + string.digits + "_.:-") - set(CONTROL):
        device = f"C1-EL{char}1"
        assert not validator_accepts("C1", device)
        assert device_problem(device, "C1") is not None
