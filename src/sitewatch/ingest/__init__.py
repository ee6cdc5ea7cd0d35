"""Ingest: MQTT → validate → enrich from the asset registry → store in batches → acknowledge.

``IngestService`` is the service; ``sitewatch ingest run`` runs it. See docs/ingest.md.
"""

from .deadletter import dead_letter_payload
from .gaps import GapReport, SequenceTracker
from .registry import RegistryClient
from .service import IngestService
from .stats import IngestStats, StatsSnapshot

__all__ = [
    "GapReport",
    "IngestService",
    "IngestStats",
    "RegistryClient",
    "SequenceTracker",
    "StatsSnapshot",
    "dead_letter_payload",
]
