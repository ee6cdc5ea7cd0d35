"""The asset registry's REST API: its routers, and the access (tokens, scopes) it supplies to the web application (:func:`sitewatch.assets.api.component.registry_component`)."""
