"""Alerting in ``sitewatch demo``: the demo city in the registry, ``alerts run`` on the demo's broker,
and every notification delivered to a local webhook sink, so the demo shows alerts end to end
without anything external.

The findings come from the real analytics service that the demo runs on its broker
(``sitewatch.analytics.service``, see demo.py): alerting consumes them from the finding topic, as
it would in a deployment.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

from .alerts.db import alerts_engine, migrate, transaction
from .alerts.models import OPEN_STATES, Alert, Channel, ChannelScope, ChannelType, Notification, utcnow
from .alerts.service import AlertService
from .alerts.sink import Received, WebhookSink
from .settings import AlertsSettings, Settings

log = logging.getLogger(__name__)
SINK_CHANNEL = "demo-webhook"


class DemoAlerts:
    """Registry, alerting and a webhook sink for the demo; findings from the demo's analytics."""

    def __init__(self, settings: Settings, records: dict[str, list[dict[str, Any]]], lang: str) -> None:
        # grouping timers in wall-clock seconds, short enough to watch in a demo run
        alerts = AlertsSettings(group_wait_s=5, group_interval_s=30, escalation_minutes={})
        self.settings = settings.model_copy(update={"alerts": alerts, "language": lang})
        self.records = records
        self.lang = lang
        self.engine = alerts_engine(self.settings)
        self.sink = WebhookSink(on_receive=self._received)
        self.service: AlertService | None = None
        self.last: list[str] = []  # titles of the latest notifications received

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
        """Run alerting on the demo's broker: it consumes the findings the demo's analytics publishes."""
        self.service = AlertService(self.settings, self.engine, client_id="sitewatch-demo-alerts", tick_s=0.5)
        self.service.start()
        self.service.wait_connected(10)

    def counts(self) -> dict[str, int]:
        """Open alerts, notifications made (the outbox's rows: groups and escalations, every channel) and
        delivered to the sink (counted first: each of them was made before it was sent)."""
        delivered = len(self.sink.received)
        with transaction(self.engine) as session:
            open_ = session.query(Alert).filter(Alert.state.in_(OPEN_STATES)).count()
            made = session.query(Notification).count()
        return {"open": open_, "notifications": made, "delivered": delivered}

    def stop(self) -> None:
        """Stop alerting and the sink."""
        if self.service is not None:
            self.service.stop()
        self.sink.stop()
        self.engine.dispose()
