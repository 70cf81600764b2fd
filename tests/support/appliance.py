"""Run the appliance's real services as processes on a temporary CLAUDERON_HOME.

Each test gets its own home, ports and instance label, so tests never see each other's
sessions or containers on the shared engine. ``cleanup`` stops the services and removes
every container carrying this instance's label, then the instance's sessions' network and
its firewall chain (the engine's address pool holds only ~30 networks).

The CLI's client (:meth:`Appliance.client`) uses the Unix socket, which is trusted. HTTP
over TCP needs sign-in like any other client: :meth:`Appliance.http` carries a bearer token
made through the socket (as `clauderon auth token create` does), :meth:`Appliance.link`
makes a one-time sign-in link for a browser (as `clauderon web` does).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import docker
import httpx

from appliance.backends.docker_network import SessionNetwork
from appliance.config import load_settings
from appliance.errors import ClauderonError
from appliance.host import instance_id
from appliance.tokens import Purpose, derive_token, load_or_create_instance_key
from cli.client import ApiClient
from tests.support.engine import BASE_IMAGE, free_port

BIN = Path(sys.executable).parent
T = TypeVar("T")

SERVICES = {
    "api": "clauderon-api",
    "reconciler": "clauderon-reconciler",
    "proxy": "clauderon-proxy",
}


def wait_for(predicate: Callable[[], T], *, timeout: float = 30.0, interval: float = 0.05,
             what: str = "condition") -> T:
    """Poll until ``predicate`` returns something truthy; fail (not time) after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"gave up waiting for {what}; last value: {last!r}")


class Appliance:
    def __init__(self, home: Path, *, config: str = "", env: dict[str, str] | None = None,
                 agents: bool = False, image: str = BASE_IMAGE,
                 prefix: tuple[str, ...] = (), server: str = "", docker_config: str = "",
                 reconciler: str = ""):
        """``agents``: start the agent CLI in each container (needs the agent image);
        the spine's tests run plain containers of the base image instead. ``prefix`` runs
        the services under a command (``ip netns exec NS``); ``server``: more ``[server]``
        keys; ``docker_config``: more lines of the ``[docker]`` table; ``reconciler``: more
        lines of the ``[reconciler]`` table (its ``resync_seconds`` in place of the tests' 0.5)."""
        self.prefix = prefix
        self.home = home
        self.http_port = free_port()
        self.hook_port = free_port()
        self.proxy_port = free_port()
        home.mkdir(parents=True, exist_ok=True)
        (home / "config.toml").write_text(
            f"[server]\nport = {self.http_port}\nhook_port = {self.hook_port}\n{server}"
            f"[proxy]\nport = {self.proxy_port}\n"
            "[reconciler]\n"
            + ("" if "resync_seconds" in reconciler else "resync_seconds = 0.5\n")
            + "backoff_seconds = 1.0\n"
            f"backoff_max_seconds = 4.0\nmax_attempts = 3\n{reconciler}"
            f"[docker]\nimage = \"{image}\"\n{docker_config}"
            f"[agents]\nstart = {'true' if agents else 'false'}\n" + config
        )
        base = {k: v for k, v in os.environ.items() if k != "DOCKER_HOST"}
        self.env = {**base, "CLAUDERON_HOME": str(home), **(env or {})}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: list[Any] = []
        self._client: ApiClient | None = None
        self._tokens: dict[str, str] = {}
        self._http: list[httpx.Client] = []
        self.settings = load_settings(self.env)
        self.instance = instance_id(self.settings)

    # --- services ---------------------------------------------------------------------
    def start(self, *services: str) -> None:
        for name in services:
            log = open(self.home / f"{name}.test.log", "ab")  # noqa: SIM115
            self._logs.append(log)
            self.procs[name] = subprocess.Popen(
                [*self.prefix, str(BIN / SERVICES[name])], env=self.env, stdout=log, stderr=log,
                start_new_session=True,
            )
        if "api" in services:
            wait_for(self._api_up, what="the API socket")

    def _api_up(self) -> bool:
        try:
            # A bare probe first: a failed connect through httpx leaks its socket.
            with socket.socket(socket.AF_UNIX) as probe:
                probe.connect(str(self.settings.socket_path))
            self.client().get("/api/recent-repos")
        except (OSError, ClauderonError):
            api = self.procs.get("api")
            if api is not None and api.poll() is not None:
                raise AssertionError("the API exited:\n" + self.log("api")) from None
            return False
        return True

    def stop(self, name: str, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        proc = self.procs.pop(name)
        proc.send_signal(sig)
        return proc.wait(timeout=timeout)

    def audit(self, where: Callable[[dict[str, Any]], bool] = lambda _: True, *,
              at_least: int = 1) -> list[dict[str, Any]]:
        """The audit lines ``where`` holds, once there are ``at_least`` of them: the proxy
        writes a line as the answer's last byte leaves, so the client may hold the answer
        before its line is on the disk."""
        def read() -> list[dict[str, Any]]:
            lines = [json.loads(x) for x in self.settings.audit_path.read_text().splitlines()]
            found = [x for x in lines if where(x)]
            return found if len(found) >= at_least else []
        return wait_for(read, what=f"{at_least} audit lines") if at_least else read()

    def log(self, name: str) -> str:
        path = self.home / f"{name}.test.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def client(self) -> ApiClient:
        if self._client is None:
            self._client = ApiClient(self.settings.socket_path, timeout=10)
        return self._client

    # --- TCP, signed in -------------------------------------------------------------------
    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def token(self, scope: str = "read-write") -> str:
        """A bearer token of ``scope`` (one per appliance and scope)."""
        if scope not in self._tokens:
            made = self.client().post("/api/auth/tokens", {"scope": scope, "name": "tests"})
            self._tokens[scope] = made["token"]
        return self._tokens[scope]

    def auth_headers(self, scope: str = "read-write") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(scope)}"}

    def ws_headers(self, scope: str = "read-write") -> list[tuple[bytes, bytes]]:
        return [(b"authorization", f"Bearer {self.token(scope)}".encode())]

    def http(self, scope: str = "read-write", timeout: float = 30) -> httpx.Client:
        """An HTTP client of the TCP listener with a bearer token (closed at cleanup)."""
        client = httpx.Client(base_url=self.base, headers=self.auth_headers(scope),
                              timeout=timeout)
        self._http.append(client)
        return client

    def link(self) -> str:
        """A one-time sign-in link's path (``/signin#token=...``), as `clauderon web` makes."""
        path: str = self.client().post("/api/auth/links")["path"]
        return path

    def cli(self, *args: str, check: bool = True, input: str | None = None
            ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([str(BIN / "clauderon"), *args], env=self.env, text=True,
                              capture_output=True, timeout=120, input=input)
        if check and proc.returncode != 0:
            raise AssertionError(f"clauderon {' '.join(args)} exited {proc.returncode}:\n"
                                 f"{proc.stdout}\n{proc.stderr}")
        return proc

    def hook(self, ref: str, event: str, http: httpx.Client | None = None) -> None:
        """Send a hook event as the agent in the session's container would: with the
        session's own hook token (derived here from the instance key, as the API does);
        over ``http`` when given (a connection already open), else a new one."""
        sid = self.session(ref)["id"] if http is None else ref
        key = load_or_create_instance_key(self.settings.instance_secret_path)
        token = derive_token(key, sid, Purpose.HOOK)
        with ExitStack() as stack:
            if http is None:
                http = stack.enter_context(self.socket_http())
            r = http.post("/api/hooks", json={"session_id": sid, "event": {"type": event}},
                          headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 204, r.text

    def socket_http(self) -> httpx.Client:
        """A plain HTTP client on the API's Unix socket (its connections are kept open)."""
        transport = httpx.HTTPTransport(uds=str(self.settings.socket_path))
        return httpx.Client(transport=transport, base_url="http://clauderon", timeout=10)

    # --- reading the world ------------------------------------------------------------
    def session(self, ref: str) -> dict[str, Any]:
        body: dict[str, Any] = self.client().get(f"/api/sessions/{ref}")["session"]
        return body

    def wait_phase(self, ref: str, *phases: str, timeout: float = 60) -> dict[str, Any]:
        seen: dict[str, Any] = {}

        def check() -> dict[str, Any] | None:
            s = self.session(ref)
            seen.update(s)
            return s if s["phase"] in phases else None

        try:
            return wait_for(check, timeout=timeout, what=f"{ref} to reach {phases}")
        except AssertionError as exc:
            # Say where it stood, not only that it never arrived.
            last = {k: seen.get(k) for k in ("phase", "desired", "status_reason", "agent_status")}
            raise AssertionError(f"{exc}; the session last read: {last}") from None

    def containers(self, session_id: str | None = None) -> list[Any]:
        labels = [f"clauderon.instance={self.instance}"]
        if session_id:
            labels.append(f"clauderon.session={session_id}")
        client = docker.from_env()
        # list() inspects each container it found: one removed in between (the reconciler
        # at work) raises NotFound, so list again.
        for _ in range(20):
            try:
                return list(client.containers.list(all=True, filters={"label": labels}))
            except docker.errors.NotFound:
                time.sleep(0.05)
        raise AssertionError("containers kept vanishing while being listed")

    def cleanup(self) -> None:
        stopping = [self.procs.pop(name) for name in list(self.procs)]
        for proc in stopping:  # all at once: each drains on its own
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in stopping:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        for c in self.containers():
            c.remove(force=True)
        # On the engine the tests run on (a test may point the appliance at a dead one).
        network = SessionNetwork.for_settings(replace(self.settings, docker_host=None))
        if network is not None:
            network.remove()
        if self._client is not None:
            self._client.close()
        for http in self._http:
            http.close()
        for log in self._logs:
            log.close()


@contextmanager
def running(home: Path, *services: str, **kwargs: Any) -> Iterator[Appliance]:
    app = Appliance(home, **kwargs)
    try:
        app.start(*services)
        yield app
    finally:
        app.cleanup()
