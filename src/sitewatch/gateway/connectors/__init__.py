"""Device connectors: each turns one protocol into contract samples and events (see base.py)."""
