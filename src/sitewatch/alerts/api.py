"""REST routes of alerting (``/api/v1/alerts``, ``/api/v1/silences``): a thin layer over
``actions``, with the registry's bearer tokens, roles and compound scoping.

Authentication and the database session come from the registry's API dependencies
(``sitewatch.assets.api.deps``); :func:`install` adds the routes to an application built by the
registry's ``create_app`` (``sitewatch alerts serve`` does, and the shared web application mounts
``router`` the same way). Messages follow the request's ``Accept-Language``.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from pydantic import BaseModel, Field

from .. import i18n
from ..assets.api.deps import MAX_ID, IdPath, Principal, PrincipalDep, SessionDep
from ..i18n import _
from ..settings import Settings
from . import actions
from .dispatch import Dispatcher
from .inhibit import load_rules
from .lifecycle import TransitionError
from .matchers import Matcher, MatcherError
from .models import AlertState, utcnow
from .render import STATE_WORDS
from .silences import SilenceError

API_PREFIX = "/api/v1"


async def _language(request: Request) -> None:
    """The request's language, from ``Accept-Language`` (set in the request's own context)."""
    i18n.set_language(i18n.negotiate(request.headers.get("accept-language")))


router = APIRouter(tags=["alerts"], dependencies=[Depends(_language)])


class ActBody(BaseModel):
    """Who acts (recorded in the history; default: the token)."""

    by: str | None = Field(None, min_length=1, max_length=100)


class ResolveBody(ActBody):
    """Resolving by hand needs a reason."""

    reason: str = Field(min_length=1, max_length=500)


class SilenceBody(BaseModel):
    """A silence: matchers (``compound=C0001``, ``kind=~elevator|camera``), when, who and why."""

    matchers: list[str] = Field(min_length=1, max_length=16)
    starts_at: dt.datetime | None = None  # default: now
    ends_at: dt.datetime
    reason: str = Field(min_length=1, max_length=500)
    by: str | None = Field(None, min_length=1, max_length=100)


def scope_of(principal: Principal) -> actions.AlertScope:
    """The alert scope of a registry token."""
    return actions.AlertScope(principal.role, principal.org_id)


def _actor(principal: Principal, by: str | None) -> str:
    return f"{by} (token {principal.token_id})" if by else f"token {principal.token_id}"


def _utc(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo is None else moment.astimezone(dt.UTC).replace(tzinfo=None)


def _touch(request: Request) -> Any:
    return request.app.state.alerts_dispatcher.touch


def _not_found(alert_id: int) -> HTTPException:
    return HTTPException(404, _("alert {id} not found", id=alert_id))


def _forbidden(exc: Exception) -> HTTPException:
    return HTTPException(403, _("your role may not do this: {reason}", reason=str(exc)))


@router.get("/alerts")
def list_alerts(
    session: SessionDep, principal: PrincipalDep,
    state: Annotated[list[str] | None, Query(description="firing, acknowledged, resolved, closed; open (default) or all")] = None,
    compound: Annotated[str | None, Query(max_length=64)] = None,
    crew: Annotated[str | None, Query(max_length=64)] = None,
    severity: Annotated[str | None, Query(pattern="^(info|warning|critical)$")] = None,
    kind: Annotated[str | None, Query(max_length=32)] = None,
    device: Annotated[str | None, Query(max_length=200)] = None,
    q: Annotated[str | None, Query(max_length=100, pattern=r"^[^\x00]*$")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> dict[str, Any]:  # fmt: skip
    """Alerts in the caller's scope, newest first."""
    states: list[AlertState] = []
    for value in state or ["open"]:
        if value == "open":
            states += [AlertState.FIRING, AlertState.ACKNOWLEDGED]
        elif value == "all":
            states = []
            break
        elif value in AlertState.__members__.values():
            states.append(AlertState(value))
        else:
            raise HTTPException(422, _("unknown alert state {state}", state=value[:30]))
    filters = actions.Filters(tuple(states), compound, crew, severity, kind, device, q)
    page = actions.list_alerts(session, scope_of(principal), filters, limit=limit, offset=offset)
    return {"total": page.total, "limit": page.limit, "offset": page.offset, "items": page.items}


@router.get("/alerts/{alert_id}")
def get_alert(alert_id: IdPath, session: SessionDep, principal: PrincipalDep) -> dict[str, Any]:
    """One alert with its history, findings and notifications."""
    try:
        return actions.alert_detail(session, scope_of(principal), alert_id)
    except actions.NotFound:
        raise _not_found(alert_id) from None


def _act(request: Request, session: Any, principal: Principal, alert_id: int, body: ActBody,
         resolve_reason: str | None = None) -> dict[str, Any]:  # fmt: skip
    scope = scope_of(principal)
    actor = _actor(principal, body.by)
    try:
        if resolve_reason is None:
            alert = actions.acknowledge_alert(session, scope, alert_id, actor, utcnow(), _touch(request))
        else:
            alert = actions.resolve_alert(
                session, scope, alert_id, actor, resolve_reason, utcnow(), _touch(request)
            )
    except actions.NotFound:
        raise _not_found(alert_id) from None
    except actions.Forbidden as exc:
        raise _forbidden(exc) from None
    except TransitionError as exc:
        raise HTTPException(409, _("alert {id} is {state}; that is not possible now", id=alert_id,
                                   state=_(STATE_WORDS[exc.alert.state]))) from None  # fmt: skip
    data = actions.alert_json(alert)
    session.commit()
    return data


@router.post("/alerts/{alert_id}/ack")
def acknowledge(alert_id: IdPath, request: Request, session: SessionDep, principal: PrincipalDep,
                body: ActBody | None = None) -> dict[str, Any]:  # fmt: skip
    """Acknowledge a firing alert (it stops escalating)."""
    return _act(request, session, principal, alert_id, body or ActBody())


@router.post("/alerts/{alert_id}/resolve")
def resolve(alert_id: IdPath, body: ResolveBody, request: Request, session: SessionDep,
            principal: PrincipalDep) -> dict[str, Any]:  # fmt: skip
    """Resolve an alert by hand, with a reason."""
    return _act(request, session, principal, alert_id, body, body.reason)


@router.get("/silences")
def list_silences(session: SessionDep, principal: PrincipalDep,
                  all: Annotated[bool, Query(description="Expired ones too")] = False) -> list[dict[str, Any]]:  # fmt: skip
    """Silences in force or to come."""
    now = utcnow()
    return [actions.silence_json(s, now) for s in actions.list_silences(session, now, include_expired=all)]


@router.post("/silences", status_code=201)
def create_silence(body: SilenceBody, session: SessionDep, principal: PrincipalDep) -> dict[str, Any]:
    """Silence matching alerts for a while (a maintenance window)."""
    now = utcnow()
    try:
        matchers = [Matcher.parse(m) for m in body.matchers]
        row = actions.silence(session, scope_of(principal), matchers, _utc(body.starts_at) if body.starts_at else now,
                              _utc(body.ends_at), _actor(principal, body.by), body.reason, now)  # fmt: skip
    except actions.Forbidden as exc:
        raise _forbidden(exc) from None
    except (MatcherError, SilenceError) as exc:
        raise HTTPException(422, [{"loc": ["body"], "msg": str(exc), "type": "value_error"}]) from None
    data = actions.silence_json(row, now)
    session.commit()
    return data


@router.delete("/silences/{silence_id}")
def end_silence(silence_id: IdPath, session: SessionDep, principal: PrincipalDep) -> dict[str, Any]:
    """End a silence now."""
    now = utcnow()
    try:
        row = actions.unsilence(session, scope_of(principal), silence_id, _actor(principal, None), now)
    except actions.NotFound:
        raise HTTPException(404, _("silence {id} not found", id=silence_id)) from None
    except actions.Forbidden as exc:
        raise _forbidden(exc) from None
    except SilenceError as exc:
        raise HTTPException(409, str(exc)) from None
    data = actions.silence_json(row, now)
    session.commit()
    return data


def install(app: FastAPI, settings: Settings) -> FastAPI:
    """Add the alert routes to an application built on the registry's dependencies."""
    app.state.alerts_dispatcher = Dispatcher(settings, load_rules(settings.alerts.inhibit_rules))
    app.include_router(router, prefix=API_PREFIX)
    return app
