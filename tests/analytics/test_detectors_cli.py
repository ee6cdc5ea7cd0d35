"""`sitewatch analytics score | detectors | train` end to end, and train/load from a real store."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from sitewatch.analytics.detectors import DetectorError
from sitewatch.analytics.detectors.models import load_models
from sitewatch.cli import main
from sitewatch.contract import DeviceKind, Sample
from sitewatch.settings import load_settings
from sitewatch.store import StoredSample, open_store

H = 3_600_000
T0 = 1_767_542_400_000  # 2026-01-05 00:00 Shanghai


def invoke(*args: str) -> object:
    return CliRunner().invoke(main, ["--lang", "en", "analytics", *args])


def series_file(path: Path, *, spike: bool) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    index = pd.date_range("2026-01-01", periods=24 * 14, freq="h", tz="Asia/Shanghai")
    frame = pd.DataFrame({"timestamp": index, "load": rng.normal(50, 2, len(index)), "label": "x"})
    if spike:
        frame.loc[200, "load"] = 90
    if path.suffix == ".csv":
        frame.assign(timestamp=index.map(lambda t: t.isoformat())).to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    return frame


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_score_round_trip(tmp_path: Path, suffix: str) -> None:
    data = series_file(tmp_path / f"in{suffix}", spike=True)
    series_file(tmp_path / f"train{suffix}", spike=False)
    for detector, train in (
        ("stream_zscore", ()),
        ("pca_t2q", ("--train", str(tmp_path / f"train{suffix}"))),
    ):
        out = tmp_path / f"out-{detector}{suffix}"
        result = invoke(
            "score",
            "--detector",
            detector,
            *train,
            "--input",
            str(tmp_path / f"in{suffix}"),
            "--out",
            str(out),
        )
        assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
        got = pd.read_csv(out) if suffix == ".csv" else pd.read_parquet(out)
        assert list(got.columns) == ["timestamp", "score", "anomaly"] and len(got) == len(data)
        assert got["anomaly"].iloc[200] == 1 and got["anomaly"].sum() <= 3
        assert pd.Timestamp(got["timestamp"].iloc[0]) == data["timestamp"].iloc[0]


def test_score_refuses_a_file_without_numbers_or_time(tmp_path: Path) -> None:
    bad = tmp_path / "words.csv"
    bad.write_text(
        "timestamp,name\n2026-01-01T00:00:00+08:00,a\n2026-01-01T01:00:00+08:00,b\n", encoding="utf-8"
    )
    good = tmp_path / "good.csv"
    series_file(good, spike=False)
    result = invoke(
        "score",
        "--detector",
        "pca_t2q",
        "--train",
        str(bad),
        "--input",
        str(good),
        "--out",
        str(tmp_path / "o.csv"),
    )
    assert result.exit_code == 1 and "no numeric column" in result.output  # type: ignore[attr-defined]
    notime = tmp_path / "notime.csv"
    notime.write_text("a,b\n1,2\n", encoding="utf-8")
    result = invoke(
        "score", "--detector", "stream_zscore", "--input", str(notime), "--out", str(tmp_path / "o.csv")
    )
    assert result.exit_code == 1 and "no timestamp column" in result.output  # type: ignore[attr-defined]
    garbage = tmp_path / "garbage.parquet"
    garbage.write_bytes(b"PAR1 not really")
    result = invoke(
        "score", "--detector", "stream_zscore", "--input", str(garbage), "--out", str(tmp_path / "o.csv")
    )
    assert result.exit_code == 1 and "could not be read" in result.output  # type: ignore[attr-defined]
    result = invoke("score", "--detector", "nope", "--input", str(good), "--out", str(tmp_path / "o.csv"))
    assert result.exit_code == 1 and "unknown detector" in result.output  # type: ignore[attr-defined]


def test_detectors_lists_one_line_each_in_both_languages() -> None:
    english = invoke("detectors")
    assert english.exit_code == 0 and len(english.output.splitlines()) == 6  # type: ignore[attr-defined]
    assert "night_flow" in english.output  # type: ignore[attr-defined]
    chinese = CliRunner().invoke(main, ["--lang", "zh_CN", "analytics", "detectors"])
    assert chinese.exit_code == 0 and "训练" in chinese.output


def elevators(hours: int) -> list[StoredSample]:
    rng = np.random.default_rng(2)
    out = []
    for n in (1, 2):
        device = f"220106-0001-EL000{n}"
        trips = 1000.0
        for h in range(hours):
            for m in range(0, 60, 15):
                trips += float(rng.integers(0, 5))
                values = {"vibration_rms": float(rng.normal(0.15, 0.01)), "motor_current": float(rng.normal(20, 1)),
                          "car_load": float(rng.uniform(5, 60)), "trip_count": trips}  # fmt: skip
                out.append(
                    StoredSample(
                        Sample(device, DeviceKind.ELEVATOR, T0 + h * H + m * 60_000, values), "220106-0001"
                    )
                )
    return out


def test_train_and_load_from_the_embedded_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SITEWATCH_DATA_DIR", str(tmp_path))
    with open_store(load_settings()) as store:
        store.write(elevators(24 * 8))
    out = tmp_path / "models"
    result = invoke("train", "--since", "2026-01-04T00:00", "--until", "2026-01-14T00:00", "--kind", "elevator",
                    "--out", str(out))  # fmt: skip
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    entries = {(e["kind"], e["device"]) for e in manifest["models"]}
    assert entries == {
        ("elevator", None),
        ("elevator", "220106-0001-EL0001"),
        ("elevator", "220106-0001-EL0002"),
    }
    first = manifest["models"][0]
    assert first["detector"] == "pca_t2q" and "vibration_rms" in first["features"]
    assert "trip_count_increase" in first["features"] and first["rows"] >= 24 * 8
    assert first["start_ms"] >= T0 and first["sitewatch"] and first["sklearn"]
    models = load_models(out)
    model = models.get("elevator", "220106-0001-EL0001")
    assert model is not None and models.get("elevator", "220106-0001-EL0099") is models.get("elevator")
    (out / first["file"]).write_bytes(b"tampered")
    with pytest.raises(DetectorError, match="does not match"):
        load_models(out)
    with pytest.raises(DetectorError, match="manifest"):
        load_models(tmp_path / "nowhere")


@pytest.mark.integration
def test_train_from_influxdb(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, influxdb: object, influx_database: str
) -> None:
    monkeypatch.setenv("SITEWATCH_STORE__BACKEND", "influxdb")
    monkeypatch.setenv("SITEWATCH_STORE__INFLUX_URL", influxdb.url)  # type: ignore[attr-defined]
    monkeypatch.setenv("SITEWATCH_STORE__INFLUX_DATABASE", influx_database)
    with open_store(load_settings()) as store:
        store.write(elevators(24 * 8))
    result = invoke("train", "--since", "2026-01-04T00:00", "--until", "2026-01-14T00:00", "--kind", "elevator",
                    "--out", str(tmp_path / "m"))  # fmt: skip
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    assert len(load_models(tmp_path / "m").entries) == 3


def test_train_without_a_store_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SITEWATCH_DATA_DIR", str(tmp_path))
    result = invoke("train", "--since", "30d")
    assert result.exit_code == 1 and "no store" in result.output  # type: ignore[attr-defined]
