"""The gateway's tests read its configuration errors in English (the catalog's message ids)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sitewatch import i18n


@pytest.fixture(autouse=True)
def _english() -> Iterator[None]:
    """Configuration errors are made in the current language; these tests match the English text."""
    with i18n.using("en"):
        yield
