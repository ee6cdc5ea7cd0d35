"""``sitewatch gateway``: run a site gateway, check its configuration, show its queue and counters."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
from pathlib import Path

import click
import orjson
from rich.console import Console
from rich.table import Table

from .config import EXAMPLE, GatewayConfig, GatewayConfigError, build_connectors, load_config
from .counters import COUNTERS

LANGS = click.Choice(["zh-CN", "en"], case_sensitive=False)
CONFIG = click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=Path("gateway.yaml"),
    show_default=True,
    help="The gateway's configuration file (see `sitewatch gateway example`).",
)
LANG = click.option("--lang", type=LANGS, default="zh-CN", show_default=True, help="Language of the output.")


def _load(config_path: Path) -> GatewayConfig:
    try:
        return load_config(config_path)
    except GatewayConfigError as exc:
        raise click.ClickException(str(exc)) from None


@click.group()
def gateway() -> None:
    """Site gateway: read devices, queue readings on disk, forward them to the broker over MQTT.

    网关：采集设备数据，先写入本地磁盘队列，再经 MQTT 发送至消息服务器。
    """


@gateway.command("run")
@CONFIG
def run(config_path: Path) -> None:
    """Run the gateway until SIGTERM or Ctrl-C (then it flushes, publishes its death and exits)."""
    from .queue import QueueError
    from .runtime import Gateway

    config = _load(config_path)
    try:
        gw = Gateway(config, config_path=config_path)
    except (GatewayConfigError, QueueError) as exc:
        raise click.ClickException(str(exc)) from None

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await gw.run(stop)

    asyncio.run(main())


@gateway.command("check")
@CONFIG
@LANG
def check(config_path: Path, lang: str) -> None:
    """Validate gateway.yaml and build every connector; list the devices; exit 1 on any problem."""
    zh = lang.lower().startswith("zh")
    config = _load(config_path)
    try:
        connectors = build_connectors(config)
    except GatewayConfigError as exc:
        raise click.ClickException(str(exc)) from None
    console = Console()
    table = Table(title="连接器与设备" if zh else "Connectors and devices")
    for column in (
        ("连接器", "设备数", "设备种类", "协议") if zh else ("connector", "devices", "kinds", "protocol")
    ):
        table.add_column(column)
    total = 0
    for connector in connectors:
        devices = connector.devices()
        total += len(devices)
        table.add_row(
            connector.name,
            str(len(devices)),
            ", ".join(sorted({d.kind.value for d in devices})),
            ", ".join(sorted({d.protocol for d in devices})),
        )
    console.print(table)
    budget = f"{config.queue.budget_bytes / 1024**2:,.1f} MiB"
    if zh:
        console.print(
            f"配置有效：小区 {config.compound}，网关 {config.gateway}，{len(connectors)} 个连接器，"
            f"{total} 台设备；消息服务器 {config.mqtt.url}；队列 {config.queue.path}（预算 {budget}）"
        )
    else:
        console.print(
            f"configuration valid: compound {config.compound}, gateway {config.gateway}, "
            f"{len(connectors)} connectors, {total} devices; broker {config.mqtt.url}; "
            f"queue {config.queue.path} (budget {budget})"
        )


@gateway.command("status")
@CONFIG
@LANG
def status(config_path: Path, lang: str) -> None:
    """Show the disk queue and the last counters the gateway saved (works while it runs)."""
    zh = lang.lower().startswith("zh")
    config = _load(config_path)
    path = config.queue.path
    if not path.exists():
        raise click.ClickException(f"{path}: no queue file yet (队列文件不存在)；the gateway has not run")
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        rows, readings, size = db.execute(
            "SELECT COUNT(*), COALESCE(SUM(readings), 0), COALESCE(SUM(size), 0) FROM items"
        ).fetchone()
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
    counters = orjson.loads(meta["counters"]) if "counters" in meta else {}
    console = Console()
    title = "网关队列" if zh else "Gateway queue"
    table = Table(title=f"{title}: {config.gateway}")
    table.add_column("项目" if zh else "item")
    table.add_column("值" if zh else "value", justify="right")
    table.add_row("排队条目" if zh else "queued rows", f"{rows:,}")
    table.add_row("排队读数" if zh else "queued readings", f"{readings:,}")
    table.add_row("占用字节 / 预算" if zh else "bytes / budget", f"{size:,} / {config.queue.budget_bytes:,}")
    table.add_row("启动序号 bdseq" if zh else "boot sequence (bdseq)", str(meta.get("bdseq", "-")))
    console.print(table)
    if counters:
        table = Table(title="计数（最近一次保存）" if zh else "Counters (last saved)")
        table.add_column("计数" if zh else "counter")
        table.add_column("值" if zh else "value", justify="right")
        table.add_column("含义" if zh else "meaning")
        for name, (en, zh_text) in COUNTERS.items():
            table.add_row(name, f"{counters.get(name, 0):,}", zh_text if zh else en)
        for name, value in sorted(counters.items()):
            if "." in name:
                table.add_row(name, f"{value:,}", "连接器计数" if zh else "connector counter")
        gauges = {
            "connected": ("connected to the broker then (1/0)", "保存时是否在线（1/0）"),
            "live_latency_p50_ms": (
                "live data, queue to PUBACK, median ms",
                "实时数据入队到确认，中位数毫秒",
            ),
            "live_latency_max_ms": ("live data, queue to PUBACK, max ms", "实时数据入队到确认，最大毫秒"),
            "uptime_s": ("seconds the gateway had been running", "运行秒数"),
        }
        for name, (en, zh_text) in gauges.items():
            if name in counters:
                table.add_row(name, f"{counters[name]:,}", zh_text if zh else en)
        console.print(table)


@gateway.command("example")
def example() -> None:
    """Print an example gateway.yaml (redirect it to a file and edit it)."""
    click.echo(EXAMPLE, nl=False)
