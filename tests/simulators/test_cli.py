"""The simulate commands: city ledger, backfill with every fault type, bilingual output, clear refusals."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
from click.testing import CliRunner

from sitewatch.assets.workbook import write_xlsx
from sitewatch.cli import main
from sitewatch.simulators.backfill import read_backfill
from sitewatch.simulators.city import generate_city
from sitewatch.simulators.faults import FAULT_TYPES


def test_city_then_backfill_one_compound_with_every_fault(tmp_path: Path) -> None:
    runner = CliRunner()
    ledger = tmp_path / "city.xlsx"
    made = runner.invoke(main, ["--lang", "en", "simulate", "city", "--compounds", "2", "--seed", "2", "--out", str(ledger)])  # fmt: skip
    assert made.exit_code == 0, made.output
    assert ledger.exists() and "ledger written to" in made.output and "households" in made.output
    out = tmp_path / "history"
    done = runner.invoke(main, ["--lang", "en", "simulate", "backfill", "--ledger", str(ledger), "--compound", "220103-0002",
                                "--days", "3", "--start", "2026-10-01", "--out", str(out), "--faults", "all"])  # fmt: skip
    assert done.exit_code == 0, done.output
    assert "readings/s" in done.output and "fault labels" in done.output
    labels = pd.read_csv(out / "labels.csv", encoding="utf-8-sig")
    assert set(labels["fault"]) == set(FAULT_TYPES)
    readings = pd.read_parquet(out / "readings.parquet", columns=["ts_ms", "compound"])
    assert set(readings["compound"].astype(str)) == {"220103-0002"}
    first = int(dt.datetime(2026, 10, 1, tzinfo=dt.timezone(dt.timedelta(hours=8))).timestamp() * 1000)
    assert first <= readings["ts_ms"].min() < first + 60_000
    assert first + 3 * 86_400_000 - 900_000 <= readings["ts_ms"].max() < first + 3 * 86_400_000
    assert f"{len(readings):,} readings" in done.output
    history = read_backfill(out)
    assert len(history.readings) == len(readings) and len(history.labels) == len(labels)
    lights = history.wide("streetlight")
    assert set(lights.columns) == {"lamp_on", "power", "lamp_current", "ambient_light", "burning_hours"}
    assert set(history.events["event"]) >= {"status_changed", "session_started", "flicker", "entrapment"}
    # a subset keeps the chargers' rows of every table, labels and harmless rows as CSV too
    part = tmp_path / "chargers"
    cut = runner.invoke(main, ["--lang", "en", "simulate", "subset", "--history", str(out), "--kind", "charger",
                               "--out", str(part)])  # fmt: skip
    assert cut.exit_code == 0, cut.output
    chargers = read_backfill(part)
    assert set(chargers.readings["kind"].astype(str)) == {"charger"}
    assert len(chargers.readings) == int((readings_kind := history.readings["kind"].astype(str)).eq("charger").sum())
    assert 0 < len(chargers.readings) < len(readings_kind)
    assert set(chargers.labels["kind"]) == {"charger"} and len(chargers.events) > 0
    assert set(chargers.devices["kind"]) == {"charger"}
    assert len(pd.read_csv(part / "labels.csv", encoding="utf-8-sig")) == len(chargers.labels)
    assert f"{len(chargers.readings):,} readings" in cut.output
    same = runner.invoke(main, ["--lang", "en", "simulate", "subset", "--history", str(out), "--kind", "charger",
                                "--out", str(out)])  # fmt: skip
    assert same.exit_code == 2 and "another directory than the history" in same.output
    zh = runner.invoke(main, ["--lang", "zh_CN", "simulate", "backfill", "--ledger", str(ledger), "--days", "1", "--out",
                              str(tmp_path / "zh"), "--faults", "none"])  # fmt: skip
    assert zh.exit_code == 0 and "条读数/秒" in zh.output
    both = pd.read_parquet(
        tmp_path / "zh" / "readings.parquet", columns=["device", "compound"]
    ).drop_duplicates()
    assert both["compound"].nunique() == 2
    assert all(str(d).startswith(f"{c}-") for d, c in zip(both["device"], both["compound"], strict=True))


def test_refusals_are_clear(tmp_path: Path) -> None:
    runner = CliRunner()
    missing = runner.invoke(
        main, ["simulate", "backfill", "--ledger", str(tmp_path / "x.xlsx"), "--out", "o"]
    )
    assert missing.exit_code == 2 and "does not exist" in missing.output
    (tmp_path / "bad.xlsx").write_bytes(b"not a workbook")
    bad = runner.invoke(main, ["--lang", "en", "simulate", "backfill", "--ledger", str(tmp_path / "bad.xlsx"), "--out",
                               str(tmp_path / "o")])  # fmt: skip
    assert bad.exit_code == 2 and "cannot use the ledger" in bad.output
    assert runner.invoke(main, ["simulate", "city", "--compounds", "0", "--out", "x.xlsx"]).exit_code == 2
    write_xlsx(generate_city(1, seed=3), tmp_path / "one.xlsx")
    bad_day = runner.invoke(main, ["--lang", "en", "simulate", "backfill", "--ledger", str(tmp_path / "one.xlsx"), "--out",
                                   str(tmp_path / "o"), "--start", "2026-13-01"])  # fmt: skip
    assert bad_day.exit_code == 2 and "YYYY-MM-DD" in bad_day.output
    csv_name = runner.invoke(main, ["--lang", "en", "simulate", "city", "--compounds", "1", "--out", str(tmp_path / "x.csv")])  # fmt: skip
    assert csv_name.exit_code == 2 and "directory without extension" in csv_name.output
    as_csv = runner.invoke(main, ["simulate", "city", "--compounds", "1", "--out", str(tmp_path / "csv")])
    assert as_csv.exit_code == 0 and (tmp_path / "csv" / "assets.csv").exists()
    listed = runner.invoke(main, ["--lang", "en", "simulate", "faults"], env={"COLUMNS": "200"})
    assert listed.exit_code == 0 and all(name in listed.output for name in FAULT_TYPES)
    assert "困人" in runner.invoke(main, ["--lang", "zh_CN", "simulate", "faults"]).output
    for command in ("city", "backfill", "run", "faults"):
        helped = runner.invoke(main, ["simulate", command, "--help"])
        assert helped.exit_code == 0 and "--lang" not in helped.output  # one way: sitewatch --lang
