"""Bounded label values: an agent must not be able to grow the metrics without limit.

A label whose values an agent chooses (the host it sends a request to, a hook event's
name) would let a hostile agent mint a new time series per request and fill the proxy's
memory, the database and every scrape. :class:`Bounded` names the values it is told are
expected, and up to ``limit`` others as they first come; everything after is ``other``.
"""

from __future__ import annotations

from collections.abc import Iterable

OTHER = "other"
#: Hosts beyond the expected ones that keep their own label, first come first served.
DEFAULT_LIMIT = 100
MAX_LENGTH = 100


class Bounded:
    def __init__(self, expected: Iterable[str] = (), *, limit: int = DEFAULT_LIMIT) -> None:
        self._expected = frozenset(v.lower() for v in expected)
        self._seen: set[str] = set()
        self._limit = limit

    def expect(self, values: Iterable[str]) -> None:
        """Name more values always (a reloaded configuration's hosts)."""
        self._expected = self._expected | {v.lower() for v in values}

    def __call__(self, value: str) -> str:
        value = value.lower()[:MAX_LENGTH]
        if value in self._expected or value in self._seen:
            return value
        if len(self._seen) < self._limit:
            self._seen.add(value)
            return value
        return OTHER
