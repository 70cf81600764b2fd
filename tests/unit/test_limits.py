"""Session limits (pure): who counts, and the refusals that say what to do."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.config import load_settings
from appliance.errors import ConfigError, LimitReached
from appliance.limits import Occupancy, SessionLimits, check_room, occupancy
from appliance.sessions import Desired, Phase

LIMITS = SessionLimits(max_sessions=3, max_concurrent_creates=2)


def test_who_counts() -> None:
    rows = [(Phase.RUNNING, Desired.RUNNING), (Phase.STOPPED, Desired.STOPPED),
            (Phase.FAILED, Desired.RUNNING), (Phase.CREATING, Desired.RUNNING),
            (Phase.ARCHIVED, Desired.ARCHIVED), (Phase.DELETING, Desired.DELETED),
            (Phase.CREATING, Desired.DELETED)]
    assert occupancy(rows) == Occupancy(active=4, creating=1)


def test_room_and_refusals() -> None:
    check_room(Occupancy(active=2, creating=1), LIMITS, creating=True)
    with pytest.raises(LimitReached) as full:
        check_room(Occupancy(active=3, creating=0), LIMITS, creating=False)
    assert full.value.http_status == 429 and "max_sessions" in full.value.message
    with pytest.raises(LimitReached) as busy:
        check_room(Occupancy(active=2, creating=2), LIMITS, creating=True)
    assert "being created" in busy.value.message
    check_room(Occupancy(active=2, creating=2), LIMITS, creating=False)  # an unarchive


@pytest.mark.parametrize("key", ["max_sessions", "max_concurrent_creates"])
def test_limits_must_be_positive(tmp_path: Path, key: str) -> None:
    (tmp_path / "config.toml").write_text(f"[limits]\n{key} = 0\n")
    with pytest.raises(ConfigError) as info:
        load_settings({"CLAUDERON_HOME": str(tmp_path)})
    assert key in info.value.message and "1 or more" in info.value.message


def test_defaults() -> None:
    assert SessionLimits() == SessionLimits(max_sessions=15, max_concurrent_creates=3)
