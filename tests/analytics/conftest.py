"""The detector tests read English messages (the zh_CN ones are checked by the catalog test)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sitewatch import i18n


@pytest.fixture(autouse=True)
def _english() -> Iterator[None]:
    with i18n.using("en"):
        yield
