"""Device bindings: which device id reports for which asset, with history."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Response
from sqlalchemy import select, update

from ....contract import device_belongs_to
from ...models import Asset, DeviceBinding
from ...writer import bind_devices
from ..crud import get_or_404, like, paginate
from ..deps import Limit, Offset, OptId, Principal, PrincipalDep, Search, SessionDep, WriterDep
from ..errors import RESPONSES, bilingual, invalid, not_found
from ..schemas import BindingIn, BindingOut, Page
from ..scope import assets_visible, check_compound_writable

router = APIRouter(prefix="/devices", tags=["devices"], responses=RESPONSES)
DevicePath = Annotated[str, Path(max_length=200, pattern=r"^[^\x00/]+$")]


def _visible(principal: Principal):  # type: ignore[no-untyped-def]
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
        raise not_found("device", "设备编号", device_id)
    return rows


@router.post("", response_model=BindingOut, status_code=201)
def bind_device(body: BindingIn, session: SessionDep, principal: WriterDep) -> DeviceBinding:
    """Bind a device id to an asset; the asset's previous device and the device's previous asset are closed."""
    asset = get_or_404(session, Asset, body.asset_id, ("asset", "设备"))
    check_compound_writable(principal, asset.compound)
    if not device_belongs_to(body.device_id, asset.compound.code):
        raise invalid("device_id", f"device id must start with {asset.compound.code}-",
                      f"设备编号须以 {asset.compound.code}- 开头")  # fmt: skip
    current = session.scalars(
        select(DeviceBinding).where(
            DeviceBinding.device_id == body.device_id, DeviceBinding.valid_to.is_(None)
        )
    ).first()
    if current is not None and current.asset_id != asset.id:
        check_compound_writable(principal, current.asset.compound)
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
        select(DeviceBinding).where(DeviceBinding.device_id == device_id, DeviceBinding.valid_to.is_(None))
    ).first()
    if current is None:
        raise HTTPException(
            404, bilingual(f"device {device_id} is not bound", f"设备编号 {device_id} 未绑定")
        )
    check_compound_writable(principal, current.asset.compound)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    session.execute(update(DeviceBinding).where(DeviceBinding.id == current.id).values(valid_to=now))
    session.commit()
    return Response(status_code=204)
