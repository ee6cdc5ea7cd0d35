"""Alembic migrations of the asset registry (run through sitewatch.assets.db.migrate)."""
