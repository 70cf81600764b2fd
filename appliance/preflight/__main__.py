"""``clauderon-preflight [COMMAND...]``: check the appliance container, then ``exec`` COMMAND.

The image's default command is ``clauderon-preflight clauderon daemon``. Every problem found
is printed (one line each, with its fix) and the exit status is 78 before anything is
created or changed; with none, the host's iptables backend is chosen (a write in the
container's own ``/etc/alternatives``, nothing else) and COMMAND replaces this process, so
supervisord stays the child of the init. Without COMMAND it only checks.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from appliance.errors import ClauderonError
from appliance.preflight.probe import gather
from appliance.preflight.verdicts import EXIT_CONFIG, pick_iptables, problems

_SAVE_SECONDS = 10


def _rules(tool: str) -> str:
    try:
        return subprocess.run([tool, "-t", "filter"], capture_output=True, text=True,
                              timeout=_SAVE_SECONDS, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""


def choose_iptables() -> str | None:
    """Point ``iptables``/``ip6tables`` at the backend the host's engine uses (Debian's
    alternatives), so the sessions' chain lands beside the engine's. None: nothing to choose
    (one backend only, or no alternatives system: a Nix image)."""
    legacy, nft = shutil.which("iptables-legacy-save"), shutil.which("iptables-nft-save")
    chooser = shutil.which("update-alternatives")
    if not (legacy and nft and chooser):
        return None
    backend = pick_iptables(_rules(legacy), _rules(nft))
    for name in ("iptables", "ip6tables"):
        target = shutil.which(f"{name}-{backend}")
        if target:
            subprocess.run([chooser, "--quiet", "--set", name, target], check=False,
                           capture_output=True, timeout=_SAVE_SECONDS)
    return backend


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        found = problems(gather())
    except ClauderonError as exc:
        found = [exc.message]
    if found:
        for problem in found:
            print(f"clauderon-preflight: {problem}", file=sys.stderr)
        print(f"clauderon-preflight: {len(found)} problem(s); nothing was started or changed",
              file=sys.stderr)
        return EXIT_CONFIG
    backend = choose_iptables()
    print("clauderon-preflight: ok" + (f" (iptables-{backend}, as the host's engine)"
                                       if backend else ""), file=sys.stderr)
    if not argv:
        return 0
    sys.stderr.flush()
    try:
        os.execvp(argv[0], argv)
    except OSError as exc:
        print(f"clauderon-preflight: cannot run {argv[0]}: {exc.strerror}", file=sys.stderr)
        return 127
    return 0  # pragma: no cover - execvp does not return


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":
    run()
