"""The warm start: a boot plan carried out by the container itself, from its first instant.

Theory of operation
-------------------
The exec-based boot (:mod:`appliance.agents.runner`) waits for the container to start, then
runs a command per file and one to start the agent: each a round trip to the engine, all of
it before the agent's CLI even begins its own start-up. The warm start moves that work
before the start. :func:`prestart` turns a :class:`~appliance.agents.boot.BootPlan` into

* files the backend writes into the **created, never started** container's own filesystem
  (Docker: ``put_archive``; nothing on the host, no host mount): the root files of the plan
  at their paths, the agent's home files as root-owned, read-only *seeds* under
  :data:`SEED_DIR`, and the entry script :data:`ENTRY_PATH`;
* that entry script, which the container runs first at every start, as the agent's own user:
  it copies each seed into the home (a ``keep`` file only when absent, so a recreated
  container keeps Claude's state), starts the agent in tmux exactly as
  :func:`~appliance.agents.boot.start_argv` does, then hands over to the image's own
  entrypoint and command (``exec "$@"``).

So the agent starts the moment the container does. The daemon still checks the image's tools
and runs the entry once more after the start (:data:`BOOT_ONLY`: idempotent, then exits): a
missing tool fails the create as before, and a container whose entry did not start the
agent (one made without it, adopted) gets its home files and agent then.

Containment is the contract's: the files hold this session's settings and placeholders
only (the plan is built from the session), are written by root into a filesystem no agent
has run in yet, and the entry runs with the container's user, capabilities and network.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from appliance.agents.boot import BootPlan
from appliance.backends.base import SpecFile
from appliance.contract import CONTAINER_HOME

ENTRY_PATH = "/etc/clauderon/entry.sh"
SEED_DIR = "/etc/clauderon/seed"
#: The entry's argument for "boot, then exit" (the daemon's check after the start).
BOOT_ONLY = "--clauderon-boot-only"


@dataclass(frozen=True, slots=True, kw_only=True)
class Prestart:
    #: Written into the created container before its first start (root-owned).
    files: tuple[SpecFile, ...]
    #: The script the container runs first, at every start.
    entry: str

    def after_start(self, plan: BootPlan) -> BootPlan:
        """What the daemon still does once the container runs: check the image's tools,
        and boot again (idempotent: a no-op when the entry already did it; the whole boot
        in a container made without this entry)."""
        return BootPlan(tools=plan.tools, files=(), start=("sh", self.entry, BOOT_ONLY))


def _seed_lines(index: int, path: str, mode: str, keep: bool) -> str:
    seed = shlex.quote(f"{SEED_DIR}/{index}")
    dst = shlex.quote(path)
    copy = (f'mkdir -p "$(dirname {dst})" && cp {seed} {dst}.tmp && chmod {mode} {dst}.tmp '
            f"&& mv -f {dst}.tmp {dst}")
    return f"[ -e {dst} ] || {{ {copy}; }}\n" if keep else f"{copy}\n"


def entry_script(plan: BootPlan, seeds: list[tuple[int, str, str, bool]]) -> bytes:
    """``sh`` only until the agent's start (which needs bash, as the exec boot does)."""
    start = plan.start[-1]  # start_argv(): ["bash", "-c", SCRIPT]
    return (
        "#!/bin/sh\n"
        "# Written by clauderon before the first start: the agent's home files, then the\n"
        "# agent in tmux, then the image's own entrypoint and command.\n"
        + "".join(_seed_lines(*s) for s in seeds)
        + f"command -v bash >/dev/null 2>&1 && bash -c {shlex.quote(start)} "
        ">/dev/null 2>&1 </dev/null\n"
        "started=$?\n"
        f'[ "${{1:-}}" = {BOOT_ONLY} ] && exit "$started"\n'
        'if [ "$#" -gt 0 ]; then exec "$@"; fi\n'
        "exec sh\n"
    ).encode()


def prestart(plan: BootPlan) -> Prestart:
    """The files and entry of ``plan``; every path of a home file must be in the home."""
    files: list[SpecFile] = []
    seeds: list[tuple[int, str, str, bool]] = []
    for f in plan.files:
        if f.as_root:
            files.append(SpecFile(path=f.path, content=f.content, mode=int(f.mode, 8)))
            continue
        if not f.path.startswith(f"{CONTAINER_HOME}/"):
            raise ValueError(f"a home file outside the home: {f.path}")
        seeds.append((len(seeds), f.path, f.mode, f.keep))
        files.append(SpecFile(path=f"{SEED_DIR}/{len(seeds) - 1}", content=f.content,
                              mode=0o444))
    files.append(SpecFile(path=ENTRY_PATH, content=entry_script(plan, seeds), mode=0o755))
    return Prestart(files=tuple(files), entry=ENTRY_PATH)
