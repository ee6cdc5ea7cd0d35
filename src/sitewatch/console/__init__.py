"""The built-in web console: server-rendered pages (Jinja2, htmx, uPlot) in the web application.

It sits between ``server`` and the components (docs/architecture.md): it reads the store
(``sitewatch.store``), the registry (``sitewatch.assets``) and alerting's Python API
(``sitewatch.alerts.actions``), and authenticates through ``sitewatch.web``'s tokens, roles and
compound scope. Pages are modules of :mod:`sitewatch.console.pages`, each a router and a nav
entry (docs/console.md says how a new page slots in).
"""
