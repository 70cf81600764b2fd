"""What the agent tests look at: hook events, the transcript API, a canary scan; and a
command run in a session's container the way the appliance runs one (``run_exec``)."""

from __future__ import annotations

import json
from contextlib import closing
from typing import Any

import docker

from appliance.backends.base import ExecResult
from appliance.backends.docker_exec import run_exec
from tests.support.appliance import Appliance, wait_for

#: Prints every place the secret read from stdin appears: environments (this process's
#: too), /proc/*/environ, every readable file outside /proc, /sys and /dev.
SCAN = r"""
IFS= read -r secret
env | grep -F -- "$secret" | sed 's/^/env: /' | cut -c1-80
for f in /proc/[0-9]*/environ; do
    tr '\0' '\n' < "$f" 2>/dev/null | grep -qF -- "$secret" && echo "environ: $f"
done
grep -rlIF --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev -- "$secret" / 2>/dev/null \
    | sed 's/^/file: /'
true
"""


def exec_in(container_id: str, argv: list[str], *, stdin: bytes | None = b"",
            user: str | None = None) -> ExecResult:
    """``argv`` in the container, as ``user`` (default: the container's own, the agent)."""
    with closing(docker.from_env()) as client:
        return run_exec(client, container_id, argv, stdin=stdin, user=user)


def hooks(app: Appliance, ref: str) -> list[tuple[str, str]]:
    events = app.client().get(f"/api/sessions/{ref}/events")["events"]
    return [(e["payload"]["hook"], e["payload"]["session"]["agent_status"])
            for e in sorted(events, key=lambda e: e["id"]) if e["kind"] == "hook"]


def wait_hook(app: Appliance, ref: str, name: str, *, count: int = 1,
              timeout: float = 90) -> list[tuple[str, str]]:
    def check() -> list[tuple[str, str]] | None:
        seen = hooks(app, ref)
        return seen if sum(n == name for n, _ in seen) >= count else None

    return wait_for(check, timeout=timeout, what=f"{count} {name} hook(s) from {ref}")


def transcript(app: Appliance, ref: str, after: str = "0") -> dict[str, Any]:
    body: dict[str, Any] = app.client().get(f"/api/sessions/{ref}/transcript", after=after)
    return body


def wait_answer(app: Appliance, ref: str, answer: str, *, count: int = 1,
                timeout: float = 90) -> list[dict[str, Any]]:
    def check() -> list[dict[str, Any]] | None:
        messages = transcript(app, ref)["messages"]
        texts = [m["text"] for m in messages if m["kind"] == "assistant"]
        return messages if texts.count(answer) >= count else None

    return wait_for(check, timeout=timeout, what=f"the answer in {ref}'s transcript")


def scan(container_id: str, secret: str, *, user: str | None = None) -> list[str]:
    """Where ``secret`` shows inside the container (it travels on stdin, never in argv/env),
    as ``user`` sees it (default: the agent's own user, who can read its processes'
    environments; root reads every file but, without ptrace, not other users' environ)."""
    result = exec_in(container_id, ["bash", "-c", SCAN], stdin=secret.encode() + b"\n",
                     user=user)
    assert result.exit_code == 0, result.stderr
    return result.stdout.decode(errors="replace").splitlines()


def inspect_text(container_id: str) -> str:
    with closing(docker.from_env()) as client:
        return json.dumps(client.api.inspect_container(container_id))
