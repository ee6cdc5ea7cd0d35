"""Device lookup for ingest: device id → asset, kind, compound, building, hierarchy, maintainer."""

from __future__ import annotations

from collections.abc import Collection
from functools import lru_cache

from fastapi import APIRouter
from sqlalchemy import Select, bindparam, select
from sqlalchemy.orm import Session, aliased

from ....contract.ownership import code_prefixes
from ....i18n import _
from ....web.errors import not_found
from ... import revision
from ...models import (
    Asset,
    Building,
    City,
    Community,
    Compound,
    DeviceBinding,
    District,
    Organisation,
    Street,
)
from ..deps import DevicePath, Principal, PrincipalDep, SessionDep
from ..schemas import DeviceLookup, LookupRequest, LookupResponse, RevisionResponse
from ..scope import assets_visible

router = APIRouter(prefix="/lookup", tags=["lookup"])
_maintainer, _owner = aliased(Organisation), aliased(Organisation)


@lru_cache(maxsize=256)
def _query(principal: Principal) -> Select:
    """The lookup statement for this caller (built once: building it costs more than running it)."""
    stmt = (
        select(
            DeviceBinding.device_id, DeviceBinding.valid_from, Asset.id, Asset.asset_code, Asset.kind, Asset.name,
            Asset.unit_no, Asset.maintainer_org_id, Compound.id, Compound.code, Compound.name_zh,
            Building.building_no, City.name, District.name, Street.name, Community.name,
            _maintainer.name, _owner.name,
        )
        .join(Asset, Asset.id == DeviceBinding.asset_id)
        .join(Compound, Compound.id == Asset.compound_id)
        .join(Community, Community.id == Compound.community_id)
        .join(Street, Street.id == Community.street_id)
        .join(District, District.id == Street.district_id)
        .join(City, City.id == District.city_id)
        .outerjoin(Building, Building.id == Asset.building_id)
        .outerjoin(_maintainer, _maintainer.id == Asset.maintainer_org_id)
        .outerjoin(_owner, _owner.id == Asset.owner_org_id)
        .where(DeviceBinding.valid_to.is_(None), DeviceBinding.device_id.in_(bindparam("ids", expanding=True)))
    )  # fmt: skip
    return stmt if principal.reads_all else stmt.where(assets_visible(principal))


def lookup_devices(
    session: Session, principal: Principal, device_ids: Collection[str]
) -> dict[str, DeviceLookup]:
    """Active bindings of ``device_ids`` that ``principal`` may see, by device id."""
    out: dict[str, DeviceLookup] = {}
    ids = list(dict.fromkeys(device_ids))
    for start in range(0, len(ids), 500):
        rows = session.execute(_query(principal), {"ids": ids[start : start + 500]})
        for r in rows:
            out[r[0]] = DeviceLookup(
                device_id=r[0], bound_since=r[1], asset_id=r[2], asset_code=r[3], kind=r[4], name=r[5],
                unit_no=r[6], maintainer_org_id=r[7], compound_id=r[8], compound_code=r[9], compound_name=r[10],
                building_no=r[11], city=r[12], district=r[13], street=r[14], community=r[15],
                maintainer_org=r[16], owner_org=r[17],
            )  # fmt: skip
    return out


@router.get("/devices/{device_id}", response_model=DeviceLookup)
async def lookup_device(device_id: DevicePath, session: SessionDep, principal: PrincipalDep) -> DeviceLookup:
    """Where one device sits (its active binding); 404 when it is not bound or not visible.

    Async: one indexed query costs less than the worker-thread hop a sync route would take.
    """
    found = lookup_devices(session, principal, [device_id])
    if device_id not in found:
        raise not_found(_("device"), device_id)
    return found[device_id]


@router.post("/devices", response_model=LookupResponse)
def lookup_many(body: LookupRequest, session: SessionDep, principal: PrincipalDep) -> LookupResponse:
    """Look up to 1,000 devices at once; ids not bound (or not visible) are listed in ``unknown``."""
    found = lookup_devices(session, principal, body.device_ids)
    unknown = [d for d in dict.fromkeys(body.device_ids) if d not in found]
    owners = owning_compounds(session, unknown) if principal.reads_all and unknown else {}
    return LookupResponse(found=found, unknown=unknown, owners=owners)


def owning_compounds(session: Session, device_ids: Collection[str]) -> dict[str, str]:
    """For each id, the code of the registered compound it names (its code and ``-`` start the id),
    if any: at most one, since the registry holds no clashing codes."""
    prefixes = {d: code_prefixes(d) for d in device_ids}
    wanted = sorted({p for ps in prefixes.values() for p in ps})
    codes: dict[str, str] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        rows = session.execute(select(Compound.code_key, Compound.code).where(Compound.code_key.in_(chunk)))
        codes.update((key, code) for key, code in rows)
    out = {}
    for device, ps in prefixes.items():
        owner = next((codes[p] for p in ps if p in codes), None)
        if owner is not None:
            out[device] = owner
    return out


@router.get("/revision", response_model=RevisionResponse)
async def lookup_revision(session: SessionDep, _principal: PrincipalDep) -> RevisionResponse:
    """The registry's change counter; poll it and refresh cached lookups when it moves."""
    number, changed_at = revision.current(session)
    return RevisionResponse(revision=number, changed_at=changed_at)
