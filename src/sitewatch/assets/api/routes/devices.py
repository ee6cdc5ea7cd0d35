"""Device bindings: which device id reports for which asset, with history."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Response
from sqlalchemy import ColumnElement, select, update

from ....contract import device_belongs_to
from ....i18n import _
from ....web.errors import invalid, not_found
from ...codes import compound_of_device
from ...models import Asset, DeviceBinding
from ...writer import bind_devices
from ..crud import like, paginate, visible_ref
from ..deps import DevicePath, Limit, Offset, OptId, Principal, PrincipalDep, Search, SessionDep, WriterDep
from ..schemas import BindingIn, BindingOut, Page
from ..scope import assets_visible, check_compound_writable

router = APIRouter(prefix="/devices", tags=["devices"])


def _visible(principal: Principal) -> ColumnElement[bool]:
    return DeviceBinding.asset_id.in_(select(Asset.id).where(assets_visible(principal)))


@router.get("", response_model=Page[BindingOut])
def list_bindings(
    session: SessionDep, principal: PrincipalDep, asset_id: OptId = None, q: Search = None,
    active: bool | None = None, limit: Limit = 50, offset: Offset = 0,
) -> dict[str, object]:  # fmt: skip
    """Bindings of the assets the token may see; ``q`` matches the device id; ``active`` filters."""
    stmt = select(DeviceBinding).order_by(DeviceBinding.id)
    if not principal.reads_all:
        stmt = stmt.where(_visible(principal))
    if asset_id is not None:
        stmt = stmt.where(DeviceBinding.asset_id == asset_id)
    if q:
        stmt = stmt.where(DeviceBinding.device_id.like(like(q), escape="\\"))
    if active is not None:
        stmt = stmt.where(DeviceBinding.valid_to.is_(None) if active else DeviceBinding.valid_to.is_not(None))
    return paginate(session, stmt, limit, offset)


@router.get("/{device_id}", response_model=list[BindingOut])
def device_history(
    device_id: DevicePath, session: SessionDep, principal: PrincipalDep
) -> list[DeviceBinding]:
    """Every binding a device id has had, oldest first."""
    stmt = select(DeviceBinding).where(DeviceBinding.device_id == device_id).order_by(DeviceBinding.id)
    if not principal.reads_all:
        stmt = stmt.where(_visible(principal))
    rows = list(session.scalars(stmt))
    if not rows:
        raise not_found(_("device"), device_id)
    return rows


@router.post("", response_model=BindingOut, status_code=201)
def bind_device(body: BindingIn, session: SessionDep, principal: WriterDep) -> DeviceBinding:
    """Bind a device id to an asset of the compound the id names; the asset's previous device and
    the device's previous asset are closed."""
    asset = visible_ref(session, Asset, body.asset_id, assets_visible(principal), "asset_id", _("asset"))
    check_compound_writable(principal, asset.compound, _("asset"), body.asset_id)
    owner = compound_of_device(session, body.device_id)
    if owner is None or owner.id != asset.compound_id or not device_belongs_to(body.device_id, owner.code):
        raise invalid("device_id", _("a device id of this asset must be its compound's code, '-', and a local "
                                     "name: {code}-...", code=asset.compound.code),
                      body.device_id, "foreign_device")  # fmt: skip
    bind_devices(session, {asset.id: body.device_id})
    session.commit()
    return session.scalars(
        select(DeviceBinding).where(
            DeviceBinding.device_id == body.device_id, DeviceBinding.valid_to.is_(None)
        )
    ).one()


@router.delete("/{device_id}", status_code=204, response_class=Response)
def unbind_device(device_id: DevicePath, session: SessionDep, principal: WriterDep) -> Response:
    """End the active binding of a device (it keeps its history)."""
    current = session.scalars(
        select(DeviceBinding).where(
            DeviceBinding.device_id == device_id, DeviceBinding.valid_to.is_(None), _visible(principal)
        )
    ).first()
    if current is None:
        raise not_found(_("bound device"), device_id)
    check_compound_writable(principal, current.asset.compound, _("bound device"), device_id)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    session.execute(update(DeviceBinding).where(DeviceBinding.id == current.id).values(valid_to=now))
    session.commit()
    return Response(status_code=204)
