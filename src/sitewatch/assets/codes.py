"""The registry's side of unambiguous device ids (:mod:`sitewatch.contract.ownership`): refuse a
compound code that clashes with one already registered, and find the one compound a device id
names."""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from ..contract.ownership import code_prefixes
from .models import Compound, RegistryRevision


def clashing_code(session: Session, code: str, ignore_id: int | None = None) -> str | None:
    """A registered compound code that ``code`` clashes with, or None."""
    lowered = code.lower()
    pattern = lowered.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "-%"
    stmt = select(Compound.id, Compound.code).where(
        Compound.code_key.in_([lowered, *code_prefixes(lowered)])
        | Compound.code_key.like(pattern, escape="\\")
    )
    return next((str(other) for ident, other in session.execute(stmt) if ident != ignore_id), None)


def compound_of_device(session: Session, device_id: str) -> Compound | None:
    """The registered compound whose code, followed by ``-``, starts ``device_id`` (at most one)."""
    prefixes = code_prefixes(device_id)
    if not prefixes:
        return None
    return session.scalars(select(Compound).where(Compound.code_key.in_(prefixes))).first()


def lock_codes(session: Session) -> None:
    """Serialise writers of compound codes until the transaction ends, so that two clashing codes
    created at one moment cannot both pass :func:`clashing_code` (PostgreSQL: a transaction-level
    advisory lock; SQLite: the database's write lock, taken by a write that changes nothing)."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(0x53C0DE)))
    elif dialect == "sqlite":
        session.execute(update(RegistryRevision).where(RegistryRevision.id == -1).values(revision=0))
