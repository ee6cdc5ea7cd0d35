"""Compound-wide outages: when most devices of several kinds of one compound are offline (or send
no data) at once, the cause is the compound's power or network, not each device. Alerting raises
one critical alert for the compound (fault ``power_outage``), which inhibits the per-device ones
(the shipped rule ``compound_power_outage``), and resolves it when the devices come back.

While the compound's gateway is itself down, or came back less than ``alerts.inhibit_hold_s`` ago
(its devices' findings clear a moment after it), its alert is the one alert (rule
``gateway_down``): alerting cannot see past a dead gateway, so it raises no outage then.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from ..assets.models import Asset, Compound, DeviceBinding
from ..contract import Severity
from ..i18n import N_
from ..settings import AlertsSettings
from .lifecycle import Problem, Touch, raise_problem, resolve
from .models import OPEN_STATES, Alert

OUTAGE_FAULT = "power_outage"
OUTAGE_SOURCE = "rule:alerts.power_outage"
OFFLINE_FAULTS = ("offline", "no_data")
OUTAGE_MESSAGE = N_("Power or network outage suspected: most {kinds} devices offline at once")


def _offline(session: Session) -> dict[str, dict[str, int]]:
    rows = session.execute(
        select(Alert.compound, Alert.kind, func.count(func.distinct(Alert.device)))
        .where(Alert.state.in_(OPEN_STATES), Alert.fault.in_(OFFLINE_FAULTS))
        .group_by(Alert.compound, Alert.kind)
    ).all()
    out: dict[str, dict[str, int]] = {}
    for compound, kind, count in rows:
        out.setdefault(compound, {})[kind] = count
    return out


def _devices(session: Session, compound: str) -> dict[str, int]:
    rows = session.execute(
        select(Asset.kind, func.count())
        .join(Compound, Compound.id == Asset.compound_id)
        .join(DeviceBinding, DeviceBinding.asset_id == Asset.id)
        .where(Compound.code == compound, DeviceBinding.valid_to.is_(None))
        .group_by(Asset.kind)
    ).all()
    return {kind: count for kind, count in rows}


def outage_problem(compound: str, kinds: list[str]) -> Problem:
    """The alert of a compound-wide outage."""
    return Problem(compound, None, "compound", OUTAGE_SOURCE, OUTAGE_FAULT, Severity.CRITICAL,
                   OUTAGE_MESSAGE, {"kinds": ", ".join(sorted(kinds))})  # fmt: skip


def _gateway_down(session: Session, cutoff: dt.datetime) -> set[str]:
    """Compounds whose gateway is down, or came back within the inhibition hold."""
    return set(
        session.execute(
            select(Alert.compound).where(
                Alert.kind == "gateway",
                Alert.fault.in_(OFFLINE_FAULTS),
                or_(Alert.state.in_(OPEN_STATES), Alert.resolved_at >= cutoff),
            )
        ).scalars()
    )


def detect_outages(session: Session, settings: AlertsSettings, now: dt.datetime, touch: Touch) -> int:
    """Raise the outage alerts that the offline alerts now show, resolve those they no longer
    show; returns the outages raised."""
    offline = _offline(session)
    raised = 0
    in_outage: set[str] = set()
    blind = _gateway_down(session, now - dt.timedelta(seconds=settings.inhibit_hold_s)) if offline else set()
    for compound, by_kind in offline.items():
        if compound in blind:
            continue
        totals = _devices(session, compound)
        kinds = [k for k, n in by_kind.items() if totals.get(k) and n / totals[k] >= settings.outage_share]
        if len(kinds) >= settings.outage_kinds:
            in_outage.add(compound)
            problem = outage_problem(compound, kinds)
            existing = session.execute(
                select(Alert.id).where(Alert.fingerprint == problem.fingerprint, Alert.state.in_(OPEN_STATES))
            ).first()
            if existing is None:
                raise_problem(session, problem, settings, now, touch)
                raised += 1
    for alert in session.execute(
        select(Alert).where(Alert.fault == OUTAGE_FAULT, Alert.state.in_(OPEN_STATES)).with_for_update()
    ).scalars():
        if alert.compound not in in_outage and alert.resolved_by is None:
            resolve(session, alert, None, "devices back online", now, touch)
    return raised
