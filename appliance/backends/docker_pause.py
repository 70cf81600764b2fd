"""What the engine's answer to a pause (or an unpause) of a container says (pure).

The engine says the same thing in several words, from several layers, and not always with
the status that fits: dockerd checks its own record (409 ``is not running``, ``is already
paused``, ``is restarting``; ``is not paused``, a 500 on some versions), then containerd's
shim its own (500 ``cannot pause a stopped container``, ``cannot resume a stopped
container``), then runc the container's cgroup (500 ``container not running``, or the
freezer's ``unable to freeze`` when the cgroup will not settle frozen: processes that keep
forking, one stuck in the kernel, a busy machine). A container whose main process ends just
before the pause meets any of the middle ones, by how far the news of its end has gone.

:func:`refusal` reads them into what the freezer does next (``docker_freeze``):

- ``already paused`` / ``not paused``: the engine's record says so already (asked again
  a few times; a pause it keeps calling already made refuses the read);
- ``not running``: gone, or its processes ended (none can move anything; the hold's check at
  the read's end still refuses the read if it runs again meanwhile);
- ``unfrozen``: the freezer gave up and left the container running: asked again, a few
  times, and never read without the hold;
- ``""``: anything else, an error.
"""

from __future__ import annotations

ALREADY, NOT_PAUSED, NOT_RUNNING, UNFROZEN = "already paused", "not paused", "not running", \
    "unfrozen"

#: Words of each layer that mean the container's processes are not running (any status).
_NOT_RUNNING = ("is not running", "is restarting", "cannot pause a stopped container",
                "cannot resume a stopped container", "container not running",
                "no such container")
#: runc's words when the cgroup freezer gives up (cgroup v1; v2's timeout).
_UNFROZEN = ("unable to freeze", "waiting for the cgroup to freeze")


def refusal(status: int | None, explanation: str, *, pause: bool) -> str:
    """What the engine's refusal (``status``, its message) of a pause (``pause``) or an
    unpause says; ``""`` when it is an error (not one of the answers above)."""
    said = explanation.lower()
    if pause and "is already paused" in said:
        return ALREADY
    if not pause and ("is not paused" in said or "container not paused" in said):
        return NOT_PAUSED
    if pause and any(words in said for words in _UNFROZEN):
        return UNFROZEN
    if status in (404, 409) or any(words in said for words in _NOT_RUNNING):
        return NOT_RUNNING
    return ""
