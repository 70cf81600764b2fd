"""What the engine's refusal of a pause or an unpause says (``docker_pause.refusal``), in the
words each layer uses (dockerd, containerd's shim, runc), as the engine answered them."""

from __future__ import annotations

import pytest

from appliance.backends.docker_pause import refusal

C = "Container 4b433d70"
CANNOT = "Cannot pause container 4b433d70: "


@pytest.mark.parametrize(("status", "explanation", "pause", "said"), [
    (409, f"{C} is already paused", True, "already paused"),
    (500, f"{C} is not paused", False, "not paused"),  # dockerd 20.10
    (409, f"{C} is not paused", False, "not paused"),
    (500, "Cannot unpause container 4b433d70: OCI runtime resume failed: container not "
          "paused: unknown", False, "not paused"),
    (404, "No such container: 4b433d70", True, "not running"),
    (404, "No such container: 4b433d70", False, "not running"),
    (409, f"{C} is not running", True, "not running"),
    (409, f"{C} is restarting, wait until the container is running", True, "not running"),
    (500, f"{CANNOT}cannot pause a stopped container: unknown", True, "not running"),
    (500, f"{CANNOT}OCI runtime pause failed: container not running: unknown", True,
     "not running"),
    (500, "Cannot unpause container 4b433d70: cannot resume a stopped container: unknown",
     False, "not running"),
    (500, f"{CANNOT}OCI runtime pause failed: unable to freeze: unknown", True, "unfrozen"),
    (500, f"{CANNOT}OCI runtime pause failed: timeout of 10s reached waiting for the cgroup "
          "to freeze: unknown", True, "unfrozen"),
    # An unpause that fails for the freezer is no "try again to hold it": an error.
    (500, "Cannot unpause container 4b433d70: unable to freeze", False, ""),
    (500, "Cannot pause container 4b433d70: connection reset by peer", True, ""),
    (500, "", True, ""),
    (None, "", False, ""),
    # The already-paused answer to an unpause is not "not paused", nor the other way round.
    (500, f"{C} is not paused", True, ""),
])
def test_each_engine_answer_reads_as_what_it_means(status: int | None, explanation: str,
                                                   pause: bool, said: str) -> None:
    assert refusal(status, explanation, pause=pause) == said
