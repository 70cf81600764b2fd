"""The commands that act on this machine rather than through the API: ``config``,
``status`` (``cli/status.py``), ``image``, ``daemon`` and ``tui``, and where the files
shipped beside the code are found.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from appliance import nudge
from appliance.config import load_settings
from appliance.errors import ConfigError
from cli import signin
from cli.status import cmd_status
from cli.table import Command, arg, emit


def cmd_config(args: argparse.Namespace) -> int:
    settings = load_settings()
    if args.what == "paths":
        paths = {k: str(v) for k, v in settings.paths().items()}
        return emit(args, paths, "\n".join(f"{k:<13} {v}" for k, v in paths.items()))
    data = settings.public_dict()
    return emit(args, data, "\n".join(f"{k:<24} {v}" for k, v in data.items()))


def find_shared(relative: str, override_env: str | None = None) -> Path:
    """A file shipped beside the code: the source checkout's, else the installed copy
    (``<prefix>/share/clauderon``)."""
    here = Path(__file__).resolve().parent.parent
    override = os.environ.get(override_env) if override_env else None
    candidates = [Path(override)] if override else []
    candidates += [here / relative, Path(sys.prefix) / "share/clauderon" / relative]
    for candidate in candidates:
        if candidate.exists():
            return candidate
    raise ConfigError(f"{relative} not found beside the clauderon code; run from a checkout "
                      "or reinstall")


def find_supervisord_conf() -> Path:
    return find_shared("supervisord.conf", "CLAUDERON_SUPERVISORD_CONF")


def cmd_image(args: argparse.Namespace) -> int:
    """Build the agent image (the base image first when missing), or with ``--appliance``
    the appliance image (images/appliance/build.sh, from a source checkout: it is built from
    the files git tracks there), showing the build as it comes."""
    if args.appliance:
        script = Path(__file__).resolve().parent.parent / "images/appliance/build.sh"
        if not script.is_file():
            raise ConfigError("the appliance image is built from a source checkout of "
                              "clauderon: run images/appliance/build.sh there")
    else:
        script = find_shared("images/agent/build.sh")
    if shutil.which("docker") is None:
        raise ConfigError("the docker command is not installed; install docker.io")
    flag = ["--check"] if args.check else ["--force"] if args.force else []
    tag = "CLAUDERON_APPLIANCE_IMAGE" if args.appliance else "CLAUDERON_AGENT_IMAGE"
    env = {**os.environ, **({tag: args.tag} if args.tag else {})}
    return subprocess.run(["bash", str(script), *flag], env=env, check=False).returncode


def cmd_daemon(args: argparse.Namespace) -> int:
    settings = load_settings()
    settings.ensure_layout()
    conf = find_supervisord_conf()
    supervisord = shutil.which("supervisord") or str(Path(sys.executable).parent / "supervisord")
    env = {**os.environ, "CLAUDERON_HOME": str(settings.home),
           "CLAUDERON_BIN": str(Path(sys.executable).parent)}
    print(f"starting the appliance from {conf} (home {settings.home})", file=sys.stderr)
    supervisord_pid = os.getpid()  # the pid supervisord runs as, once execve is done
    _beside(lambda: nudge.watch(supervisord_pid, settings.home / "supervisor.sock"))
    if args.sign_in and settings.http_port:
        _beside(lambda: signin.greet_when_up(settings))
    os.execve(supervisord, [supervisord, "-n", "-c", str(conf)], env)


def _beside(job: Callable[[], int]) -> None:
    """Run ``job`` in a process of its own beside the one about to exec supervisord: forked
    twice, so init adopts it and supervisord never reaps a child it does not know."""
    sys.stdout.flush()
    sys.stderr.flush()
    child = os.fork()
    if child:
        os.waitpid(child, 0)
        return
    try:
        code = 0 if os.fork() else job()
    except BaseException:
        code = 1
    os._exit(code)


def cmd_tui(args: argparse.Namespace) -> int:
    from cli.tui.tui_app import run_tui  # noqa: PLC0415 (Textual loads only for the TUI)

    return run_tui(load_settings().socket_path)


TABLE = (
    Command(name="config", help="show the effective configuration or the file paths",
            handler=cmd_config, args=(arg("what", choices=["show", "paths"]),)),
    Command(name="status", help="health of the API, the database and the container engine; "
            "the credentials the proxy loaded (names, sources, masked values) and which "
            "agents can work with them", handler=cmd_status),
    Command(name="image", help="build the agent image (claude, codex, git, tmux), or the "
            "appliance image, when its inputs changed", handler=cmd_image, json=False, args=(
        arg("what", choices=["build"]),
        arg("--appliance", action="store_true",
            help="build the appliance image clauderon-appliance:<version> instead (from a "
            "source checkout)"),
        arg("--force", action="store_true", help="build even when up to date"),
        arg("--check", action="store_true",
            help="build nothing; exit 0 when up to date, 3 when a build is needed"),
        arg("--tag", help="image tag (default clauderon-agent:latest, or "
            "clauderon-appliance:<version> with --appliance)"))),
    Command(name="daemon", help="run the appliance (API, proxy, reconciler, shipper) under "
            "supervisord in the foreground", handler=cmd_daemon, json=False, args=(
        arg("--sign-in", action="store_true",
            help="once the API answers, print (and on a desktop open) a one-time sign-in "
            "link for the web UI, as `clauderon web` does"),)),
    Command(name="tui", help="open the terminal UI: live session list, create, attach, "
            "archive, delete", handler=cmd_tui, json=False),
)
