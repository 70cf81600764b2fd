"""The appliance container's start-time verdicts (pure: facts in, problems out).

Each problem is one operator-grade sentence: what is wrong, why it matters, what to change
(in ``compose.yaml`` terms and as a ``docker run`` flag). :func:`problems` lists them all at
once, so a person fixes a deployment in one go rather than one restart per mistake.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

#: Capabilities the sessions' firewall needs (iptables in the host's namespace).
NEEDED_CAPS = ("NET_ADMIN", "NET_RAW")
CAP_BITS = {"NET_ADMIN": 12, "NET_RAW": 13}
EXIT_CONFIG = 78


@dataclass(frozen=True, slots=True, kw_only=True)
class Mount:
    """One of this container's mounts, as the engine reports it."""

    kind: str  # bind | volume | tmpfs | npipe
    source: str  # the host's path (a volume's data folder for volumes)
    destination: str  # the path inside the container
    is_dir: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class Facts:
    uid: int
    capabilities: frozenset[str]
    docker_host: str  # DOCKER_HOST, or the default unix socket
    socket_kind: str  # socket | missing | directory | other | remote
    engine_error: str | None  # why the engine did not answer (None: it did, or not asked)
    network_mode: str | None  # from the engine; None when it could not be asked
    mounts: tuple[Mount, ...] | None  # None: the engine could not be asked
    home: str
    home_owner: int | None  # None: the folder does not exist yet
    repos: tuple[str, ...]  # CLAUDERON_REPOS


def capabilities_from_status(status: str) -> frozenset[str]:
    """The named capabilities in ``CapEff`` of a ``/proc/<pid>/status`` text."""
    for line in status.splitlines():
        if line.startswith("CapEff:"):
            bits = int(line.split()[1], 16)
            return frozenset(name for name, bit in CAP_BITS.items() if bits >> bit & 1)
    return frozenset()


def covering(mounts: tuple[Mount, ...], path: str) -> Mount | None:
    """The mount ``path`` lies in (the deepest one), or None."""
    target = PurePosixPath(path)
    best: Mount | None = None
    for m in mounts:
        dest = PurePosixPath(m.destination)
        if (target == dest or dest in target.parents) and (
                best is None or len(dest.parts) > len(PurePosixPath(best.destination).parts)):
            best = m
    return best


def host_path(mount: Mount, path: str) -> str:
    """Where ``path`` (inside ``mount``) is on the host."""
    rest = PurePosixPath(path).relative_to(mount.destination)
    return str(PurePosixPath(mount.source) / rest) if rest.parts else mount.source


def _same_path(what: str, path: str, mounts: tuple[Mount, ...], env: str) -> str | None:
    why = ("the engine resolves the paths the appliance asks it to mount into sessions on "
           "the host, so they must mean the same thing inside and out")
    m = covering(mounts, path)
    if m is None:
        return (f"{what} {path} is not mounted from the host ({why}): mount a host folder "
                f"at the same path (compose: `- {path}:{path}`; docker run -v {path}:{path})")
    if m.kind != "bind":
        return (f"{what} {path} is a Docker {m.kind}, not a host folder ({why}): bind-mount a "
                f"host folder at the same path (`- {path}:{path}`)")
    outside = host_path(m, path)
    if outside != path:
        return (f"{what} {path} is the host's {outside} ({why}): mount it at the same path "
                f"(`- {outside}:{outside}` and {env}={outside})")
    return None


def problems(f: Facts) -> list[str]:
    """Everything that stops the appliance from running safely here, each with its fix."""
    out: list[str] = []
    if f.uid != 0:
        out.append(
            f"the appliance runs as uid {f.uid}; it must be root in its container (it installs "
            "the sessions' firewall and runs git as each repository's owner): remove "
            "`user:` from compose.yaml (docker run --user)")
    missing = [c for c in NEEDED_CAPS if c not in f.capabilities]
    if missing:
        out.append(
            f"the container lacks {', '.join('CAP_' + c for c in missing)}: the sessions' "
            "firewall is written into the host's INPUT and FORWARD chains; add "
            "`cap_add: [NET_ADMIN, NET_RAW]` (docker run --cap-add NET_ADMIN --cap-add "
            "NET_RAW; --privileged is not needed)")
    out += _engine(f)
    if f.network_mode is not None and f.network_mode != "host":
        where = ("the engine's default bridge" if f.network_mode in ("default", "bridge")
                 else f"the network {f.network_mode!r}")
        out.append(
            f"the container runs on {where}; it must share the host's "
            "network namespace (`network_mode: host`; docker run --network host): sessions "
            "reach the proxy and the hook endpoint at their network's gateway, an address of "
            "the host, and their firewall is the host's")
    if f.mounts is None:  # the engine's problem is said above; the rest depends on it
        return out
    return out + _mounts(f, f.mounts)


def _mounts(f: Facts, mounts: tuple[Mount, ...]) -> list[str]:
    """The data folder's and the repositories' mounts, then every other mount's."""
    out: list[str] = []
    problem = _same_path("the data folder (CLAUDERON_HOME)", f.home, mounts, "CLAUDERON_HOME")
    if problem:
        out.append(problem)
    elif f.home_owner not in (None, 0):
        out.append(
            f"the data folder {f.home} belongs to uid {f.home_owner}, not to the appliance "
            "(root); nothing was changed in it. Give it to root on the host "
            f"(`chown -R root:root {f.home}`) or mount an empty folder of root's")
    judged = {f.home, *f.repos}
    for repo in f.repos:
        problem = _same_path("the repositories folder", repo, mounts, "CLAUDERON_REPOS")
        if problem:
            out.append(problem)
    covered = {m.destination for m in (covering(mounts, p) for p in judged) if m}
    return out + _other_mounts(mounts, f.docker_host, skip=covered)


def _engine(f: Facts) -> list[str]:
    socket = f.docker_host.removeprefix("unix://")
    if f.socket_kind == "remote":
        return [f"DOCKER_HOST={f.docker_host} is not a Unix socket: the appliance must drive "
                "the engine of the host it runs on (its firewall is installed here); mount "
                "that engine's socket and leave DOCKER_HOST unset"]
    if f.socket_kind == "missing":
        return [f"no Docker engine socket at {socket}: mount the host's "
                f"(compose: `- /var/run/docker.sock:{socket}`; docker run -v "
                f"/var/run/docker.sock:{socket})"]
    if f.socket_kind == "directory":
        return [f"{socket} is a folder, not the engine's socket: the host path you mounted "
                "does not exist there, so Docker made an empty folder; mount the engine's "
                f"socket (usually /var/run/docker.sock) at {socket}"]
    if f.socket_kind != "socket":
        return [f"{socket} is not a socket: mount the Docker engine's socket there"]
    if f.engine_error is not None:
        return [f"the Docker engine does not answer on {socket} ({f.engine_error}): is dockerd "
                "running, and is this its socket?"]
    return []


def _other_mounts(mounts: tuple[Mount, ...], docker_host: str, *,
                  skip: set[str]) -> list[str]:
    """Any other host folder must be at its own path too: a repository under it would be
    handed to the engine by a path the host does not have."""
    socket = docker_host.removeprefix("unix://")
    out = []
    for m in mounts:
        if m.kind != "bind" or not m.is_dir or m.destination in {socket, *skip}:
            continue
        if m.source != m.destination:
            out.append(
                f"the host folder {m.source} is mounted at {m.destination}: mount it at the "
                f"same path (`- {m.source}:{m.source}`), or repositories under it cannot be "
                "given to sessions")
    return out


def pick_iptables(legacy_rules: str, nft_rules: str) -> str:
    """``legacy`` or ``nft``: the backend the host's engine wrote its rules with (the one
    holding more ``DOCKER`` rules), so our chain sits beside the engine's in ``iptables -S``
    on the host. Neither has any: ``nft`` (the default of Debian's iptables)."""
    def count(text: str) -> int:
        return sum("DOCKER" in line for line in text.splitlines())

    return "legacy" if count(legacy_rules) > count(nft_rules) else "nft"
