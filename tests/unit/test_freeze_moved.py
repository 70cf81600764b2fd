"""Whether a hold stood the whole read (``docker_freeze.moved``): the engine's events since
the pause and the container's state at the read's end."""

from __future__ import annotations

from typing import Any

import pytest

from appliance.backends.docker_freeze import moved

T0 = "2026-01-01T00:00:00.000000001Z"
HELD = {"Running": True, "Paused": True, "StartedAt": T0}


@pytest.mark.parametrize(("actions", "paused", "now", "said"), [
    (["pause"], True, HELD, ""),
    (["pause", "update", "top"], True, HELD, ""),
    ([], True, {**HELD, "Paused": False}, "unpaused"),
    (["pause", "unpause", "pause"], True, HELD, "unpaused"),
    ([], True, None, "removed"),
    ([], True, {**HELD, "StartedAt": "2026-01-01T00:00:09Z"}, "restarted"),
    (["kill", "die", "start"], True, HELD, "ended, killed, started"),
    (["oom"], True, HELD, "killed for its memory"),
    ([], False, None, ""),
    ([], False, {"Running": False, "Paused": False}, ""),
    ([], False, {"Running": True, "Paused": False}, "started"),
    (["start"], False, {"Running": False, "Paused": False}, "started"),
])
def test_a_hold_stood_or_what_moved_it(actions: list[str], paused: bool,
                                       now: dict[str, Any] | None, said: str) -> None:
    why = moved(actions, paused=paused, started=T0, now=now)
    if not said:
        assert why == ""
        return
    assert why.startswith(f"the container moved during the read (it was {said} ")
    assert why.endswith("; try again")
