"""Schemathesis over the whole OpenAPI schema: no 5xx for any input, and every response matches the
documented schema. Besides schemathesis' own positive and negative cases, every generated request is
also sent in hostile variants: a number replaced by NaN, Infinity or an overflowing literal (raw, as
no JSON encoder writes them), a string replaced by a huge one or one with control characters, in the
body, the query and the path."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import Engine, create_engine

from sitewatch.assets.importer import import_ledger
from sitewatch.server import create_app
from sitewatch.settings import load_settings

from .ledger_builder import ledger, xlsx
from .test_api import make_tokens

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

EXAMPLES_PER_OPERATION = 10  # x 34 operations x 2 modes x 2 databases, each with its hostile variants
NUMBERS = ["NaN", "Infinity", "-Infinity", "1e309", "-1e400", "1" + "0" * 400, "1e-400"]
PARAMS = ["x" * 8000, "\x00", "a\x1b[31mb", "\u202eevil", "=cmd|' /C calc'!A0", "名" * 5000, "\r\n", "../.."]
STRINGS = [
    *PARAMS,
    "y" * 300_000,
    "\ud800",
]  # a lone surrogate only in bodies (as a JSON escape): no client can put one in a URL
MARK = "\u0000HOSTILE{}\u0000"


def _hostile_body(body: Any, draw: Any) -> str | None:
    """``body`` as JSON text with one value replaced by a raw hostile token, or None."""
    slots: list[tuple[Any, Any]] = []

    def walk(value: Any) -> None:
        items = (
            value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
        )
        for key, item in items:
            slots.append((value, key))
            walk(item)

    walk(body)
    if not slots:
        return None
    container, key = draw(st.sampled_from(slots))
    raw = draw(st.sampled_from([*NUMBERS, *(json.dumps(s) for s in STRINGS)]))
    container[key] = MARK
    return json.dumps(body, ensure_ascii=False).replace(json.dumps(MARK), raw)


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def registry(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> tuple[Any, dict[str, str]]:
    """The app over a small registry (on SQLite, then on PostgreSQL), and an admin's auth header."""
    from sitewatch.assets.db import create_engine_for, upgrade

    tmp = tmp_path_factory.mktemp("fuzz")
    if request.param == "sqlite":
        url = f"sqlite:///{tmp / 'registry.db'}"
    else:
        url = request.getfixturevalue("postgres").create_database(f"fuzz_{os.getpid()}")
    engine: Engine = create_engine_for(url)
    upgrade(engine)
    assert import_ledger(engine, xlsx(ledger(compounds=2, assets_per_compound=8), tmp / "l.xlsx")).ok
    token = make_tokens(engine)["admin"]
    yield create_app(load_settings(data_dir=Path(tmp)), engine=engine), {"Authorization": f"Bearer {token}"}
    engine.dispose()


def _operations() -> list[tuple[str, str]]:
    """(method, path) of every operation, read from the spec of an app that never connects."""
    spec = create_app(load_settings(), engine=create_engine("sqlite://")).openapi()
    return [(m.upper(), p) for p, ops in spec["paths"].items() for m in ops]


@pytest.mark.parametrize(("method", "path"), _operations(), ids=lambda v: str(v))
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=lambda m: m.value)
def test_api_conforms_to_its_schema_and_no_input_crashes_it(
    registry: tuple[Any, dict[str, str]], method: str, path: str, mode: GenerationMode
) -> None:
    app, headers = registry
    operation = schemathesis.openapi.from_asgi("/openapi.json", app)[path][method]
    client = TestClient(app, raise_server_exceptions=False)

    @given(case=operation.as_strategy(generation_mode=mode), data=st.data())
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    def run(case: Any, data: Any) -> None:
        case.call_and_validate(
            headers=headers,
            checks=[
                not_a_server_error,
                status_code_conformance,
                content_type_conformance,
                response_schema_conformance,
            ],
        )
        draw = data.draw
        url, query = case.formatted_path, dict(case.query or {})
        if case.path_parameters and draw(st.booleans()):
            hostile = {
                k: quote(draw(st.sampled_from([*NUMBERS, *PARAMS])), safe="") for k in case.path_parameters
            }
            url = path.format(**hostile)
        if query and draw(st.booleans()):
            query[draw(st.sampled_from(sorted(query)))] = draw(st.sampled_from([*NUMBERS, *PARAMS]))
        body = _hostile_body(case.body, draw) if isinstance(case.body, dict | list) else None
        content = body.encode() if body is not None else None
        r = client.request(method, url, params=query, content=content,
                           headers={**headers, "Content-Type": "application/json"})  # fmt: skip
        assert r.status_code < 500, (method, url, query, (body or "")[:300], r.text[:500])
        answer = r.json() if r.status_code != 204 else None
        if r.status_code >= 400:
            assert set(answer) == {"status", "code", "detail", "errors"}, answer
            assert len(r.content) < 20_000  # no input echoed whole
        json.dumps(answer, allow_nan=False)

    run()
