"""An agent holding connections open cannot starve the appliance (real engine, real
iptables, real services; the hostile agent is bash inside its container, as uid 1000).

Every session reaches the proxy and the hook endpoint, and each connection it holds is a
file descriptor of the proxy or of the API (which also serves the user's web UI). The
sessions' firewall lets one container hold ``[docker] max_connections`` of them; the next
is reset, other sessions go on being served, and a connection closed is room again.
"""

from __future__ import annotations

import re
import resource
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from appliance.service import OPEN_FILES
from tests.support.appliance import Appliance, running, wait_for

LIMIT = 20

#: Hold ``$1`` connections to the proxy and ``$2`` to the hook endpoint, then try one more
#: of each; say how many were opened and what the extra ones met; hold them until
#: /tmp/release appears.
HOLD = r"""
proxy="${HTTPS_PROXY#http://}"; proxy="${proxy##*@}"; proxy="${proxy%/}"
hook="${CLAUDERON_HOOK_URL#http://}"; hook="${hook%%/*}"
open_to() { exec {fd}<>"/dev/tcp/${1%:*}/${1##*:}"; }  # host:port; the new one in $fd
held=()
for _ in $(seq "$1"); do open_to "$proxy" 2>/dev/null && held+=("$fd"); done
for _ in $(seq "$2"); do open_to "$hook" 2>/dev/null && held+=("$fd"); done
echo "held ${#held[@]}"
open_to "$proxy" && echo "extra proxy: open" || echo "extra proxy: refused"
open_to "$hook" && echo "extra hook: open" || echo "extra hook: refused"
until [ -e /tmp/release ]; do sleep 0.1; done  # then every one of them closes
"""


def answer(container: Any, target: str) -> str:
    """The status line the proxy or the API sends back to a request line it cannot parse:
    the service accepted the connection and answered it."""
    script = (f'dest="${{{target}#http://}}"; dest="${{dest##*@}}"; dest="${{dest%%/*}}"; '
              'exec 3<>"/dev/tcp/${dest%:*}/${dest##*:}" || { echo refused; exit; }; '
              "printf 'NONSENSE\\r\\n\\r\\n' >&3; read -r line <&3; echo \"$line\"")
    # stdout alone: bash's own words on stderr arrive before or after it, as they race.
    out, _ = container.exec_run(["bash", "-c", script], user="1000:1000", demux=True).output
    return str((out or b"").decode(errors="replace").strip().splitlines()[-1])


#: The services start as a workstation's shell would start them: 1024 open files at most
#: unless a process raises its own limit.
LOW_SOFT_LIMIT = 1024


@pytest.fixture
def limited(tmp_path: Path, engine: docker.DockerClient) -> Iterator[Appliance]:
    with running(tmp_path / "home", "api", "reconciler", "proxy",
                 prefix=("prlimit", f"--nofile={LOW_SOFT_LIMIT}:", "--"),
                 docker_config=f"max_connections = {LIMIT}\n") as app:
        yield app


def soft_open_files(pid: int) -> int:
    limits = Path(f"/proc/{pid}/limits").read_text()
    found = re.search(r"^Max open files\s+(\S+)", limits, re.M)
    assert found is not None, limits
    return resource.RLIM_INFINITY if found[1] == "unlimited" else int(found[1])


def test_an_agent_holding_connections_is_held_to_its_own_share(
        limited: Appliance, repo: Path) -> None:
    names = [f"hog-{uuid.uuid4().hex[:6]}", f"calm-{uuid.uuid4().hex[:6]}"]
    for name in names:
        limited.client().post("/api/sessions", {"repo_path": str(repo), "name": name})
    hog, calm = (limited.wait_phase(name, "running") for name in names)
    [hogc] = limited.containers(hog["id"])
    [calmc] = limited.containers(calm["id"])
    # Both services answer a container that holds nothing (the positive control).
    for c in (hogc, calmc):
        assert answer(c, "HTTPS_PROXY").startswith("HTTP/1.1 400"), answer(c, "HTTPS_PROXY")
        assert answer(c, "CLAUDERON_HOOK_URL").startswith("HTTP/1.1 400")

    # The hog opens as many as it can, in a background shell that keeps them open.
    hogc.exec_run(["bash", "-c", f"( {{ {HOLD} }} > /tmp/hold.out 2>&1 & )",
                   "hold", str(LIMIT - 5), "10"], user="1000:1000")

    def hold_output() -> str:
        return str(hogc.exec_run(["cat", "/tmp/hold.out"]).output.decode(errors="replace"))

    out = _wait_for_text(hold_output, "extra hook:")
    assert re.search(rf"^held {LIMIT}$", out, re.M), out  # 15 to the proxy, the 5 hooks
    assert "extra proxy: refused" in out and "extra hook: refused" in out, out
    # Beyond its share the hog is refused; the other session is served as before.
    assert answer(hogc, "HTTPS_PROXY") == "refused"
    assert answer(calmc, "HTTPS_PROXY").startswith("HTTP/1.1 400")
    assert answer(calmc, "CLAUDERON_HOOK_URL").startswith("HTTP/1.1 400")
    # The user's own API (the socket, the web UI's listener) is untouched.
    assert {s["name"] for s in limited.client().get("/api/sessions")["sessions"]} == set(names)
    # The shares of many sessions fit: the two listening services raised their own limit.
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = OPEN_FILES if hard == resource.RLIM_INFINITY else min(OPEN_FILES, hard)
    assert want > LOW_SOFT_LIMIT
    for service in ("api", "proxy"):
        assert soft_open_files(limited.procs[service].pid) == want, service
    assert soft_open_files(limited.procs["reconciler"].pid) == LOW_SOFT_LIMIT  # the control

    # Closed connections are room again (closing ones in TIME_WAIT do not count).
    hogc.exec_run(["touch", "/tmp/release"], user="1000:1000")
    _wait_for_text(lambda: answer(hogc, "HTTPS_PROXY"), "HTTP/1.1 400")


def _wait_for_text(read: Any, needle: str, timeout: float = 30) -> str:
    def check() -> str | None:
        text = str(read())
        return text if needle in text else None

    return wait_for(check, timeout=timeout, what=needle)
