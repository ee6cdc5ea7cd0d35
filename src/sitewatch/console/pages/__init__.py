"""The console's pages, one module each: a ``router`` (mounted at the root) and a ``NAV`` entry
(or None). A new page is a module here and one line in :data:`PAGES` (docs/console.md)."""

from __future__ import annotations

from types import ModuleType

from .. import auth
from . import alerts, compound, device, overview, registry

PAGES: tuple[ModuleType, ...] = (auth, overview, compound, device, alerts, registry)
