"""Catalog messages of findings' summaries: one per fault type, one per generic rule type, and one
per rule mode whose symptom differs from what its fault type's message says.

Messages are catalog ids (English); a finding carries the id and its placeholders, and each reader
renders it in their own language (``sitewatch.i18n.translate``). Placeholders: ``device``,
``rule`` and, where the rule has one, ``value``.
"""

from __future__ import annotations

from ..i18n import N_

FAULT_MESSAGES: dict[str, str] = {
    "door_fault_burst": N_("Door faults in quick succession on {device}"),
    "bearing_wear": N_("Running vibration of {device} rising: bearing wear suspected"),
    "entrapment": N_("Passenger trapped in {device}"),
    "out_of_service": N_("{device} is out of service"),
    "camera_offline": N_("{device} does not answer its health checks"),
    "video_loss": N_("{device} is losing video frames"),
    "storage_full": N_("Recording storage of {device} filling up"),
    "camera_tamper": N_("{device} moved or covered"),
    "charger_faulted": N_("Charger {device} faulted"),
    "over_temperature": N_("Charger {device} running hot"),
    "stuck_session": N_("Charging session on {device} stuck"),
    "lamp_failure": N_("Lamp {device} gives too little light"),
    "day_burning": N_("Lamp {device} burning in daylight"),
    "flicker": N_("Lamp {device} flickering"),
    "leak": N_("Water running at night behind {device}: leak suspected"),
    "burst": N_("Burst pipe suspected behind {device}"),
    "stuck_register": N_("Register of {device} not counting the water"),
    "reverse_flow": N_("Water flowing backwards through {device}"),
    "battery_low": N_("Battery of {device} running down"),
    "meter_tamper": N_("Water meter {device} tampered with"),
}

RULE_MESSAGES: dict[str, str] = {
    "threshold": N_("{rule}: {device} past its limit"),
    "state": N_("{rule}: {device} in an abnormal state"),
    "rate": N_("{rule}: {device} changing too fast"),
    "change": N_("{rule}: {device} far from its value at the same time before"),
    "counter": N_("{rule}: register of {device} abnormal"),
    "count": N_("{rule}: {device} repeatedly abnormal"),
    "streak": N_("{rule}: {device} failed attempt after attempt"),
    "dip": N_("{rule}: {device} dipping again and again"),
    "step": N_("{rule}: {device} stepped down and stayed there"),
    "no_data": N_("{rule}: nothing heard from {device}"),
    "daynight": N_("{rule}: {device} against the sun"),
    "event": N_("{rule}: {device} raised an alarm"),
    "demand": N_("{rule}: {device} idle against its usual demand"),
    "load_temperature": N_("{rule}: {device} hotter than its load explains"),
}


# A rule mode that raises a fault type from an earlier symptom than the fault type's message names: a
# dirty photocell reads dark by day before (or while) its lamp burns into the day.
MODE_MESSAGES: dict[tuple[str, str], str] = {
    ("daynight", "dark_in_day"): N_(
        "Photocell of lamp {device} reads dark in daylight: dirty or covered, the lamp may burn by day"
    ),
}


def summary(fault: str | None, rule_type: str, mode: str | None = None) -> str:
    """The catalog message of a finding's summary (a rule's ``mode`` where it has one)."""
    if mode is not None and (rule_type, mode) in MODE_MESSAGES:
        return MODE_MESSAGES[rule_type, mode]
    if fault is not None and fault in FAULT_MESSAGES:
        return FAULT_MESSAGES[fault]
    return RULE_MESSAGES[rule_type]
