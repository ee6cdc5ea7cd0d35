"""The ``sitewatch assets`` commands, run through the real CLI entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from sitewatch.cli import main

from .ledger_builder import ledger, xlsx


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SITEWATCH_DATA_DIR", str(tmp_path / "data"))
    return tmp_path


def test_import_report_in_both_languages_and_exit_codes(env: Path) -> None:
    runner = CliRunner()
    good = xlsx(ledger(), env / "good.xlsx")
    result = runner.invoke(main, ["--lang", "en", "assets", "import", str(good)])
    assert result.exit_code == 0, result.output
    assert "imported" in result.output and "rows/s" in result.output
    again = runner.invoke(main, ["assets", "import", str(good), "--json"])
    changes = json.loads(again.output)["changes"]
    assert changes["assets"] == {"rows": 24, "created": 0, "updated": 0, "unchanged": 24}
    data = ledger()
    data["compounds"][0]["households"] = "abc"
    bad = xlsx(data, env / "bad.xlsx")
    zh = runner.invoke(main, ["--lang", "zh_CN", "assets", "import", str(bad)])
    assert zh.exit_code == 1 and "应为整数" in zh.output and "数据库未作任何修改" in zh.output
    en = runner.invoke(main, ["--lang", "en", "assets", "import", str(bad)])
    assert en.exit_code == 1 and "expected an integer" in en.output and "not changed" in en.output


def test_migrate_token_and_export(env: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(main, ["assets", "migrate"]).exit_code == 0
    assert "base" in runner.invoke(main, ["assets", "migrate", "downgrade", "base"]).output
    assert runner.invoke(main, ["assets", "import", str(xlsx(ledger(), env / "l.xlsx"))]).exit_code == 0
    created = runner.invoke(main, ["assets", "token", "create", "--role", "crew", "--org", "维保单位1"])
    assert created.exit_code == 0 and created.output.startswith("sw_")
    refused = runner.invoke(main, ["assets", "token", "create", "--role", "crew"])
    assert refused.exit_code != 0 and "--org" in refused.output
    unknown = runner.invoke(
        main, ["assets", "token", "create", "--role", "property_manager", "--org", "无此单位"]
    )
    assert unknown.exit_code != 0 and "无此单位" in unknown.output
    out = runner.invoke(main, ["assets", "export", str(env / "out.xlsx")])
    assert out.exit_code == 0 and (env / "out.xlsx").is_file() and "assets 24" in out.output


def test_serve_answers_over_http(env: Path) -> None:
    import os
    import subprocess
    import sys

    import httpx

    from sitewatch.devtools.services import free_port, port_open, wait_until

    runner = CliRunner()
    assert runner.invoke(main, ["assets", "import", str(xlsx(ledger(), env / "l.xlsx"))]).exit_code == 0
    token = runner.invoke(main, ["assets", "token", "create", "--role", "bureau"]).output.splitlines()[0]
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "sitewatch", "serve", "--port", str(port)],
        env={**os.environ}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_until(lambda: port_open(port), 30, "sitewatch serve")
        r = httpx.get(
            f"http://127.0.0.1:{port}/api/v1/lookup/devices/C0001-EL0001",
            headers={"Authorization": f"Bearer {token}"},
        )
        assert r.status_code == 200 and r.json()["compound_code"] == "C0001"
        assert httpx.get(f"http://127.0.0.1:{port}/api/v1/assets").status_code == 401
    finally:
        proc.terminate()  # a graceful stop writes down when the tokens were last used
        proc.wait(10)
    [listed] = json.loads(runner.invoke(main, ["assets", "token", "list", "--json"]).output)
    assert listed["role"] == "bureau" and listed["last_used_at"] is not None


def test_token_lifecycle_commands(env: Path) -> None:
    runner = CliRunner()
    first = runner.invoke(
        main, ["assets", "token", "create", "--role", "bureau", "--label", "grafana", "--expires", "90d"]
    )
    assert first.exit_code == 0, first.output
    listed = json.loads(runner.invoke(main, ["assets", "token", "list", "--json"]).output)
    assert [(t["id"], t["label"]) for t in listed] == [(1, "grafana")] and listed[0]["expires_at"]
    assert (
        runner.invoke(main, ["assets", "token", "create", "--role", "admin", "--expires", "soon"]).exit_code
        != 0
    )
    rotated = runner.invoke(main, ["--lang", "en", "assets", "token", "rotate", "1", "--grace", "0m"])
    assert (
        rotated.exit_code == 0 and rotated.output.startswith("sw_") and "replaces token 1" in rotated.output
    )
    listed = json.loads(runner.invoke(main, ["assets", "token", "list", "--json"]).output)
    assert [(t["id"], t["label"], t["expires_at"]) for t in listed] == [(2, "grafana", None)]  # 1 has expired
    assert len(json.loads(runner.invoke(main, ["assets", "token", "list", "--all", "--json"]).output)) == 2
    assert runner.invoke(main, ["assets", "token", "revoke", "2"]).exit_code == 0
    assert json.loads(runner.invoke(main, ["assets", "token", "list", "--json"]).output) == []
    missing = runner.invoke(main, ["--lang", "en", "assets", "token", "revoke", "99"])
    assert missing.exit_code != 0 and "99" in missing.output
    table = runner.invoke(main, ["--lang", "zh_CN", "assets", "token", "list", "--all"])
    assert table.exit_code == 0 and "最近使用" in table.output and "grafana" in table.output
