"""Alerts: filter, look at one, acknowledge, silence — through alerting's Python API
(``sitewatch.alerts.actions``), with the caller's role and compound scope."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ...alerts import actions
from ...alerts.dispatch import Dispatcher
from ...alerts.inhibit import load_rules
from ...alerts.lifecycle import TransitionError
from ...alerts.matchers import Matcher, Op
from ...alerts.models import AlertState, utcnow
from ...alerts.render import STATE_WORDS
from ...alerts.silences import SilenceError
from ...i18n import N_, _
from ...web.deps import SessionDep
from ...web.errors import conflict, forbidden, invalid, not_found
from ...web.inputs import TextRefused, check_text
from ..auth import FormDep, ViewerDep
from ..context import Console, ConsoleDep, NavItem, Viewer, page_language
from ..health import KINDS
from ..paging import Pager

router = APIRouter(dependencies=[Depends(page_language)])
NAV = NavItem("/alerts", N_("Alerts"), order=30)
PER_PAGE = 50
MAX_ID = 2_147_483_647
IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]
STATES = {"open": (AlertState.FIRING, AlertState.ACKNOWLEDGED), "all": (),
          **{s.value: (s,) for s in AlertState}}  # fmt: skip
StateQuery = Annotated[str, Query(pattern="^(open|all|firing|acknowledged|resolved|closed)$")]
SeverityQuery = Annotated[str | None, Query(pattern="^(|info|warning|critical)$")]
KindQuery = Annotated[str | None, Query(pattern="^(|elevator|camera|charger|streetlight|water_meter|gateway)$")]
TextQuery = Annotated[str | None, Query(max_length=100, pattern=r"^[^\x00-\x1f\x7f]*$")]
PageQuery = Annotated[int, Query(ge=1, le=100_000)]
MAX_SILENCE_HOURS = 24 * 31


def _scope(viewer: Viewer) -> actions.AlertScope:
    return actions.AlertScope(viewer.principal.role, viewer.scope)


def _actor(viewer: Viewer) -> str:
    return f"console (token {viewer.principal.token_id})"


@router.get("/alerts")
def alerts_page(
    request: Request, console: ConsoleDep, viewer: ViewerDep, session: SessionDep, state: StateQuery = "open",
    severity: SeverityQuery = None, kind: KindQuery = None, compound: TextQuery = None, q: TextQuery = None,
    page: PageQuery = 1,
) -> HTMLResponse:  # fmt: skip
    """The alert list with its filters, and the silences in force."""
    filters = actions.Filters(STATES[state], compound=compound or None, severity=severity or None,
                              kind=kind or None, q=q or None)  # fmt: skip
    scope = _scope(viewer)
    first = actions.list_alerts(session, scope, filters, limit=1)
    pager = Pager(first.total, page, PER_PAGE)
    found = actions.list_alerts(session, scope, filters, limit=PER_PAGE, offset=pager.offset)
    now = utcnow()
    silences = [actions.silence_json(s, now) for s in actions.list_silences(session, now)]
    compounds = sorted(viewer.scope.codes) if not viewer.scope.everything else []
    return console.render(
        request, "alerts.html", viewer=viewer, items=found.items, pager=pager, state=state, severity=severity or "",
        kind=kind or "", compound=compound or "", q=q or "", kinds=KINDS, silences=silences, compounds=compounds,
    )  # fmt: skip


@router.get("/alerts/{alert_id}")
def alert_page(request: Request, alert_id: IdPath, console: ConsoleDep, viewer: ViewerDep,
               session: SessionDep) -> HTMLResponse:  # fmt: skip
    """One alert with its history."""
    try:
        detail = actions.alert_detail(session, _scope(viewer), alert_id)
    except actions.NotFound:
        raise not_found(_("alert"), alert_id) from None
    return console.render(request, "alert.html", viewer=viewer, item=detail)  # fmt: skip


def _touch(request: Request, console: Console) -> Any:
    dispatcher = getattr(request.app.state, "alerts_dispatcher", None)
    if dispatcher is None:
        dispatcher = Dispatcher(console.settings, load_rules(console.settings.alerts.inhibit_rules))
        request.app.state.alerts_dispatcher = dispatcher
    return dispatcher.touch


@router.post("/alerts/{alert_id}/ack")
def acknowledge(request: Request, alert_id: IdPath, console: ConsoleDep, viewer: ViewerDep, session: SessionDep,
                form: FormDep) -> Response:  # fmt: skip
    """Acknowledge a firing alert; answers the alert's row (htmx) or goes back to the list."""
    try:
        alert = actions.acknowledge_alert(session, _scope(viewer), alert_id, _actor(viewer), utcnow(),
                                          _touch(request, console))  # fmt: skip
    except actions.NotFound:
        raise not_found(_("alert"), alert_id) from None
    except actions.Forbidden:
        raise forbidden(_("your role may only read alerts")) from None
    except TransitionError as exc:
        raise conflict(_("alert {id} is {state}; that is not possible now", id=alert_id,
                         state=_(STATE_WORDS[exc.alert.state]))) from None  # fmt: skip
    item = actions.alert_json(alert)
    session.commit()
    if request.headers.get("hx-request"):
        return console.render(request, "_alert_row.html", viewer=viewer, item=item)  # fmt: skip
    return RedirectResponse(request.headers.get("referer", "/alerts") if _local(request) else "/alerts", 303)


def _local(request: Request) -> bool:
    referer = request.headers.get("referer", "")
    return referer.startswith(f"{request.url.scheme}://{request.url.netloc}/")


def _field(form: dict[str, str], name: str, *, required: bool = False, multiline: bool = False,
           limit: int = 200) -> str:  # fmt: skip
    value = form.get(name, "").strip()
    if required and not value:
        raise invalid(name, _("this field is required"))
    if len(value) > limit:
        raise invalid(name, _("at most {limit} characters", limit=limit), value)
    try:
        check_text(value, multiline=multiline)
    except TextRefused as exc:
        raise invalid(name, str(exc), value, "control_character") from None
    return value


@router.post("/silences")
def create_silence(request: Request, console: ConsoleDep, viewer: ViewerDep, session: SessionDep,
                   form: FormDep) -> Response:  # fmt: skip
    """Silence a compound (a kind, a device) for some hours: a maintenance window."""
    compound = _field(form, "compound", required=True, limit=64)
    kind = _field(form, "kind", limit=32)
    device = _field(form, "device")
    reason = _field(form, "reason", required=True, multiline=True, limit=500)
    try:
        hours = float(form.get("hours", ""))
    except ValueError:
        hours = 0.0
    if not 0 < hours <= MAX_SILENCE_HOURS:
        raise invalid("hours", _("between 0 and {limit} hours", limit=MAX_SILENCE_HOURS), form.get("hours"))
    if not viewer.scope.sees(compound):
        raise invalid("compound", _("compound {code} is not one of yours", code=compound), compound,
                      "unknown_reference")  # fmt: skip
    if kind and kind not in {k.value for k in KINDS}:
        raise invalid("kind", _("unknown device kind"), kind)
    matchers = [Matcher("compound", Op.EQ, compound)]
    if kind:
        matchers.append(Matcher("kind", Op.EQ, kind))
    if device:
        matchers.append(Matcher("device", Op.EQ, device))
    now = utcnow()
    try:
        actions.silence(session, _scope(viewer), matchers, now, now + dt.timedelta(hours=hours), _actor(viewer),
                        reason, now)  # fmt: skip
    except actions.OutOfScope as exc:
        raise invalid("compound", str(exc), compound, "unknown_reference") from None
    except actions.Forbidden:
        raise forbidden(_("your role may only read alerts")) from None
    except SilenceError as exc:
        raise invalid("hours", str(exc)) from None
    session.commit()
    return RedirectResponse("/alerts", status_code=303)


@router.post("/silences/{silence_id}/end")
def end_silence(silence_id: IdPath, viewer: ViewerDep, session: SessionDep, form: FormDep) -> Response:
    """End a silence now."""
    try:
        actions.unsilence(session, _scope(viewer), silence_id, _actor(viewer), utcnow())
    except (actions.NotFound, actions.OutOfScope):
        raise not_found(_("silence"), silence_id) from None
    except actions.Forbidden:
        raise forbidden(_("your role may only read alerts")) from None
    except SilenceError as exc:
        raise conflict(str(exc)) from None
    session.commit()
    return RedirectResponse("/alerts", status_code=303)
