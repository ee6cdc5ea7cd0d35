"""Settings: environment with nested sections, clear refusals, safe production defaults."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

from sitewatch.i18n import using
from sitewatch.settings import Settings, StoreBackend, load_settings, validation_problems


def test_defaults_run_without_any_server(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path)
    assert settings.store.backend is StoreBackend.EMBEDDED
    assert settings.store_path == tmp_path / "readings.db"
    assert settings.database_url == f"sqlite:///{tmp_path / 'registry.db'}"
    assert (settings.mqtt.host, settings.mqtt.port, settings.mqtt.tls) == ("127.0.0.1", 1883, False)


def test_environment_with_nested_sections(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SITEWATCH_MQTT__URL", "mqtts://broker.example:8883")
    monkeypatch.setenv("SITEWATCH_STORE__BACKEND", "influxdb")
    monkeypatch.setenv("SITEWATCH_STORE__INFLUX_URL", "http://tsdb:8086")
    monkeypatch.setenv("SITEWATCH_INGEST__BATCH_READINGS", "500")
    settings = load_settings()
    assert (settings.mqtt.host, settings.mqtt.port, settings.mqtt.tls) == ("broker.example", 8883, True)
    assert settings.store.backend is StoreBackend.INFLUXDB
    assert settings.store.influx_url == "http://tsdb:8086"
    assert settings.ingest.batch_readings == 500


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("SITEWATCH_MQTT__URL", "http://x", "mqtt://host:1883"),
        ("SITEWATCH_STORE__BACKEND", "mongodb", "embedded"),
        ("SITEWATCH_INGEST__BATCH_READINGS", "-1", "greater than or equal"),
        ("SITEWATCH_WEB__PORT", "99999", "less than or equal"),
    ],
)
def test_bad_values_are_refused_with_a_message(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, fragment: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match=fragment):
        load_settings()


def test_production_refuses_plain_anonymous_mqtt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SITEWATCH_ENVIRONMENT", "production")
    with pytest.raises(ValidationError, match="mqtts"):
        load_settings()
    monkeypatch.setenv("SITEWATCH_MQTT__URL", "mqtts://broker:8883")
    monkeypatch.setenv("SITEWATCH_MQTT__USERNAME", "gw")
    monkeypatch.setenv("SITEWATCH_MQTT__PASSWORD", "secret")
    assert load_settings().mqtt.password is not None


def test_unknown_setting_is_refused() -> None:
    with pytest.raises(ValidationError):
        load_settings(no_such_thing=1)


def test_an_unknown_name_inside_a_section_is_refused_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SITEWATCH_MQTT__NO_SUCH", "1")
    with pytest.raises(ValidationError) as refused:
        load_settings()
    with using("en"):
        assert validation_problems(refused.value) == [
            "mqtt.no_such: unknown field; check the spelling against docs/configuration.md"
        ]
    monkeypatch.delenv("SITEWATCH_MQTT__NO_SUCH")
    monkeypatch.setenv("SITEWATCH_MQTT__URL", "mqtt://broker:1883")
    assert load_settings().mqtt.url == "mqtt://broker:1883"


def test_the_removed_alerts_timezone_is_refused_naming_the_one_to_use(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SITEWATCH_ALERTS__TIMEZONE", "UTC")
    with pytest.raises(ValidationError) as refused, using("en"):
        load_settings()
    [problem] = validation_problems(refused.value)
    assert problem.startswith("alerts: alerts.timezone was removed") and "SITEWATCH_TIMEZONE" in problem
    monkeypatch.delenv("SITEWATCH_ALERTS__TIMEZONE")
    monkeypatch.setenv("SITEWATCH_TIMEZONE", "UTC")
    assert load_settings().timezone == "UTC" and "timezone" not in load_settings().alerts.model_dump()


def _variables(model: type[BaseModel], prefix: str) -> list[str]:
    out = []
    for name, field in model.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            out += _variables(ann, f"{prefix}{name.upper()}__")
        else:
            out.append(f"{prefix}{name.upper()}")
    return out


def test_every_setting_is_documented() -> None:
    doc = (Path(__file__).parents[1] / "docs" / "configuration.md").read_text(encoding="utf-8")
    variables = _variables(Settings, "SITEWATCH_")
    assert len(variables) > 30
    assert [v for v in variables if f"`{v}`" not in doc] == []


def test_validation_problems_say_where_and_what_for_people() -> None:
    from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

    class Inner(BaseModel):
        model_config = ConfigDict(extra="forbid")
        port: int
        name: str = "x"

        @field_validator("name")
        @classmethod
        def _no_spaces(cls, value: str) -> str:
            if " " in value:
                raise ValueError("no spaces in a name")
            return value

    class Outer(BaseModel):
        model_config = ConfigDict(extra="forbid")
        inner: Inner

    with pytest.raises(ValidationError) as raised:
        Outer.model_validate({"inner": {"name": "a b", "prot": 1}, "extra": 2})
    with using("en"):
        problems = validation_problems(raised.value, "docs/gateway.md")
    assert problems == [
        "inner.port: required field is missing",
        "inner.name: no spaces in a name",
        "inner.prot: unknown field; check the spelling against docs/gateway.md",
        "extra: unknown field; check the spelling against docs/gateway.md",
    ]
    with using("zh_CN"):
        problems = validation_problems(raised.value, "docs/gateway.md")
    assert problems[0] == "inner.port: 缺少必填项"
    assert problems[2] == "inner.prot: 未知字段，请对照 docs/gateway.md 检查拼写"


def test_escalation_minutes_name_severities(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SITEWATCH_ALERTS__ESCALATION_MINUTES", '{"critical": 5, "warning": 60}')
    assert load_settings().alerts.escalation_minutes == {"critical": 5.0, "warning": 60.0}
    monkeypatch.setenv("SITEWATCH_ALERTS__ESCALATION_MINUTES", '{"critcal": 5}')
    with pytest.raises(ValidationError, match="not a severity"):
        load_settings()
