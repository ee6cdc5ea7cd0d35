"""Grafana dashboards of the time-series store, as code: built, verified on InfluxDB, pushed.

See docs/dashboards.md. ``provisioning.build_all()`` builds every dashboard in every language,
``provisioning.write(out)`` writes the files Grafana mounts, ``verify.verify(...)`` runs every
panel's query on an InfluxDB, ``push.push(...)`` uploads them to a Grafana.
"""
