"""Running git on the host, the one way it is allowed to run.

Every git process the appliance starts goes through :func:`run`. Agents write trees the host
later reads (their workspace, its objects), so git here is treated as a program reading
hostile input:

- it runs as the **repository owner** (the uid the agent's container runs as), never as root:
  when the appliance is root it drops to that uid before ``exec``; when it is not, it refuses
  a repository that belongs to someone else instead of reaching for ``safe.directory=*``;
- no system or global configuration (``GIT_CONFIG_NOSYSTEM``, ``GIT_CONFIG_GLOBAL=/dev/null``,
  ``HOME`` pointing nowhere), no inherited ``GIT_*`` variable, no prompt, no pager;
- command-line configuration, which outranks any repository's own, turns off everything that
  can execute a program or redirect reads: hooks, fsmonitor, external diff and textconv,
  pagers and editors, ssh commands, credential helpers, signature checkers (an agent's
  commit names which one checks it), and every transport but local files.

Pure parts (:func:`git_argv`, :func:`git_env`) are unit-tested; :func:`run` is the shell.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import threading
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance.errors import GitError, InvalidInput
from appliance.quoted import quote

GIT_TIMEOUT = 120

#: Configuration given on the command line: it overrides the repository's ``config``,
#: ``config.worktree`` and anything they include, for this process and the git processes
#: it starts (git passes it on in ``GIT_CONFIG_PARAMETERS``). Keys whose empty value would
#: still run something (``diff.external``, ``uploadpack.packObjectsHook``) are not listed:
#: diffs always pass ``--no-ext-diff --no-textconv``, and only system, global or command-line
#: configuration may set the hook, all of which are off.
SAFE_CONFIG: tuple[tuple[str, str], ...] = (
    ("core.hooksPath", "/dev/null"),
    ("core.fsmonitor", "false"),
    ("core.untrackedCache", "false"),
    ("core.sshCommand", "false"),
    ("core.pager", "cat"),
    ("core.editor", "false"),
    ("credential.helper", ""),
    ("sequence.editor", "false"),
    ("gpg.program", "false"),
    ("gpg.ssh.program", "false"),
    ("gpg.x509.program", "false"),
    ("protocol.allow", "never"),
    ("protocol.file.allow", "always"),
    ("fetch.fsckObjects", "true"),
    ("transfer.fsckObjects", "true"),
    ("submodule.recurse", "false"),
    ("fetch.recurseSubmodules", "false"),
    ("maintenance.auto", "false"),
    ("gc.auto", "0"),
    ("advice.detachedHead", "false"),
)

_KEEP_ENV = ("PATH", "TZ")

#: The heap a host git that reads what an agent wrote (its tree, its objects) may take
#: (``run(memory=)``): git holds an object or a converted file whole, and an agent's
#: object of a few KiB can inflate to GiBs (a commit message of zeros).
READ_MEMORY = 512 << 20

#: The size above which a fetch of an agent's objects streams a file (``core.bigFileThreshold``)
#: rather than hold it whole, and looks for no delta of it: packing two files of 500 MiB
#: that differ by a byte, git held both whole, and their delta index, past 1 GiB. The
#: sending side (``upload-pack``, which git starts with none of the command line's
#: configuration) reads it from the shadow's config, the receiving side from
#: :data:`STREAMED`. Its threads are two: each one's stack and the delta base it holds are
#: heap, so at git's default (a thread per core) a fetch that fit the heap on two cores
#: failed on four, unable to start a thread.
STREAM_SIZE = 32 << 20
STREAMED = ("-c", f"core.bigFileThreshold={STREAM_SIZE}", "-c", "pack.threads=2")
#: What a git that packs an agent's objects on the host (a roll-up of the person's packs, a
#: push of a session branch) is given besides :data:`STREAMED`: the delta search among the
#: other files held to a window of 64 MiB.
PACKING = (*STREAMED, "-c", "pack.windowMemory=64m")


@dataclass(frozen=True, slots=True, kw_only=True)
class Owner:
    """Whom git runs as: the repository's owner."""

    uid: int
    gid: int


def git_argv(args: Sequence[str]) -> list[str]:
    argv = ["git", "--no-pager"]
    for key, value in SAFE_CONFIG:
        argv += ["-c", f"{key}={value}"]
    return [*argv, *args]


def git_env(base: Mapping[str, str], extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A clean environment: nothing of the caller's git setup leaks in."""
    env = {k: base[k] for k in _KEEP_ENV if k in base}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env.update({
        "HOME": "/nonexistent",
        "XDG_CONFIG_HOME": "/nonexistent",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_ATTR_NOSYSTEM": "1",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ASKPASS": "/bin/false",
        "SSH_ASKPASS": "/bin/false",
        "GIT_PAGER": "cat",
        "GIT_EDITOR": "false",
        "GIT_OPTIONAL_LOCKS": "0",
        "GIT_NO_REPLACE_OBJECTS": "1",
        "GIT_PROTOCOL_FROM_USER": "0",
        "LC_ALL": "C",
    })
    if extra:
        env.update(extra)
    return env


def check_owner(owner: Owner, what: Path) -> None:
    """Refuse what we could only do by trusting another user's files as our own."""
    if owner.uid == 0:
        raise InvalidInput(
            f"{what} belongs to root; agents never run as root, so chown it to the user who "
            "works in it", field="repo_path")
    me = os.geteuid()
    if me not in (0, owner.uid):
        raise InvalidInput(
            f"{what} belongs to uid {owner.uid} but the appliance runs as uid {me}: run the "
            "appliance as that user (or as root, which runs git as the owner)",
            field="repo_path")


def bounded_argv(argv: list[str], memory: int | None, files: int | None = None) -> list[str]:
    """``argv`` run with at most ``memory`` bytes of heap (``RLIMIT_DATA``, set by ``sh``
    before git starts: file mappings such as packs do not count) and no file it or a git it
    starts writes larger than ``files`` bytes (``RLIMIT_FSIZE``, in POSIX's blocks of 512),
    or as it is."""
    limits = ([f"ulimit -d {memory // 1024}"] if memory is not None else []) + (
        [f"ulimit -f {-(-files // 512)}"] if files is not None else [])
    if not limits:
        return argv
    return ["sh", "-c", " && ".join([*limits, 'exec "$@"']), "git", *argv]


def run(args: Sequence[str], *, owner: Owner, cwd: Path, check: bool = True,
        env: Mapping[str, str] | None = None, input: bytes | None = None,
        timeout: float = GIT_TIMEOUT, limit: int | None = None, memory: int | None = None,
        files: int | None = None, allowed: Collection[int] = (0,)
        ) -> subprocess.CompletedProcess[bytes]:
    """Run git as ``owner`` in ``cwd`` with the safe configuration; bytes in, bytes out;
    with ``check``, an exit status not ``allowed`` raises.

    With ``limit``, no more than ``limit + 1`` bytes of its output are read: past that, git
    is stopped (an agent's tree can make a diff of any size; the reader holds this much), and
    an output that long is how the caller knows it was cut. With ``memory``, git fails
    ("Out of memory") rather than take more heap than that: what it reads of an agent's
    tree can inflate (a file git converts whole, such as a sparse one whose attributes name
    an encoding). With ``files``, no file it writes grows past that many bytes: it fails
    (its ``index-pack`` dies of ``SIGXFSZ``) instead."""
    check_owner(owner, cwd)
    drop = os.geteuid() == 0
    options: dict[str, Any] = {
        "cwd": cwd, "env": git_env(os.environ, env), "close_fds": True,
        "user": owner.uid if drop else None, "group": owner.gid if drop else None,
        "extra_groups": [] if drop else None, "umask": 0o022}
    try:
        argv = bounded_argv(git_argv(args), memory, files)
        proc = _run(argv, input, limit, timeout, options)
    except FileNotFoundError as exc:
        if not cwd.is_dir():
            raise GitError(f"{cwd} is gone") from exc
        raise GitError("git is not installed on the appliance's host; install git") from exc
    except PermissionError as exc:
        raise GitError(f"uid {owner.uid} cannot enter {cwd}: {exc.strerror}") from exc
    except subprocess.TimeoutExpired as exc:
        raise GitError(f"`git {' '.join(args[:2])}` in {cwd} took over {timeout:.0f}s") from exc
    cut = limit is not None and len(proc.stdout) > limit
    if check and proc.returncode not in allowed and not cut:
        raise GitError(f"`git {' '.join(args[:2])}` failed in {cwd}: {said(proc)}")
    return proc


def _run(argv: list[str], input: bytes | None, limit: int | None, timeout: float,
         options: dict[str, Any]) -> subprocess.CompletedProcess[bytes]:
    """``argv``'s output (its first ``limit + 1`` bytes, with ``limit``); it and whatever it
    started (its group: one could hold the pipe open, or go on after it) are killed once it
    has written more, or once ``timeout`` has passed (TimeoutExpired)."""
    late: list[bool] = []

    def kill(proc: subprocess.Popen[bytes]) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)

    def stop(proc: subprocess.Popen[bytes]) -> None:
        late.append(True)
        kill(proc)

    with tempfile.TemporaryFile() as source, tempfile.TemporaryFile() as err:
        source.write(input or b"")
        source.seek(0)
        with subprocess.Popen(argv, stdin=source, stdout=subprocess.PIPE, stderr=err,
                              start_new_session=True, **options) as proc:
            assert proc.stdout is not None
            timer = threading.Timer(timeout, stop, (proc,))
            timer.start()
            try:
                out = proc.stdout.read(-1 if limit is None else limit + 1)
                if limit is not None and len(out) > limit:
                    kill(proc)
                proc.wait()
            finally:
                timer.cancel()
        if late and (limit is None or len(out) <= limit):
            raise subprocess.TimeoutExpired(argv, timeout)
        err.seek(0)
        return subprocess.CompletedProcess(argv, proc.returncode, out, err.read())


def text(args: Sequence[str], *, owner: Owner, cwd: Path, check: bool = True) -> str:
    """What git printed, decoded; stripped of the trailing newline."""
    return run(args, owner=owner, cwd=cwd, check=check).stdout.decode(
        "utf-8", "replace").strip()


def said(proc: subprocess.CompletedProcess[bytes]) -> str:
    """git's last line (it may name the agent's files, branches and commits), quoted."""
    lines = (proc.stderr or proc.stdout).decode("utf-8", "replace").strip().splitlines()
    return quote("git", lines[-1]) if lines else f"exit status {proc.returncode}"


def owner_can_reach(path: Path, owner: Owner) -> Path | None:
    """The first folder on the way to ``path`` that ``owner`` may not pass, or None.

    Mode bits only (no ACLs): a clear early error beats git's "Permission denied" later.
    """
    if os.geteuid() != 0:
        return None
    current = Path(path.anchor)
    for part in path.parts[1:]:
        current = current / part
        try:
            st = current.stat()
        except FileNotFoundError:
            return None
        if not os.path.isdir(current):
            return None
        if st.st_uid == owner.uid:
            allowed = bool(st.st_mode & 0o100)
        elif st.st_gid == owner.gid:
            allowed = bool(st.st_mode & 0o010)
        else:
            allowed = bool(st.st_mode & 0o001)
        if not allowed:
            return current
    return None
