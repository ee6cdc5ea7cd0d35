"""The registry's share of the web application: its API routers and the access it supplies."""

from __future__ import annotations

from sqlalchemy import Engine

from ...settings import Settings
from ...web.auth import Access
from ...web.component import Component, Periodic
from .access import USAGE_FLUSH_S, registry_access
from .routes import (
    assets,
    buildings,
    compounds,
    contracts,
    crews,
    devices,
    hierarchy,
    lookup,
    organisations,
    tokens,
)

ROUTERS = (hierarchy, compounds, buildings, assets, devices, organisations, crews, contracts, tokens, lookup)


def registry_component(settings: Settings, engine: Engine) -> Component:
    """The registry's routers, its token store and scopes, and the periodic note of token use."""
    store, scopes = registry_access(engine)
    return Component(
        name="registry",
        api=[module.router for module in ROUTERS],
        access=Access(store, scopes),
        periodic=[Periodic(USAGE_FLUSH_S, store.flush_usage)],
    )
