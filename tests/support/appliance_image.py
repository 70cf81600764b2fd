"""The appliance image for tests: built by its own script, deployed by its own compose file.

:func:`build_image` runs ``images/appliance/build.sh`` (a no-op when its inputs did not
change: the e2e tests reuse every layer) and says how long it took. :class:`Deployment`
lays out what README "Run it on a home server" tells a person to make — a data folder, a
repositories folder, a folder with ``compose.yaml``, ``.env``, ``credentials.env`` — and runs
``docker-compose up -d appliance`` there (the Tailscale sidecar needs the internet: never
started here). The :class:`~tests.support.appliance.Appliance` it holds gives the same
helpers as for services run as processes: the CLI on the host through the data folder's
Unix socket, the API client, cleanup of this instance's containers, network and firewall.
"""

from __future__ import annotations

import fcntl
import hashlib
import shutil
import subprocess
import tempfile
import time
import tomllib
from contextlib import closing
from pathlib import Path
from typing import Any

import docker

from tests.support.appliance import Appliance, wait_for

ROOT = Path(__file__).resolve().parents[2]
HERE = ROOT / "images" / "appliance"
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
IMAGE = f"clauderon-appliance:{VERSION}"
CONF = "/opt/clauderon/share/clauderon/supervisord.conf"
PROGRAMS = ("proxy", "api", "reconciler", "shipper")
BUILDING = 1800  # a hang guard for a cold build, not a timed assertion


def build_image(env: dict[str, str] | None = None, *args: str
                ) -> subprocess.CompletedProcess[str]:
    """One build at a time on this machine: the suite's workers each ask for the image at
    their start, and two builds at once would both build it (and the web UI beside it)."""
    started = time.monotonic()
    lock = Path(tempfile.gettempdir()) / "clauderon-appliance-build.lock"
    with lock.open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        done = subprocess.run(["bash", str(HERE / "build.sh"), *args], capture_output=True,
                              text=True, timeout=BUILDING, env=env, check=False)
    print(f"images/appliance/build.sh {' '.join(args)}: {time.monotonic() - started:.1f}s, "
          f"{done.stdout.strip().splitlines()[-1:]}")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def image_label(tag: str = IMAGE) -> str:
    out = subprocess.run(["docker", "image", "inspect", "-f",
                          '{{ index .Config.Labels "clauderon.inputs" }}', tag],
                         capture_output=True, text=True, check=True)
    return out.stdout.strip()


#: Run inside the appliance (``bash -c RESPAWN respawn NAME``): SIGKILL the service's process
#: and print "<old pid> <new pid> <ms to the new process> <ms to serving>", where serving is
#: the API answering on its socket, the proxy accepting on 127.0.0.1, or (reconciler,
#: shipper) the new process itself. Polls every 10 ms, gives up after 30 s.
RESPAWN = r"""
name="$1"; pattern="bin/clauderon-$name"
now() { date +%s%N; }
serving() {
    case "$name" in
        api) curl -s -o /dev/null --max-time 1 --unix-socket "$CLAUDERON_HOME/clauderon.sock" \
                 http://appliance/api/health ;;
        proxy) port=$(sed -n '/^\[proxy\]/,/^\[/s/^port *= *//p' "$CLAUDERON_HOME/config.toml")
               (exec 3<>"/dev/tcp/127.0.0.1/${port:-3128}") 2>/dev/null ;;
        *) true ;;
    esac
}
old=$(pgrep -f "$pattern" | head -n 1)
[ -n "$old" ] || { echo "no $name process"; exit 2; }
start=$(now)
kill -KILL "$old"
new=""
for _ in $(seq 1 3000); do
    new=$(pgrep -f "$pattern" | head -n 1)
    [ -n "$new" ] && [ "$new" != "$old" ] && break
    new=""; sleep 0.01
done
[ -n "$new" ] || { echo "no new $name process"; exit 1; }
spawned=$(( ($(now) - start) / 1000000 ))
for _ in $(seq 1 3000); do serving && break; sleep 0.01; done
echo "$old $new $spawned $(( ($(now) - start) / 1000000 ))"
"""


class Deployment:
    """``images/appliance/compose.yaml`` deployed for real under ``root``."""

    def __init__(self, root: Path, *, app: Appliance, repos: Path,
                 credentials: dict[str, str]) -> None:
        self.root, self.app, self.repos = root, app, repos
        self.deploy = root / "deploy"
        self.deploy.mkdir()
        for name in ("compose.yaml", "tailscale-serve.json"):
            shutil.copy(HERE / name, self.deploy / name)
        (self.deploy / "credentials.env").write_text(
            "".join(f"{k}={v}\n" for k, v in credentials.items()))
        (self.deploy / "tailscale.env").write_text("")
        (self.deploy / ".env").write_text(
            f"CLAUDERON_DATA={app.home}\nCLAUDERON_REPOS={repos}\n"
            f"CLAUDERON_VERSION={VERSION}\nCLAUDERON_HTTP_PORT={app.http_port}\n")
        self.project = f"clauderontest{app.instance}"

    def compose(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(["docker-compose", "-p", self.project, "-f",
                               str(self.deploy / "compose.yaml"), *args],
                              cwd=self.deploy, capture_output=True, text=True,
                              timeout=timeout, check=False)
        assert done.returncode == 0, f"docker-compose {args}: {done.stdout}{done.stderr}"
        return done

    def up(self, *extra: str) -> str:
        """Start (or replace) the appliance; its container id once the API answers."""
        self.compose("up", "-d", "--no-deps", *extra, "appliance")
        cid = self.container_id()
        wait_for(lambda: self._api_or_exit(cid), timeout=90, what="the appliance's API")
        return cid

    def _api_or_exit(self, cid: str) -> bool:
        state = self.inspect(cid)["State"]
        if not state["Running"]:
            raise AssertionError(f"the appliance exited {state['ExitCode']}:\n{self.logs()}")
        return self.app._api_up()

    def container_id(self) -> str:
        return self.compose("ps", "-q", "appliance").stdout.strip()

    def inspect(self, cid: str | None = None) -> dict[str, Any]:
        with closing(docker.from_env()) as client:
            attrs: dict[str, Any] = client.api.inspect_container(cid or self.container_id())
        return attrs

    def logs(self) -> str:
        return subprocess.run(["docker", "logs", self.container_id()], capture_output=True,
                              text=True, check=False).stderr[-4000:]

    def exec(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(["docker", "exec", self.container_id(), *argv],
                              capture_output=True, text=True, timeout=60, check=False)
        assert not check or done.returncode == 0, f"{argv}: {done.stdout}{done.stderr}"
        return done

    def program_states(self) -> dict[str, str]:
        out = self.exec("supervisorctl", "-c", CONF, "status", check=False).stdout
        return {line.split()[0]: line.split()[1] for line in out.splitlines() if line.strip()}

    def all_running(self) -> bool:
        states = self.program_states()
        return set(states) == set(PROGRAMS) and set(states.values()) == {"RUNNING"}

    def health(self) -> str:
        return str((self.inspect()["State"].get("Health") or {}).get("Status"))

    def down(self) -> None:
        subprocess.run(["docker-compose", "-p", self.project, "-f",
                        str(self.deploy / "compose.yaml"), "down", "--volumes", "--timeout", "70"],
                       cwd=self.deploy, capture_output=True, timeout=180, check=False)


def snapshot(folder: Path) -> dict[str, tuple[int, int, int, str]]:
    """Every entry under ``folder``: mode, owner, size and content digest (files)."""
    out = {}
    for path in sorted([folder, *folder.rglob("*")]):
        st = path.lstat()
        digest = ""
        if path.is_file() and not path.is_symlink():
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
        out[str(path.relative_to(folder))] = (st.st_mode, st.st_uid, st.st_size, digest)
    return out
