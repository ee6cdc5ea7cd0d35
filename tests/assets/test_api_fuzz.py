"""Schemathesis against the OpenAPI spec: no 500s, and every response matches the documented schema."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import Engine, create_engine

from sitewatch.assets.importer import import_ledger
from sitewatch.web.app import create_app

from .ledger_builder import ledger, xlsx
from .test_api import make_tokens

EXAMPLES_PER_OPERATION = 6  # x ~33 operations x 2 modes: the module stays under a minute


@pytest.fixture
def registry(sqlite_engine: Engine, tmp_path: Path) -> tuple[Any, dict[str, str]]:
    """The app over a small registry, and an admin's auth header."""
    assert import_ledger(
        sqlite_engine, xlsx(ledger(compounds=2, assets_per_compound=8), tmp_path / "l.xlsx")
    ).ok
    token = make_tokens(sqlite_engine)["admin"]
    return create_app(engine=sqlite_engine), {"Authorization": f"Bearer {token}"}


def _operations() -> list[tuple[str, str]]:
    """(method, path) of every operation, read from the spec of an app that never connects."""
    spec = create_app(engine=create_engine("sqlite://")).openapi()
    return [(m.upper(), p) for p, ops in spec["paths"].items() for m in ops]


@pytest.mark.parametrize(("method", "path"), _operations(), ids=lambda v: str(v))
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=lambda m: m.value)
def test_api_conforms_to_its_schema(
    registry: tuple[Any, dict[str, str]], method: str, path: str, mode: GenerationMode
) -> None:
    app, headers = registry
    operation = schemathesis.openapi.from_asgi("/openapi.json", app)[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    def run(case: Any) -> None:
        case.call_and_validate(
            headers=headers,
            checks=[
                not_a_server_error,
                status_code_conformance,
                content_type_conformance,
                response_schema_conformance,
            ],
        )

    run()
