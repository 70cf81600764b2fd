"""What a failing step has already told, so a pass that fails the same way says nothing new.

An orphan workload the backend will not remove is retried on every pass (about once a
second): telling each failure would flood the events. :class:`Told` remembers the last
reason told per key; a failure is told when it is the first, when its reason changed, or
when the key succeeded (:meth:`Told.forget`) since. Pure: no clock, no I/O.
"""

from __future__ import annotations


class Told:
    def __init__(self) -> None:
        self._said: dict[str, str] = {}

    def due(self, key: str, reason: str) -> bool:
        """True when ``reason`` for ``key`` is news (and from now on it is not)."""
        if self._said.get(key) == reason:
            return False
        self._said[key] = reason
        return True

    def forget(self, key: str) -> None:
        """``key`` succeeded or went: its next failure is news again."""
        self._said.pop(key, None)
