"""REST routes of alerting (``/api/v1/alerts``, ``/api/v1/silences``): a thin layer over
``actions`` on the web application's machinery (``sitewatch.web``: tokens, roles, compound scope,
one error format, the request's language). ``sitewatch serve`` mounts them (:func:`alerts_component`).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from pydantic import Field

from ..i18n import _
from ..settings import Settings
from ..web.component import Component
from ..web.deps import PrincipalDep, ScopeDep, SessionDep
from ..web.errors import ApiError, ErrorCode, conflict, forbidden, invalid, not_found
from ..web.inputs import Body, LongText, Text
from ..web.principal import Principal
from . import actions
from .dispatch import Dispatcher
from .inhibit import load_rules
from .lifecycle import TransitionError
from .matchers import Matcher, MatcherError
from .models import AlertState, utcnow
from .render import STATE_WORDS
from .silences import SilenceError

MAX_ID = 2_147_483_647
IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]
router = APIRouter(tags=["alerts"])


class ActIn(Body):
    """Who acts (recorded in the history with the token; default: the token alone)."""

    by: Text | None = None


class ResolveIn(ActIn):
    """Resolving by hand needs a reason."""

    reason: Annotated[LongText, Field(min_length=1, max_length=500)]


class SilenceIn(Body):
    """A silence: matchers (``compound=C0001``, ``kind=~elevator|camera``), when, who and why."""

    matchers: Annotated[list[Text], Field(min_length=1, max_length=16)]
    starts_at: dt.datetime | None = None  # default: now
    ends_at: dt.datetime
    reason: Annotated[LongText, Field(min_length=1, max_length=500)]
    by: Text | None = None


def scope_of(principal: Principal, scope: Any) -> actions.AlertScope:
    """The alert scope of a caller of the web application."""
    return actions.AlertScope(principal.role, scope)


def _actor(principal: Principal, by: str | None) -> str:
    return f"{by} (token {principal.token_id})" if by else f"token {principal.token_id}"


def _utc(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo is None else moment.astimezone(dt.UTC).replace(tzinfo=None)


def _touch(request: Request) -> Any:
    dispatcher = getattr(request.app.state, "alerts_dispatcher", None)
    if dispatcher is None:
        settings: Settings = request.app.state.settings
        dispatcher = Dispatcher(settings, load_rules(settings.alerts.inhibit_rules))
        request.app.state.alerts_dispatcher = dispatcher
    return dispatcher.touch


def _forbidden(exc: Exception) -> ApiError:
    return forbidden(_("your role or scope does not allow this: {reason}", reason=str(exc)))


@router.get("/alerts")
def list_alerts(
    session: SessionDep, principal: PrincipalDep, scope: ScopeDep,
    state: Annotated[list[str] | None, Query(description="firing, acknowledged, resolved, closed; open (default) or all")] = None,
    compound: Annotated[str | None, Query(max_length=64)] = None,
    crew: Annotated[str | None, Query(max_length=64)] = None,
    severity: Annotated[str | None, Query(pattern="^(info|warning|critical)$")] = None,
    kind: Annotated[str | None, Query(max_length=32)] = None,
    device: Annotated[str | None, Query(max_length=200)] = None,
    q: Annotated[str | None, Query(max_length=100, pattern=r"^[^\x00-\x1f]*$")] = None,
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
        elif value in set(AlertState):
            states.append(AlertState(value))
        else:
            raise invalid("query.state", _("unknown alert state {state}", state=value[:30]), value)
    filters = actions.Filters(tuple(states), compound, crew, severity, kind, device, q)
    page = actions.list_alerts(session, scope_of(principal, scope), filters, limit=limit, offset=offset)
    return {"total": page.total, "limit": page.limit, "offset": page.offset, "items": page.items}


@router.get("/alerts/{alert_id}")
def get_alert(
    alert_id: IdPath, session: SessionDep, principal: PrincipalDep, scope: ScopeDep
) -> dict[str, Any]:
    """One alert with its history, findings and notifications."""
    try:
        return actions.alert_detail(session, scope_of(principal, scope), alert_id)
    except actions.NotFound:
        raise not_found(_("alert"), alert_id) from None


def _act(request: Request, session: Any, principal: Principal, scope: Any, alert_id: int, body: ActIn,
         reason: str | None = None) -> dict[str, Any]:  # fmt: skip
    alert_scope = scope_of(principal, scope)
    actor = _actor(principal, body.by)
    try:
        if reason is None:
            alert = actions.acknowledge_alert(
                session, alert_scope, alert_id, actor, utcnow(), _touch(request)
            )
        else:
            alert = actions.resolve_alert(
                session, alert_scope, alert_id, actor, reason, utcnow(), _touch(request)
            )
    except actions.NotFound:
        raise not_found(_("alert"), alert_id) from None
    except actions.Forbidden as exc:
        raise _forbidden(exc) from None
    except TransitionError as exc:
        raise conflict(_("alert {id} is {state}; that is not possible now", id=alert_id,
                         state=_(STATE_WORDS[exc.alert.state]))) from None  # fmt: skip
    data = actions.alert_json(alert)
    session.commit()
    return data


@router.post("/alerts/{alert_id}/ack")
def acknowledge(alert_id: IdPath, request: Request, session: SessionDep, principal: PrincipalDep,
                scope: ScopeDep, body: ActIn | None = None) -> dict[str, Any]:  # fmt: skip
    """Acknowledge a firing alert (it stops escalating)."""
    return _act(request, session, principal, scope, alert_id, body or ActIn())


@router.post("/alerts/{alert_id}/resolve")
def resolve(alert_id: IdPath, body: ResolveIn, request: Request, session: SessionDep, principal: PrincipalDep,
            scope: ScopeDep) -> dict[str, Any]:  # fmt: skip
    """Resolve an alert by hand, with a reason."""
    return _act(request, session, principal, scope, alert_id, body, body.reason)


@router.get("/silences")
def list_silences(session: SessionDep, principal: PrincipalDep,
                  all: Annotated[bool, Query(description="Expired ones too")] = False) -> list[dict[str, Any]]:  # fmt: skip
    """Silences in force or to come."""
    now = utcnow()
    return [actions.silence_json(s, now) for s in actions.list_silences(session, now, include_expired=all)]


@router.post("/silences", status_code=201)
def create_silence(
    body: SilenceIn, session: SessionDep, principal: PrincipalDep, scope: ScopeDep
) -> dict[str, Any]:
    """Silence matching alerts for a while (a maintenance window)."""
    now = utcnow()
    try:
        matchers = [Matcher.parse(m) for m in body.matchers]
    except MatcherError as exc:
        raise invalid("matchers", str(exc)) from None
    try:
        row = actions.silence(session, scope_of(principal, scope), matchers,
                              _utc(body.starts_at) if body.starts_at else now, _utc(body.ends_at),
                              _actor(principal, body.by), body.reason, now)  # fmt: skip
    except actions.OutOfScope as exc:
        raise invalid("matchers", str(exc), body.matchers, "unknown_reference") from None
    except actions.Forbidden as exc:
        raise _forbidden(exc) from None
    except SilenceError as exc:
        raise ApiError(422, ErrorCode.INVALID, str(exc)) from None
    data = actions.silence_json(row, now)
    session.commit()
    return data


@router.delete("/silences/{silence_id}")
def end_silence(
    silence_id: IdPath, session: SessionDep, principal: PrincipalDep, scope: ScopeDep
) -> dict[str, Any]:
    """End a silence now."""
    now = utcnow()
    try:
        row = actions.unsilence(session, scope_of(principal, scope), silence_id, _actor(principal, None), now)
    except (actions.NotFound, actions.OutOfScope):
        raise not_found(_("silence"), silence_id) from None
    except actions.Forbidden as exc:
        raise _forbidden(exc) from None
    except SilenceError as exc:
        raise conflict(str(exc)) from None
    data = actions.silence_json(row, now)
    session.commit()
    return data


def alerts_component(settings: Settings) -> Component:
    """Alerting's share of the web application."""
    return Component(name="alerts", api=[router])
