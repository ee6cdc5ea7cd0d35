"""Request and response bodies."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Generic, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from ...contract import DeviceKind
from ...contract.topics import CODE_PATTERN, DEVICE_LOCAL_PATTERN
from ...web.inputs import SINGLE_LINE, Body, LongText, Text
from ..ledger import ManagementMode, OrgType
from ..models import Role

T = TypeVar("T")


def _utc(value: dt.datetime) -> dt.datetime:
    """Stored times are naive UTC; say so, so clients read an RFC 3339 time with an offset."""
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value


UtcTime = Annotated[dt.datetime, AfterValidator(_utc)]
MAX_ID = 2_147_483_647

# one-line text of each column length (tests/assets/test_api_inputs.py checks them against the models)
Line32 = Annotated[str, StringConstraints(min_length=1, max_length=32, strip_whitespace=True), SINGLE_LINE]
Line50 = Annotated[str, StringConstraints(min_length=1, max_length=50, strip_whitespace=True), SINGLE_LINE]
Line100 = Annotated[str, StringConstraints(min_length=1, max_length=100, strip_whitespace=True), SINGLE_LINE]
Line300 = Annotated[str, StringConstraints(min_length=1, max_length=300, strip_whitespace=True), SINGLE_LINE]
Code = Annotated[str, StringConstraints(pattern=rf"^{CODE_PATTERN}$")]
DeviceId = Annotated[
    str, StringConstraints(pattern=rf"^{CODE_PATTERN}-{DEVICE_LOCAL_PATTERN}$", max_length=200)
]
RefId = Annotated[int, Field(ge=1, le=MAX_ID)]
Count = Annotated[int, Field(ge=0, le=1_000_000)]
Year = Annotated[int, Field(ge=1900, le=2100)]
Real = Annotated[float, Field(ge=0, le=1e9, allow_inf_nan=False)]
Day = Annotated[dt.date, Field(ge=dt.date(1900, 1, 1), le=dt.date(2100, 12, 31))]


class Page(BaseModel, Generic[T]):
    """One page of a list, with the total number of matches."""

    total: int
    limit: int
    offset: int
    items: list[T]


class _Orm(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class NamedOut(_Orm):
    """A hierarchy level (district, street, community)."""

    id: int
    name: str
    parent_id: int | None = None
    code: str | None = None


class OrganisationIn(Body):
    """A new organisation (a name that differs from another only in Unicode form, width or case is
    the same name, and refused with 409)."""

    name: Text
    type: OrgType
    contact: Line100 | None = None
    phone: Line50 | None = None


class OrganisationOut(_Orm):
    """An organisation."""

    id: int
    name: str
    type: str
    contact: str | None
    phone: str | None


class CompoundIn(Body):
    """A new compound; the hierarchy is given by its community. Its code must not clash with a
    registered one (equal regardless of case, or one the other followed by ``-``): 409."""

    code: Code
    name_zh: Text
    name_en: Text | None = None
    community_id: RefId
    address: Line300 | None = None
    longitude: Annotated[float, Field(ge=-180, le=180)] | None = None
    latitude: Annotated[float, Field(ge=-90, le=90)] | None = None
    year_built: Year
    buildings_count: Count
    households: Count
    floor_area_m2: Real | None = None
    renovation_year: Year | None = None
    renovation_batch: Line100 | None = None
    renovation_content: LongText | None = None
    management_mode: ManagementMode
    manager_org_id: RefId | None = None


class CompoundPatch(Body):
    """Changes to a compound (fields left out stay as they are)."""

    name_zh: Text | None = None
    name_en: Text | None = None
    address: Line300 | None = None
    households: Count | None = None
    buildings_count: Count | None = None
    floor_area_m2: Real | None = None
    renovation_year: Year | None = None
    renovation_batch: Line100 | None = None
    renovation_content: LongText | None = None
    management_mode: ManagementMode | None = None
    manager_org_id: RefId | None = None


class CompoundOut(_Orm):
    """A compound."""

    id: int
    code: str
    name_zh: str
    name_en: str | None
    community_id: int
    address: str | None
    longitude: float | None
    latitude: float | None
    year_built: int
    buildings_count: int
    households: int
    floor_area_m2: float | None
    renovation_year: int | None
    renovation_batch: str | None
    renovation_content: str | None
    management_mode: str
    manager_org_id: int | None


class BuildingIn(Body):
    """A new building."""

    compound_id: RefId
    building_no: Line32
    floors: Annotated[int, Field(ge=1, le=200)]
    units: Annotated[int, Field(ge=0, le=100)]
    households: Count
    year_built: Year | None = None


class BuildingOut(_Orm):
    """A building."""

    id: int
    compound_id: int
    building_no: str
    floors: int
    units: int
    households: int
    year_built: int | None


class AssetFields(Body):
    """Fields of an asset that a client may set."""

    building_id: RefId | None = None
    unit_no: Line32 | None = None
    name: Text | None = None
    location: Text | None = None
    manufacturer: Text | None = None
    model: Text | None = None
    serial_no: Line100 | None = None
    install_date: Day | None = None
    warranty_end: Day | None = None
    owner_org_id: RefId | None = None
    maintainer_org_id: RefId | None = None
    funding_source: Text | None = None
    rated_load_kg: Annotated[int, Field(ge=0, le=100_000)] | None = None
    floors_served: Annotated[int, Field(ge=0, le=200)] | None = None
    registration_code: Line100 | None = None
    charger_power_kw: Annotated[float, Field(ge=0, le=2000, allow_inf_nan=False)] | None = None
    connector_type: Line50 | None = None
    ocpp_id: Line100 | None = None
    police_linked: bool | None = None
    lamp_type: Line50 | None = None
    wattage_w: Annotated[float, Field(ge=0, le=100_000, allow_inf_nan=False)] | None = None
    meter_scope: Annotated[str, StringConstraints(pattern=r"^(household|building)$")] | None = None
    meter_size_mm: Annotated[int, Field(ge=0, le=3000)] | None = None
    household: Line50 | None = None


class AssetIn(AssetFields):
    """A new asset."""

    asset_code: Line100
    compound_id: RefId
    kind: DeviceKind


class AssetPatch(AssetFields):
    """Changes to an asset (fields left out stay as they are)."""


class AssetOut(_Orm):
    """An asset; kind-specific fields are null for other kinds."""

    id: int
    asset_code: str
    compound_id: int
    kind: str
    building_id: int | None
    unit_no: str | None
    name: str | None
    location: str | None
    manufacturer: str | None
    model: str | None
    serial_no: str | None
    install_date: dt.date | None
    warranty_end: dt.date | None
    owner_org_id: int | None
    maintainer_org_id: int | None
    funding_source: str | None
    rated_load_kg: int | None
    floors_served: int | None
    registration_code: str | None
    charger_power_kw: float | None
    connector_type: str | None
    ocpp_id: str | None
    police_linked: bool | None
    lamp_type: str | None
    wattage_w: float | None
    meter_scope: str | None
    meter_size_mm: int | None
    household: str | None


class BindingIn(Body):
    """Bind a device id to an asset of the compound the id names (replacing the asset's previous
    device, if any)."""

    device_id: DeviceId
    asset_id: RefId


class BindingOut(_Orm):
    """A device binding; ``valid_to`` null means active."""

    id: int
    device_id: str
    asset_id: int
    valid_from: UtcTime
    valid_to: UtcTime | None


class CrewMemberOut(_Orm):
    """A crew member."""

    name: str
    phone: str | None


class CrewOut(_Orm):
    """A maintenance crew."""

    id: int
    crew_code: str
    org_id: int
    name: str
    leader: str | None
    phone: str | None
    wecom_id: str | None
    dingtalk_id: str | None
    members: list[CrewMemberOut]


class ContractOut(BaseModel):
    """A maintenance contract."""

    id: int
    contract_no: str
    org_id: int
    compound_id: int
    crew_id: int | None
    kinds: list[str]
    start_date: dt.date
    end_date: dt.date | None
    response_minutes: int | None
    arrival_minutes: int | None


class TokenIn(Body):
    """A new API token; without ``expires_at`` it is valid until revoked."""

    role: Role
    org_id: RefId | None = None
    label: Text | None = None
    expires_at: UtcTime | None = None


class TokenOut(_Orm):
    """An API token (never its secret)."""

    id: int
    role: str
    org_id: int | None
    label: str | None
    created_at: UtcTime
    revoked_at: UtcTime | None
    expires_at: UtcTime | None
    last_used_at: UtcTime | None


class TokenCreated(TokenOut):
    """A token just created: ``token`` is shown this once."""

    token: str


class DeviceLookup(BaseModel):
    """Where a device sits and who maintains it: what ingest needs to route a reading."""

    device_id: str
    asset_id: int
    asset_code: str
    kind: str
    name: str | None
    compound_id: int
    compound_code: str
    compound_name: str
    building_no: str | None
    unit_no: str | None
    city: str
    district: str
    street: str
    community: str
    maintainer_org_id: int | None
    maintainer_org: str | None
    owner_org: str | None
    bound_since: UtcTime


class LookupRequest(BaseModel):
    """Up to 1,000 device ids to look up at once (a read: an id no device has is simply unknown)."""

    model_config = ConfigDict(extra="forbid")
    device_ids: Annotated[list[Annotated[str, StringConstraints(max_length=200)]], Field(max_length=1000)]


class LookupResponse(BaseModel):
    """Found devices by id; ``unknown`` lists ids not bound (or not visible to this token), and
    ``owners`` gives, for an unknown id that names a registered compound, that compound's code
    (ingest refuses a device published by another compound even when it is not bound yet)."""

    found: dict[str, DeviceLookup]
    unknown: list[str]
    owners: dict[str, str] = {}


class RevisionResponse(BaseModel):
    """The registry's change counter: a cache of lookups is stale once ``revision`` moved."""

    revision: int
    changed_at: UtcTime
