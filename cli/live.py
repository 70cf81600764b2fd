"""The CLI's live parts: a request's progress and ``list --watch``, both from ``/ws/events``.

Theory of operation. The stream is opened *before* the request it follows: the API answers
``connected`` once its cursor is set, so every event the request causes comes after it and
none is missed. :func:`seen` says what one event means for the session followed (pure);
:func:`follow_session` prints its progress steps until a phase in ``until`` (or its
deletion); :func:`watch_list` re-reads the list when an event arrives and redraws it when
the text changed. Nothing polls: between events the client waits on the socket, pinging
after a silence. A lost stream (the API restarted) reconnects and resumes after the last
event seen; only a stream that stays down for :data:`DOWN_SECONDS` ends the command.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Generator, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from typing import Any

from appliance.errors import ClauderonError, ServiceUnavailable
from cli import calls
from cli.client import ApiClient
from cli.eventstream import Message
from cli.render import session_rows
from cli.table import CONTINUED, fit, inert, rows, width

Json = dict[str, Any]
#: How long a follower waits for a lost stream to come back before it gives up.
DOWN_SECONDS = 30.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Seen:
    """What one event says about the followed session."""

    step: str | None = None
    session: Json | None = None
    gone: bool = False
    #: Something to tell once the follow ends (a workspace kept aside: where, and why).
    note: str | None = None


def kept_note(event: Json) -> str | None:
    """What a person is told of a workspace a delete kept aside (None: not such an event)."""
    if event.get("kind") != "workspace_kept":
        return None
    payload = event.get("payload") or {}
    return (f"workspace kept at {payload.get('path')} ({payload.get('reason')}): take what "
            "you need, then remove it")


def seen(event: Json, session_id: str) -> Seen | None:
    """What ``event`` means for session ``session_id``; None when it is about another."""
    if event.get("session_id") != session_id:
        return None
    payload = event.get("payload") or {}
    if event.get("kind") == "deleted":
        return Seen(gone=True)
    if event.get("kind") == "progress":
        return Seen(step=str(payload.get("step")))
    note = kept_note(event)
    if note is not None:
        return Seen(note=note)
    snapshot = payload.get("session")
    return Seen(session=snapshot) if isinstance(snapshot, dict) else None


@contextmanager
def watching(client: ApiClient) -> Iterator[Generator[Message | None, None, None]]:
    """The event stream, connected: what happens from now on reaches it."""
    with closing(client.follow()) as stream:
        first = next(stream)
        if first is not None and first.get("type") == "lost":
            raise ServiceUnavailable(str(first["error"]))
        yield stream


class _Down:
    """Tells a lost stream that comes back from one that stays down."""

    def __init__(self) -> None:
        self.since: float | None = None

    def check(self, message: Message) -> None:
        if message.get("type") == "connected":
            self.since = None
        elif message.get("type") == "lost":
            now = time.monotonic()
            self.since = self.since or now
            if now - self.since > DOWN_SECONDS:
                raise ServiceUnavailable(str(message["error"]))


class _Line:
    """The progress line in the terminal's rows, drawn as it grows: rows of a line begin as
    the rows of what it began with, so only what is new is written."""

    def __init__(self, label: str) -> None:
        self.parts = [inert(f"{label}  ")]
        self.drawn = ""
        self.shown = False
        self._draw()

    def _draw(self) -> None:
        now = "\n".join(rows("".join(self.parts), width(), CONTINUED))
        print(now[len(self.drawn):], end="", flush=True)
        self.drawn = now

    def show(self, text: str) -> None:
        self.parts.append((" ▸ " if self.shown else "") + inert(text))
        self.shown = True
        self._draw()


def follow_session(stream: Iterator[Message | None], session: Json, *, until: set[str],
                   label: str, timeout: float = 600) -> Json | None:
    """Print ``label`` and the progress steps until the session reaches a phase in
    ``until``, then the events' notes; the session then, or None once it is deleted."""
    line = _Line(label)
    notes: list[str] = []
    deadline = time.monotonic() + timeout
    down = _Down()
    current: Json | None = session
    while current is None or current["phase"] not in until:
        if time.monotonic() > deadline:
            _end([])
            raise ClauderonError(f"{session['name']} did not finish within {timeout:.0f}s; "
                                 f"see `clauderon show {session['name']}`")
        message = next(stream)
        if message is not None:
            down.check(message)
        what = (seen(message["event"], session["id"])
                if message is not None and message.get("type") == "event" else None)
        if what is None:
            continue
        if what.gone:
            line.show("gone")
            _end(notes)
            return None
        if what.step:
            line.show(what.step)
        if what.note:
            notes.append(what.note)
        if what.session is not None:  # an event's view leaves out the prompt: kept
            current = {**(current or session), **what.session}
    line.show(current["phase"])
    _end(notes)
    return current


def _end(notes: list[str]) -> None:
    print()
    for note in notes:
        print(fit(f"  {note}"))


def watch_list(client: ApiClient, listing: calls.Call[list[Json]]) -> int:
    """Redraw the table whenever an event changes it, until interrupted."""
    tty = sys.stdout.isatty()
    shown: str | None = None
    sessions: list[Json] = []
    down = _Down()

    def draw(note: str = "") -> None:
        nonlocal shown
        text = (session_rows(sessions) if sessions else "No sessions.") + note
        if text != shown:
            if tty:
                sys.stdout.write("\x1b[H\x1b[2J")
            print(fit(text), flush=True)
            shown = text

    with watching(client) as stream:
        sessions = client.run(listing)
        draw()
        for message in stream:
            if message is None:
                draw()  # a quiet spell: the ages move on
                continue
            down.check(message)
            if message.get("type") == "lost":
                draw(f"\n(the event stream was lost: {message['error']}; reconnecting)")
                continue
            # An event, or a reconnection (the list may have changed meanwhile). The API
            # can go away between the event and this read: said like a lost stream, and
            # the next event or reconnection reads the list again.
            try:
                sessions = client.run(listing)
            except ServiceUnavailable as exc:
                draw(f"\n(the list could not be read: {exc.message}; waiting for the API)")
                continue
            draw()
    return 0
