"""sitewatch: monitoring and maintenance for the equipment of renovated residential compounds."""

__version__ = "0.1.0"
