"""docker-compose.yml: valid against the Compose Specification's schema (vendored, see
tests/data/README.md), every SITEWATCH_ variable a real setting, Grafana provisioned from
dashboards/, every service's command a sitewatch command. No container engine runs here, so this
is what can be checked without starting the stack."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import click
import jsonschema
import pytest
import yaml
from pydantic import BaseModel

from sitewatch.cli import COMMANDS, main
from sitewatch.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
SCHEMA = json.loads((ROOT / "tests" / "data" / "compose-spec.json").read_text(encoding="utf-8"))
_SUBSTITUTION = re.compile(r"\$\{(\w+)(?::?[-?+][^}]*)?\}")


def _setting(name: str) -> bool:
    """Whether SITEWATCH_<name> (nested with __) names a field of Settings."""
    model: type[BaseModel] = Settings
    parts = name.lower().split("__")
    for n, part in enumerate(parts):
        field = model.model_fields.get(part)
        if field is None:
            return False
        annotation = field.annotation
        if n < len(parts) - 1:
            if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
                return False
            model = annotation
    return True


def _sitewatch_services() -> dict[str, dict[str, Any]]:
    return {name: s for name, s in COMPOSE["services"].items() if s.get("build")}


def test_it_is_valid_against_the_compose_specification() -> None:
    jsonschema.Draft7Validator.check_schema(SCHEMA)
    errors = sorted(jsonschema.Draft7Validator(SCHEMA).iter_errors(COMPOSE), key=lambda e: list(e.path))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors]


def test_the_schema_catches_a_broken_file() -> None:  # the check above can fail
    broken = {**COMPOSE, "services": {**COMPOSE["services"], "web": {**COMPOSE["services"]["web"], "ports": "8080"}}}
    assert list(jsonschema.Draft7Validator(SCHEMA).iter_errors(broken))
    assert list(jsonschema.Draft7Validator(SCHEMA).iter_errors({**COMPOSE, "servises": {}}))


def test_every_sitewatch_variable_is_a_setting_and_each_service_starts_with_valid_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert _setting("STORE__INFLUX_URL") and not _setting("STORE__INFLUX_URLS") and not _setting("STORE__X__Y")
    services = _sitewatch_services()
    assert {"web", "ingest-1", "ingest-2", "alerts", "analytics"} <= set(services)
    for name, service in services.items():
        env = service["environment"]
        names = [key.removeprefix("SITEWATCH_") for key in env if key.startswith("SITEWATCH_")]
        assert names, name
        unknown = [n for n in names if not _setting(n)]
        assert not unknown, f"{name}: not settings: {unknown}"
        # the settings load as the container would see them (substitutions filled with a sample)
        for key in list(os.environ):
            if key.startswith("SITEWATCH_"):
                monkeypatch.delenv(key)
        for key, value in env.items():
            if key.startswith("SITEWATCH_"):
                monkeypatch.setenv(key, _SUBSTITUTION.sub("sample", str(value)))
        settings = Settings()
        assert settings.environment.value == "production" and settings.store.backend.value == "influxdb"


def test_grafana_is_provisioned_from_the_dashboards_folder() -> None:
    grafana = COMPOSE["services"]["grafana"]
    mounts = {v.split(":")[0]: v.split(":")[1] for v in grafana["volumes"] if v.startswith("./")}
    provider = yaml.safe_load((ROOT / "dashboards/provisioning/dashboards/sitewatch.yaml").read_text())
    path = provider["providers"][0]["options"]["path"]
    for source, target in mounts.items():
        assert (ROOT / source).is_dir(), source
        assert target.startswith(("/etc/grafana/provisioning/", path + "/")), target
    assert {mounts["./dashboards/zh-CN"], mounts["./dashboards/en"]} == {f"{path}/zh-CN", f"{path}/en"}
    # the variables the data source file reads come from Grafana's environment
    datasource = (ROOT / "dashboards/provisioning/datasources/sitewatch.yaml").read_text()
    for variable in set(re.findall(r"\$(INFLUX_\w+)", datasource)):
        assert variable in grafana["environment"], variable


def test_every_service_runs_a_sitewatch_command() -> None:
    pending = []
    for name, service in _sitewatch_services().items():
        group, *rest = service["command"]
        assert group in COMMANDS, name
        try:
            command = main.get_command(click.Context(main), group)
        except ModuleNotFoundError as exc:
            pending.append((name, str(exc)))
            continue
        if isinstance(command, click.Group) and not (rest and rest[0] in command.commands):
            pending.append((name, f"no command {group} {rest[:1]}"))
    # `analytics run` is built on its own branch: its service is here for when it lands
    assert all(name == "analytics" for name, _ in pending), pending
