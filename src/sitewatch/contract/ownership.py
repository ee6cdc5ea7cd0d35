"""Which compound a device id belongs to, without ambiguity.

A device id is ``<compound code>-<local name>`` and both may hold ``-``; so if ``220106`` and
``220106-0001`` were both compounds, ``220106-0001-CA9001`` would be a device id of each. Two
compound codes therefore *clash* when they are equal regardless of case, or when one is the other
followed by ``-`` and more; the asset registry never holds two codes that clash, so at most one
registered compound's code, followed by ``-``, starts any device id (docs/contract.md).
"""

from __future__ import annotations

from collections.abc import Iterable


def code_prefixes(value: str) -> list[str]:
    """Every ``-``-boundary prefix of ``value`` in lower case, longest first: the compound codes a
    device id (or a longer code) could start with. ``A-b-c`` → ``["a-b", "a"]``."""
    parts = value.lower().split("-")
    return ["-".join(parts[:n]) for n in range(len(parts) - 1, 0, -1)]


def codes_clash(a: str, b: str) -> bool:
    """Whether two compound codes cannot both exist: equal regardless of case, or one is the other
    followed by ``-``."""
    a, b = a.lower(), b.lower()
    return a == b or a.startswith(b + "-") or b.startswith(a + "-")


def clashing_pairs(codes: Iterable[str]) -> list[tuple[str, str]]:
    """The pairs of ``codes`` that clash, each once."""
    by_lower: dict[str, str] = {}
    pairs: list[tuple[str, str]] = []
    for code in codes:
        if code.lower() in by_lower:
            pairs.append((by_lower[code.lower()], code))
        else:
            by_lower[code.lower()] = code
    for lowered, code in by_lower.items():
        pairs += [(by_lower[p], code) for p in code_prefixes(lowered) if p in by_lower]
    return pairs
