"""Who is calling and what they may see: the roles, the caller, and the compounds in their scope.

Plain data, no web framework: the registry's token store makes a :class:`Principal`, the web
application hands it to every route, and a component decides what each role may do.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class Role(StrEnum):
    """What an API token may do."""

    ADMIN = "admin"  # everything, including tokens
    BUREAU = "bureau"  # read everything
    PROPERTY_MANAGER = "property_manager"  # read/write the compounds its organisation manages
    CREW = "crew"  # read the assets its organisation maintains under contract


ORG_ROLES = (Role.PROPERTY_MANAGER, Role.CREW)  # roles whose scope is an organisation


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller: its token, role and organisation."""

    token_id: int
    role: Role
    org_id: int | None

    @property
    def reads_all(self) -> bool:
        """Admin and bureau see every compound."""
        return self.role in (Role.ADMIN, Role.BUREAU)


@dataclass(frozen=True, slots=True)
class CompoundScope:
    """The compounds a caller may see, by code, each with the asset kinds it may see there
    (``None``: every kind). ``everything`` is set for roles that see every compound."""

    everything: bool = False
    compounds: Mapping[str, frozenset[str] | None] = field(default_factory=dict)

    @classmethod
    def all(cls) -> CompoundScope:
        """The scope of admin and bureau."""
        return cls(everything=True)

    @property
    def codes(self) -> frozenset[str]:
        """Codes of the compounds in scope (empty when ``everything``: filter on nothing then)."""
        return frozenset(self.compounds)

    def sees(self, compound: str, kind: str | None = None) -> bool:
        """Whether the caller may see ``compound`` (and, if given, assets of ``kind`` there)."""
        if self.everything:
            return True
        if compound not in self.compounds:
            return False
        kinds = self.compounds[compound]
        return kind is None or kinds is None or kind in kinds

    def filter(self, compounds: Iterable[str]) -> list[str]:
        """The given compound codes the caller may see."""
        return [c for c in compounds if self.sees(c)]
