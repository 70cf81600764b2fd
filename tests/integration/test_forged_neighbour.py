"""The hostile agent against another session's record, from inside a real session container
as uid 1000.

A session's container is named by its id, and the engine's DNS on the sessions' network
answers a reverse lookup of every container's address, so an agent learns the id of each
session beside it. The proxy recorded a request refused for its credentials (407) under the
session its ``Proxy-Authorization`` *named*: an agent naming its neighbour's id with any
token wrote audit lines, of its own method, host and path, that the person then read as the
neighbour's (its timeline, and its health's "last model request", which said the model
requests failed). A refusal for credentials now names no session.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.agent_app import behind_proxy, create, in_container
from tests.support.appliance import Appliance, wait_for

#: A name that never resolves; the proxy refuses before it would look it up.
FORGED = "forged-by-neighbour.invalid"
MARKER = "marker-of-the-prober.invalid"


@pytest.fixture
def app(tmp_path: Path, agent_image: str) -> Iterator[Appliance]:
    """Proxy (every host unlisted is refused: nothing leaves), API and reconciler."""
    with behind_proxy(tmp_path / "home", agent_image, "deny_unlisted = true\n") as a:
        yield a


def audit(app: Appliance) -> list[dict[str, Any]]:
    path = app.settings.audit_path
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_a_neighbours_id_with_a_wrong_token_writes_nothing_under_its_name(
        app: Appliance, repo: Path) -> None:
    prober = create(app, repo, "prober")
    victim = create(app, repo, "victim")
    # The neighbour's id, from the engine's DNS: a reverse lookup of each address near ours.
    _, out = in_container(app, prober, """python3 - <<'EOF'
import socket, ipaddress, concurrent.futures as cf
me = socket.gethostbyname(socket.gethostname())
net = ipaddress.ip_network(me + "/24", strict=False)
def name(ip):
    try:
        return socket.gethostbyaddr(str(ip))[0]
    except OSError:
        return ""
with cf.ThreadPoolExecutor(64) as pool:
    for found in pool.map(name, net.hosts()):
        if found.startswith("clauderon-"):
            print("found", found.split(".")[0].removeprefix("clauderon-"))
EOF""")
    ids = {line.split()[1] for line in out.splitlines() if line.startswith("found ")}
    assert victim["id"] in ids, out
    # Requests naming the neighbour with a made-up token, then one of its own (refused for
    # its host, after authentication): once that line is written, the forged ones are too.
    _, out = in_container(app, prober, f"""
        port=${{HTTP_PROXY##*:}}
        for i in 1 2 3; do
          curl -s -o /dev/null -w '%{{http_code}}\\n' -X POST -d '{{}}' \\
            --proxy "http://{victim['id']}:0123456789abcdef@host.docker.internal:$port" \\
            http://{FORGED}/v1/messages
        done
        curl -s -o /dev/null -w '%{{http_code}}\\n' http://{MARKER}/""")
    assert out.split() == ["407", "407", "407", "403"], out
    wait_for(lambda: any(line.get("host") == MARKER for line in audit(app)),
             what="the prober's own request in the audit log")
    health = app.client().get(f"/api/sessions/{victim['id']}/health")
    model = next(c for c in health["checks"] if c["name"] == "model")
    assert FORGED not in json.dumps(health), model
    page = app.client().get(f"/api/sessions/{victim['id']}/timeline")
    assert FORGED not in json.dumps(page), [i for i in page["items"] if FORGED in str(i)]
    forged = [line for line in audit(app) if line.get("host") == FORGED]
    assert len(forged) == 3
    assert all(line.get("session") is None for line in forged), forged
