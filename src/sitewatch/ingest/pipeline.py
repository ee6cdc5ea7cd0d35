"""Pure steps of ingest: decode one MQTT message, then enrich a batch from the registry.

No I/O here apart from the registry client passed in; the service does the MQTT and the store.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from ..contract import (
    Channel,
    Checker,
    DeviceKind,
    Envelope,
    Event,
    Limits,
    Rejection,
    RejectReason,
    Sample,
    decode_data,
    decode_events,
)
from ..settings import ContractSettings, UnknownDevicePolicy
from ..store.base import PreparedBatch, StoredEvent, StoredSample
from .registry import DeviceRecord, RegistryClient, RegistryUnavailable

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Inbound:
    """One MQTT message as received, with what is needed to acknowledge it later."""

    generation: int  # connection it arrived on: acks go only to that connection
    mid: int
    qos: int
    topic: str
    payload: bytes
    received_ms: int


@dataclass(slots=True)
class Processed:
    """A decoded message: its valid samples and events, and every rejection so far."""

    inbound: Inbound
    envelope: Envelope | None
    samples: tuple[Sample, ...] = ()
    events: tuple[Event, ...] = ()
    rejections: list[Rejection] = field(default_factory=list)
    readings: int = field(init=False)  # metric values carried by the valid samples

    def __post_init__(self) -> None:
        self.readings = sum(len(s.values) for s in self.samples)  # once: three steps read it


def limits_from(settings: ContractSettings) -> Limits:
    """Validator limits from the settings section."""
    return Limits(
        max_payload_bytes=settings.max_payload_bytes,
        max_samples=settings.max_samples,
        max_future_ms=int(settings.max_future_s * 1000),
        max_age_ms=int(settings.max_age_s * 1000),
    )


def decode(inbound: Inbound, limits: Limits, checker: Checker | None = None) -> Processed:
    """Decode one message with the contract validator (``event`` topics as events, all else as data);
    a decoder passes its own ``checker`` to every call (it remembers the device ids found valid)."""
    checker = Checker() if checker is None else checker
    if inbound.topic.endswith("/" + Channel.EVENT.value):
        events = decode_events(
            inbound.topic, inbound.payload, limits=limits, now=inbound.received_ms, checker=checker
        )
        msg = events.message
        return Processed(
            inbound, msg.envelope if msg else None, events=msg.events if msg else (),
            rejections=list(events.rejections),
        )  # fmt: skip
    data = decode_data(
        inbound.topic, inbound.payload, limits=limits, now=inbound.received_ms, checker=checker
    )
    dmsg = data.message
    return Processed(
        inbound, dmsg.envelope if dmsg else None, samples=dmsg.samples if dmsg else (),
        rejections=list(data.rejections),
    )  # fmt: skip


@dataclass(slots=True)
class Batch:
    """What one store write carries, built from processed messages."""

    samples: list[StoredSample] = field(default_factory=list)
    events: list[StoredEvent] = field(default_factory=list)
    owners: list[Processed] = field(default_factory=list)  # the message of each sample, then each event
    readings: int = 0
    flagged_readings: int = 0
    registry_error: bool = False
    prepared: PreparedBatch | None = None  # the store's check and encoding, once the batch is cut


def _check(
    device: str, kind: DeviceKind, compound: str, record: DeviceRecord | None, policy: UnknownDevicePolicy,
    owner: str | None = None,
) -> tuple[Rejection | None, bool]:  # fmt: skip
    """(rejection, flagged) for one device against its registry record (or, unbound, the compound its
    id names: another compound's device is refused whatever the policy)."""
    if record is None:
        if owner is not None and owner != compound:
            return Rejection(
                RejectReason.FOREIGN_DEVICE, f"{device}: an id of compound {owner!r}, sent for {compound!r}", device
            ), False
        if policy is UnknownDevicePolicy.FLAG:
            return None, True
        return Rejection(
            RejectReason.UNKNOWN_DEVICE, f"device {device!r} is not bound in the asset registry", device
        ), False
    if record.kind != kind.value:
        return Rejection(
            RejectReason.KIND_MISMATCH, f"{device}: sent as {kind}, registered as {record.kind}", device
        ), False
    if record.compound != compound:
        return Rejection(
            RejectReason.FOREIGN_DEVICE,
            f"{device}: registered in compound {record.compound!r}, sent for {compound!r}",
            device,
        ), False
    return None, False


def build_batch(
    processed: list[Processed], registry: RegistryClient | None, policy: UnknownDevicePolicy
) -> Batch:
    """Enrich the valid samples and events; registry refusals are added to each message's rejections."""
    batch = Batch()
    records: dict[str, DeviceRecord | None] = {}
    if registry is not None:
        wanted = [s.device for p in processed for s in p.samples] + [
            e.device for p in processed for e in p.events
        ]
        if wanted:
            try:
                records = registry.lookup(wanted)
            except RegistryUnavailable as exc:
                # accept-and-flag rather than lose readings or stall on a registry outage
                log.warning("%s; accepting this batch's devices flagged as unverified", exc)
                registry, batch.registry_error = None, True
    event_owners: list[Processed] = []
    for p in processed:
        if p.envelope is None:
            continue
        compound = p.envelope.compound
        if registry is None and p.samples:  # nothing to look up: every sample goes in as it is
            flagged = batch.registry_error
            batch.samples += [StoredSample(sample, compound, {}, flagged) for sample in p.samples]
            batch.owners += [p] * len(p.samples)
            readings = p.readings
            batch.readings += readings
            batch.flagged_readings += readings if flagged else 0
        for sample in p.samples if registry is not None else ():
            tags: dict[str, str] = {}
            flagged = batch.registry_error
            if registry is not None:
                record = records.get(sample.device)
                owner = registry.owner_of(sample.device) if record is None else None
                rejection, flagged = _check(sample.device, sample.kind, compound, record, policy, owner)
                if rejection is not None:
                    p.rejections.append(rejection)
                    continue
                tags = record.tags() if record else {}
            batch.samples.append(StoredSample(sample, compound, tags, flagged))
            batch.owners.append(p)
            batch.readings += len(sample.values)
            batch.flagged_readings += len(sample.values) if flagged else 0
        for event in p.events:
            etags: dict[str, str] = {}
            if registry is not None:
                record = records.get(event.device)
                owner = registry.owner_of(event.device) if record is None else None
                rejection, _ = _check(event.device, event.kind, compound, record, policy, owner)
                if rejection is not None:
                    p.rejections.append(rejection)
                    continue
                etags = record.tags() if record else {}
            batch.events.append(StoredEvent(event, compound, etags))
            event_owners.append(p)
    batch.owners.extend(event_owners)
    return batch


def drop_item(batch: Batch, index: int, reason: str) -> None:
    """Take out an item the store refused (index over samples, then events) and reject it
    (``store_refused``, with the store's reason)."""
    owner = batch.owners.pop(index)
    if index < len(batch.samples):
        item = batch.samples.pop(index)
        batch.readings -= item.reading_count
        batch.flagged_readings -= item.reading_count if item.flagged else 0
        device, json_item = item.sample.device, item.sample.to_json()
    else:
        event = batch.events.pop(index - len(batch.samples))
        device, json_item = event.event.device, event.event.to_json()
    owner.rejections.append(
        Rejection(RejectReason.STORE_REFUSED, f"{device}: the store refused it: {reason}", device, json_item)
    )
