"""Simulators: a synthetic city ledger, behaviour models with faults and labels, live and backfill modes.

See docs/simulators.md.
"""

from .faults import FAULT_TYPES, FAULTS_BY_KIND, FaultLabel, FaultType
from .live import LiveSite
from .site import Device, LedgerError, Site, load_sites, sites_from_records

__all__ = ["FAULTS_BY_KIND", "FAULT_TYPES", "Device", "FaultLabel", "FaultType", "LedgerError", "LiveSite", "Site",
           "load_sites", "sites_from_records"]  # fmt: skip
