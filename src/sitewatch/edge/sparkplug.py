"""The Sparkplug-style session of a site gateway on MQTT: its topics, ``bdseq`` and ``seq``, its
birth and death, and how they go on a paho client.

Sparkplug B semantics with the contract's JSON payloads: every connection has a new ``bdseq``;
the death message carrying it is the connection's will (and is published on a clean stop, which
does not fire the will); the retained birth listing the devices follows the CONNACK and restarts
``seq`` at 0; every data and event message carries the next ``seq`` modulo ``SEQ_MODULUS``. The site
gateway (``gateway/publisher.py``) and the simulated gateways (``simulators/publisher.py``) both
publish through :class:`EdgeSession`, so both speak the same protocol.
"""

from __future__ import annotations

from collections.abc import Iterable

import paho.mqtt.client as mqtt

from ..contract import SEQ_MODULUS, Channel, DeviceInfo, Envelope, StateMessage, now_ms, topic


class EdgeSession:
    """One connection of one gateway: topics, ``bdseq``, ``seq``, birth and death."""

    def __init__(self, compound: str, gateway: str, bdseq: int) -> None:
        self.compound = compound
        self.gateway = gateway
        self.bdseq = bdseq
        self.seq = 0
        self.topics = {channel: topic(compound, gateway, channel) for channel in Channel}

    def death(self) -> bytes:
        """The death message of this connection (its will)."""
        return StateMessage(self.compound, self.gateway, self.bdseq, False, now_ms()).encode()

    def birth(self, devices: Iterable[DeviceInfo]) -> bytes:
        """The birth message listing ``devices``; ``seq`` starts again at 0."""
        self.seq = 0
        return StateMessage(self.compound, self.gateway, self.bdseq, True, now_ms(), tuple(devices)).encode()

    def envelope(self, replay: bool = False) -> Envelope:
        """The envelope of the next data or event message (the next ``seq``)."""
        envelope = Envelope(self.compound, self.gateway, self.bdseq, self.seq, now_ms(), replay)
        self.seq = (self.seq + 1) % SEQ_MODULUS
        return envelope

    def set_will(self, client: mqtt.Client) -> None:
        """Make the death message ``client``'s will (QoS 1, retained); call before connecting."""
        client.will_set(self.topics[Channel.STATE], self.death(), qos=1, retain=True)

    def publish_birth(self, client: mqtt.Client, devices: Iterable[DeviceInfo]) -> mqtt.MQTTMessageInfo:
        """Publish the birth (QoS 1, retained) listing ``devices``."""
        return client.publish(self.topics[Channel.STATE], self.birth(devices), qos=1, retain=True)

    def publish_death(self, client: mqtt.Client) -> mqtt.MQTTMessageInfo:
        """Publish the death (QoS 1, retained) before a clean disconnect."""
        return client.publish(self.topics[Channel.STATE], self.death(), qos=1, retain=True)
