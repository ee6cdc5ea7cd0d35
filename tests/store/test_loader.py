"""``sitewatch store load``: a real backfill into both stores, counted, loaded twice, tags kept."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from sitewatch.cli import main
from sitewatch.contract import DeviceKind
from sitewatch.settings import load_settings
from sitewatch.simulators.backfill import EVENTS_SCHEMA
from sitewatch.store import DeviceRef, EventQuery, Store, open_store
from sitewatch.store.loader import load_backfill, samples_of

from .test_cli_reports import configured  # noqa: F401  (the fixture)


@pytest.fixture(scope="module")
def backfill(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A day of one compound with every fault type, made by `sitewatch simulate backfill`."""
    where = tmp_path_factory.mktemp("backfill")
    runner = CliRunner()
    city = runner.invoke(main, ["simulate", "city", "--compounds", "1", "--out", str(where / "city.xlsx")])
    assert city.exit_code == 0, city.output
    made = runner.invoke(main, ["simulate", "backfill", "--ledger", str(where / "city.xlsx"), "--days", "1",
                                "--faults", "all", "--start", "2024-03-05", "--out", str(where / "h")])  # fmt: skip
    assert made.exit_code == 0, made.output
    return where / "h"


def test_store_load_writes_every_reading_and_event_once(configured: Store, backfill: Path) -> None:  # noqa: F811
    readings = pq.ParquetFile(backfill / "readings.parquet").metadata.num_rows
    events = pq.ParquetFile(backfill / "events.parquet").metadata.num_rows
    runner = CliRunner()
    first = runner.invoke(main, ["--lang", "en", "store", "load", str(backfill)])
    assert first.exit_code == 0, first.output
    assert f"{readings:,} readings and {events:,} events written" in first.output
    counted = runner.invoke(main, ["--lang", "en", "query", "count", "--csv"])
    assert counted.stdout.splitlines() == ["readings", str(readings)]
    assert len(configured.events(0, 2**42)) == events
    again = runner.invoke(main, ["--lang", "en", "store", "load", str(backfill)])
    assert again.exit_code == 0, again.output
    assert configured.count_readings() == readings  # a second load changes nothing
    assert len(configured.events(0, 2**42)) == events
    kinds = {d.kind for d in configured.devices()}
    assert kinds == set(DeviceKind) - {DeviceKind.GATEWAY}
    stateful = configured.latest_events(EventQuery(0, 2**42, names=("faulted",)))
    assert stateful and all(e.event.kind is DeviceKind.CHARGER for e in stateful)


def test_hierarchy_columns_become_tags_and_a_missing_directory_is_refused(tmp_path: Path) -> None:
    directory = tmp_path / "h"
    directory.mkdir()
    table = pa.table({
        "ts_ms": pa.array([1000, 1000, 2000], pa.int64()), "device": ["C1-WM1", "C1-WM1", "C1-WM1"],
        "compound": ["C1"] * 3, "kind": ["water_meter"] * 3, "metric": ["flow", "battery", "flow"],
        "value": [1.5, 90.0, 2.5], "building": ["3号楼"] * 3, "street": ["", "", ""],
    })  # fmt: skip
    pq.write_table(table, directory / "readings.parquet")
    pq.write_table(EVENTS_SCHEMA.empty_table(), directory / "events.parquet")
    samples = samples_of(table.to_batches()[0])
    assert [(s.sample.ts_ms, dict(s.sample.values), dict(s.tags)) for s in samples] == [
        (1000, {"flow": 1.5, "battery": 90.0}, {"building": "3号楼"}), (2000, {"flow": 2.5}, {"building": "3号楼"})]  # fmt: skip
    store = open_store(load_settings(data_dir=tmp_path))
    try:
        assert load_backfill(directory, store).readings == 3
        assert store.devices() == [DeviceRef("C1-WM1", DeviceKind.WATER_METER, "C1", {"building": "3号楼"})]
    finally:
        store.close()
    missing = CliRunner().invoke(main, ["--lang", "en", "store", "load", str(tmp_path)])
    assert missing.exit_code == 1 and "holds no backfill" in missing.output
