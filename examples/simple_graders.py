"""Plain-Python graders used by examples/reward.yaml (any importable callable works)."""

from __future__ import annotations

import re

_WORD = re.compile(r"\w+")


def _words(text: str) -> set[str]:
    return {w.lower() for w in _WORD.findall(text)}


def keyword_overlap(query: str, response: str) -> tuple[float, str]:
    """Share of the query's content words that the response mentions (0..1)."""
    q = {w for w in _words(query) if len(w) > 3}
    if not q:
        return 1.0, "query has no content words"
    hit = q & _words(response)
    return len(hit) / len(q), f"mentions {sorted(hit)} of {sorted(q)}"


def contains_reference(response: str, reference_response: str) -> tuple[float, str]:
    """1.0 when every word of the reference appears in the response."""
    ref = _words(reference_response)
    hit = ref & _words(response)
    return (len(hit) / len(ref) if ref else 0.0), f"{len(hit)}/{len(ref)} reference words"
