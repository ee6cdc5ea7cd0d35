"""The Modbus register codec the gateway and the simulated devices share: encoding, read planning,
decoding and its refusals (no I/O)."""

from __future__ import annotations

import math

import pytest

from sitewatch.contract import DeviceKind
from sitewatch.edge.modbus_registers import (
    DataType,
    RegisterSpec,
    RegisterType,
    decode_block,
    decode_words,
    encode_value,
    plan_reads,
)


@pytest.mark.parametrize("type_", list(DataType))
@pytest.mark.parametrize("order", ["big", "little"])
def test_encode_decode_roundtrip(type_: DataType, order: str) -> None:
    value = {DataType.U16: 65000, DataType.I16: -1234, DataType.U32: 4_000_000_000, DataType.I32: -70000}.get(
        type_, 12.5
    )
    words = encode_value(value, type_, order)
    assert len(words) == type_.words
    assert decode_words(words, type_, order) == pytest.approx(value)


def test_word_order_matters() -> None:
    assert decode_words([0x0001, 0x0000], DataType.U32, "big") == 65536
    assert decode_words([0x0001, 0x0000], DataType.U32, "little") == 1


def test_plan_reads_groups_and_splits() -> None:
    specs = [
        RegisterSpec("trip_count", 0, RegisterType.HOLDING, DataType.U32),
        RegisterSpec("door_cycles", 2, RegisterType.HOLDING, DataType.U32),
        RegisterSpec("car_load", 200, RegisterType.HOLDING),
        RegisterSpec("run_state", 5, RegisterType.INPUT),
    ]
    blocks = plan_reads(specs)
    assert [(b.register, b.address, b.count) for b in blocks] == [
        (RegisterType.HOLDING, 0, 4),
        (RegisterType.HOLDING, 200, 1),
        (RegisterType.INPUT, 5, 1),
    ]


def test_decode_refuses_garbage() -> None:
    specs = [
        RegisterSpec("battery", 0, scale=0.1),
        RegisterSpec("flow", 1, type=DataType.F32),
        RegisterSpec("tamper", 3),
    ]
    (block,) = plan_reads(specs)
    nan = encode_value(math.nan, DataType.F32)
    values, garbage = decode_block(DeviceKind.WATER_METER, block, [0xFFFF, *nan, 1])
    assert values == {"tamper": 1.0}
    assert {g.metric for g in garbage} == {"battery", "flow"}
    assert "outside" in next(g.detail for g in garbage if g.metric == "battery")
    assert "finite" in next(g.detail for g in garbage if g.metric == "flow")
