"""The one zh_CN/en catalog: complete, in step with the code, and chosen the documented ways."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from sitewatch import i18n
from sitewatch.cli import main
from sitewatch.devtools import i18n as catalogs


def test_catalogs_are_complete_and_in_step_with_the_code() -> None:
    assert catalogs.problems() == []


def test_the_check_fails_on_a_message_missing_from_the_catalog(monkeypatch: pytest.MonkeyPatch) -> None:
    real = catalogs.extract

    def with_a_new_message() -> object:
        template = real()
        template.add("a message nobody translated")
        return template

    monkeypatch.setattr(catalogs, "extract", with_a_new_message)
    assert "zh_CN: not in the catalog: 'a message nobody translated'" in catalogs.problems()


def test_the_check_fails_on_an_untranslated_or_mismatched_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    real = catalogs.read

    def damaged(language: str) -> object:
        catalog = real(language)
        if language == "zh_CN":
            catalog["metric"].string = ""
            catalog["events: {events}"].string = "事件：{event}"
        return catalog

    monkeypatch.setattr(catalogs, "read", damaged)
    found = catalogs.problems()
    assert "zh_CN: untranslated: 'metric'" in found
    assert "zh_CN: placeholders differ: 'events: {events}' -> '事件：{event}'" in found


@pytest.mark.parametrize(
    ("given", "name"),
    [("zh-CN", "zh_CN"), ("zh", "zh_CN"), ("ZH_cn", "zh_CN"), ("zh-Hans-CN", "zh_CN"), ("en", "en"), ("en-US", "en")],
)
def test_language_names_are_normalised(given: str, name: str) -> None:
    assert i18n.normalize(given) == name


@pytest.mark.parametrize("given", ["fr", "", "zh-TW", "english\n"])
def test_unknown_languages_are_refused_with_a_reason(given: str) -> None:
    with pytest.raises(i18n.UnknownLanguage, match="zh_CN, en"):
        i18n.normalize(given)


@pytest.mark.parametrize(
    ("header", "language"),
    [
        ("en-US,en;q=0.9,zh-CN;q=0.8", "en"),
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh_CN"),
        ("fr-FR,fr;q=0.9,en;q=0.5", "en"),
        ("en;q=0.2,zh;q=0.7", "zh_CN"),
        ("fr", "zh_CN"),
        ("", "zh_CN"),
        (None, "zh_CN"),
        ("en;q=0,zh", "zh_CN"),
        ("en;q=abc", "zh_CN"),
        ("*", "zh_CN"),
    ],
)
def test_accept_language_is_negotiated(header: str | None, language: str) -> None:
    assert i18n.negotiate(header) == language


def test_text_follows_the_language_of_the_context() -> None:
    with i18n.using("en"):
        assert i18n._("events: {events}", events="x") == "events: x"
        with i18n.using("zh-CN"):
            assert i18n._("events: {events}", events="x") == "事件：x"
        assert i18n.current_language() == "en"
    assert i18n.translate("metric", "zh_CN") == "指标"
    assert i18n.translate("no such message", "zh_CN") == "no such message"


def test_cli_lang_option_gives_one_language_per_screen() -> None:
    runner = CliRunner()
    en = runner.invoke(main, ["--lang", "en", "contract", "kinds", "water_meter"])
    zh = runner.invoke(main, ["--lang", "zh_CN", "contract", "kinds", "water_meter"])
    assert en.exit_code == 0 and zh.exit_code == 0
    assert "valid range" in en.output and "有效范围" not in en.output and "累计用水量" not in en.output
    assert "有效范围" in zh.output and "累计用水量" in zh.output and "valid range" not in zh.output


def test_cli_lang_comes_from_the_setting_and_refuses_what_it_cannot_speak(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    runner = CliRunner()
    monkeypatch.setenv("SITEWATCH_LANGUAGE", "en")
    assert "valid range" in runner.invoke(main, ["contract", "kinds", "camera"]).output
    bad = runner.invoke(main, ["--lang", "fr", "contract", "kinds"])
    assert bad.exit_code == 2 and "unknown language 'fr'" in bad.output
