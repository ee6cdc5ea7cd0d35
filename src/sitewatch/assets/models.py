"""The asset registry's tables (SQLAlchemy 2 typed ORM).

Hierarchy: city → district → street → community → compound → building → unit. Assets of every
device kind live in one ``assets`` table: a ``kind`` column plus nullable kind-specific columns
(typed, indexable and filterable in SQL, which a JSON column would not be on SQLite). A device id
is bound to an asset through ``device_bindings`` with a validity interval, so a replaced device
keeps its history; partial unique indexes allow one *active* binding per device and per asset.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, validates

from ..text import name_key
from ..web.principal import Role as Role  # the callers' roles belong to the web application

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base with a constraint naming convention (stable names in migrations)."""

    metadata = MetaData(naming_convention=NAMING)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class City(Base):
    """A city (市)."""

    __tablename__ = "cities"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)


class District(Base):
    """A district or county (区/县)."""

    __tablename__ = "districts"
    __table_args__ = (UniqueConstraint("city_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    city_id: Mapped[int] = mapped_column(ForeignKey("cities.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    code: Mapped[str | None] = mapped_column(String(20))  # administrative division code (区划代码)
    city: Mapped[City] = relationship()


class Street(Base):
    """A street or township (街道/乡镇)."""

    __tablename__ = "streets"
    __table_args__ = (UniqueConstraint("district_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    district_id: Mapped[int] = mapped_column(ForeignKey("districts.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    district: Mapped[District] = relationship()


class Community(Base):
    """A community (社区)."""

    __tablename__ = "communities"
    __table_args__ = (UniqueConstraint("street_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    street_id: Mapped[int] = mapped_column(ForeignKey("streets.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    street: Mapped[Street] = relationship()


class Organisation(Base):
    """A property company, contractor, utility, bureau or community office.

    ``name_key`` (:func:`sitewatch.text.name_key`: NFKC, case-folded) is unique, so names that
    only look different (full-width brackets, another Unicode form) are one organisation."""

    __tablename__ = "organisations"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    name_key: Mapped[str] = mapped_column(String(200), unique=True)
    type: Mapped[str] = mapped_column(String(32))  # sitewatch.assets.ledger.OrgType
    contact: Mapped[str | None] = mapped_column(String(100))
    phone: Mapped[str | None] = mapped_column(String(50))

    @validates("name")
    def _keep_key(self, _key: str, value: str) -> str:
        self.name_key = name_key(value)
        return value


class Compound(Base):
    """A residential compound (小区). Codes are unique regardless of case, and no code is another
    code followed by ``-`` (:mod:`sitewatch.assets.codes`), so a device id names one compound."""

    __tablename__ = "compounds"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    code_key: Mapped[str] = mapped_column(String(64), unique=True)  # the code in lower case
    name_zh: Mapped[str] = mapped_column(String(200), index=True)
    name_en: Mapped[str | None] = mapped_column(String(200))
    community_id: Mapped[int] = mapped_column(ForeignKey("communities.id"), index=True)
    address: Mapped[str | None] = mapped_column(String(300))
    longitude: Mapped[float | None] = mapped_column(Float)
    latitude: Mapped[float | None] = mapped_column(Float)
    year_built: Mapped[int] = mapped_column(Integer)
    buildings_count: Mapped[int] = mapped_column(Integer)
    households: Mapped[int] = mapped_column(Integer)
    floor_area_m2: Mapped[float | None] = mapped_column(Float)
    renovation_year: Mapped[int | None] = mapped_column(Integer)
    renovation_batch: Mapped[str | None] = mapped_column(String(100))
    renovation_content: Mapped[str | None] = mapped_column(Text)
    management_mode: Mapped[str] = mapped_column(String(32))  # sitewatch.assets.ledger.ManagementMode
    manager_org_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"), index=True)
    community: Mapped[Community] = relationship()
    manager_org: Mapped[Organisation | None] = relationship()

    @validates("code")
    def _keep_key(self, _key: str, value: str) -> str:
        self.code_key = value.lower()
        return value


class Building(Base):
    """A building (楼栋) of a compound."""

    __tablename__ = "buildings"
    __table_args__ = (UniqueConstraint("compound_id", "building_no"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    compound_id: Mapped[int] = mapped_column(ForeignKey("compounds.id", ondelete="CASCADE"))
    building_no: Mapped[str] = mapped_column(String(32))
    floors: Mapped[int] = mapped_column(Integer)
    units: Mapped[int] = mapped_column(Integer)
    households: Mapped[int] = mapped_column(Integer)
    year_built: Mapped[int | None] = mapped_column(Integer)
    compound: Mapped[Compound] = relationship()


class Unit(Base):
    """A unit (单元, one staircase) of a building; created from the building's unit count."""

    __tablename__ = "units"
    __table_args__ = (UniqueConstraint("building_id", "unit_no"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    building_id: Mapped[int] = mapped_column(ForeignKey("buildings.id", ondelete="CASCADE"))
    unit_no: Mapped[str] = mapped_column(String(32))


class Asset(Base):
    """One piece of equipment; kind-specific columns are NULL for other kinds."""

    __tablename__ = "assets"
    __table_args__ = (Index("ix_assets_compound_kind", "compound_id", "kind"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    asset_code: Mapped[str] = mapped_column(String(100), unique=True)
    compound_id: Mapped[int] = mapped_column(ForeignKey("compounds.id", ondelete="CASCADE"))
    building_id: Mapped[int | None] = mapped_column(ForeignKey("buildings.id"), index=True)
    unit_no: Mapped[str | None] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(32), index=True)  # sitewatch.contract.DeviceKind
    name: Mapped[str | None] = mapped_column(String(200))
    location: Mapped[str | None] = mapped_column(String(200))
    manufacturer: Mapped[str | None] = mapped_column(String(200))
    model: Mapped[str | None] = mapped_column(String(200))
    serial_no: Mapped[str | None] = mapped_column(String(100), unique=True)
    install_date: Mapped[dt.date | None] = mapped_column(Date)
    warranty_end: Mapped[dt.date | None] = mapped_column(Date)
    owner_org_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"))
    maintainer_org_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"), index=True)
    funding_source: Mapped[str | None] = mapped_column(String(200))
    # elevator
    rated_load_kg: Mapped[int | None] = mapped_column(Integer)
    floors_served: Mapped[int | None] = mapped_column(Integer)
    registration_code: Mapped[str | None] = mapped_column(String(100))
    # charger
    charger_power_kw: Mapped[float | None] = mapped_column(Float)
    connector_type: Mapped[str | None] = mapped_column(String(50))
    ocpp_id: Mapped[str | None] = mapped_column(String(100))
    # camera
    police_linked: Mapped[bool | None] = mapped_column(Boolean)
    # streetlight
    lamp_type: Mapped[str | None] = mapped_column(String(50))
    wattage_w: Mapped[float | None] = mapped_column(Float)
    # water meter
    meter_scope: Mapped[str | None] = mapped_column(String(20))  # household | building
    meter_size_mm: Mapped[int | None] = mapped_column(Integer)
    household: Mapped[str | None] = mapped_column(String(50))

    compound: Mapped[Compound] = relationship()
    building: Mapped[Building | None] = relationship()
    owner_org: Mapped[Organisation | None] = relationship(foreign_keys=[owner_org_id])
    maintainer_org: Mapped[Organisation | None] = relationship(foreign_keys=[maintainer_org_id])


class DeviceBinding(Base):
    """Device id → asset over a validity interval; ``valid_to`` NULL means active."""

    __tablename__ = "device_bindings"
    __table_args__ = (
        Index(
            "uq_device_bindings_active_device",
            "device_id",
            unique=True,
            sqlite_where=text("valid_to IS NULL"),
            postgresql_where=text("valid_to IS NULL"),
        ),
        Index(
            "uq_device_bindings_active_asset",
            "asset_id",
            unique=True,
            sqlite_where=text("valid_to IS NULL"),
            postgresql_where=text("valid_to IS NULL"),
        ),
        Index("ix_device_bindings_device_id", "device_id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[str] = mapped_column(String(200))
    asset_id: Mapped[int] = mapped_column(ForeignKey("assets.id", ondelete="CASCADE"))
    valid_from: Mapped[dt.datetime] = mapped_column(DateTime, default=_utcnow)
    valid_to: Mapped[dt.datetime | None] = mapped_column(DateTime)
    asset: Mapped[Asset] = relationship()


class Crew(Base):
    """A maintenance crew (班组) of an organisation."""

    __tablename__ = "crews"
    id: Mapped[int] = mapped_column(primary_key=True)
    crew_code: Mapped[str] = mapped_column(String(64), unique=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    leader: Mapped[str | None] = mapped_column(String(100))
    phone: Mapped[str | None] = mapped_column(String(50))
    wecom_id: Mapped[str | None] = mapped_column(String(100))
    dingtalk_id: Mapped[str | None] = mapped_column(String(100))
    org: Mapped[Organisation] = relationship()
    members: Mapped[list[CrewMember]] = relationship(
        order_by="CrewMember.position", cascade="all, delete-orphan"
    )


class CrewMember(Base):
    """A member of a crew."""

    __tablename__ = "crew_members"
    id: Mapped[int] = mapped_column(primary_key=True)
    crew_id: Mapped[int] = mapped_column(ForeignKey("crews.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(100))
    phone: Mapped[str | None] = mapped_column(String(50))


class Contract(Base):
    """A maintenance contract: one maintainer, one compound, some asset kinds, SLA minutes."""

    __tablename__ = "contracts"
    id: Mapped[int] = mapped_column(primary_key=True)
    contract_no: Mapped[str] = mapped_column(String(64), unique=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    compound_id: Mapped[int] = mapped_column(ForeignKey("compounds.id", ondelete="CASCADE"), index=True)
    crew_id: Mapped[int | None] = mapped_column(ForeignKey("crews.id"))
    start_date: Mapped[dt.date] = mapped_column(Date)
    end_date: Mapped[dt.date | None] = mapped_column(Date)
    response_minutes: Mapped[int | None] = mapped_column(Integer)
    arrival_minutes: Mapped[int | None] = mapped_column(Integer)
    org: Mapped[Organisation] = relationship()
    compound: Mapped[Compound] = relationship()
    crew: Mapped[Crew | None] = relationship()
    kinds: Mapped[list[ContractKind]] = relationship(
        order_by="ContractKind.kind", cascade="all, delete-orphan"
    )


class ContractKind(Base):
    """One asset kind covered by a contract (a table, so access rules can join on it)."""

    __tablename__ = "contract_kinds"
    contract_id: Mapped[int] = mapped_column(ForeignKey("contracts.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), primary_key=True)


class ApiToken(Base):
    """An API token; only its SHA-256 is stored."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(32))  # Role
    org_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"))
    label: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime)  # none: valid until revoked
    last_used_at: Mapped[dt.datetime | None] = mapped_column(DateTime)  # to the minute
    org: Mapped[Organisation | None] = relationship()


class RegistryRevision(Base):
    """One row counting committed changes to the registry, so caches (ingest's lookup) know when to
    refresh. Bumped by ``sitewatch.assets.revision`` on every commit that wrote registry data."""

    __tablename__ = "registry_revision"
    id: Mapped[int] = mapped_column(primary_key=True)
    revision: Mapped[int] = mapped_column(Integer, default=0)
    changed_at: Mapped[dt.datetime] = mapped_column(DateTime, default=_utcnow)
