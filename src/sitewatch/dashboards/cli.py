"""``sitewatch dashboards``: build the Grafana provisioning, verify every panel, push to a Grafana."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import click
from rich.cells import cell_len

from ..i18n import _


def _time_ms(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(_("{text!r} is not an ISO 8601 time", text=text)) from None
    if moment.tzinfo is None:
        raise click.BadParameter(_("{text!r} has no UTC offset (add +08:00 or Z)", text=text))
    return int(moment.timestamp() * 1000)


@click.group()
def dashboards() -> None:
    """Grafana dashboards of the store: build the provisioning files, verify the queries, push them."""
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLogger().level))


@dashboards.command()
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), default=Path("dashboards"),
              show_default=True, help="Directory to write (the repository's dashboards/).")  # fmt: skip
def build(out: Path) -> None:
    """Write the data source, the dashboard provider and every dashboard (zh-CN/ and en/) to OUT."""
    from .provisioning import write

    written = write(out)
    click.echo(_("{count} files written to {out}", count=len(written), out=out))


@dashboards.command()
@click.option("--influx-url", required=True, help="InfluxDB HTTP API, e.g. http://127.0.0.1:8086.")
@click.option("--database", default=None, help="Database (default: SITEWATCH_STORE__INFLUX_DATABASE).")
@click.option("--from", "start", default=None, metavar="ISO",
              help="Start of the range (default: each dashboard's own span before --to).")  # fmt: skip
@click.option("--to", "end", default=None, metavar="ISO", help="End of the range (default: the newest point stored).")
def verify(influx_url: str, database: str | None, start: str | None, end: str | None) -> None:
    """Run every panel's query on InfluxDB as Grafana would expand it, and fail on any error or on
    an empty answer where the store holds the data the query reads. Prints each panel's target,
    its status and rows, and below it the query as it was sent.

    Credentials come from SITEWATCH_STORE__INFLUX_USERNAME/PASSWORD or _TOKEN.
    """
    from ..settings import load_settings
    from .provisioning import build_all
    from .verify import Influx, VerifyError
    from .verify import verify as run

    start_ms, end_ms = _time_ms(start), _time_ms(end)
    if start_ms is not None and end_ms is not None and start_ms >= end_ms:
        raise click.BadParameter(_("--from must be before --to"), param_hint="--from")
    settings = load_settings()
    store = settings.store
    influx = Influx(
        influx_url, database or store.influx_database, username=store.influx_username,
        password=store.influx_password.get_secret_value() if store.influx_password else None,
        token=store.influx_token.get_secret_value() if store.influx_token else None,
    )  # fmt: skip
    try:
        report = run(influx, build_all(), start_ms=start_ms, end_ms=end_ms, timezone=settings.timezone)
    except VerifyError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        influx.close()
    labels = {"OK": _("OK"), "EMPTY": _("EMPTY"), "FAIL": _("FAIL")}
    for check in report.checks:
        label = labels[check.status]
        line = f"{label}{' ' * max(1, 7 - cell_len(label))}{check.rows:>7}  {check.dashboard}  {check.panel} [{check.ref_id}]"
        if check.variables:
            line += f" ({check.variables})"
        click.echo(line + (f"  {check.detail}" if check.detail else ""))
        click.echo(f"         {check.query}")
    counts = {s: sum(1 for c in report.checks if c.status == s) for s in labels}
    click.echo(_("{ok} OK, {empty} empty, {fail} failed (range {start} to {end})",
                 ok=counts["OK"], empty=counts["EMPTY"], fail=counts["FAIL"],
                 start=dt.datetime.fromtimestamp(report.start_ms / 1000, dt.UTC).isoformat(),
                 end=dt.datetime.fromtimestamp(report.end_ms / 1000, dt.UTC).isoformat()))  # fmt: skip
    if report.failed:
        raise SystemExit(1)


@dashboards.command()
@click.option("--grafana-url", required=True, help="Grafana's address, e.g. http://grafana:3000.")
@click.option("--token", required=True, envvar="GRAFANA_TOKEN",
              help="A service account token with the Editor role (also GRAFANA_TOKEN).")  # fmt: skip
@click.option("--folder", default=None, help="Folder name prefix (default: sitewatch); one folder per language.")
def push(grafana_url: str, token: str, folder: str | None) -> None:
    """Upload every dashboard to an existing Grafana, creating its folders; overwrites older versions."""
    from .provisioning import build_all
    from .push import PushError
    from .push import push as upload

    try:
        pushed = upload(grafana_url, token, build_all(), folder=folder)
    except PushError as exc:
        raise click.ClickException(str(exc)) from None
    for item in pushed:
        click.echo(f"{item.folder} / {item.title} ({item.uid})")
    click.echo(_("{count} dashboards pushed to {url}", count=len(pushed), url=grafana_url))
