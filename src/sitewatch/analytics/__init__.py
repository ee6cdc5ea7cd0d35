"""Analytics: rules and anomaly detectors that turn readings into findings (docs/analytics-detectors.md)."""
