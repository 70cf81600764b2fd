"""Which of a transcript's user messages the person sent through the appliance.

The agent writes its own transcript, so a ``user`` line in it may be a message the person
sent through the appliance (``POST .../message``: the CLI, the web UI's chat box, the TUI),
something typed in the session's terminal, or the agent's own writing; the last two cannot
be told apart. The API keeps what it sends (a digest of the text, when, which session:
:mod:`appliance.sentstore`), and a user message is the person's only when it matches one of
those: the same text, each sent message matched by one position of the transcript at most,
and only by a line that starts where the logs ended when it was sent or later (a line the
agent wrote before, whole or but its newline, waiting for the person to say the same, is
not it). The first position read
that matches a sent message keeps it (the claim is stored), so a read from any cursor marks
the same message. Pure; the store's shell is
:mod:`appliance.sentstore`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass


def digest(text: str) -> str:
    """The digest kept of a sent text, and looked for in the transcript: the agent records
    the typed text without the whitespace at its ends, its line ends as ``\\n``."""
    normal = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    return hashlib.sha256(normal.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True, slots=True)
class Sent:
    id: int  # in the order they were sent
    digest: str
    claimed: int | None  # the transcript position it matched, once one did
    floor: int = 0  # where the logs ended (a byte offset) when it was sent


def match(sent: Sequence[Sent], asked: Sequence[tuple[int, int, str]]
          ) -> tuple[frozenset[int], dict[int, int]]:
    """Which of ``asked`` (user messages: position in the transcript, where its line starts,
    digest of the text)
    the person sent, and the claims that makes (sent id: position). A position that claimed
    a sent message keeps it, and is the person's only while its text is still the same; any
    other takes the oldest unclaimed sent message of its text sent before its line was
    begun (its floor at or before the line's start), in the order asked."""
    held = {s.claimed: s for s in sent if s.claimed is not None}
    free: dict[str, list[Sent]] = {}
    for s in sorted(sent, key=lambda s: s.id):
        if s.claimed is None:
            free.setdefault(s.digest, []).append(s)
    mine: set[int] = set()
    claims: dict[int, int] = {}
    for pos, start, said in asked:
        if pos in held:
            if held[pos].digest == said:
                mine.add(pos)
            continue
        waiting = free.get(said, [])
        first = next((s for s in waiting if s.floor <= start), None)
        if first is not None:
            waiting.remove(first)
            claims[first.id] = pos
            mine.add(pos)
    return frozenset(mine), claims
