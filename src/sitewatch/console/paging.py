"""Pagination of a page's list: which rows, and the links to the other pages."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Pager:
    """Page ``page`` (from 1) of ``total`` rows, ``per_page`` a page."""

    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        """How many pages there are (at least one)."""
        return max(1, -(-self.total // self.per_page))

    @property
    def current(self) -> int:
        """The page shown: the one asked for, or the last one."""
        return min(max(1, self.page), self.pages)

    @property
    def offset(self) -> int:
        """Rows before the page."""
        return (self.current - 1) * self.per_page

    @property
    def first(self) -> int:
        """Number of the first row shown (1-based; 0 when there is none)."""
        return self.offset + 1 if self.total else 0

    @property
    def last(self) -> int:
        """Number of the last row shown."""
        return min(self.total, self.offset + self.per_page)

    def window(self, around: int = 2) -> list[int]:
        """Page numbers to link: the first, the last and those near the current one."""
        shown = {1, self.pages, *range(self.current - around, self.current + around + 1)}
        return sorted(p for p in shown if 1 <= p <= self.pages)
