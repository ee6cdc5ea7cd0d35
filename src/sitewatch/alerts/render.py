"""Notification text, made once when a notification enters the outbox (a retry sends the same).

Each message names the compound, building and device, says what happened and since when, and
links to the alert in the console, in the channel's language (the ``language`` setting unless the
channel has its own) through the one catalog. The payload holds every form a channel may need:
plain text and markdown for the robots, a subject for e-mail, Alertmanager's version-4 JSON for
webhooks, and the phones to mention.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .. import i18n
from ..i18n import N_, _, ngettext
from ..settings import Settings
from .models import Alert, AlertState

log = logging.getLogger(__name__)

MAX_LISTED = 20  # alerts written out in a robot/e-mail message; the rest are counted and linked
MAX_WEBHOOK_ALERTS = 1000
ZERO_TIME = "0001-01-01T00:00:00Z"  # Alertmanager's "no end" for firing alerts
SEVERITY_WORDS = {"critical": N_("critical"), "warning": N_("warning"), "info": N_("info")}
STATE_WORDS = {"firing": N_("firing"), "acknowledged": N_("acknowledged"), "resolved": N_("resolved"),
               "closed": N_("closed")}  # fmt: skip
LEVEL_WORDS = {1: N_("crew lead"), 2: N_("property manager"), 3: N_("district bureau")}


@dataclass(frozen=True, slots=True)
class Item:
    """One alert in a notification, and what it tells about it."""

    alert: Alert
    status: str  # "firing" or "resolved"


def _zone(name: str) -> dt.tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        log.warning("unknown time zone %s; times in messages are UTC", name)
        return dt.UTC


def local(moment: dt.datetime, settings: Settings) -> str:
    """A database time (naive UTC) as wall time for people, in the ``timezone`` setting."""
    return moment.replace(tzinfo=dt.UTC).astimezone(_zone(settings.timezone)).strftime("%Y-%m-%d %H:%M:%S")


def iso(moment: dt.datetime | None) -> str:
    """RFC 3339 UTC, as Alertmanager writes times."""
    if moment is None:
        return ZERO_TIME
    return moment.replace(tzinfo=dt.UTC).isoformat().replace("+00:00", "Z")


def link(settings: Settings, alert_id: int | None = None) -> str:
    """The console page of one alert, or of the alert list."""
    base = settings.alerts.console_url.rstrip("/")
    return f"{base}/alerts/{alert_id}" if alert_id is not None else f"{base}/alerts"


def what(alert: Alert) -> str:
    """The alert's summary in the current language (the finding's catalog message and params)."""
    try:
        return _(alert.message, **alert.params)
    except (KeyError, IndexError, ValueError):  # params that do not fit the message: show it raw
        return alert.message


def place(alert: Alert) -> str:
    """Compound and building, for people."""
    labels = alert.labels
    name = labels.get("compound_name_en") if i18n.current_language() == "en" else None
    name = name or labels.get("compound_name") or alert.compound
    building = labels.get("building")
    return _("{compound} building {building}", compound=name, building=building) if building else name


def device(alert: Alert) -> str:
    """The device as people know it: its asset name and id."""
    asset = alert.labels.get("asset")
    if alert.device and asset and asset != alert.device:
        return f"{asset} ({alert.device})"
    return alert.device or asset or _("the whole compound")


def line(item: Item, settings: Settings) -> str:
    """One alert on one line."""
    alert = item.alert
    if item.status == "resolved":
        return _(
            "Resolved: {place}, {device}: {what} (since {since}, resolved {at})",
            place=place(alert), device=device(alert), what=what(alert),
            since=local(alert.started_at, settings), at=local(alert.resolved_at or alert.updated_at, settings),
        )  # fmt: skip
    return _(
        "[{severity}] {place}, {device}: {what} (since {since})",
        severity=_(SEVERITY_WORDS.get(alert.severity, alert.severity)), place=place(alert),
        device=device(alert), what=what(alert), since=local(alert.started_at, settings),
    )  # fmt: skip


def group_title(items: Sequence[Item]) -> str:
    """The headline of a group's notification."""
    firing = sum(1 for i in items if i.status == "firing")
    resolved = len(items) - firing
    first = items[0].alert
    compound = place_compound(first)
    if firing and resolved:
        return _("{compound}: {firing} firing, {resolved} resolved", compound=compound, firing=firing,
                 resolved=resolved)  # fmt: skip
    if firing:
        return ngettext(
            "{compound}: {n} alert firing", "{compound}: {n} alerts firing", firing, compound=compound
        )
    return ngettext(
        "{compound}: {n} alert resolved", "{compound}: {n} alerts resolved", resolved, compound=compound
    )


def place_compound(alert: Alert) -> str:
    """The compound's name for people."""
    labels = alert.labels
    if i18n.current_language() == "en" and labels.get("compound_name_en"):
        return labels["compound_name_en"]
    return labels.get("compound_name") or alert.compound


def _body(
    title: str, lines: list[str], more: int, settings: Settings, one: Alert | None
) -> dict[str, str]:
    url = link(settings, one.id if one is not None else None)
    tail = [ngettext("… and {n} more", "… and {n} more", more)] if more else []
    details = _("Details: {link}", link=url)
    text = "\n".join([title, *lines, *tail, details])
    markdown = "\n".join(
        [f"**{title}**", *(f"> {x}" for x in lines), *tail, f"[{_('Open in the console')}]({url})"]
    )
    return {"title": title, "text": text, "markdown": markdown, "link": url}


def group_payload(
    items: Sequence[Item], *, receiver: str, group_key: str, group_labels: dict[str, str],
    mentions: Sequence[str], settings: Settings, language: str,
) -> dict[str, Any]:  # fmt: skip
    """The payload of a group's notification."""
    with i18n.using(language):
        listed = [line(i, settings) for i in items[:MAX_LISTED]]
        one = items[0].alert if len(items) == 1 else None
        body = _body(group_title(items), listed, len(items) - len(listed), settings, one)
    return {
        **body,
        "language": language,
        "mentions": list(mentions),
        "webhook": webhook_v4(items, receiver, group_key, group_labels, settings, language),
    }


def escalation_payload(
    alert: Alert, level: int, minutes: float, *, receiver: str, mentions: Sequence[str],
    settings: Settings, language: str,
) -> dict[str, Any]:  # fmt: skip
    """The payload of one escalation step of one alert."""
    with i18n.using(language):
        title = _(
            "Escalated to the {level}: not acknowledged for {minutes} minutes",
            level=_(LEVEL_WORDS.get(level, LEVEL_WORDS[3])), minutes=round(minutes),
        )  # fmt: skip
        body = _body(title, [line(Item(alert, "firing"), settings)], 0, settings, alert)
    key = f"escalation:{alert.id}:{level}"
    labels = {"compound": alert.compound, "escalation": str(level)}
    return {
        **body,
        "language": language,
        "mentions": list(mentions),
        "webhook": webhook_v4([Item(alert, "firing")], receiver, key, labels, settings, language),
    }


def channel_failure_payload(alert: Alert, name: str, error: str, *, receiver: str,
                            settings: Settings, language: str) -> dict[str, Any]:  # fmt: skip
    """The payload telling the other channels that one keeps failing."""
    with i18n.using(language):
        title = _("Notification channel {name} keeps failing", name=name)
        lines = [_("Its last answer: {error}. Its notifications wait in the outbox and go out when it "
                   "accepts them again.", error=error[:300])]  # fmt: skip
        body = _body(title, lines, 0, settings, alert)
    return {
        **body,
        "language": language,
        "mentions": [],
        "webhook": webhook_v4(
            [Item(alert, "firing")], receiver, f"channel:{name}", {"channel": name}, settings, language
        ),
    }


def webhook_v4(
    items: Sequence[Item], receiver: str, group_key: str, group_labels: dict[str, str],
    settings: Settings, language: str,
) -> dict[str, Any]:  # fmt: skip
    """Alertmanager's webhook payload, version 4, which many tools accept."""
    alerts = []
    with i18n.using(language):
        for item in items[:MAX_WEBHOOK_ALERTS]:
            a = item.alert
            alerts.append({
                "status": item.status,
                "labels": {k: v for k, v in a.labels.items() if v},
                "annotations": {"summary": what(a), "description": line(item, settings),
                                "sources": ", ".join(a.sources or {a.source: None})},
                "startsAt": iso(a.started_at),
                "endsAt": iso(a.resolved_at) if item.status == "resolved" else ZERO_TIME,
                "generatorURL": link(settings, a.id),
                "fingerprint": a.fingerprint,
            })  # fmt: skip
    label_sets = [set(a.alert.labels.items()) for a in items[:MAX_WEBHOOK_ALERTS]]
    common = dict(set.intersection(*label_sets)) if label_sets else {}
    firing = any(i.status == "firing" and i.alert.state != AlertState.RESOLVED for i in items)
    return {
        "version": "4",
        "groupKey": group_key,
        "truncatedAlerts": max(0, len(items) - MAX_WEBHOOK_ALERTS),
        "status": "firing" if firing else "resolved",
        "receiver": receiver,
        "groupLabels": group_labels,
        "commonLabels": common,
        "commonAnnotations": {},
        "externalURL": settings.alerts.console_url,
        "alerts": alerts,
    }
