"""``clauderon timeline NAME [-f]``: a session's one timeline in the terminal.

Prints the newest page (or the page before ``--before``), oldest first, one line an item
(:func:`line`, pure); ``-f`` then follows: it asks for the newest page again every
:data:`POLL_SECONDS` (the transcript and the audit log have no event to wait on) and prints
the items it has not printed, by their ``key``, walking back a few pages when more arrived
than one page holds. Everything printed goes through :func:`cli.table.inert`: the API
already strips control characters, and a terminal is worth a second look (and a character
it draws as nothing is shown as a mark).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

from appliance.timeline import plain
from cli import calls
from cli.client import local_client
from cli.table import Command, arg, inert, rows, width

Json = dict[str, Any]
POLL_SECONDS = 1.0
CATCH_UP_PAGES = 20  # pages walked back for items that arrived between two polls
LABEL = {"message": "MSG", "audit": "NET", "commit": "GIT", "event": "EVT"}
#: Before a user message the person did not send through the appliance (the agent may
#: write one; someone may type one in the session's terminal: they cannot be told apart).
WRITTEN = "[in the session's transcript, not sent from here] "
#: Where an item's words begin on its line (after its time, source and kind): a row that goes
#: on an item is indented to there.
WORDS_AT = 26


def line(item: Json) -> str:
    """One item as a line: time, source, kind, title (and the text's first line)."""
    when = str(item.get("ts", ""))[11:19]
    mark = "" if item.get("trusted_time", True) else "~"
    head = plain(str(item.get("title", "")), 200).replace("\n", " ")
    if item.get("source") == "message" and item.get("kind") == "user" \
            and item.get("from_person") is not True:
        head = WRITTEN + head
    body = plain(str(item.get("text", "")), 200).splitlines()
    extra = f"  — {body[0]}" if body and body[0] != head else ""
    return inert(f"{when}{mark or ' '} {LABEL.get(str(item.get('source')), '?')} "
                 f"{plain(str(item.get('kind', '')), 20):<11} {head}{extra}")


def new_items(pages: Iterable[list[Json]], seen: set[str]) -> list[Json]:
    """Items of ``pages`` (newest page first, each oldest first) not in ``seen``, oldest
    first; stops at the first page that holds a seen item (pure)."""
    found: list[Json] = []
    for items in pages:
        found = [i for i in items if i["key"] not in seen] + found
        if any(i["key"] in seen for i in items):
            break
    return found


def follow(fetch: Callable[[str | None], Json], seen: set[str],
           show: Callable[[Json], None], *, rounds: int | None = None,
           sleep: Callable[[float], None] = time.sleep) -> None:
    """Print what is new, again and again (``rounds``: how many times; None: for ever)."""
    done = 0
    while rounds is None or done < rounds:
        sleep(POLL_SECONDS)
        done += 1

        def pages() -> Iterable[list[Json]]:
            before: str | None = None
            for _ in range(CATCH_UP_PAGES):
                page = fetch(before)
                yield page["items"]
                if not page["more"]:
                    return
                before = page["cursor"]

        for item in new_items(pages(), seen):
            seen.add(item["key"])
            show(item)


def cmd_timeline(args: argparse.Namespace) -> int:
    client = local_client()

    def fetch(before: str | None) -> Json:
        return client.run(calls.timeline(args.session, before=before, limit=args.limit))

    page, columns = fetch(args.before), width()
    if args.json and not args.follow:
        print(json.dumps(page, indent=2))
        return 0
    show: Callable[[Json], None] = (
        (lambda i: print(json.dumps(i), flush=True)) if args.json
        else (lambda i: print("\n".join(rows(line(i), columns, WORDS_AT)), flush=True)))
    for note in page.get("notes", ()):
        print(f"clauderon: {inert(plain(str(note), 500))}", file=sys.stderr)
    for item in page["items"]:
        show(item)
    if not args.follow:
        if page["more"]:
            print(f"(older: clauderon timeline {args.session} --before {page['cursor']})")
        return 0
    follow(fetch, {i["key"] for i in page["items"]}, show)
    return 0


TABLE = (Command(
    name="timeline", help="a session's timeline: messages, proxied requests, commits and "
    "events in time order (-f follows)", handler=cmd_timeline, session=True, args=(
        arg("-f", "--follow", action="store_true", help="keep printing new items"),
        arg("-n", "--limit", type=int, default=50, help="items a page (1 to 200)"),
        arg("--before", help="the cursor a page printed, for older items"))),)
