"""FastAPI's and pydantic's validation errors, said in the request's language with what to do."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..i18n import _
from .errors import ApiError, ErrorCode, FieldError, echo, field_error, invalid_fields

_LOCATIONS = {"query": "query.", "path": "path.", "header": "header.", "cookie": "cookie."}


def field_name(loc: Iterable[Any]) -> str:
    """``name``, ``device_ids.3`` for the body; ``query.limit``, ``path.asset_id`` for the rest."""
    parts = [str(p) for p in loc]
    if not parts:
        return "body"
    head, rest = parts[0], parts[1:]
    if head == "body":
        return ".".join(rest) or "body"
    return _LOCATIONS.get(head, head + ".") + ".".join(rest) if rest else head


def message(error: Mapping[str, Any]) -> str:
    """What is wrong with a field and what to do, from pydantic's error type and context."""
    kind = str(error.get("type", ""))
    ctx = error.get("ctx") or {}
    limit = {k: echo(v) for k, v in ctx.items() if k in ("ge", "gt", "le", "lt", "min_length", "max_length")}
    messages = {
        "missing": lambda: _("required; add this field"),
        "extra_forbidden": lambda: _("unknown field; remove it (see /docs for the fields)"),
        "string_type": lambda: _("must be a text string"),
        "string_too_short": lambda: _("must be at least {min_length} characters", **limit),
        "string_too_long": lambda: _("must be at most {max_length} characters; shorten it", **limit),
        "string_pattern_mismatch": lambda: _("has characters or a form not allowed here (see /docs)"),
        "int_type": lambda: _("must be a whole number"),
        "int_parsing": lambda: _("must be a whole number"),
        "int_from_float": lambda: _("must be a whole number, without a fraction"),
        "int_parsing_size": lambda: _("is too large a number"),
        "float_type": lambda: _("must be a number"),
        "float_parsing": lambda: _("must be a number"),
        "finite_number": lambda: _("must be a finite number (not NaN or Infinity)"),
        "greater_than": lambda: _("must be greater than {gt}", **limit),
        "greater_than_equal": lambda: _("must be at least {ge}", **limit),
        "less_than": lambda: _("must be less than {lt}", **limit),
        "less_than_equal": lambda: _("must be at most {le}", **limit),
        "bool_type": lambda: _("must be true or false"),
        "bool_parsing": lambda: _("must be true or false"),
        "enum": lambda: _("must be one of: {expected}", expected=str(ctx.get("expected", ""))[:300]),
        "literal_error": lambda: _("must be one of: {expected}", expected=str(ctx.get("expected", ""))[:300]),
        "date_type": lambda: _("must be a date as YYYY-MM-DD"),
        "date_parsing": lambda: _("must be a date as YYYY-MM-DD"),
        "date_from_datetime_parsing": lambda: _("must be a date as YYYY-MM-DD"),
        "date_from_datetime_inexact": lambda: _("must be a date as YYYY-MM-DD"),
        "datetime_type": lambda: _("must be a time as RFC 3339, e.g. 2026-01-31T08:00:00Z"),
        "datetime_parsing": lambda: _("must be a time as RFC 3339, e.g. 2026-01-31T08:00:00Z"),
        "datetime_from_date_parsing": lambda: _("must be a time as RFC 3339, e.g. 2026-01-31T08:00:00Z"),
        "list_type": lambda: _("must be a list"),
        "too_long": lambda: _(
            "has too many items (at most {max_length})", max_length=echo(ctx.get("max_length"))
        ),
        "too_short": lambda: _(
            "has too few items (at least {min_length})", min_length=echo(ctx.get("min_length"))
        ),
        "dict_type": lambda: _("must be a JSON object"),
        "model_type": lambda: _("must be a JSON object"),
        "model_attributes_type": lambda: _("must be a JSON object"),
        "json_type": lambda: _("must be JSON"),
    }
    if kind == "value_error":  # our own validators say it in the current language already
        return str(ctx.get("error") or error.get("msg", ""))[:300]
    make = messages.get(kind)
    return make() if make is not None else _("is not valid here (see /docs)")


def translate(errors: Iterable[Mapping[str, Any]]) -> ApiError:
    """The one-format refusal for FastAPI's validation errors: 400 for a body that is not JSON,
    422 naming each field otherwise."""
    errors = list(errors)
    if any(e.get("type") == "json_invalid" for e in errors):
        return ApiError(400, ErrorCode.MALFORMED, _("the body is not valid JSON; send a JSON object"))
    out: list[FieldError] = []
    for error in errors:
        code = str(error.get("type", "invalid"))
        if code == "value_error":
            code = str(getattr((error.get("ctx") or {}).get("error"), "code", "invalid"))
        value = None if code in ("missing", "extra_forbidden") else error.get("input")
        out.append(field_error(field_name(error.get("loc", ())), message(error), code, value))
    return invalid_fields(out)
