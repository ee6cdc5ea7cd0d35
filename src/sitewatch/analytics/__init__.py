"""Analytics: rules and anomaly detectors that turn readings and events into findings.

See docs/analytics-service.md for the live service (``sitewatch analytics run``).
"""
