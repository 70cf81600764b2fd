"""The ``clauderon`` subcommands: argument definitions and their handlers."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from appliance import nudge
from appliance.config import load_settings
from appliance.errors import ClauderonError, ConfigError, InvalidInput
from cli import backup, calls, completion, diffs, logs, signin
from cli.client import ApiClient
from cli.controls import add_commands as add_control_commands
from cli.follow import follow_session, watch_list, watching
from cli.render import session_detail, session_rows
from cli.signin import add_commands as add_signin_commands
from cli.status import cmd_status, warn_missing_credential
from cli.timeline import add_commands as add_timeline_commands
from cli.workflow import add_commands as add_workflow_commands


def _client() -> ApiClient:
    return ApiClient(load_settings().socket_path)


def _out(args: argparse.Namespace, data: Any, text: str) -> int:
    print(json.dumps(data, indent=2) if getattr(args, "json", False) else text)
    return 0


def _failed(session: dict[str, Any] | None) -> None:
    if session is not None and session["phase"] == "failed":
        raise ClauderonError(f"{session['name']} failed: {session.get('status_reason')}")


# --- handlers -----------------------------------------------------------------------
def cmd_create(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {
        "repo_path": str(Path(args.repo[0]).expanduser().absolute()),
        "prompt": args.prompt or "",
        "agent": args.agent,
        "access_mode": args.access_mode,
        "skip_permissions": args.skip_permissions,
        "backend": args.backend,
    }
    for key in ("name", "model", "image", "cpu", "memory", "base", "custom_agent", "title",
                "description", "plan_mode"):
        if getattr(args, key) is not None:
            body[key] = getattr(args, key)
    if args.print_mode:
        body["print_mode"] = True
    if len(args.repo) > 1:
        body["repos"] = [calls.parse_repo_arg(raw) for raw in args.repo[1:]]
    client = _client()
    if args.no_wait or args.json:
        session = client.run(calls.create(body))
        warn_missing_credential(client, args.agent)  # for a create that was taken
        return _out(args, session, f"{session['name']}  creating")
    with watching(client) as stream:
        session = client.run(calls.create(body))
        warn_missing_credential(client, args.agent)
        done = follow_session(stream, session,
                              until={"running", "stopped", "failed", "completed"},
                              label=f"{session['name']}  creating")
    assert done is not None
    _failed(done)
    if done.get("title"):
        print(f"  {done['title']}")
    print(f"  branch {done['branch']}, container {done['container_name']}")
    return 0


def _list_call(args: argparse.Namespace) -> calls.Call[list[dict[str, Any]]]:
    chosen = args.filter or ("archived" if args.archived else None)
    return calls.sessions(chosen, everything=args.all)


def cmd_list(args: argparse.Namespace) -> int:
    if args.watch:
        return watch_list(_client(), lambda: _list_call(args))
    client = _client()
    sessions = client.run(_list_call(args))
    if not sessions and not args.json:
        print("No sessions. Create one with: clauderon create --repo PATH --prompt TEXT"
              if not (args.filter or args.archived) else "No sessions.")
        return 0
    if args.json:
        return _out(args, sessions, "")
    costs = client.get("/api/usage", days="0")["sessions"]
    return _out(args, sessions, session_rows(sessions, costs))


def cmd_show(args: argparse.Namespace) -> int:
    s = _client().run(calls.session(args.session))
    return _out(args, s, session_detail(s))


#: What brings a session back to compute before an attach, in the order tried.
REVIVE = ("start", "unarchive")


def _cannot_attach(s: dict[str, Any]) -> ClauderonError:
    return ClauderonError(f"{s['name']} is {s['phase']}; it cannot be attached"
                          + (f" ({s['status_reason']})" if s.get("status_reason") else ""))


def cmd_attach(args: argparse.Namespace) -> int:
    client = _client()
    s = client.run(calls.session(args.session))
    if s["phase"] != "running":
        verb = next((v for v in REVIVE if v in s["actions"]), None)
        if verb is None:
            raise _cannot_attach(s)
        with watching(client) as stream:
            asked = client.run(calls.act(s["id"], verb))
            done = follow_session(stream, asked, until={"running", "failed"},
                                  label=f"{s['name']}  starting")
        assert done is not None
        s = done
    if "attach" not in s["actions"]:
        raise _cannot_attach(s)
    info = client.run(calls.attach(s["id"]))
    command = info["command"]
    if args.print_command:
        print(shlex.join(command))
        return 0
    if shutil.which(command[0]) is None:
        raise ClauderonError(f"{command[0]} is not installed here; it is needed to attach")
    print(f"attached to {s['name']}; detach with {info['detach_keys']} (the session keeps running)",
          file=sys.stderr)
    os.execvp(command[0], command)


def _simple(verb: str, doing: str, until: set[str]) -> Any:
    def handler(args: argparse.Namespace) -> int:
        client = _client()
        if args.json or args.no_wait:
            s = client.run(calls.act(args.session, verb))
            return _out(args, s, f"{s['name']}  {doing}")
        with watching(client) as stream:
            s = client.run(calls.act(args.session, verb))
            done = follow_session(stream, s, until=until, label=f"{s['name']}  {doing}")
        _failed(done)
        return 0

    return handler


def cmd_edit(args: argparse.Namespace) -> int:
    changes = {k: getattr(args, k) for k in ("title", "description")
               if getattr(args, k) is not None}
    if not changes:
        raise InvalidInput("give --title or --description (or both)")
    s = _client().run(calls.edit(args.session, changes))
    return _out(args, s, f"{s['name']}  {s['title']}")


def cmd_retitle(args: argparse.Namespace) -> int:
    s = _client().run(calls.retitle(args.session))
    return _out(args, s, f"{s['name']}  {s['title']}\n  {s['description']}")


def cmd_delete(args: argparse.Namespace) -> int:
    client = _client()
    s = client.run(calls.session(args.session))
    if not args.force:
        if not sys.stdin.isatty():
            raise InvalidInput(f"deleting {s['name']} needs confirmation: pass --force")
        answer = input(f"Delete {s['name']} (container and worktree; branch {s['branch']} is "
                       "kept)? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("kept")
            return 1
    if args.no_wait:
        client.run(calls.remove(s["id"]))
        print(f"{s['name']}  deleting")
        return 0
    with watching(client) as stream:
        s = client.run(calls.remove(s["id"]))
        follow_session(stream, s, until=set(), label=f"{s['name']}  deleting")
    print(f"  branch {s['branch']} kept")
    return 0


def cmd_access_mode(args: argparse.Namespace) -> int:
    s = _client().run(calls.access_mode(args.session, args.mode))
    return _out(args, s, f"{s['name']}  access mode {s['access_mode']}")


def cmd_reconcile(args: argparse.Namespace) -> int:
    report = _client().run(calls.reconcile())
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
    p.add_argument("-r", "--repo", required=True, action="append",
                   help="a path inside a git repository; give it again (up to 5 in all) "
                   "for a multi-repo session: the first is the primary (the working "
                   "directory), each further one PATH[:NAME][@BASE] is mounted at "
                   "/workspace/NAME (default: its folder's name) on its own session branch "
                   "from BASE (default: its current branch)")
    p.add_argument("-n", "--name", help="session name (default: from the prompt)")
    p.add_argument("-p", "--prompt", help="the agent's first prompt")
    p.add_argument("-a", "--agent", default="claude",
                   choices=["claude", "codex", "gemini", "custom"],
                   help="custom: an agent defined in config.toml, named by --custom-agent")
    p.add_argument("--custom-agent", help="with --agent custom: the [agents.custom.<name>] "
                   "to run")
    p.add_argument("--plan", dest="plan_mode", action=argparse.BooleanOptionalAction,
                   default=None, help="plan before editing (default: [agents] plan_mode in "
                   "config.toml)")
    p.add_argument("--print", dest="print_mode", action="store_true",
                   help="answer the prompt once; the session then ends as completed")
    p.add_argument("--title", help="short title (default: made from the prompt)")
    p.add_argument("--description", help="what the session is for (default: from the "
                   "prompt)")
    p.add_argument("--model", help="the agent's model")
    p.add_argument("--image", help="container image (default from config.toml)")
    p.add_argument("--cpu", help="CPU limit, like 2 or 500m")
    p.add_argument("--memory", help="memory limit, like 4g")
    p.add_argument("--access-mode", default="read-write", choices=["read-write", "read-only"])
    p.add_argument("--base", help="branch, tag or commit to start from (default: HEAD)")
    p.add_argument("--backend", default="docker", choices=["docker", "kubernetes"],
                   help="where the session runs (kubernetes: needs [kubernetes] in config.toml "
                        "and a repository with an https remote)")
    p.add_argument("--skip-permissions", action="store_true",
                   help="run the agent in bypass-permissions mode")
    p.add_argument("--no-wait", action="store_true", help="return once accepted")

    p = add("list", "list sessions with phase, agent status, branch, backend, age and cost; "
            "a line for each alert", cmd_list)
    shown = p.add_mutually_exclusive_group()
    shown.add_argument("-f", "--filter",
                       choices=["active", "waiting", "failed", "completed", "archived"],
                       help="what one of the UIs' filters shows (waiting: for you)")
    shown.add_argument("--archived", action="store_true",
                       help="only archived sessions (as --filter archived)")
    shown.add_argument("--all", action="store_true", help="every session")
    p.add_argument("-w", "--watch", action="store_true", help="keep the table up to date")
    add("show", "show one session in detail", cmd_show, session=True)
    p = add("attach", "attach to a session's terminal (starts it first if stopped)",
            cmd_attach, json_flag=False, session=True)
    p.add_argument("--print-command", action="store_true",
                   help="print the attach command instead of running it")
    for name, help_text, doing, until in (
        ("archive", "archive a session: stop compute, keep worktree, branch and record",
         "archiving", {"archived"}),
        ("unarchive", "bring an archived session back", "unarchiving", {"running", "failed"}),
        ("start", "start a stopped session", "starting", {"running", "failed"}),
        ("stop", "stop a session's container (restart with start or attach)", "stopping",
         {"stopped"}),
        ("retry", "retry a failed session", "retrying", {"running", "stopped", "failed"}),
    ):
        p = add(name, help_text, _simple(name, doing, until), session=True)
        p.add_argument("--no-wait", action="store_true", help="return once accepted")
    p = add("delete", "delete a session (container and worktree; the branch is kept)",
            cmd_delete, json_flag=False, session=True)
    p.add_argument("-f", "--force", action="store_true", help="do not ask for confirmation")
    p.add_argument("--no-wait", action="store_true", help="return once accepted")
    p = add("edit", "change a session's title or description", cmd_edit, session=True)
    p.add_argument("--title", help="the new title")
    p.add_argument("--description", help="the new description")
    add("retitle", "make a session's title and description again from its first prompt, "
        "with the title model", cmd_retitle, session=True)
    p = add("set-access-mode", "switch a session's proxy access mode live", cmd_access_mode,
            session=True)
    p.add_argument("mode", choices=["read-write", "read-only"])
    add("reconcile", "report what is out of sync between sessions, containers and worktrees",
        cmd_reconcile)
    p = add("config", "show the effective configuration or the file paths", cmd_config)
    p.add_argument("what", choices=["show", "paths"])
    add("status", "health of the API, the database and the container engine; the "
        "credentials the proxy loaded (names, sources, masked values) and which agents can "
        "work with them", cmd_status)
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
    p = add("daemon", "run the appliance (API, proxy, reconciler, shipper) under supervisord "
            "in the foreground", cmd_daemon, json_flag=False)
    p.add_argument("--sign-in", action="store_true",
                   help="once the API answers, print (and on a desktop open) a one-time "
                        "sign-in link for the web UI, as `clauderon web` does")
    add("tui", "open the terminal UI: live session list, create, attach, archive, delete",
        cmd_tui, json_flag=False)
    logs.add_command(add)
    backup.add_commands(add)
    add_signin_commands(add)
    add_control_commands(add)
    add_workflow_commands(add)
    completion.add_command(add, build_parser)
    add_timeline_commands(add)
    diffs.add_command(add)
    return parser


def dispatch(args: argparse.Namespace) -> int:
    result: int = args.handler(args)
    return result
