"""``clauderon push``, ``merge``, ``pr``, ``send``, ``interrupt``, ``health`` and the
recovery commands: a session's branch on its remote, what is wrong with it, and its agent.

Pushing and merging happen on the appliance with the host's credential (never in the
container); these commands only ask through the API and print what it learned. A recovery
command says what it loses (the API's own words, :mod:`appliance.verbs`) and asks first.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from appliance.config import load_settings
from appliance.errors import InvalidInput
from cli import calls
from cli.client import ApiClient

RECOVERY = {
    "restart-agent": "restart the agent in its container",
    "recreate": "recreate the container (workspace and agent home kept)",
    "recreate-fresh": "recreate from the branch's last commit (new workspace and agent home)",
    "update-image": "recreate the container from the newest build of its image",
}


def _client() -> ApiClient:
    return ApiClient(load_settings().socket_path)


def _print(args: argparse.Namespace, data: Any, text: str) -> int:
    print(json.dumps(data, indent=2) if getattr(args, "json", False) else text)
    return 0


def pull_line(s: dict[str, Any]) -> str:
    pull = s.get("pull")
    if not pull:
        return f"{s['name']}  not pushed; no pull request seen"
    line = f"{s['name']}  {pull['summary']}"
    return line + (f"\n{pull['url']}" if pull.get("url") else "")


def cmd_push(args: argparse.Namespace) -> int:
    done = _client().run(calls.push(args.session, force=args.force, pr=args.pr,
                                    draft=args.draft))
    s = done["session"]
    return _print(args, done, f"pushed {s['branch']} at {done['commit'][:12]}\n"
                              + pull_line(s))


def cmd_pr(args: argparse.Namespace) -> int:
    client = _client()
    s = client.run(calls.refresh_pull(args.session) if args.refresh
                   else calls.session(args.session))
    text = pull_line(s)
    pull = s.get("pull") or {}
    for run in pull.get("runs", []):
        text += f"\n  {run['name']}: {run['conclusion'] or run['status']}"
    return _print(args, s.get("pull"), text)


def cmd_merge(args: argparse.Namespace) -> int:
    done = _client().run(calls.merge(args.session, args.method,
                                     delete_branch=args.delete_branch, head_sha=args.head))
    s = done["session"]
    return _print(args, done, f"merged ({args.method}) as {done['commit'][:12]}\n"
                              + pull_line(s))


def cmd_send(args: argparse.Namespace) -> int:
    text = " ".join(args.text)
    if text == "-":
        text = sys.stdin.read()
    if not text.strip():
        raise InvalidInput("say what to send: clauderon send NAME TEXT (or - for stdin)")
    _client().run(calls.send(args.session, text))
    return _print(args, {"sent": True}, f"sent to {args.session}")


def cmd_interrupt(args: argparse.Namespace) -> int:
    s = _client().run(calls.act(args.session, "interrupt"))
    return _print(args, s, f"{s['name']}  interrupted (Ctrl-C sent to the agent)")


def health_text(report: dict[str, Any], name: str) -> str:
    lines = [f"{name}  {'healthy' if report['ok'] else 'needs attention'}"]
    for c in report["checks"]:
        fix = f"  -> {c['fix']}" if c.get("fix") and c["verdict"] != "ok" else ""
        lines.append(f"  {c['name']:<10} {c['verdict']:<8} {c['detail']}{fix}")
    if report.get("suggested"):
        lines.append(f"suggested: clauderon {report['suggested']} {name}")
    return "\n".join(lines)


def cmd_health(args: argparse.Namespace) -> int:
    report = _client().run(calls.checkup(args.session))
    return _print(args, report, health_text(report, args.session))


def _recovery(verb: str) -> Any:
    def handler(args: argparse.Namespace) -> int:
        client = _client()
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
        return _print(args, s, f"{s['name']}  {verb}: asked")

    return handler


def add_commands(add: Any) -> None:
    p = add("push", "push the session's branch to its remote with the host's credential "
            "(never from inside the container); --pr opens a pull request", cmd_push,
            session=True)
    p.add_argument("--pr", action="store_true", help="open a pull request if none is open")
    p.add_argument("--draft", action="store_true", help="open it as a draft")
    p.add_argument("--force", action="store_true", help="replace the remote branch's history")
    p = add("pr", "the session's pull request: state, checks, review, mergeability", cmd_pr,
            session=True)
    p.add_argument("--refresh", action="store_true", help="ask GitHub again now")
    p = add("merge", "merge the session's open pull request on GitHub", cmd_merge,
            session=True)
    how = p.add_mutually_exclusive_group()
    for method, said in (("squash", "one commit on the base (the default)"),
                         ("merge", "a merge commit"), ("rebase", "the commits rebased")):
        how.add_argument(f"--{method}", dest="method", action="store_const", const=method,
                         help=said)
    p.set_defaults(method="squash")
    p.add_argument("--delete-branch", action="store_true",
                   help="delete the branch on the remote after (your repository keeps it)")
    p.add_argument("--head", metavar="SHA",
                   help="merge only if the pull request's head is this commit (the one "
                        "`clauderon pr` showed you)")
    p = add("send", "type a message to the session's agent and press Enter", cmd_send,
            session=True)
    p.add_argument("text", nargs="+", help="the message (- reads it from stdin)")
    add("interrupt", "press Ctrl-C in the agent's terminal (stops the turn under way)",
        cmd_interrupt, session=True)
    add("health", "the session's health: container, workspace, agent, proxy, hooks, model",
        cmd_health, session=True)
    for verb, text in RECOVERY.items():
        p = add(verb, text + " (says what it loses, then asks)", _recovery(verb), session=True)
        p.add_argument("-y", "--yes", action="store_true", help="do not ask")
