"""``sitewatch assets token``: create, list, revoke and rotate API tokens."""

from __future__ import annotations

import datetime as dt
import json
import re

import click
from rich.console import Console
from rich.table import Table

from ..i18n import _
from ..settings import load_settings

_DURATION = re.compile(r"(\d{1,6})\s*([dhm])")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}


def parse_duration(text: str) -> dt.timedelta:
    """``90d``, ``12h`` or ``30m`` as a time span; raises click.BadParameter otherwise."""
    found = _DURATION.fullmatch(text.strip().lower())
    if found is None:
        raise click.BadParameter(_("give a duration such as 90d, 12h or 30m, not {value}", value=text))
    return dt.timedelta(**{_UNITS[found[2]]: int(found[1])})


def _engine():  # type: ignore[no-untyped-def]
    from .db import create_engine_for, upgrade

    engine = create_engine_for(load_settings())
    upgrade(engine)
    return engine


def _until(expires: str | None) -> dt.datetime | None:
    if expires is None:
        return None
    return dt.datetime.now(dt.UTC).replace(tzinfo=None) + parse_duration(expires)


def _time(value: dt.datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") + " UTC" if value else "-"


@click.group()
def token() -> None:
    """API tokens: create, list, revoke, rotate (see docs/assets.md, token lifecycle)."""


@token.command("create")
@click.option("--role", type=click.Choice(["admin", "bureau", "property_manager", "crew"]), required=True)
@click.option("--org", help="Organisation name (required for property_manager and crew).")
@click.option("--label", help="What the token is for.")
@click.option(
    "--expires", metavar="DURATION", help="Valid for this long (90d, 12h, 30m); default: until revoked."
)
def token_create(role: str, org: str | None, label: str | None, expires: str | None) -> None:
    """Create a token and print it once (only its hash is stored)."""
    from .db import transaction
    from .models import Role
    from .tokens import TokenError, create_token

    until = _until(expires)
    try:
        with transaction(_engine()) as session:
            secret, row = create_token(session, Role(role), org, label, until)
            token_id = row.id
    except TokenError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(secret)
    click.echo(_("token {id} ({role}): shown once, store it now; valid until {until}", id=token_id, role=role,
                 until=_time(until) if until else _("revoked")), err=True)  # fmt: skip


@token.command("list")
@click.option("--all", "show_all", is_flag=True, help="Also revoked and expired tokens.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def token_list(show_all: bool, as_json: bool) -> None:
    """Tokens with role, organisation, label, creation, expiry and last use (never their secrets)."""
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from .models import ApiToken, Organisation

    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    with Session(_engine()) as session:
        orgs: dict[int | None, str] = {
            i: n for i, n in session.execute(select(Organisation.id, Organisation.name))
        }
        rows = [
            t for t in session.scalars(select(ApiToken).order_by(ApiToken.id))
            if show_all or (t.revoked_at is None and (t.expires_at is None or t.expires_at > now))
        ]  # fmt: skip
    if as_json:
        keys = ("id", "role", "label", "created_at", "expires_at", "last_used_at", "revoked_at")
        out = [{**{k: getattr(t, k) for k in keys}, "org": orgs.get(t.org_id)} for t in rows]
        click.echo(json.dumps(out, ensure_ascii=False, indent=2, default=lambda v: v.isoformat() + "Z"))
        return
    table = Table(title=_("API tokens"))
    for column in (_("id"), _("role"), _("organisation"), _("label"), _("created"), _("expires"),
                   _("last used"), _("revoked")):  # fmt: skip
        table.add_column(column)
    for t in rows:
        table.add_row(str(t.id), t.role, orgs.get(t.org_id) or "-", t.label or "-", _time(t.created_at),
                      _time(t.expires_at), _time(t.last_used_at), _time(t.revoked_at))  # fmt: skip
    Console().print(table)


@token.command("revoke")
@click.argument("token_ids", nargs=-1, type=int, required=True)
def token_revoke(token_ids: tuple[int, ...]) -> None:
    """Revoke tokens by id (at once for new connections; API processes notice within 10 s)."""
    from .db import transaction
    from .tokens import revoke_tokens

    with transaction(_engine()) as session:
        missing = revoke_tokens(session, list(token_ids))
    if missing:
        raise click.ClickException(_("no token with id {ids}; nothing was revoked for them",
                                     ids=", ".join(map(str, missing))))  # fmt: skip
    click.echo(_("revoked: {ids}", ids=", ".join(map(str, token_ids))))


@token.command("rotate")
@click.argument("token_id", type=int)
@click.option("--grace", default="1h", show_default=True, metavar="DURATION",
              help="How long the old token keeps working, to put the new one in place.")  # fmt: skip
@click.option("--expires", metavar="DURATION", help="Validity of the new token (default: until revoked).")
def token_rotate(token_id: int, grace: str, expires: str | None) -> None:
    """Replace a token: print a new one with the same role, organisation and label; the old one
    stops working after the grace period."""
    from .db import transaction
    from .tokens import TokenError, rotate_token

    span, until = parse_duration(grace), _until(expires)
    try:
        with transaction(_engine()) as session:
            secret, new, old = rotate_token(session, token_id, span, until)
            new_id, old_end = new.id, old.expires_at
    except TokenError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(secret)
    click.echo(_("token {new} replaces token {old}, which stops working at {end}; store the new one now",
                 new=new_id, old=token_id, end=_time(old_end)), err=True)  # fmt: skip
