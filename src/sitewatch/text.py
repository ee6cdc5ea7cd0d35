"""Rules for text that people type: control characters, look-alike names, and spreadsheet cells.

Shared by the web application's inputs, the ledger import and the ledger export, so that the API
and a ledger refuse and accept the same text, and any text the registry holds survives an export
and a re-import unchanged.
"""

from __future__ import annotations

import re
import unicodedata

# Never part of a name, a code or an address: C0 and C1 controls, DEL, the bidirectional
# overrides and isolates (which reorder what a reader sees), line and paragraph separators, the
# byte-order mark, lone surrogates and the two non-characters. Tab, line feed and carriage return
# are allowed only where a text may span lines.
_BIDI = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
_CONTROL = re.compile(
    f"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f{_BIDI}\u2028\u2029\ufeff\ud800-\udfff\ufffe\uffff]"
)
_CONTROL_SINGLE_LINE = re.compile(f"[\t\n\r]|{_CONTROL.pattern}")
# what ooxml_escape escapes: the refused characters, and carriage return, which XML readers turn
# into a line feed (Excel writes it as _x000D_ too)
_OOXML_UNSAFE = re.compile(f"\r|{_CONTROL.pattern}")

# The escape of Office Open XML strings: _xHHHH_ stands for one UTF-16 code unit.
_OOXML_ESCAPE = re.compile(r"_x[0-9A-Fa-f]{4}_")
_OOXML_LITERAL = re.compile(r"_(?=x[0-9A-Fa-f]{4}_)")  # an underscore that would start an escape
# A spreadsheet reads a cell starting with one of these as a formula (OWASP, CSV injection).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def control_character(text: str, *, multiline: bool = False) -> tuple[int, str] | None:
    """(position, character) of the first character ``text`` may not hold, or None."""
    found = (_CONTROL if multiline else _CONTROL_SINGLE_LINE).search(text)
    return (found.start(), found.group()) if found else None


def code_point(char: str) -> str:
    """``U+001B`` for a character, as people read it in a message."""
    return f"U+{ord(char):04X}"


def name_key(name: str) -> str:
    """The form in which two names are the same name: NFKC, case-folded, inner whitespace as one
    space. ``物业公司（一）`` and ``物业公司(一)``, or ``ＡＢＣ`` and ``abc``, have one key."""
    return " ".join(unicodedata.normalize("NFKC", name).casefold().split())


def is_formula_like(text: str) -> bool:
    """Whether a spreadsheet would take ``text`` for a formula."""
    return text.startswith(FORMULA_PREFIXES)


def csv_escape(text: str) -> str:
    """A CSV cell for ``text``: neutralised against formula injection and control characters.

    Text a spreadsheet would run as a formula gets a leading ``'`` (as OWASP advises), and so does
    text that already starts with ``'``, so that :func:`csv_unescape` can give back exactly the text
    stored. Characters the registry refuses (only in data older than that rule) are written in the
    Office Open XML escape ``_xHHHH_``, as in an .xlsx file, and literal ``_xHHHH_`` is escaped too.
    """
    text = ooxml_escape(text)
    return "'" + text if text.startswith((*FORMULA_PREFIXES, "'")) else text


def csv_unescape(cell: str) -> str:
    """The text a CSV cell written by :func:`csv_escape` holds."""
    if cell.startswith("'") and cell[1:2] and cell[1:].startswith((*FORMULA_PREFIXES, "'")):
        cell = cell[1:]
    return ooxml_unescape(cell)


def ooxml_escape(text: str) -> str:
    """``text`` with control characters, carriage returns and literal ``_xHHHH_`` sequences escaped
    as Office Open XML strings escape them (``\\x1b`` → ``_x001B_``, ``_x0041_`` → ``_x005F_x0041_``)."""
    if "_x" in text:
        text = _OOXML_LITERAL.sub("_x005F_", text)
    return _OOXML_UNSAFE.sub(lambda m: f"_x{ord(m.group()):04X}_", text)


def ooxml_unescape(text: str) -> str:
    """The inverse of :func:`ooxml_escape` (what Excel and calamine do when they read a cell)."""
    if "_x" not in text:
        return text
    return _OOXML_ESCAPE.sub(lambda m: chr(int(m.group()[2:6], 16)), text)
