"""``clauderon push``, ``merge``, ``pr``, ``send``, ``interrupt``, ``health`` and the
recovery commands: a session's branch on its remote, what is wrong with it, and its agent.

Pushing and merging happen on the appliance with the host's credential (never in the
container); these commands only ask through the API and print what it learned. A recovery
command says what it loses (the API's own words, :mod:`appliance.verbs`) and asks first.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from appliance.errors import Conflict, InvalidInput
from cli import calls
from cli.client import local_client
from cli.table import Command, Handler, OneOf, arg, emit, inert

RECOVERY = {
    "restart-agent": "restart the agent in its container",
    "recreate": "recreate the container (workspace and agent home kept)",
    "recreate-fresh": "recreate from the branch's last commit (new workspace and agent home)",
    "update-image": "recreate the container from the newest build of its image",
}


def pull_line(s: dict[str, Any]) -> str:
    pull = s.get("pull")
    if not pull:
        return f"{s['name']}  not pushed; no pull request seen"
    line = f"{s['name']}  {pull['summary']}"
    return line + (f"\n{pull['url']}" if pull.get("url") else "")


def looked(body: dict[str, Any]) -> tuple[str, str]:
    """The commit a push sends (the diff's committed part) and how to name it to the person:
    its id, how many files it changes against the base, and its subject (inert)."""
    committed = body.get("committed") or {}
    commit = str(committed.get("commit") or "")
    if not commit:
        raise InvalidInput("nothing is committed on the session's branch yet: nothing to push")
    n = len(committed.get("files") or [])
    said = str(committed.get("subject") or "")
    return commit, (f"{commit} ({n} file{'' if n == 1 else 's'} against "
                    f"{inert(str(body.get('base_ref')))})" + (f": {inert(said)}" if said else ""))


def cmd_push(args: argparse.Namespace) -> int:
    client = local_client()
    commit = args.commit
    if commit is None:
        # Pinned to what is shown now: on a terminal, asked first; otherwise said first.
        commit, said = looked(client.run(calls.diff(args.session, ".")))
        if sys.stdin.isatty() and not args.yes:
            print(f"the branch of {args.session} is at {said}", file=sys.stderr)
            if input("push it? [y/N] ").strip().lower() != "y":
                print("nothing pushed", file=sys.stderr)
                return 1
        else:
            print(f"pushing {said}", file=sys.stderr)
    try:
        done = client.run(calls.push(args.session, force=args.force, pr=args.pr,
                                     draft=args.draft, commit=commit))
    except Conflict as exc:
        if exc.field != "commit":
            raise
        raise Conflict(f"nothing pushed: the agent committed since you looked ({exc.message}). "
                       f"Read `clauderon diff {args.session}` again, then push the commit it "
                       "names with --commit", field="commit") from exc
    s = done["session"]
    return emit(args, done, f"pushed {s['branch']} at {done['commit'][:12]}\n" + pull_line(s))


def cmd_pr(args: argparse.Namespace) -> int:
    client = local_client()
    s = client.run(calls.refresh_pull(args.session) if args.refresh
                   else calls.session(args.session))
    text = pull_line(s)
    pull = s.get("pull") or {}
    for run in pull.get("runs", []):
        text += f"\n  {run['name']}: {run['conclusion'] or run['status']}"
    return emit(args, s.get("pull"), text)


def cmd_merge(args: argparse.Namespace) -> int:
    done = local_client().run(calls.merge(args.session, args.method,
                                     delete_branch=args.delete_branch, head_sha=args.head))
    return emit(args, done, f"merged ({args.method}) as {done['commit'][:12]}\n"
                + pull_line(done["session"]))


def cmd_send(args: argparse.Namespace) -> int:
    text = " ".join(args.text)
    if text == "-":
        text = sys.stdin.read()
    if not text.strip():
        raise InvalidInput("say what to send: clauderon send NAME TEXT (or - for stdin)")
    local_client().run(calls.send(args.session, text))
    return emit(args, {"sent": True}, f"sent to {args.session}")


def cmd_interrupt(args: argparse.Namespace) -> int:
    s = local_client().run(calls.act(args.session, "interrupt"))
    return emit(args, s, f"{s['name']}  interrupted (Ctrl-C sent to the agent)")


def health_text(report: dict[str, Any], name: str) -> str:
    lines = [f"{name}  {'healthy' if report['ok'] else 'needs attention'}"]
    for c in report["checks"]:
        fix = f"  -> {c['fix']}" if c.get("fix") and c["verdict"] != "ok" else ""
        lines.append(f"  {c['name']:<10} {c['verdict']:<8} {c['detail']}{fix}")
    if report.get("suggested"):
        lines.append(f"suggested: clauderon {report['suggested']} {name}")
    return "\n".join(lines)


def cmd_health(args: argparse.Namespace) -> int:
    report = local_client().run(calls.checkup(args.session))
    return emit(args, report, health_text(report, args.session))


def _recovery(verb: str) -> Handler:
    def handler(args: argparse.Namespace) -> int:
        client = local_client()
        report = client.run(calls.checkup(args.session))
        action = next(a for a in report["actions"] if a["verb"] == verb)
        if not action["offered"]:
            raise InvalidInput(f"cannot {verb} {args.session}: {action['why_not']}")
        if not args.yes:
            print(action["warning"], file=sys.stderr)
            if input(f"{RECOVERY[verb]} for {args.session}? [y/N] ").strip().lower() != "y":
                print("nothing done", file=sys.stderr)
                return 1
        s = client.run(calls.act(args.session, verb))
        return emit(args, s, f"{s['name']}  {verb}: asked")

    return handler


TABLE = (
    Command(name="push", help="push the session's branch to its remote with the host's "
            "credential (never from inside the container); --pr opens a pull request",
            handler=cmd_push, session=True, args=(
        arg("--pr", action="store_true", help="open a pull request if none is open"),
        arg("--draft", action="store_true", help="open it as a draft"),
        arg("--force", action="store_true", help="replace the remote branch's history"),
        arg("--commit", metavar="SHA", help="push only if the branch is at this commit (the "
            "one `clauderon diff` showed you); without it, the commit read now is shown and "
            "asked for on a terminal, else said and pushed"),
        arg("-y", "--yes", action="store_true", help="do not ask: push the commit read now "
            "(said first)"))),
    Command(name="pr", help="the session's pull request: state, checks, review, "
            "mergeability", handler=cmd_pr, session=True,
            args=(arg("--refresh", action="store_true", help="ask GitHub again now"),)),
    Command(name="merge", help="merge the session's open pull request on GitHub",
            handler=cmd_merge, session=True, args=(
        # The first one's default is the method when none is given.
        OneOf(tuple(arg(f"--{method}", dest="method", action="store_const", const=method,
                        help=said, **({"default": "squash"} if method == "squash" else {}))
                    for method, said in (("squash", "one commit on the base (the default)"),
                                         ("merge", "a merge commit"),
                                         ("rebase", "the commits rebased")))),
        arg("--delete-branch", action="store_true",
            help="delete the branch on the remote after (your repository keeps it)"),
        arg("--head", metavar="SHA", help="merge only if the pull request's head is this "
            "commit (the one `clauderon pr` showed you)"))),
    Command(name="send", help="type a message to the session's agent and press Enter",
            handler=cmd_send, session=True,
            args=(arg("text", nargs="+", help="the message (- reads it from stdin)"),)),
    Command(name="interrupt", help="press Ctrl-C in the agent's terminal (stops the turn "
            "under way)", handler=cmd_interrupt, session=True),
    Command(name="health", help="the session's health: container, workspace, agent, proxy, "
            "hooks, model", handler=cmd_health, session=True),
    *(Command(name=verb, help=text + " (says what it loses, then asks)",
              handler=_recovery(verb), session=True,
              args=(arg("-y", "--yes", action="store_true", help="do not ask"),))
      for verb, text in RECOVERY.items()),
)
