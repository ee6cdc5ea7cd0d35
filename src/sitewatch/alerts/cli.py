"""``sitewatch alerts``: run alerting, and list, show, acknowledge, resolve and silence alerts;
set up channels and duty rotas. Handlers are thin: the work is in ``actions`` and ``core``."""

from __future__ import annotations

import datetime as dt
import getpass
import json
import re
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

import click
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from ..i18n import _
from ..settings import load_settings
from . import actions
from .channels import ChannelError, check_channel
from .matchers import Matcher, MatcherError
from .models import AlertState, Channel, ChannelScope, ChannelType, Duty, MessageFormat, utcnow
from .render import SEVERITY_WORDS, STATE_WORDS
from .silences import SilenceError

STATES = click.Choice([s.value for s in AlertState] + ["open", "all"])
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd])")


def _engine() -> Engine:
    from .db import alerts_engine, migrate

    engine = alerts_engine(load_settings())
    migrate(engine)
    return engine


@contextmanager
def _session() -> Iterator[Session]:
    from .db import transaction

    engine = _engine()
    try:
        with transaction(engine) as session:
            yield session
    finally:
        engine.dispose()


def _touch() -> Any:
    from .dispatch import Dispatcher
    from .inhibit import load_rules

    settings = load_settings()
    return Dispatcher(settings, load_rules(settings.alerts.inhibit_rules)).touch


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def parse_duration(text: str) -> dt.timedelta:
    """``90m``, ``2h``, ``1d``, ``1h30m`` as a time span."""
    parts = _DURATION.findall(text.strip().lower())
    if not parts or "".join(f"{a}{b}" for a, b in parts) != text.strip().lower().replace(" ", ""):
        raise click.BadParameter(_("a duration looks like 90m, 2h, 1d or 1h30m"))
    unit = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    return dt.timedelta(seconds=sum(float(n) * unit[u] for n, u in parts))


def parse_time(text: str) -> dt.datetime:
    """An ISO time (``2026-12-07T08:00``, local time unless it names its offset) as naive UTC."""
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(_("{value} is not a time like 2026-12-07T08:00", value=text)) from None
    if moment.tzinfo is None:
        moment = moment.astimezone()  # the machine's local time
    return moment.astimezone(dt.UTC).replace(tzinfo=None)


@click.group()
def alerts() -> None:
    """Alerts: findings become alerts routed to crews, with acknowledgement, silences, escalation."""


@alerts.command()
@click.option("--no-deliver", is_flag=True, help="Only manage alerts; another process delivers the outbox.")
@click.option("--tick", type=float, default=0.5, show_default=True, help="Seconds between timer runs.")
def run(no_deliver: bool, tick: float) -> None:
    """Consume findings over MQTT, manage alerts, deliver notifications (Ctrl-C stops)."""
    from .service import AlertService

    settings = load_settings()
    service = AlertService(settings, _engine(), tick_s=tick, deliver=not no_deliver)
    done = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    service.start()
    click.echo(
        _("alerts: consuming findings from {broker}; Ctrl-C stops", broker=settings.mqtt.url), err=True
    )
    while not done.wait(10):
        snap = service.snapshot()
        click.echo(_("{received} findings received, {notifications} notifications, {delivered} delivered",
                     received=snap["received"], notifications=snap["notifications"],
                     delivered=snap["delivered"]), err=True)  # fmt: skip
    service.stop()


def _states(state: str) -> tuple[AlertState, ...]:
    if state == "open":
        return (AlertState.FIRING, AlertState.ACKNOWLEDGED)
    if state == "all":
        return ()
    return (AlertState(state),)


@alerts.command("list")
@click.option(
    "--state", type=STATES, default="open", show_default=True, help="open = firing or acknowledged."
)
@click.option("--compound", help="Compound code.")
@click.option("--crew", help="Crew code.")
@click.option("--severity", type=click.Choice(["info", "warning", "critical"]))
@click.option("--kind", help="Device kind (elevator, camera, ...).")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_(state: str, compound: str | None, crew: str | None, severity: str | None, kind: str | None,
          limit: int, as_json: bool) -> None:  # fmt: skip
    """List alerts, newest first."""
    filters = actions.Filters(_states(state), compound, crew, severity, kind)
    with _session() as session:
        page = actions.list_alerts(session, actions.AlertScope.everything(), filters, limit=limit)
    if as_json:
        _echo_json({"total": page.total, "items": page.items})
        return
    table = Table(title=_("{shown} of {total} alerts", shown=len(page.items), total=page.total))
    for header in (
        _("id"),
        _("state"),
        _("severity"),
        _("compound"),
        _("device"),
        _("fault"),
        _("crew"),
        _("since"),
    ):
        table.add_column(header, overflow="fold")
    for a in page.items:
        table.add_row(str(a["id"]), _(STATE_WORDS[a["state"]]), _(SEVERITY_WORDS.get(a["severity"], a["severity"])), a["labels"].get("compound_name", a["compound"]),
                      a["device"] or "", a["fault"] or "", a["crew"] or _("(none)"), a["started_at"])  # fmt: skip
    Console().print(table)


@alerts.command()
@click.argument("alert_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def show(alert_id: int, as_json: bool) -> None:
    """One alert with its history, findings and notifications."""
    with _session() as session:
        try:
            detail = actions.alert_detail(session, actions.AlertScope.everything(), alert_id)
        except actions.NotFound:
            raise click.ClickException(_("alert {id} not found", id=alert_id)) from None
    if as_json:
        _echo_json(detail)
        return
    console = Console()
    console.print(f"[bold]#{detail['id']}[/bold] {_(STATE_WORDS[detail['state']])} · {_(SEVERITY_WORDS.get(detail['severity'], detail['severity']))} · "
                  f"{detail['compound']} {detail['device'] or ''} · {detail['fault'] or detail['source']}")  # fmt: skip
    for key in ("started_at", "acknowledged_by", "resolved_by", "resolve_reason", "crew", "escalation_level"):
        if detail[key] not in (None, ""):
            console.print(f"  {key}: {detail[key]}")
    found_by = ", ".join(
        f"{s['source']} ({_('active') if s['active'] else _('cleared')})" for s in detail["sources"]
    )
    console.print(f"  {_('found by')}: {found_by}")
    table = Table(title=_("history"))
    for header in (_("at"), _("event"), _("state"), _("by"), _("detail")):
        table.add_column(header, overflow="fold")
    for h in detail["history"]:
        table.add_row(h["at"], h["event"], h["to"] or "", h["actor"] or "", h["detail"] or "")
    console.print(table)
    notes = Table(title=_("notifications"))
    for header in (_("id"), _("kind"), _("status"), _("attempts"), _("answer")):
        notes.add_column(header, overflow="fold")
    for n in detail["notifications"]:
        notes.add_row(
            str(n["id"]),
            n["kind"],
            n["status"],
            str(n["attempts"]),
            (n["answer"] or n["last_error"] or "")[:60],
        )
    console.print(notes)


def _actor(by: str | None) -> str:
    return by or getpass.getuser()


@alerts.command()
@click.argument("alert_id", type=int)
@click.option("--by", help="Who acknowledges (default: your user name).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def ack(alert_id: int, by: str | None, as_json: bool) -> None:
    """Acknowledge an alert: someone is on it; it stops escalating."""
    from .lifecycle import TransitionError

    with _session() as session:
        try:
            alert = actions.acknowledge_alert(session, actions.AlertScope.everything(), alert_id, _actor(by),
                                              utcnow(), _touch())  # fmt: skip
        except actions.NotFound:
            raise click.ClickException(_("alert {id} not found", id=alert_id)) from None
        except TransitionError as exc:
            raise click.ClickException(_("alert {id} is {state}: only a firing alert can be acknowledged",
                                         id=alert_id, state=_(STATE_WORDS[exc.alert.state]))) from None  # fmt: skip
        data = actions.alert_json(alert)
    _echo_json(data) if as_json else click.echo(
        _("alert {id} acknowledged by {by}", id=alert_id, by=data["acknowledged_by"])
    )


@alerts.command()
@click.argument("alert_id", type=int)
@click.option("--reason", required=True, help="Why it is resolved (kept in the history).")
@click.option("--by", help="Who resolves (default: your user name).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def resolve(alert_id: int, reason: str, by: str | None, as_json: bool) -> None:
    """Resolve an alert by hand, with a reason."""
    from .lifecycle import TransitionError

    with _session() as session:
        try:
            alert = actions.resolve_alert(session, actions.AlertScope.everything(), alert_id, _actor(by), reason,
                                          utcnow(), _touch())  # fmt: skip
        except actions.NotFound:
            raise click.ClickException(_("alert {id} not found", id=alert_id)) from None
        except TransitionError as exc:
            raise click.ClickException(_("alert {id} is {state}: it cannot be resolved", id=alert_id,
                                         state=_(STATE_WORDS[exc.alert.state]))) from None  # fmt: skip
        except ValueError:
            raise click.ClickException(_("resolving by hand needs a reason")) from None
        data = actions.alert_json(alert)
    _echo_json(data) if as_json else click.echo(_("alert {id} resolved", id=alert_id))


@alerts.command("silence")
@click.option("--match", "matches", multiple=True, metavar="LABEL=VALUE",
              help="A label matcher (=, !=, =~ regex, !~); repeat for more. E.g. kind=~elevator|camera.")  # fmt: skip
@click.option("--compound", help="Shortcut for --match compound=CODE.")
@click.option("--device", help="Shortcut for --match device=ID.")
@click.option("--kind", help="Shortcut for --match kind=KIND.")
@click.option("--from", "start", help="Start (ISO time, local unless an offset is given; default: now).")
@click.option("--until", "end", help="End (ISO time).")
@click.option("--for", "duration", help="Or a duration from the start: 90m, 2h, 1d.")
@click.option("--reason", required=True, help="Why (e.g. planned maintenance of elevator 3).")
@click.option("--by", help="Author (default: your user name).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def silence_(matches: tuple[str, ...], compound: str | None, device: str | None, kind: str | None,
             start: str | None, end: str | None, duration: str | None, reason: str, by: str | None,
             as_json: bool) -> None:  # fmt: skip
    """Silence matching alerts for a while (a maintenance window): they fire but are not notified."""
    texts = list(matches) + [
        f"{k}={v}" for k, v in (("compound", compound), ("device", device), ("kind", kind)) if v
    ]
    try:
        matchers = [Matcher.parse(t) for t in texts]
    except MatcherError as exc:
        raise click.BadParameter(str(exc), param_hint="--match") from None
    now = utcnow()
    starts = parse_time(start) if start else now
    if (end is None) == (duration is None):
        raise click.UsageError(_("give the end of the silence: --until TIME or --for DURATION"))
    ends = parse_time(end) if end else starts + parse_duration(duration or "")
    with _session() as session:
        try:
            row = actions.silence(
                session, actions.AlertScope.everything(), matchers, starts, ends, _actor(by), reason, now
            )
        except SilenceError as exc:
            raise click.ClickException(str(exc)) from None
        data = actions.silence_json(row, now)
    _echo_json(data) if as_json else click.echo(
        _("silence {id} until {end}", id=data["id"], end=data["ends_at"])
    )


@alerts.command()
@click.argument("silence_id", type=int)
@click.option("--by", help="Who ends it (default: your user name).")
def unsilence(silence_id: int, by: str | None) -> None:
    """End a silence now."""
    with _session() as session:
        try:
            actions.unsilence(session, actions.AlertScope.everything(), silence_id, _actor(by), utcnow())
        except actions.NotFound:
            raise click.ClickException(_("silence {id} not found", id=silence_id)) from None
        except SilenceError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(_("silence {id} ended", id=silence_id))


@alerts.command()
@click.option("--all", "include_expired", is_flag=True, help="Expired silences too.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def silences(include_expired: bool, as_json: bool) -> None:
    """List silences in force or to come."""
    now = utcnow()
    with _session() as session:
        rows = [
            actions.silence_json(s, now)
            for s in actions.list_silences(session, now, include_expired=include_expired)
        ]
    if as_json:
        _echo_json(rows)
        return
    table = Table(title=_("silences"))
    for header in (_("id"), _("state"), _("matchers"), _("from"), _("until"), _("by"), _("reason")):
        table.add_column(header, overflow="fold")
    for s in rows:
        table.add_row(
            str(s["id"]),
            s["state"],
            ", ".join(s["matchers"]),
            s["starts_at"],
            s["ends_at"],
            s["author"],
            s["reason"],
        )
    Console().print(table)


@alerts.group()
def channel() -> None:
    """Notification channels: WeCom and DingTalk robots, e-mail, webhooks."""


@channel.command("add")
@click.argument("name")
@click.option("--type", "type_", type=click.Choice([t.value for t in ChannelType]), required=True)
@click.option("--url", required=True, help="Robot or webhook URL; smtp://host:587?from=... for e-mail.")
@click.option("--crew", help="A crew's channel (crew code).")
@click.option("--org", help="An organisation's channel (the property manager's name).")
@click.option("--district", help="A district bureau's channel (district name).")
@click.option(
    "--everything", is_flag=True, help="A channel for every alert (the city bureau, an operations desk)."
)
@click.option("--secret", help="DingTalk signing secret, or the SMTP password.")
@click.option("--recipients", help="E-mail addresses, comma-separated.")
@click.option(
    "--lang", type=click.Choice(["zh_CN", "en"]), help="Language of its messages (default: the setting)."
)
@click.option(
    "--format",
    "format_",
    type=click.Choice([f.value for f in MessageFormat]),
    default="text",
    show_default=True,
)
@click.option(
    "--min-severity", type=click.Choice(["info", "warning", "critical"]), default="warning", show_default=True
)
@click.option("--escalation-only/--all-alerts", default=None,
              help="Only escalations reach it (default: yes for organisation, district and everything channels).")  # fmt: skip
def channel_add(name: str, type_: str, url: str, crew: str | None, org: str | None, district: str | None,
                everything: bool, secret: str | None, recipients: str | None, lang: str | None, format_: str,
                min_severity: str, escalation_only: bool | None) -> None:  # fmt: skip
    """Add a channel for a crew, an organisation, a district or everything."""
    scopes = [(ChannelScope.CREW, crew), (ChannelScope.ORGANISATION, org), (ChannelScope.DISTRICT, district)]
    chosen = [(s, t) for s, t in scopes if t] + ([(ChannelScope.ALL, "")] if everything else [])
    if len(chosen) != 1:
        raise click.UsageError(_("name exactly one of --crew, --org, --district, --everything"))
    scope, target = chosen[0]
    try:
        check_channel(ChannelType(type_), url, scope, target or "", secret, recipients)
    except ChannelError as exc:
        raise click.ClickException(str(exc)) from None
    with _session() as session:
        if session.execute(select(Channel.id).where(Channel.name == name)).first():
            raise click.ClickException(_("a channel named {name} exists already", name=name))
        session.add(Channel(
            name=name, type=type_, url=url, secret=secret, recipients=recipients, scope=scope.value,
            target=target or "", language=lang, format=format_, min_severity=min_severity,
            escalation_only=scope is not ChannelScope.CREW if escalation_only is None else escalation_only,
            enabled=True, created_at=utcnow(), failures=0,
        ))  # fmt: skip
    click.echo(_("channel {name} added", name=name))


@channel.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def channel_list(as_json: bool) -> None:
    """List channels (secrets are not shown)."""
    with _session() as session:
        rows = [
            {
                "id": c.id,
                "name": c.name,
                "type": c.type,
                "scope": c.scope,
                "target": c.target,
                "url": c.url.split("?")[0],
                "language": c.language,
                "format": c.format,
                "min_severity": c.min_severity,
                "escalation_only": c.escalation_only,
                "enabled": c.enabled,
                "failures": c.failures,
            }
            for c in session.execute(select(Channel).order_by(Channel.id)).scalars()
        ]
    if as_json:
        _echo_json(rows)
        return
    table = Table(title=_("channels"))
    for header in (_("id"), _("name"), _("type"), _("scope"), _("target"), _("failures")):
        table.add_column(header, overflow="fold")
    for c in rows:
        table.add_row(*(str(c[k]) for k in ("id", "name", "type", "scope", "target", "failures")))
    Console().print(table)


@channel.command("remove")
@click.argument("name")
def channel_remove(name: str) -> None:
    """Remove a channel (its undelivered notifications go with it)."""
    with _session() as session:
        row = session.execute(select(Channel).where(Channel.name == name)).scalar_one_or_none()
        if row is None:
            raise click.ClickException(_("no channel named {name}", name=name))
        session.delete(row)
    click.echo(_("channel {name} removed", name=name))


@alerts.group()
def duty() -> None:
    """Who of a crew is on duty (mentioned in its robots' messages)."""


@duty.command("add")
@click.argument("crew")
@click.argument("member")
@click.option("--phone", required=True, help="Mobile number (WeCom/DingTalk mention).")
@click.option("--from", "start", required=True, help="Start (ISO time).")
@click.option("--until", "end", required=True, help="End (ISO time).")
def duty_add(crew: str, member: str, phone: str, start: str, end: str) -> None:
    """Put a crew member on duty for a while."""
    starts, ends = parse_time(start), parse_time(end)
    if ends <= starts:
        raise click.BadParameter(_("the end must come after the start"), param_hint="--until")
    with _session() as session:
        session.add(Duty(crew=crew, member=member[:100], phone=phone[:50], starts_at=starts, ends_at=ends))
    click.echo(_("{member} on duty for {crew}", member=member, crew=crew))
