"""Input types for request bodies and parameters: every number finite, no text with control
characters, every field named in :mod:`sitewatch.web.errors`' format when refused.

Base a request body on :class:`Body` (unknown fields refused, ``NaN`` and ``Infinity`` refused even
as strings, every string checked for control characters, tab and line breaks aside) and use
:data:`Text` (one line; :data:`SINGLE_LINE` for other lengths), :data:`LongText` (may span lines)
and :data:`Finite` for its fields.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, field_validator

from ..i18n import _
from ..text import code_point, control_character


class TextRefused(ValueError):
    """A string holds a character no name, code or address holds."""

    code = "control_character"


def check_text(value: str, *, multiline: bool = False) -> str:
    """``value`` if it holds no control character; raises :class:`TextRefused` naming the first."""
    found = control_character(value, multiline=multiline)
    if found is not None:
        raise TextRefused(
            _("holds the control character {char} at position {position}; remove it (names, codes and "
              "addresses never hold control characters)", char=code_point(found[1]), position=found[0])
        )  # fmt: skip
    return value


def _check_strings(value: Any, multiline: bool) -> Any:
    if isinstance(value, str):
        check_text(value, multiline=multiline)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            _check_strings(item, multiline)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_strings(key, False)
            _check_strings(item, multiline)
    return value


def _single_line(value: str) -> str:
    return check_text(value, multiline=False)


class Body(BaseModel):
    """Base of every request body: unknown fields, non-finite numbers and control characters (but
    tab and line breaks, which one-line fields refuse too) are refused, whatever the field's own
    type says."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    @field_validator("*", mode="after")
    @classmethod
    def _no_control_characters(cls, value: Any) -> Any:
        return _check_strings(value, True)


SINGLE_LINE = AfterValidator(_single_line)
"""Add to a string type whose text is one line: tab and line breaks are refused too."""
Text = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True), SINGLE_LINE]
"""A one-line name or label: 1-200 characters, surrounding spaces removed."""
LongText = Annotated[str, StringConstraints(max_length=2000, strip_whitespace=True)]
"""A description that may span lines: up to 2,000 characters."""
Finite = Annotated[float, Field(allow_inf_nan=False)]
"""A number that is neither NaN nor infinite (for parameters too: ``?x=NaN`` is refused)."""
