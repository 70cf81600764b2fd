"""Real curl as the agent: uid 1000 in the agent image, through the proxy on the bridge
gateway, the proxy's CA its only trust. A module using it listens on :data:`GATEWAY` too."""

from __future__ import annotations

import os

import trio
from conftest import Proxy

from tests.support.engine import AGENT_IMAGE

GATEWAY = "172.17.0.1"
CONNECTED = "HTTP/1.1 200 Connection established\r\n\r\n"
SCRIPT = ('printf "%s" "$CA_PEM" > /tmp/ca.pem && exec curl -sS -i --max-time "$MAX_TIME" '
          '--cacert /tmp/ca.pem --proxy "http://$AUTH@host.docker.internal:$PROXY_PORT" "$@"')


def as_agent(label: str, env: dict[str, str], *argv: str) -> list[str]:
    """``docker run`` of ``argv`` in the agent image as the agent: uid 1000, no capability,
    on the default bridge, the proxy's host reachable as ``host.docker.internal``, given the
    names of ``env`` (their values are passed in the run's own environment)."""
    cmd = ["docker", "run", "--rm", "--user", "1000:1000", "--cap-drop", "ALL",
           "--security-opt", "no-new-privileges", "--network", "bridge",
           "--add-host", "host.docker.internal:host-gateway",
           "--label", f"clauderon.test={label}-{os.getpid()}"]
    for name in env:
        cmd += ["-e", name]
    return [*cmd, AGENT_IMAGE, *argv]


async def agent_curl(proxy: Proxy, auth: tuple[str, str], *args: str, max_time: int = 60) -> str:
    """What curl, given ``args``, printed (heads and bodies, then its errors), without the
    proxy's answers to its CONNECTs."""
    env = {"PROXY_PORT": str(proxy.port), "AUTH": ":".join(auth), "MAX_TIME": str(max_time),
           "CA_PEM": proxy.ca_path.read_text()}
    cmd = as_agent("proxy-agent-curl", env, "sh", "-c", SCRIPT, "sh", *args)
    done = await trio.run_process(cmd, env={**os.environ, **env}, capture_stdout=True,
                                  capture_stderr=True, check=False)
    out = done.stdout.decode("latin-1").replace(CONNECTED, "")
    return out + done.stderr.decode("latin-1")
