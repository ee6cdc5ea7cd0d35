"""The layers in pyproject.toml (import-linter) hold on the code, and break on a wrong import.

Each case copies the package and pyproject.toml to a temporary directory, changes the copy, and
runs ``lint-imports`` on it: a contract that could not fail would prove nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _append(path: str, line: str) -> Callable[[Path], None]:
    def change(package: Path) -> None:
        with (package / path).open("a", encoding="utf-8") as f:
            f.write(f"\n{line}\n")

    return change


def _remove(path: str) -> Callable[[Path], None]:
    return lambda package: shutil.rmtree(package / path)


def _add_package(name: str) -> Callable[[Path], None]:
    def change(package: Path) -> None:
        (package / name).mkdir()
        (package / name / "__init__.py").write_text('"""A package no contract names."""\n')

    return change


def lint_copy(tmp_path: Path, change: Callable[[Path], None] | None = None) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` on a copy of the package, after ``change`` (given the copy's package dir)."""
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    package = tmp_path / "src" / "sitewatch"
    shutil.copytree(REPO / "src" / "sitewatch", package, ignore=shutil.ignore_patterns("__pycache__"))
    if change is not None:
        change(package)
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "src")}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )


def test_the_code_keeps_every_contract(tmp_path: Path) -> None:
    result = lint_copy(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        pytest.param(
            _append("gateway/runtime.py", "import sitewatch.simulators"),
            "sitewatch.gateway is not allowed to import sitewatch.simulators",
            id="gateway-imports-simulators",
        ),
        pytest.param(
            _append("ingest/service.py", "from sitewatch.devtools import services"),
            "sitewatch.ingest is not allowed to import sitewatch.devtools",
            id="product-imports-devtools",
        ),
        pytest.param(
            _append("contract/kinds.py", "from sitewatch import settings"),
            "sitewatch.contract is not allowed to import sitewatch.settings",
            id="contract-imports-settings",
        ),
        pytest.param(
            _append("i18n.py", "import sitewatch.contract"),
            "sitewatch.i18n is not allowed to import sitewatch.contract",
            id="i18n-is-a-leaf",
        ),
        pytest.param(
            _append("store/base.py", "import sitewatch.ingest"),
            "sitewatch.store is not allowed to import sitewatch.ingest",
            id="store-imports-ingest",
        ),
        pytest.param(
            _remove("edge"),
            "sitewatch.edge does not exist",
            id="a-moved-modules-home-removed",
        ),
        pytest.param(
            _add_package("reports"),
            "sitewatch.reports",
            id="a-package-without-its-layer",
        ),
    ],
)
def test_a_wrong_import_or_a_missing_layer_breaks_the_contract(
    tmp_path: Path, change: Callable[[Path], None], complaint: str
) -> None:
    result = lint_copy(tmp_path, change)
    assert result.returncode != 0
    assert complaint in result.stdout + result.stderr
