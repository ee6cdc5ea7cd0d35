"""``sitewatch bench simulate``: a whole city in real time on one core, published to a real Mosquitto.

Live generation, JSON encoding and MQTT publishing (QoS 1, one connection per compound) all run in
this process's single thread; the figure is this process's CPU time over wall time, measured over
several intervals after a warm-up, median reported. Mosquitto runs in its own process (its CPU
share is printed beside, for information).
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

LIMIT_CPU_SHARE = 1.0  # one core


def _proc_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) of another process, from /proc; 0 when unavailable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


@click.command("simulate")
@click.option("--compounds", type=click.IntRange(1, 20_000), default=267, show_default=True,
              help="Compounds of the generated city (ignored with --ledger).")  # fmt: skip
@click.option("--ledger", type=click.Path(exists=True, path_type=Path), help="Use this ledger instead.")
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--warmup", type=click.FloatRange(0, 600), default=10.0, show_default=True,
              help="Seconds run before measuring (connections, first full report of every device).")  # fmt: skip
@click.option("--interval", type=click.FloatRange(1, 600), default=10.0, show_default=True,
              help="Seconds per measured interval.")  # fmt: skip
@click.option("--intervals", type=click.IntRange(1, 1000), default=6, show_default=True,
              help="Measured intervals (the median is reported).")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def bench_simulate(
    compounds: int, ledger: Path | None, seed: int, warmup: float, interval: float, intervals: int, as_json: bool,
) -> None:  # fmt: skip
    """Run a whole city live at speed 1 against a local Mosquitto; print rates and CPU share per core."""
    from ...i18n import _
    from ...settings import MqttSettings
    from ...simulators.city import generate_city
    from ...simulators.live import LiveSite
    from ...simulators.publisher import CityRunner
    from ...simulators.site import load_sites, sites_from_records
    from ..services import MosquittoService

    say = (lambda *_: None) if as_json else click.echo
    sites = load_sites(ledger) if ledger else sites_from_records(generate_city(compounds, seed))
    devices = sum(len(s.devices) for s in sites)
    say(_("city: {compounds} compounds, {devices:,} devices", compounds=len(sites), devices=devices))
    rows = []
    with tempfile.TemporaryDirectory(prefix="sitewatch-bench-sim-") as tmp:
        broker = MosquittoService(Path(tmp))
        broker.start()
        try:
            lives = [LiveSite(s, seed=seed, site_index=i) for i, s in enumerate(sites)]
            runner = CityRunner(lives, MqttSettings(url=broker.url))
            runner.connect()
            pid = broker.proc.pid if broker.proc is not None else 0
            with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                          console=Console(stderr=True), transient=True, disable=as_json) as bar:  # fmt: skip
                task = bar.add_task(_("warm-up"), total=warmup + interval * intervals)
                runner.run(warmup)
                bar.update(task, advance=warmup, description=_("measuring"))
                for _round in range(intervals):
                    before = (time.monotonic(), time.process_time(), _proc_cpu_s(pid), runner.stats.readings,
                              runner.stats.messages, runner.stats.samples)  # fmt: skip
                    runner.run(interval)
                    wall = time.monotonic() - before[0]
                    rows.append({
                        "wall_s": wall,
                        "cpu_share": (time.process_time() - before[1]) / wall,
                        "broker_cpu_share": (_proc_cpu_s(pid) - before[2]) / wall,
                        "readings_per_s": (runner.stats.readings - before[3]) / wall,
                        "messages_per_s": (runner.stats.messages - before[4]) / wall,
                        "samples_per_s": (runner.stats.samples - before[5]) / wall,
                    })  # fmt: skip
                    bar.update(task, advance=interval)
            runner.close()
            stats = runner.stats
        finally:
            broker.stop()
    median = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
    figures = {
        "compounds": len(sites), "devices": devices, "speed": 1.0, "intervals": len(rows),
        "interval_s": interval, "readings_per_s": round(median["readings_per_s"], 1),
        "messages_per_s": round(median["messages_per_s"], 1), "samples_per_s": round(median["samples_per_s"], 1),
        "cpu_share": round(median["cpu_share"], 4),
        "cpu_share_per_10k_devices": round(median["cpu_share"] / devices * 10_000, 5),
        "broker_cpu_share": round(median["broker_cpu_share"], 4), "limit_cpu_share": LIMIT_CPU_SHARE,
        "acked": stats.acked, "published": stats.messages + stats.state_messages, "dropped": stats.dropped,
        "pass": median["cpu_share"] < LIMIT_CPU_SHARE,
    }  # fmt: skip
    if as_json:
        click.echo(json.dumps(figures, indent=2))
        return
    table = Table(title=_("Whole city live at speed 1 (median of intervals)"))
    table.add_column(_("figure"))
    table.add_column(_("value"), justify="right")
    table.add_column(_("limit"), justify="right")
    limit = f"{LIMIT_CPU_SHARE:.0%} " + _("of one core")
    for label, value, lim in (
        (_("compounds"), f"{len(sites)}", ""),
        (_("devices"), f"{devices:,}", ""),
        (_("readings/s"), f"{figures['readings_per_s']:,.0f}", ""),
        (_("messages/s"), f"{figures['messages_per_s']:,.1f}", ""),
        (_("process CPU share"), f"{figures['cpu_share']:.1%}", limit),
        (_("CPU share per 10k devices"), f"{figures['cpu_share_per_10k_devices']:.2%}", ""),
        (_("Mosquitto CPU share (for information)"),
         f"{figures['broker_cpu_share']:.1%}", ""),
    ):  # fmt: skip
        table.add_row(label, value, lim)
    Console().print(table)
    verdict = _("PASS") if figures["pass"] else _("MISS")
    say(
        _(
            "verdict: {verdict}; acked {acked:,} / published {published:,}",
            verdict=verdict, acked=stats.acked, published=figures["published"],
        )
    )  # fmt: skip
