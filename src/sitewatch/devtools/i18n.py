"""Upkeep of the zh_CN/en catalogs with Babel: extract every message from the code, update the
``.po`` files, and check them (docs/i18n.md).

``python -m sitewatch.devtools.i18n update`` (what ``scripts/i18n.sh`` runs) rewrites the catalogs
so that they hold exactly the messages of the code, sorted, without source locations or dates, so
that two branches adding messages merge cleanly; new zh_CN entries are left empty for a translator.
``python -m sitewatch.devtools.i18n check`` prints what is missing or stale and exits 1 if anything
is (the test suite runs the same check).
"""

from __future__ import annotations

import datetime as dt
import io
import sys
from collections.abc import Iterable
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po, write_po

from ..i18n import DOMAIN, LANGUAGES

ROOT = Path(__file__).resolve().parents[3]  # the repository (babel.cfg, src/)
PACKAGE = ROOT / "src" / "sitewatch"
KEYWORDS = {
    "_": None,
    "N_": None,
    "gettext": None,
    "translate": None,
    "ngettext": (1, 2),
    "pgettext": ((1, "c"), 2),
}
_EPOCH = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)  # fixed header dates: no churn between updates


def po_path(language: str) -> Path:
    """The catalog file of ``language``."""
    return PACKAGE / "locale" / language / "LC_MESSAGES" / f"{DOMAIN}.po"


def extract() -> Catalog:
    """Every message the code marks (``_``, ``N_``, ``ngettext``, ``pgettext``, templates)."""
    with (ROOT / "babel.cfg").open(encoding="utf-8") as handle:
        method_map, options_map = parse_mapping_cfg(handle)
    template = Catalog(project="sitewatch", domain=DOMAIN, creation_date=_EPOCH, fuzzy=False)
    for _filename, _lineno, message, comments, context in extract_from_dir(
        str(PACKAGE), method_map, options_map, keywords=KEYWORDS, strip_comment_tags=True
    ):
        template.add(message, None, auto_comments=comments, context=context)
    return template


def _key(message: object) -> tuple[str, str]:
    msgid = message.id  # type: ignore[attr-defined]
    key = msgid[0] if isinstance(msgid, tuple) else msgid
    return (message.context or "", key)  # type: ignore[attr-defined]


def keys(catalog: Iterable[object]) -> set[tuple[str, str]]:
    """(context, msgid) of every real message of a catalog (the header left out)."""
    return {_key(m) for m in catalog if m.id}  # type: ignore[attr-defined]


def read(language: str) -> Catalog:
    """The catalog of ``language`` as stored."""
    with po_path(language).open("rb") as handle:
        return read_po(handle, locale=language, domain=DOMAIN)


def update() -> dict[str, int]:
    """Bring every catalog in step with the code; returns the untranslated count per language."""
    template = extract()
    untranslated = {}
    for language in LANGUAGES:
        path = po_path(language)
        if path.exists():
            catalog = read(language)
        else:
            catalog = Catalog(locale=language, domain=DOMAIN, project="sitewatch")
        catalog.update(template, no_fuzzy_matching=True, update_creation_date=False)
        catalog.obsolete.clear()
        catalog.creation_date = catalog.revision_date = _EPOCH
        catalog.fuzzy = False
        path.parent.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        write_po(buffer, catalog, no_location=True, sort_output=True, ignore_obsolete=True, width=100)
        path.write_bytes(buffer.getvalue())
        untranslated[language] = sum(1 for m in catalog if m.id and not _translated(m))
    return untranslated


def _translated(message: object) -> bool:
    string = message.string  # type: ignore[attr-defined]
    if isinstance(string, tuple):
        return all(string)
    return bool(string)


def problems() -> list[str]:
    """What is wrong with the catalogs: messages missing from or stale in a catalog, zh_CN entries
    untranslated or fuzzy, placeholders that differ between a message and its translation."""
    import string as _string

    found: list[str] = []
    code = keys(extract())
    formatter = _string.Formatter()

    def fields(text: str) -> set[str]:
        try:
            return {name for _, name, _, _ in formatter.parse(text) if name}
        except ValueError:
            return {"<unbalanced braces>"}

    for language in LANGUAGES:
        if not po_path(language).exists():
            found.append(f"{language}: no catalog at {po_path(language)}")
            continue
        catalog = read(language)
        stored = keys(catalog)
        found += [f"{language}: not in the catalog: {k[1]!r}" for k in sorted(code - stored)]
        found += [f"{language}: in the catalog but no longer in the code: {k[1]!r}" for k in sorted(stored - code)]
        if language == "en":
            continue
        for message in catalog:
            if not message.id:
                continue
            ids: tuple[str, ...] = tuple(message.id) if isinstance(message.id, tuple | list) else (str(message.id),)
            if message.fuzzy:
                found.append(f"{language}: fuzzy (check and unmark): {ids[0]!r}")
            if not _translated(message):
                found.append(f"{language}: untranslated: {ids[0]!r}")
                continue
            raw = message.string
            strings: tuple[str, ...] = tuple(raw) if isinstance(raw, tuple | list) else (str(raw or ""),)
            wanted = fields(ids[0]) | (fields(ids[1]) - {"n"} if len(ids) > 1 else set())
            for text in strings:
                if fields(text) - {"n"} != wanted - {"n"}:
                    found.append(f"{language}: placeholders differ: {ids[0]!r} -> {text!r}")
    return found


def main(argv: list[str]) -> int:
    """``update`` or ``check`` (the default)."""
    if argv[:1] == ["update"]:
        for language, count in update().items():
            if language != "en":  # English falls back to the message id
                print(f"{language}: {count} untranslated")
        return 0
    found = problems()
    for line in found:
        print(line)
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
