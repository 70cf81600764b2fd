"""The ``clauderon`` subcommands: a session's handlers, and the table of them all."""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
from pathlib import Path
from typing import Any

from appliance.errors import ClauderonError, InvalidInput
from cli import (
    backup_command,
    calls,
    completion,
    controls_commands,
    diffs,
    host_commands,
    logs_command,
    signin,
    timeline_command,
    workflow,
)
from cli.client import local_client
from cli.live import follow_session, watch_list, watching
from cli.ptyrelay import run_attach_filtered, run_filtered, stderr_file
from cli.render import session_detail, session_rows
from cli.status import warn_missing_credential
from cli.table import Command, Handler, OneOf, arg, build, emit, fit


def _failed(session: dict[str, Any] | None) -> None:
    if session is not None and session["phase"] == "failed":
        raise ClauderonError(f"{session['name']} failed: {session.get('status_reason')}")


# --- handlers -----------------------------------------------------------------------
def cmd_create(args: argparse.Namespace) -> int:
    body = calls.create_body(
        str(Path(args.repo[0]).expanduser().absolute()), args.repo[1:],
        prompt=args.prompt or "", print_mode=args.print_mode or None,
        **{key: getattr(args, key) for key in (
            "agent", "access_mode", "skip_permissions", "backend", "name", "model", "image",
            "cpu", "memory", "base", "custom_agent", "title", "description", "plan_mode")})
    client = local_client()
    if args.no_wait or args.json:
        session = client.run(calls.create(body))
        warn_missing_credential(client, args.agent)  # for a create that was taken
        return emit(args, session, f"{session['name']}  creating")
    with watching(client) as stream:
        session = client.run(calls.create(body))
        warn_missing_credential(client, args.agent)
        done = follow_session(stream, session,
                              until={"running", "stopped", "failed", "completed"},
                              label=f"{session['name']}  creating")
    assert done is not None
    _failed(done)
    if done.get("title"):
        print(fit(f"  {done['title']}"))
    print(f"  branch {done['branch']}, container {done['container_name']}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    client = local_client()
    listing = calls.sessions(args.filter or ("archived" if args.archived else None),
                             everything=args.all)
    if args.watch:
        return watch_list(client, listing)
    sessions = client.run(listing)
    if not sessions and not args.json:
        print("No sessions. Create one with: clauderon create --repo PATH --prompt TEXT"
              if not (args.filter or args.archived) else "No sessions.")
        return 0
    if args.json:
        return emit(args, sessions, "")
    costs = client.get("/api/usage", days="0")["sessions"]
    return emit(args, sessions, session_rows(sessions, costs))


def cmd_show(args: argparse.Namespace) -> int:
    s = local_client().run(calls.session(args.session))
    return emit(args, s, session_detail(s))


def _cannot_attach(s: dict[str, Any]) -> ClauderonError:
    return ClauderonError(f"{s['name']} is {s['phase']}; it cannot be attached"
                          + (f" ({s['status_reason']})" if s.get("status_reason") else ""))


def cmd_attach(args: argparse.Namespace) -> int:
    client = local_client()
    s = client.run(calls.session(args.session))
    if s["phase"] != "running":
        verb = next((v for v in calls.REVIVE if v in s["actions"]), None)
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
    if args.print_command:  # what it prints shows the terminal through the filter too
        print(shlex.join([*this_program(), "relay", "--", *command]))
        return 0
    _installed(command[0])
    print(f"attached to {s['name']}; detach with {info['detach_keys']} (the session keeps running)",
          file=sys.stderr)
    # The agent writes what this shows: it reaches the terminal through the filter only.
    with stderr_file() as errors:
        status = run_attach_filtered(command, errors)
        # The program's own words (the detach, a refusal), as text: never a sequence.
        sys.stderr.buffer.write(logs_command.printable(errors.read_bytes()[-4096:]))
    return status


def this_program() -> list[str]:
    """The argv that runs this CLI again from anywhere: its own path, or ``python -m
    cli`` when it was started that way."""
    me = sys.argv[0]
    found = shutil.which(me) if os.sep not in me else os.path.abspath(me)
    if found and os.access(found, os.X_OK) and not found.endswith(".py"):
        return [found]
    return [sys.executable, "-m", "cli"]


def cmd_relay(args: argparse.Namespace) -> int:
    argv = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    if not argv:
        raise InvalidInput("give the command to run after --, like: clauderon relay -- "
                           "docker attach NAME")
    _installed(argv[0])
    return run_filtered(argv)


def _installed(program: str) -> None:
    if shutil.which(program) is None:
        raise ClauderonError(f"{program} is not installed here; it is needed to attach")


def _simple(verb: str, doing: str, until: set[str]) -> Handler:
    def handler(args: argparse.Namespace) -> int:
        client = local_client()
        if args.json or args.no_wait:
            s = client.run(calls.act(args.session, verb))
            return emit(args, s, f"{s['name']}  {doing}")
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
    s = local_client().run(calls.edit(args.session, changes))
    return emit(args, s, f"{s['name']}  {s['title']}")


def cmd_retitle(args: argparse.Namespace) -> int:
    s = local_client().run(calls.act(args.session, "retitle"))
    return emit(args, s, f"{s['name']}  {s['title']}\n  {s['description']}")


def cmd_delete(args: argparse.Namespace) -> int:
    client = local_client()
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
    s = local_client().run(calls.access_mode(args.session, args.mode))
    return emit(args, s, f"{s['name']}  access mode {s['access_mode']}")


def cmd_reconcile(args: argparse.Namespace) -> int:
    report = local_client().run(calls.reconcile())
    if report["in_sync"]:
        return emit(args, report, "All sessions are in sync")
    lines = [f"{p['session'] or '-'}: {p['problem'].replace('_', ' ')}  {p['detail']}"
             for p in report["problems"]]
    emit(args, report, "\n".join(lines))
    return 1


# --- the table ----------------------------------------------------------------------
NO_WAIT = arg("--no-wait", action="store_true", help="return once accepted")
ACCESS_MODES = ["read-write", "read-only"]

#: The appliance's own commands; the other modules' tables follow them in :data:`TABLE`.
CORE: tuple[Command, ...] = (
    Command(name="create", help="create a session: worktree, branch and container for one "
            "agent", handler=cmd_create, args=(
        arg("-r", "--repo", required=True, action="append",
            help="a path inside a git repository; give it again (up to 5 in all) for a "
            "multi-repo session: the first is the primary (the working directory), each "
            "further one PATH[:NAME][@BASE] is mounted at /workspace/NAME (default: its "
            "folder's name) on its own session branch from BASE (default: its current "
            "branch)"),
        arg("-n", "--name", help="session name (default: from the prompt)"),
        arg("-p", "--prompt", help="the agent's first prompt"),
        arg("-a", "--agent", default="claude", choices=["claude", "codex", "gemini", "custom"],
            help="custom: an agent defined in config.toml, named by --custom-agent"),
        arg("--custom-agent", help="with --agent custom: the [agents.custom.<name>] to run"),
        arg("--plan", dest="plan_mode", action=argparse.BooleanOptionalAction, default=None,
            help="plan before editing (default: [agents] plan_mode in config.toml)"),
        arg("--print", dest="print_mode", action="store_true",
            help="answer the prompt once; the session then ends as completed"),
        arg("--title", help="short title (default: made from the prompt)"),
        arg("--description", help="what the session is for (default: from the prompt)"),
        arg("--model", help="the agent's model"),
        arg("--image", help="container image (default from config.toml)"),
        arg("--cpu", help="CPU limit, like 2 or 500m"),
        arg("--memory", help="memory limit, like 4g"),
        arg("--access-mode", default="read-write", choices=ACCESS_MODES),
        arg("--base", help="branch, tag or commit to start from (default: HEAD)"),
        arg("--backend", default="docker", choices=["docker", "kubernetes"],
            help="where the session runs (kubernetes: needs [kubernetes] in config.toml and "
            "a repository with an https remote)"),
        arg("--skip-permissions", action="store_true",
            help="run the agent in bypass-permissions mode"),
        NO_WAIT)),
    Command(name="list", help="list sessions with phase, agent status, branch, backend, age "
            "and cost; a line for each alert", handler=cmd_list, args=(
        OneOf((arg("-f", "--filter",
                   choices=["active", "waiting", "failed", "completed", "archived"],
                   help="what one of the UIs' filters shows (waiting: for you)"),
               arg("--archived", action="store_true",
                   help="only archived sessions (as --filter archived)"),
               arg("--all", action="store_true", help="every session"))),
        arg("-w", "--watch", action="store_true", help="keep the table up to date"))),
    Command(name="show", help="show one session in detail", handler=cmd_show, session=True),
    Command(name="attach", help="attach to a session's terminal (starts it first if stopped)",
            handler=cmd_attach, json=False, session=True, args=(
        arg("--print-command", action="store_true",
            help="print the attach command instead of running it (through the filter)"),)),
    Command(name="relay", help="run a command on a terminal of its own, showing its output "
            "through attach's filter of terminal sequences (what attach --print-command "
            "prints)", handler=cmd_relay, json=False, args=(
        arg("argv", nargs=argparse.REMAINDER, help="-- and the command"),)),
    *(Command(name=name, help=help_text, handler=_simple(name, doing, until), session=True,
              args=(NO_WAIT,))
      for name, help_text, doing, until in (
          ("archive", "archive a session: stop compute, keep worktree, branch and record",
           "archiving", {"archived"}),
          ("unarchive", "bring an archived session back", "unarchiving",
           {"running", "failed"}),
          ("start", "start a stopped session", "starting", {"running", "failed"}),
          ("stop", "stop a session's container (restart with start or attach)", "stopping",
           {"stopped"}),
          ("retry", "retry a failed session", "retrying", {"running", "stopped", "failed"}))),
    Command(name="delete", help="delete a session (container and worktree; the branch is "
            "kept)", handler=cmd_delete, json=False, session=True, args=(
        arg("-f", "--force", action="store_true", help="do not ask for confirmation"),
        NO_WAIT)),
    Command(name="edit", help="change a session's title or description", handler=cmd_edit,
            session=True, args=(arg("--title", help="the new title"),
                                arg("--description", help="the new description"))),
    Command(name="retitle", help="make a session's title and description again from its "
            "first prompt, with the title model", handler=cmd_retitle, session=True),
    Command(name="set-access-mode", help="switch a session's proxy access mode live",
            handler=cmd_access_mode, session=True, args=(arg("mode", choices=ACCESS_MODES),)),
    Command(name="reconcile", help="report what is out of sync between sessions, containers "
            "and worktrees", handler=cmd_reconcile),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="clauderon",
        description="Run AI coding agents side by side, each in its own container and "
                    "worktree, holding zero real credentials.")
    build(parser, TABLE)
    return parser


#: Every subcommand, in the order ``clauderon --help`` lists them.
TABLE: tuple[Command, ...] = (
    *CORE, *host_commands.TABLE, *logs_command.TABLE, *backup_command.TABLE, *signin.TABLE,
    *controls_commands.TABLE, *workflow.TABLE, completion.command(build_parser),
    *timeline_command.TABLE,
    *diffs.TABLE)
