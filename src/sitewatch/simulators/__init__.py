"""Simulators: a synthetic city ledger, behaviour models with faults and labels, live and backfill modes.

See docs/simulators.md.
"""

from .faults import FAULT_TYPES, FAULTS_BY_KIND, Band, FaultLabel, FaultType
from .harmless import HARMLESS_TYPES, OUTAGE_TYPES, HarmlessLabel, OutageLabel
from .live import LiveSite
from .site import Device, LedgerError, Site, load_sites, sites_from_records

__all__ = ["FAULTS_BY_KIND", "FAULT_TYPES", "HARMLESS_TYPES", "OUTAGE_TYPES", "Band", "Device", "FaultLabel",
           "FaultType", "HarmlessLabel", "LedgerError", "LiveSite", "OutageLabel", "Site", "load_sites",
           "sites_from_records"]  # fmt: skip
