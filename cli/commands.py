"""The ``clauderon`` subcommands: argument definitions and their handlers."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from appliance.config import load_settings
from appliance.errors import ClauderonError, ConfigError, InvalidInput
from cli.client import ApiClient
from cli.render import session_detail, session_rows
from cli.signin import add_commands as add_signin_commands

TERMINAL = {"running", "stopped", "failed", "archived"}


def _client() -> ApiClient:
    return ApiClient(load_settings().socket_path)


def _out(args: argparse.Namespace, data: Any, text: str) -> int:
    print(json.dumps(data, indent=2) if getattr(args, "json", False) else text)
    return 0


def _event_ids(client: ApiClient, ref: str) -> set[int]:
    return {e["id"] for e in client.get(f"/api/sessions/{ref}/events")["events"]}


def _follow(client: ApiClient, ref: str, *, until: set[str], label: str,
            gone_ok: bool = False, timeout: float = 600,
            seen: set[int] | None = None) -> dict[str, Any] | None:
    """Print progress steps until the session reaches a phase in ``until``.

    ``seen``: ids of events that happened before the request being followed.
    """
    seen = set() if seen is None else set(seen)
    sys.stdout.write(f"{label}  ")
    sys.stdout.flush()
    deadline = time.monotonic() + timeout
    first = True
    session: dict[str, Any] | None = None
    while time.monotonic() < deadline:
        try:
            session = client.get(f"/api/sessions/{ref}")["session"]
            events = client.get(f"/api/sessions/{ref}/events")["events"]
        except ClauderonError as exc:
            if gone_ok and exc.code == "not_found":
                print(" ▸ gone")
                return None
            raise
        for e in events:
            if e["kind"] == "progress" and e["id"] not in seen:
                seen.add(e["id"])
                sys.stdout.write(("" if first else " ▸ ") + e["payload"]["step"])
                first = False
                sys.stdout.flush()
        if session["phase"] in until:
            sys.stdout.write(("" if first else " ▸ ") + session["phase"] + "\n")
            return session
        time.sleep(0.1)
    print()
    raise ClauderonError(f"{ref} did not finish within {timeout:.0f}s; see `clauderon show {ref}`")


# --- handlers -----------------------------------------------------------------------
def cmd_create(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {
        "repo_path": str(Path(args.repo).expanduser().absolute()),
        "prompt": args.prompt or "",
        "agent": args.agent,
        "access_mode": args.access_mode,
        "skip_permissions": args.skip_permissions,
    }
    for key in ("name", "model", "image", "cpu", "memory", "base"):
        if getattr(args, key) is not None:
            body[key] = getattr(args, key)
    client = _client()
    session = client.post("/api/sessions", body)["session"]
    if args.no_wait or args.json:
        return _out(args, session, f"{session['name']}  creating")
    done = _follow(client, session["id"], until={"running", "stopped", "failed"},
                   label=f"{session['name']}  creating")
    assert done is not None
    if done["phase"] == "failed":
        raise ClauderonError(f"{done['name']} failed: {done.get('status_reason')}")
    print(f"  branch {done['branch']}, container {done['container_name']}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    params = {"all": "true"} if args.all else {"archived": "true"} if args.archived else {}
    if args.watch:
        return _watch(_client(), params)
    sessions = _client().get("/api/sessions", **params)["sessions"]
    if not sessions and not args.json:
        print("No sessions. Create one with: clauderon create --repo PATH --prompt TEXT")
        return 0
    return _out(args, sessions, session_rows(sessions))


def _watch(client: ApiClient, params: dict[str, str]) -> int:
    """Redraw the table whenever it changes, until interrupted."""
    shown = None
    while True:
        sessions = client.get("/api/sessions", **params)["sessions"]
        text = session_rows(sessions) if sessions else "No sessions."
        if text != shown:
            if sys.stdout.isatty():
                sys.stdout.write("\x1b[H\x1b[2J")
            print(text, flush=True)
            shown = text
        time.sleep(0.5)


def cmd_show(args: argparse.Namespace) -> int:
    s = _client().get(f"/api/sessions/{args.session}")["session"]
    return _out(args, s, session_detail(s))


def cmd_attach(args: argparse.Namespace) -> int:
    client = _client()
    s = client.get(f"/api/sessions/{args.session}")["session"]
    if s["phase"] in ("stopped", "archived"):
        before = _event_ids(client, s["id"])
        client.post(f"/api/sessions/{s['id']}/" + ("start" if s["phase"] == "stopped"
                                                     else "unarchive"))
        s = _follow(client, s["id"], until={"running", "failed"}, label=f"{s['name']}  starting",
                    seen=before)
        assert s is not None
    if s["phase"] != "running":
        raise ClauderonError(f"{s['name']} is {s['phase']}; it cannot be attached"
                             + (f" ({s['status_reason']})" if s.get("status_reason") else ""))
    info = client.get(f"/api/sessions/{s['id']}/attach")
    command = info["command"]
    if args.print_command:
        print(shlex.join(command))
        return 0
    if shutil.which(command[0]) is None:
        raise ClauderonError(f"{command[0]} is not installed here; it is needed to attach")
    print(f"attached to {s['name']}; detach with {info['detach_keys']} (the session keeps running)",
          file=sys.stderr)
    os.execvp(command[0], command)


def _simple(path: str, verb: str, until: set[str]) -> Any:
    def handler(args: argparse.Namespace) -> int:
        client = _client()
        before = _event_ids(client, args.session)
        s = client.post(f"/api/sessions/{args.session}/{path}")["session"]
        if args.json or args.no_wait:
            return _out(args, s, f"{s['name']}  {verb}")
        done = _follow(client, s["id"], until=until, label=f"{s['name']}  {verb}", seen=before)
        if done is not None and done["phase"] == "failed":
            raise ClauderonError(f"{done['name']} failed: {done.get('status_reason')}")
        return 0

    return handler


def cmd_delete(args: argparse.Namespace) -> int:
    client = _client()
    s = client.get(f"/api/sessions/{args.session}")["session"]
    if not args.force:
        if not sys.stdin.isatty():
            raise InvalidInput(f"deleting {s['name']} needs confirmation: pass --force")
        answer = input(f"Delete {s['name']} (container and worktree; branch {s['branch']} is "
                       "kept)? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("kept")
            return 1
    before = _event_ids(client, s["id"])
    client.delete(f"/api/sessions/{s['id']}")
    if args.no_wait:
        print(f"{s['name']}  deleting")
        return 0
    _follow(client, s["id"], until=set(), label=f"{s['name']}  deleting", gone_ok=True,
            seen=before)
    print(f"  branch {s['branch']} kept")
    return 0


def cmd_access_mode(args: argparse.Namespace) -> int:
    s = _client().post(f"/api/sessions/{args.session}/access-mode",
                       {"access_mode": args.mode})["session"]
    return _out(args, s, f"{s['name']}  access mode {s['access_mode']}")


def cmd_reconcile(args: argparse.Namespace) -> int:
    report = _client().get("/api/reconcile")
    if report["in_sync"]:
        return _out(args, report, "All sessions are in sync")
    lines = [f"{p['session'] or '-'}: {p['problem'].replace('_', ' ')}  {p['detail']}"
             for p in report["problems"]]
    _out(args, report, "\n".join(lines))
    return 1


def cmd_config(args: argparse.Namespace) -> int:
    settings = load_settings()
    if args.what == "paths":
        paths = {k: str(v) for k, v in settings.paths().items()}
        return _out(args, paths, "\n".join(f"{k:<13} {v}" for k, v in paths.items()))
    data = settings.public_dict()
    return _out(args, data, "\n".join(f"{k:<24} {v}" for k, v in data.items()))


def cmd_status(args: argparse.Namespace) -> int:
    # 503 means "degraded" here: the body still describes every part.
    health = _client().request("GET", "/api/health", accept=frozenset({503}))
    docker = health.get("docker", {})
    text = [f"api        ok ({load_settings().socket_path})",
            "docker     " + ("ok " + docker.get("url", "") if docker.get("reachable")
                             else f"UNREACHABLE: {docker.get('error')}")]
    if "sessions" in health:
        text.append(f"sessions   {health['sessions']['total']} "
                    f"({health['sessions']['failed']} failed)")
    _out(args, health, "\n".join(text))
    return 0 if health.get("status") == "ok" else 1


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
    """Build the agent image (the base image first when missing), showing the build."""
    if args.appliance:
        return _build_appliance_image(args)
    script = find_shared("images/agent/build.sh")
    if shutil.which("docker") is None:
        raise ConfigError("the docker command is not installed; install docker.io")
    argv = ["bash", str(script)] + (["--force"] if args.force else [])
    if args.check:
        argv = ["bash", str(script), "--check"]
    env = {**os.environ}
    if args.tag:
        env["CLAUDERON_AGENT_IMAGE"] = args.tag
    result = subprocess.run(argv, env=env, check=False)
    return result.returncode


def _build_appliance_image(args: argparse.Namespace) -> int:
    """``image build --appliance``: images/appliance/build.sh, from a source checkout (the
    image is built from the files git tracks there), with its output as it comes."""
    script = Path(__file__).resolve().parent.parent / "images/appliance/build.sh"
    if not script.is_file():
        raise ConfigError("the appliance image is built from a source checkout of clauderon: "
                          "run images/appliance/build.sh there")
    if shutil.which("docker") is None:
        raise ConfigError("the docker command is not installed; install docker.io")
    flag = ["--check"] if args.check else ["--force"] if args.force else []
    env = {**os.environ, **({"CLAUDERON_APPLIANCE_IMAGE": args.tag} if args.tag else {})}
    return subprocess.run(["bash", str(script), *flag], env=env, check=False).returncode


def cmd_daemon(args: argparse.Namespace) -> int:
    settings = load_settings()
    settings.ensure_layout()
    conf = find_supervisord_conf()
    supervisord = shutil.which("supervisord") or str(Path(sys.executable).parent / "supervisord")
    env = {**os.environ, "CLAUDERON_HOME": str(settings.home),
           "CLAUDERON_BIN": str(Path(sys.executable).parent)}
    print(f"starting the appliance from {conf} (home {settings.home})", file=sys.stderr)
    os.execve(supervisord, [supervisord, "-n", "-c", str(conf)], env)


def cmd_tui(args: argparse.Namespace) -> int:
    from cli.tui.app import run_tui  # noqa: PLC0415 (Textual loads only for the TUI)

    return run_tui(load_settings().socket_path)


# --- the parser ---------------------------------------------------------------------
COMMANDS: dict[str, str] = {}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="clauderon",
        description="Run AI coding agents side by side, each in its own container and "
                    "worktree, holding zero real credentials.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help_text: str, handler: Any, *, json_flag: bool = True,
            session: bool = False) -> argparse.ArgumentParser:
        COMMANDS[name] = help_text
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(handler=handler)
        if session:
            p.add_argument("session", help="session name or id")
        if json_flag:
            p.add_argument("--json", action="store_true", help="print JSON")
        return p

    p = add("create", "create a session: worktree, branch and container for one agent",
            cmd_create)
    p.add_argument("-r", "--repo", required=True, help="a path inside a git repository")
    p.add_argument("-n", "--name", help="session name (default: from the prompt)")
    p.add_argument("-p", "--prompt", help="the agent's first prompt")
    p.add_argument("-a", "--agent", default="claude", choices=["claude", "codex"])
    p.add_argument("--model", help="the agent's model")
    p.add_argument("--image", help="container image (default from config.toml)")
    p.add_argument("--cpu", help="CPU limit, like 2 or 500m")
    p.add_argument("--memory", help="memory limit, like 4g")
    p.add_argument("--access-mode", default="read-write", choices=["read-write", "read-only"])
    p.add_argument("--base", help="branch, tag or commit to start from (default: HEAD)")
    p.add_argument("--skip-permissions", action="store_true",
                   help="run the agent in bypass-permissions mode")
    p.add_argument("--no-wait", action="store_true", help="return once accepted")

    p = add("list", "list sessions with phase, agent status, branch and age", cmd_list)
    p.add_argument("--archived", action="store_true", help="only archived sessions")
    p.add_argument("--all", action="store_true", help="every session")
    p.add_argument("-w", "--watch", action="store_true", help="keep the table up to date")
    add("show", "show one session in detail", cmd_show, session=True)
    p = add("attach", "attach to a session's terminal (starts it first if stopped)",
            cmd_attach, json_flag=False, session=True)
    p.add_argument("--print-command", action="store_true",
                   help="print the attach command instead of running it")
    for name, help_text, path, verb, until in (
        ("archive", "archive a session: stop compute, keep worktree, branch and record",
         "archive", "archiving", {"archived"}),
        ("unarchive", "bring an archived session back", "unarchive", "unarchiving",
         {"running", "failed"}),
        ("start", "start a stopped session", "start", "starting", {"running", "failed"}),
        ("stop", "stop a session's container (restart with start or attach)", "stop",
         "stopping", {"stopped"}),
        ("retry", "retry a failed session", "retry", "retrying",
         {"running", "stopped", "failed"}),
    ):
        p = add(name, help_text, _simple(path, verb, until), session=True)
        p.add_argument("--no-wait", action="store_true", help="return once accepted")
    p = add("delete", "delete a session (container and worktree; the branch is kept)",
            cmd_delete, json_flag=False, session=True)
    p.add_argument("-f", "--force", action="store_true", help="do not ask for confirmation")
    p.add_argument("--no-wait", action="store_true", help="return once accepted")
    p = add("set-access-mode", "switch a session's proxy access mode live", cmd_access_mode,
            session=True)
    p.add_argument("mode", choices=["read-write", "read-only"])
    add("reconcile", "report what is out of sync between sessions, containers and worktrees",
        cmd_reconcile)
    p = add("config", "show the effective configuration or the file paths", cmd_config)
    p.add_argument("what", choices=["show", "paths"])
    add("status", "health of the API, the database and the container engine", cmd_status)
    p = add("image", "build the agent image (claude, codex, git, tmux), or the appliance "
            "image, when its inputs changed", cmd_image, json_flag=False)
    p.add_argument("what", choices=["build"])
    p.add_argument("--appliance", action="store_true",
                   help="build the appliance image clauderon-appliance:<version> instead "
                        "(from a source checkout)")
    p.add_argument("--force", action="store_true", help="build even when up to date")
    p.add_argument("--check", action="store_true",
                   help="build nothing; exit 0 when up to date, 3 when a build is needed")
    p.add_argument("--tag", help="image tag (default clauderon-agent:latest, or "
                                 "clauderon-appliance:<version> with --appliance)")
    add("daemon", "run the appliance (API, proxy, reconciler, shipper) under supervisord in "
        "the foreground", cmd_daemon, json_flag=False)
    add("tui", "open the terminal UI: live session list, create, attach, archive, delete",
        cmd_tui, json_flag=False)
    add_signin_commands(add)
    return parser


def dispatch(args: argparse.Namespace) -> int:
    result: int = args.handler(args)
    return result
