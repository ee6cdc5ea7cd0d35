"""Alerting in ``sitewatch demo``: the demo city in the registry, ``alerts run`` on the demo's broker,
and every notification delivered to a local webhook sink, so the demo shows alerts end to end
without anything external.

The findings come from the simulators' ground truth (source ``rule:demo.ground_truth``): when a
fault injected in a simulated device starts, a finding is published over MQTT through the findings
contract, and when it ends, its cleared copy; alerting treats them as it treats analytics' findings.
"""

from __future__ import annotations

import logging
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .alerts.db import alerts_engine, migrate, transaction
from .alerts.models import OPEN_STATES, Alert, Channel, ChannelScope, ChannelType, utcnow
from .alerts.service import AlertService
from .alerts.sink import Received, WebhookSink
from .contract import Finding, FindingState, Severity, finding_topic, now_ms
from .i18n import N_
from .mqtt_client import client_for, connect_options
from .settings import AlertsSettings, Settings

log = logging.getLogger(__name__)
SINK_CHANNEL = "demo-webhook"
SOURCE = "rule:demo.ground_truth"
MESSAGE = N_("{description} (simulated fault)")
CRITICAL = {"entrapment", "camera_tamper", "meter_tamper", "burst"}
INFO = {"day_burning"}


def _severity(fault: str) -> Severity:
    if fault in CRITICAL:
        return Severity.CRITICAL
    return Severity.INFO if fault in INFO else Severity.WARNING


class DemoAlerts:
    """Registry, alerting and a webhook sink for the demo; findings from the ground truth."""

    def __init__(self, settings: Settings, records: dict[str, list[dict[str, Any]]], lives: Sequence[Any],
                 sim_now: Callable[[], int], lang: str) -> None:  # fmt: skip
        # grouping timers in wall-clock seconds, short enough to watch in a demo run
        alerts = AlertsSettings(group_wait_s=5, group_interval_s=30, escalation_minutes={})
        self.settings = settings.model_copy(update={"alerts": alerts, "language": lang})
        self.records = records
        self.lives = lives
        self.sim_now = sim_now
        self.lang = lang
        self.engine = alerts_engine(self.settings)
        self.sink = WebhookSink(on_receive=self._received)
        self.service: AlertService | None = None
        self.last: list[str] = []  # titles of the latest notifications received
        self._published: dict[tuple[str, str, int], bool] = {}  # label → cleared published
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._client: Any = None

    def _received(self, item: Received) -> None:
        alerts = item.body.get("alerts", [])
        if alerts:
            self.last = ([*self.last, str(alerts[0].get("annotations", {}).get("description", ""))])[-3:]

    def prepare(self) -> None:
        """Migrate, import the demo city into the registry, and point the demo channel at the sink."""
        from .assets.importer import import_ledger
        from .assets.workbook import HeaderStyle, write_csv_dir

        migrate(self.engine)
        with tempfile.TemporaryDirectory() as folder:
            write_csv_dir(self.records, Path(folder), HeaderStyle.EN)
            report = import_ledger(self.engine, Path(folder))
        if not report.ok:
            log.warning("the demo city did not import into the registry; alerts carry fewer labels")
        self.sink.start()
        with transaction(self.engine) as session:
            channel = session.query(Channel).filter(Channel.name == SINK_CHANNEL).one_or_none()
            if channel is None:
                channel = Channel(name=SINK_CHANNEL, type=ChannelType.WEBHOOK.value, scope=ChannelScope.ALL.value,
                                  target="", min_severity="warning", escalation_only=False, enabled=True,
                                  created_at=utcnow(), failures=0)  # fmt: skip
                session.add(channel)
            channel.url = self.sink.url

    def start(self) -> None:
        """Run alerting on the demo's broker and publish ground-truth findings as simulated time passes."""
        self.service = AlertService(self.settings, self.engine, client_id="sitewatch-demo-alerts", tick_s=0.5)
        self.service.start()
        self.service.wait_connected(10)
        self._client = client_for(self.settings.mqtt, "sitewatch-demo-findings", keep_session=False)
        self._client.connect(self.settings.mqtt.host, self.settings.mqtt.port,
                             **connect_options(self.settings.mqtt, keep_session=False))  # fmt: skip
        self._client.loop_start()
        self._thread = threading.Thread(target=self._publish_loop, name="demo-findings", daemon=True)
        self._thread.start()

    def _publish_loop(self) -> None:
        from .simulators.faults import FAULT_TYPES

        while not self._stop.wait(1.0):
            now = self.sim_now()
            for live in self.lives:
                for label in live.labels:
                    key = (label.device, label.fault, label.start_ms)
                    if label.start_ms > now or self._published.get(key):
                        continue
                    spec = FAULT_TYPES[label.fault]
                    if key not in self._published:
                        self._publish(label, spec, cleared=False)
                        self._published[key] = False
                    if label.end_ms <= now:
                        self._publish(label, spec, cleared=True)
                        self._published[key] = True

    def _publish(self, label: Any, spec: Any, cleared: bool) -> None:
        description = spec.description_zh if self.lang.lower().startswith("zh") else spec.description
        finding = Finding(
            id=f"{SOURCE}:{label.device}:{label.fault}:{label.start_ms}", compound=label.compound,
            device=label.device, kind=label.kind, source=SOURCE, fault=label.fault, severity=_severity(label.fault),
            state=FindingState.CLEARED if cleared else FindingState.ACTIVE, started_ms=label.start_ms,
            ended_ms=label.end_ms if cleared else None, ts_ms=now_ms(), message=MESSAGE,
            params={"description": description},
        )  # fmt: skip
        self._client.publish(finding_topic(label.compound), finding.encode(), qos=1)

    def counts(self) -> dict[str, int]:
        """Open alerts, notifications made and delivered to the sink."""
        with transaction(self.engine) as session:
            open_ = session.query(Alert).filter(Alert.state.in_(OPEN_STATES)).count()
        snap = self.service.snapshot() if self.service else {}
        return {
            "open": open_,
            "notifications": int(snap.get("notifications", 0)),
            "delivered": len(self.sink.received),
        }

    def stop(self) -> None:
        """Stop publishing, alerting and the sink."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._client is not None:
            self._client.loop_stop()
            self._client.disconnect()
        if self.service is not None:
            self.service.stop()
        self.sink.stop()
        self.engine.dispose()
