"""The Sparkplug-style session the gateway and the simulated gateways share: what it puts on the wire."""

from __future__ import annotations

from sitewatch.contract import SEQ_MODULUS, Channel, DeviceInfo, DeviceKind, decode_state, topic
from sitewatch.edge.sparkplug import EdgeSession

COMPOUND, GATEWAY = "220106-0001", "220106-0001-GW01"
DEVICES = (DeviceInfo("220106-0001-EL0001", DeviceKind.ELEVATOR, "modbus"),)


def test_birth_and_death_are_contract_state_messages_of_this_bdseq() -> None:
    session = EdgeSession(COMPOUND, GATEWAY, bdseq=41)
    state_topic = topic(COMPOUND, GATEWAY, Channel.STATE)
    assert session.topics[Channel.STATE] == state_topic
    birth = decode_state(state_topic, session.birth(DEVICES)).message
    death = decode_state(state_topic, session.death()).message
    assert birth is not None and birth.online and birth.bdseq == 41 and birth.devices == DEVICES
    assert death is not None and not death.online and death.bdseq == 41 and death.devices == ()


def test_seq_counts_messages_wraps_and_starts_again_at_each_birth() -> None:
    session = EdgeSession(COMPOUND, GATEWAY, bdseq=1)
    seqs = [session.envelope().seq for _ in range(SEQ_MODULUS + 2)]
    assert seqs == [*range(SEQ_MODULUS), 0, 1]
    session.birth(DEVICES)
    envelope = session.envelope(replay=True)
    assert envelope.seq == 0 and envelope.replay and envelope.bdseq == 1
    assert (envelope.compound, envelope.gateway) == (COMPOUND, GATEWAY)

