"""How many sessions may exist and be created at once (pure).

Every session that holds or may soon hold compute counts against ``max_sessions``: all but
the archived (stopped, kept on disk) and those being deleted. Sessions in ``creating`` count
against ``max_concurrent_creates`` too. The store asks :func:`check_room` inside the same
transaction that inserts or revives a session, so two requests can never both take the
last place.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from appliance.errors import LimitReached
from appliance.sessions import Desired, Phase


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionLimits:
    max_sessions: int = 15
    max_concurrent_creates: int = 3


@dataclass(frozen=True, slots=True, kw_only=True)
class Occupancy:
    active: int
    creating: int


def occupancy(rows: Iterable[tuple[Phase, Desired]]) -> Occupancy:
    active = creating = 0
    for phase, desired in rows:
        if desired is Desired.DELETED or phase in (Phase.DELETING, Phase.ARCHIVED):
            continue
        active += 1
        creating += phase is Phase.CREATING
    return Occupancy(active=active, creating=creating)


def check_room(now: Occupancy, limits: SessionLimits, *, creating: bool) -> None:
    """Refuse one more active session (``creating``: one more create) beyond the limits."""
    if now.active >= limits.max_sessions:
        raise LimitReached(
            f"{now.active} sessions are active and the limit is {limits.max_sessions}: "
            "archive or delete one (`clauderon archive NAME`, `clauderon delete NAME`), or "
            "raise [limits] max_sessions in config.toml")
    if creating and now.creating >= limits.max_concurrent_creates:
        raise LimitReached(
            f"{now.creating} sessions are being created and at most "
            f"{limits.max_concurrent_creates} may be at once: wait for one to finish "
            "(`clauderon list`), or raise [limits] max_concurrent_creates in config.toml")
