"""The ``sitewatch`` command line: one entry point, one subcommand per component."""

from __future__ import annotations

import click

from . import __version__
from .cli_support import LazyGroup, setup_logging
from .i18n import DEFAULT_LANGUAGE, UnknownLanguage, set_language

COMMANDS = {
    "demo": "sitewatch.demo:demo",
    "simulate": "sitewatch.simulators.cli:simulate",
    "gateway": "sitewatch.gateway.cli:gateway",
    "ingest": "sitewatch.ingest.cli:ingest",
    "query": "sitewatch.store.cli:query",
    "store": "sitewatch.store.load_cli:store",
    "assets": "sitewatch.assets.cli:assets",
    "analytics": "sitewatch.analytics.cli:analytics",
    "alerts": "sitewatch.alerts.cli:alerts",
    "dashboards": "sitewatch.dashboards.cli:dashboards",
    "contract": "sitewatch.contract.cli:contract",
    "serve": "sitewatch.server:serve",
    "bench": "sitewatch.devtools.bench:bench",
}


@click.group(
    cls=LazyGroup,
    lazy=COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, prog_name="sitewatch")
@click.option(
    "--log-level",
    default="INFO",
    show_default=True,
    envvar="SITEWATCH_LOG_LEVEL",
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
    help="How much to log (to stderr).",
)
@click.option(
    "--lang",
    envvar="SITEWATCH_LANGUAGE",
    metavar="zh_CN|en",
    help="Language of what people read: tables, messages, reports (default: zh_CN; also SITEWATCH_LANGUAGE).",
)
def main(log_level: str, lang: str | None) -> None:
    """sitewatch: monitor the equipment of renovated residential compounds and drive its maintenance.

    Settings come from SITEWATCH_* environment variables (see docs/configuration.md);
    each subcommand's --help explains its own options.
    """
    setup_logging(log_level)
    try:
        set_language(lang or DEFAULT_LANGUAGE)  # every invocation says its language, or gets the default
    except UnknownLanguage as exc:
        raise click.BadParameter(str(exc), param_hint="--lang") from None
