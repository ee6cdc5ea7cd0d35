"""The asset registry's REST API (FastAPI); build it with :func:`sitewatch.assets.api.app.create_app`."""
