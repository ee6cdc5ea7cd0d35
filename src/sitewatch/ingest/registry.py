"""A cached client of the asset registry's device lookup (``POST /api/v1/lookup/devices``)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass

import httpx

from ..http_client import release

log = logging.getLogger(__name__)

LOOKUP_PATH = "/api/v1/lookup/devices"
REVISION_PATH = "/api/v1/lookup/revision"
REVISION_CHECK_S = 5.0  # how often the registry's change counter is asked; a change empties the cache
LOOKUP_CHUNK = 1000  # the registry answers up to 1,000 ids per request
UNKNOWN_TTL_S = 30.0  # a device bound in the registry a moment ago is picked up within this time


@dataclass(frozen=True, slots=True)
class DeviceRecord:
    """What ingest needs from the registry about one device."""

    device: str
    kind: str
    compound: str
    district: str
    street: str
    community: str
    building: str | None

    def tags(self) -> dict[str, str]:
        """Store tags (see store.base.TAG_KEYS) from the registry's hierarchy."""
        out = {"district": self.district, "street": self.street, "community": self.community}
        if self.building:
            out["building"] = self.building
        return out


class RegistryUnavailable(RuntimeError):
    """The registry did not answer the lookup."""


class RegistryClient:
    """Looks devices up in batches and caches the answers (known for ``ttl_s``, unknown for 30 s)."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        ttl_s: float = 300.0,
        unknown_ttl_s: float = UNKNOWN_TTL_S,
        timeout_s: float = 5.0,
        revision_check_s: float = REVISION_CHECK_S,
        clock: Callable[[], float] = time.monotonic,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"), headers=headers, timeout=timeout_s, transport=transport
        )
        self.ttl_s = ttl_s
        self.unknown_ttl_s = unknown_ttl_s
        self._clock = clock
        self._cache: dict[str, tuple[float, DeviceRecord | None]] = {}
        self._owners: dict[str, str] = {}  # unbound device id -> the registered compound it names
        self.requests = 0
        self.revision_check_s = revision_check_s
        self._revision: int | None = None
        self._next_revision_check = 0.0

    def lookup(self, devices: Collection[str]) -> dict[str, DeviceRecord | None]:
        """Record (or None when unknown) for each device; stale entries are refreshed.

        Raises RegistryUnavailable when a needed answer is not cached and the registry fails;
        entries past their time are then still used rather than refused.
        """
        now = self._clock()
        self._check_revision(now)
        out: dict[str, DeviceRecord | None] = {}
        wanted: list[str] = []
        for device in dict.fromkeys(devices):
            entry = self._cache.get(device)
            if entry is not None and entry[0] > now:
                out[device] = entry[1]
            else:
                wanted.append(device)
        if not wanted:
            return out
        try:
            fetched = self._fetch(wanted)
        except RegistryUnavailable:
            stale = {d: self._cache[d][1] for d in wanted if d in self._cache}
            if len(stale) < len(wanted):
                raise
            log.warning("registry unavailable; using %d cached answers past their time", len(stale))
            return out | stale
        for device in wanted:
            record = fetched.get(device)
            self._cache[device] = (now + (self.ttl_s if record else self.unknown_ttl_s), record)
            out[device] = record
        return out

    def owner_of(self, device: str) -> str | None:
        """For a device the registry does not bind (as last looked up), the code of the registered
        compound its id names, if any (a device id names at most one compound)."""
        return self._owners.get(device)

    def _check_revision(self, now: float) -> None:
        """Empty the cache when the registry changed (bindings moved, devices added) since we filled it."""
        if now < self._next_revision_check:
            return
        self._next_revision_check = now + self.revision_check_s
        try:
            response = release(self._http.get(REVISION_PATH))
            revision = int(response.json()["revision"]) if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError, KeyError, TypeError):
            revision = None  # an older registry without the counter: entries expire by time only
        if revision is None:
            return
        if self._revision is not None and revision != self._revision:
            log.info(
                "asset registry changed (revision %s → %s): refreshing device lookups",
                self._revision,
                revision,
            )
            self._cache.clear()
            self._owners.clear()
        self._revision = revision

    def _fetch(self, devices: list[str]) -> dict[str, DeviceRecord]:
        found: dict[str, DeviceRecord] = {}
        for start in range(0, len(devices), LOOKUP_CHUNK):
            chunk = devices[start : start + LOOKUP_CHUNK]
            self.requests += 1
            try:
                response = release(self._http.post(LOOKUP_PATH, json={"device_ids": chunk}))
            except httpx.HTTPError as exc:
                raise RegistryUnavailable(f"registry lookup failed: {exc}") from exc
            if response.status_code != 200:
                raise RegistryUnavailable(
                    f"registry lookup answered {response.status_code}: {response.text[:200]}"
                )
            try:
                answer = response.json()
                for device, owner in answer.get("owners", {}).items():
                    self._owners[str(device)] = str(owner)
                for device, item in answer.get("found", {}).items():
                    found[device] = DeviceRecord(
                        device=device,
                        kind=str(item["kind"]),
                        compound=str(item["compound_code"]),
                        district=str(item["district"]),
                        street=str(item["street"]),
                        community=str(item["community"]),
                        building=item.get("building_no"),
                    )
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                raise RegistryUnavailable(f"registry lookup answer not understood: {exc!r}") from exc
        return found

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._http.close()
