"""Token authentication and compound scope as the web application sees them: two small interfaces.

The asset registry implements both (it keeps the tokens, and knows which compounds an
organisation manages or maintains); the application factory hands them to
:func:`sitewatch.web.deps` through :class:`Access`, so that any component's routes authenticate
and scope callers without importing the registry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from .principal import CompoundScope, Principal


class Authenticator(Protocol):
    """Turns a bearer token into its caller."""

    def authenticate(self, secret: str) -> Principal | None:
        """The caller of a valid token; None for an unknown, expired or revoked one."""
        ...


class ScopeResolver(Protocol):
    """Knows which compounds (and asset kinds there) a caller may see."""

    def compound_scope(self, principal: Principal) -> CompoundScope:
        """The compounds ``principal`` may see."""
        ...


@dataclass(frozen=True, slots=True)
class Access:
    """What the application's routes authenticate and scope callers with (``app.state.access``)."""

    authenticator: Authenticator
    scopes: ScopeResolver
