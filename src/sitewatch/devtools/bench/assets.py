"""``sitewatch bench assets``: import a city-sized ledger, then time device lookups and asset lists.

Requests go through the real ASGI application in-process (httpx's ASGITransport): routing,
authentication, validation, SQL and serialisation are all measured; the network is not.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import click

LOOKUP_P99_MS = 10.0  # ingest resolves a device it has not cached yet within one batch interval
LIST_P99_MS = 50.0  # a console page of 50 assets appears without a visible wait


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


async def _time_requests(
    client: Any, requests: list[tuple[str, str, Any]], headers: dict[str, str]
) -> list[float]:
    latencies = []
    for method, url, body in requests:
        started = time.perf_counter()
        response = await client.request(method, url, json=body, headers=headers)
        latencies.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise click.ClickException(
                f"{method} {url} answered {response.status_code}: {response.text[:200]}"
            )
    return latencies


async def _measure(
    app: Any, token: str, devices: list[str], codes: list[str], n: int, seed: int
) -> dict[str, Any]:
    import httpx

    rng = random.Random(seed)
    headers = {"Authorization": f"Bearer {token}"}
    lookups = [("GET", f"/api/v1/lookup/devices/{rng.choice(devices)}", None) for _ in range(n)]
    lists = [
        ("GET", f"/api/v1/assets?compound_code={rng.choice(codes)}&kind={rng.choice(['water_meter', 'camera'])}&limit=50", None)
        for _ in range(max(50, n // 4))
    ]  # fmt: skip
    batches = [
        ("POST", "/api/v1/lookup/devices", {"device_ids": rng.sample(devices, min(1000, len(devices)))}) for _ in range(20)
    ]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        await _time_requests(client, lookups[:50] + lists[:20], headers)  # warm-up: caches, compiled queries
        result = {}
        for name, requests in (("lookup", lookups), ("list", lists), ("batch_lookup_1000", batches)):
            ms = await _time_requests(client, requests, headers)
            result[name] = {
                "requests": len(ms), "p50_ms": round(statistics.median(ms), 2), "p99_ms": round(_percentile(ms, 99), 2),
            }  # fmt: skip
    return result


@click.command("assets")
@click.option(
    "--compounds",
    type=click.IntRange(1, 20_000),
    default=333,
    show_default=True,
    help="Compounds of the synthetic city (333: about 100,000 assets).",
)
@click.option("--seed", type=int, default=1, show_default=True, help="Seed of the synthetic city.")
@click.option("--requests", "n_requests", type=int, default=2000, show_default=True, help="Lookups to time.")
@click.option("--format", "fmt", type=click.Choice(["xlsx", "csv"]), default="xlsx", show_default=True)
@click.option("--postgres", is_flag=True, help="Use a throw-away local PostgreSQL instead of SQLite.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def bench_assets(
    compounds: int, seed: int, n_requests: int, fmt: str, postgres: bool, as_json: bool
) -> None:
    """Import the synthetic city's ledger through the importer, then time lookups and filtered lists."""
    from ...assets.db import create_engine_for, transaction, upgrade
    from ...assets.importer import import_ledger
    from ...assets.models import Role
    from ...assets.tokens import create_token
    from ...assets.workbook import write_csv_dir, write_xlsx
    from ...server import create_app
    from ...simulators.city import generate_city

    logging.getLogger("httpx").setLevel(logging.WARNING)  # one INFO line per request otherwise
    say = (lambda *_: None) if as_json else click.echo
    with tempfile.TemporaryDirectory(prefix="sitewatch-bench-assets-") as tmp:
        work = Path(tmp)
        service = None
        if postgres:
            from ..services import PostgresService

            service = PostgresService(work / "pg")
            service.start()
            url = service.create_database("bench")
        else:
            url = f"sqlite:///{work / 'registry.db'}"
        try:
            started = time.perf_counter()
            data = generate_city(compounds, seed)
            path = work / ("ledger.xlsx" if fmt == "xlsx" else "ledger")
            (write_xlsx if fmt == "xlsx" else write_csv_dir)(data, path)
            say(f"generated {fmt} ledger: {compounds} compounds, {len(data['assets'])} assets "
                f"in {time.perf_counter() - started:.1f} s")  # fmt: skip
            engine = create_engine_for(url)
            upgrade(engine)
            report = import_ledger(engine, path)
            if not report.ok:
                raise click.ClickException(f"import refused: {report.as_dict()['issues'][:3]}")
            again = import_ledger(engine, path)
            rows = report.rows
            say(f"import: {rows} rows in {report.seconds:.2f} s ({rows / report.seconds:,.0f} rows/s); "
                f"re-import (no changes) {again.seconds:.2f} s")  # fmt: skip
            with transaction(engine) as session:
                token, _ = create_token(session, Role.BUREAU, label="bench")
            devices = [a["device_id"] for a in data["assets"]]
            codes = [c["code"] for c in data["compounds"]]
            app = create_app(engine=engine)
            latency = asyncio.run(_measure(app, token, devices, codes, n_requests, seed=1))
            engine.dispose()
        finally:
            if service is not None:
                service.stop()
    figures = {
        "database": "postgresql" if postgres else "sqlite",
        "transport": "in-process ASGI (httpx.ASGITransport)",
        "assets": len(data["assets"]),
        "ledger_format": fmt,
        "import_rows": rows,
        "import_s": round(report.seconds, 2),
        "import_rows_per_s": round(rows / report.seconds),
        "reimport_s": round(again.seconds, 2),
        **latency,
        "targets": {"lookup_p99_ms": LOOKUP_P99_MS, "list_p99_ms": LIST_P99_MS},
    }
    if as_json:
        click.echo(json.dumps(figures, indent=2))
        return
    for name, target in (("lookup", LOOKUP_P99_MS), ("list", LIST_P99_MS), ("batch_lookup_1000", None)):
        f = latency[name]
        verdict = (
            ""
            if target is None
            else f"  target p99 < {target:g} ms: {'PASS' if f['p99_ms'] < target else 'MISS'}"
        )
        click.echo(
            f"{name:>18}: p50 {f['p50_ms']:.2f} ms, p99 {f['p99_ms']:.2f} ms ({f['requests']} requests){verdict}"
        )
