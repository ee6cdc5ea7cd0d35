"""Text for people, in zh_CN and English, through one gettext catalog.

Every string a person reads on a screen, in a report or in an alert goes through this module;
logs stay in English. Message ids are the English text, wrapped in :func:`_` where they are used
(or in :func:`N_` where they are only defined, e.g. in a module-level table, and translated later
with ``_(text)``). Placeholders use ``str.format`` names: ``_("{count} readings stored", count=n)``.

The catalogs are Babel ``.po`` files in ``sitewatch/locale/<lang>/LC_MESSAGES/sitewatch.po``,
loaded (and compiled in memory) the first time a language is used, so there is no build step and
no binary file to keep in step. ``scripts/i18n.sh`` extracts and updates them
(``pybabel extract`` / ``update``); ``tests/test_i18n.py`` fails when a message has no zh_CN
translation or the catalogs are out of date with the code. See docs/i18n.md.

The language of the moment is a context variable: the CLI sets it once from ``--lang`` or the
``language`` setting, the web application per request from ``Accept-Language`` (see
:func:`negotiate`), and :func:`using` sets it for a block.
"""

from __future__ import annotations

import contextlib
import gettext as _gettext
import io
import threading
from collections.abc import Iterator
from contextvars import ContextVar
from importlib import resources
from typing import Any

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

DOMAIN = "sitewatch"
LANGUAGES = ("zh_CN", "en")  # the first is the default
DEFAULT_LANGUAGE = LANGUAGES[0]

_current: ContextVar[str] = ContextVar("sitewatch_language", default=DEFAULT_LANGUAGE)
_translations: dict[str, _gettext.NullTranslations] = {}
_lock = threading.Lock()


class UnknownLanguage(ValueError):
    """A language sitewatch has no catalog for."""


def normalize(language: str) -> str:
    """The catalog name for ``language``: ``zh-CN``, ``zh``, ``zh_Hans``, ``ZH-cn`` → ``zh_CN``;
    ``en``, ``en-US``, ``en_GB`` → ``en``. Raises :class:`UnknownLanguage` otherwise."""
    tag = language.strip().replace("-", "_").lower()
    if tag == "zh" or tag.startswith(("zh_cn", "zh_hans", "zh_sg")):
        return "zh_CN"
    if tag == "en" or tag.startswith("en_"):
        return "en"
    raise UnknownLanguage(
        f"unknown language {language!r}: sitewatch speaks {', '.join(LANGUAGES)} (也接受 zh-CN, en-US 等写法)"
    )


def negotiate(accept_language: str | None, default: str = DEFAULT_LANGUAGE) -> str:
    """The best catalog for an HTTP ``Accept-Language`` header (quality values honoured);
    ``default`` when nothing in it is spoken here."""
    if not accept_language:
        return default
    choices: list[tuple[float, int, str]] = []
    for position, part in enumerate(accept_language.split(",")[:32]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if not tag or tag == "*" or not quality > 0:
            continue
        try:
            choices.append((-quality, position, normalize(tag)))
        except UnknownLanguage:
            continue
    return min(choices)[2] if choices else default


def _load(language: str) -> _gettext.NullTranslations:
    translations = _translations.get(language)
    if translations is not None:
        return translations
    with _lock:
        if language not in _translations:
            po = resources.files("sitewatch") / "locale" / language / "LC_MESSAGES" / f"{DOMAIN}.po"
            with po.open("rb") as handle:
                catalog = read_po(handle, locale=language, domain=DOMAIN)
            buffer = io.BytesIO()
            write_mo(buffer, catalog, use_fuzzy=False)
            buffer.seek(0)
            _translations[language] = _gettext.GNUTranslations(buffer)
        return _translations[language]


def current_language() -> str:
    """The language text is made in right now (``zh_CN`` or ``en``)."""
    return _current.get()


def set_language(language: str) -> str:
    """Make ``language`` the language of this context (the CLI calls it once); returns its name."""
    name = normalize(language)
    _current.set(name)
    return name


@contextlib.contextmanager
def using(language: str) -> Iterator[str]:
    """Make text in ``language`` inside the block (a web request, an alert for a crew)."""
    token = _current.set(normalize(language))
    try:
        yield token.var.get()
    finally:
        _current.reset(token)


def _format(text: str, params: dict[str, Any]) -> str:
    return text.format(**params) if params else text


def _(message: str, /, **params: Any) -> str:
    """``message`` in the current language, with ``{name}`` placeholders filled from ``params``."""
    return _format(_load(_current.get()).gettext(message), params)


gettext = _


def ngettext(singular: str, plural: str, n: int, /, **params: Any) -> str:
    """The singular or plural form for ``n`` in the current language; ``{n}`` is filled too."""
    return _format(_load(_current.get()).ngettext(singular, plural, n), {"n": n, **params})


def pgettext(context: str, message: str, /, **params: Any) -> str:
    """``message`` in a context (``pgettext("metric", "status")``) when one English word has two
    Chinese translations."""
    return _format(_load(_current.get()).pgettext(context, message), params)


def N_(message: str, /) -> str:
    """Mark ``message`` for the catalog without translating it yet (module-level tables);
    translate it where it is shown with ``_(message)``."""
    return message


def translate(message: str, language: str, /, **params: Any) -> str:
    """``message`` in ``language``, whatever the current one (an alert for a crew that reads
    English on a server whose default is zh_CN)."""
    with using(language):
        return _(message, **params)
