"""Reading an agent's logs from its home, never following the agent out.

The session's agent home (``homes/<session id>`` on the host, the container's
``/home/agent``) is written by the agent while the API reads it, so every name and byte in
it is the agent's. It is read through the session's workspace reader
(:mod:`appliance.readers`): on the host through :mod:`appliance.safefs` (each component
opened relative to the folder before it without following a symlink, files opened without
blocking and refused unless regular, folders listed through their descriptor), or inside a
Kubernetes session's pod through :mod:`appliance.podfs` (the same rules, by exec). And
everything the agent can inflate is bounded per answer:

* Codex's rollout folders (``.codex/sessions/YYYY/MM/DD/rollout-*.jsonl``): at most
  :data:`MAX_ENTRIES` entries looked at and :data:`MAX_FILES` files kept. More is refused
  (409) rather than cut: a partial list would shift the cursor of every file after the cut.
* At most :data:`MAX_READ` bytes, ``MAX_LINES`` lines and ``MAX_VALUES`` JSON values
  (counted before a line is parsed) parsed per answer.
* A line that does not end within :data:`MAX_READ` bytes is passed over: its end is looked
  for (without keeping the bytes) through at most :data:`MAX_SKIP` bytes an answer, and the
  cursor moves past what was looked at, so polling gets past a gigabyte line in a few answers
  instead of re-reading its start for ever.
* Lines themselves (depth, numbers) are bounded by :mod:`appliance.agents.logs`.

Theory of the cursor: a byte offset into the agent's log files taken in order; only
complete lines are consumed, so polling never returns a message twice or half. A symlink,
FIFO or device where a log should be is the agent's doing, not the client's: 409 with what
was found there. No log (yet) is an empty answer. Neighbours: ``api/transcript.py`` serves.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TypeVar

from appliance import safefs
from appliance.agents import claude_setup, gemini_setup
from appliance.agents.logs import MAX_LINES, Budget, Message, parse_lines
from appliance.agents.modes import PRINT_OUTPUT
from appliance.contract import workdir_for
from appliance.errors import ClauderonError, Conflict, InvalidInput, NotFound
from appliance.readers import OpenedFile, Tree
from appliance.sessions import Agent, Session

MAX_READ = 4 * 1024 * 1024  # bytes parsed per answer; a longer line is passed over
MAX_SKIP = 64 * 1024 * 1024  # bytes of an over-long line looked through per answer
MAX_FILES = 1000  # Codex rollout files (one per run of the CLI)
MAX_ENTRIES = 10_000  # folder entries looked at to find them
CODEX_SESSIONS = (".codex", "sessions")
T = TypeVar("T")
DATED = re.compile(r"[0-9]{1,4}")  # YYYY, MM, DD
ROLLOUT = re.compile(r"rollout-[A-Za-z0-9._:-]{1,200}\.jsonl")
_PROJECT = re.compile(r"[A-Za-z0-9._-]{1,200}")  # Gemini's folder per project
_CHATS = re.compile(r"chats")
GEMINI_CHAT = re.compile(r"session-[A-Za-z0-9._:-]{1,200}\.jsonl")


@dataclass(frozen=True, slots=True, kw_only=True)
class LogFile:
    parts: tuple[str, ...]  # relative to the home
    size: int | None  # from the listing (``lstat``); None: learnt when opened


@dataclass(frozen=True, slots=True, kw_only=True)
class Page:
    messages: tuple[Message, ...]
    cursor: int


def read_transcript(home: Callable[[], AbstractContextManager[Tree]], session: Session,
                    cursor: int) -> Page:
    """The messages after ``cursor`` in ``session``'s logs in its home (``home`` opens it:
    a workspace reader's ``home``), and the cursor to pass next time."""
    return in_home(home, lambda tree: read_after(tree, session.agent,
                                                 log_files(tree, session), cursor),
                   Page(messages=(), cursor=cursor))


def in_home(home: Callable[[], AbstractContextManager[Tree]], read: Callable[[Tree], T],
            nothing: T) -> T:
    """``read`` of the agent's home as ``home`` opens it: ``nothing`` when there is no log
    (yet, or it just moved away) or no container was ever made; 409 when what the agent put
    where its log is cannot be read (a symlink, a FIFO, a name the kernel refuses)."""
    try:
        with home() as tree:
            try:
                return read(tree)
            except NotFound:
                return nothing
            except Conflict:
                raise
            except ClauderonError as exc:
                raise Conflict(f"the agent's log cannot be read: {exc.message}. Only plain "
                               "folders and regular files are read in the agent's "
                               "home") from None
    except InvalidInput:  # only from home(): the session's container was never made
        return nothing


def logs_end(home: Callable[[], AbstractContextManager[Tree]], session: Session) -> int:
    """Where ``session``'s logs end now, their sizes added up (a line that ends past it was
    written after): 0 when there are none, or none that can be read."""
    try:
        with home() as tree:
            total = 0
            for log in log_files(tree, session):
                with tree.open_file(log.parts) as f:
                    total += f.size
            return total
    except ClauderonError:
        return 0


def log_files(tree: Tree, session: Session) -> list[LogFile]:
    if session.agent is Agent.CLAUDE:
        folder = claude_setup.project_folder(workdir_for(session))
        return [LogFile(parts=(".claude", "projects", folder, f"{session.id}.jsonl"),
                        size=None)]
    if session.agent is Agent.GEMINI:
        return dated_files(tree, gemini_setup.CHATS, (_PROJECT, _CHATS), GEMINI_CHAT,
                           "Gemini")
    if session.agent is Agent.CUSTOM:
        return [LogFile(parts=tuple(PRINT_OUTPUT.split("/")), size=None)]
    # .codex/sessions/*/*/*/rollout-*.jsonl
    return dated_files(tree, CODEX_SESSIONS, (DATED, DATED, DATED), ROLLOUT, "Codex")


def dated_files(tree: Tree, top: tuple[str, ...], levels: tuple[re.Pattern[str], ...],
                leaf: re.Pattern[str], who: str) -> list[LogFile]:
    """The files named ``leaf`` in the folders ``levels`` below ``top``, in path order:
    real folders and regular files only (a symlink or FIFO is not a log, and is never
    followed or opened)."""
    budget = MAX_ENTRIES

    def entries(parts: tuple[str, ...], kind: safefs.Kind,
                name: re.Pattern[str]) -> list[safefs.Entry]:
        nonlocal budget
        listing = tree.list_dir(parts, limit=budget)
        budget -= len(listing.entries)
        if listing.truncated:
            raise Conflict(f"the agent's {who} logs under ~/{'/'.join(top)} hold "
                           f"more than {MAX_ENTRIES} entries; they are not read until the "
                           "agent removes what is not its logs")
        return sorted((e for e in listing.entries
                       if e.kind is kind and name.fullmatch(e.name)), key=lambda e: e.name)

    folders: list[tuple[str, ...]] = [top]
    for level in levels:
        folders = [(*p, e.name) for p in folders for e in entries(p, safefs.Kind.DIR, level)]
    files = [LogFile(parts=(*p, e.name), size=e.size)
             for p in folders for e in entries(p, safefs.Kind.FILE, leaf)]
    if len(files) > MAX_FILES:
        raise Conflict(f"the agent's {who} logs under ~/{'/'.join(top)} are "
                       f"{len(files)} files; at most {MAX_FILES} are read")
    return files


def read_after(tree: Tree, agent: Agent, files: list[LogFile], cursor: int) -> Page:
    """Messages after ``cursor`` in the concatenation of ``files``, and the next cursor."""
    out: list[Message] = []
    base = 0  # where the current file starts in the concatenation
    budget = MAX_READ
    lines = MAX_LINES
    values = Budget()
    for log in files:
        if budget <= 0 or lines <= 0 or values.values <= 0:
            break
        if log.size is not None and cursor >= base + log.size:
            base += log.size  # wholly before the cursor: no need to open it
            continue
        with tree.open_file(log.parts) as f:
            if cursor >= base + f.size:
                base += f.size
                continue
            start = cursor - base
            data = f.read_at(start, min(budget, f.size - start))
            messages, used = parse_lines(agent, data, limit=lines, base=base + start,
                                         budget=values)
            lines -= data.count(b"\n", 0, used)
            if not used and len(data) >= MAX_READ:
                used = len(data) + _line_end(f, start + len(data))
        out += messages
        budget -= len(data)
        cursor = base + start + used
        if start + used < f.size:
            break  # a line still being written, or enough for one answer
        base += f.size
    return Page(messages=tuple(out), cursor=cursor)


def _line_end(f: OpenedFile, offset: int) -> int:
    """How many bytes from ``offset`` through the next newline, looking through at most
    :data:`MAX_SKIP` bytes and never past the size ``f`` was opened with (the cursor counts
    in those sizes); all that was looked through when no newline is in it."""
    looked = 0
    while looked < MAX_SKIP and offset + looked < f.size:
        chunk = f.read_at(offset + looked,
                          min(safefs.CHUNK, MAX_SKIP - looked, f.size - offset - looked))
        if not chunk:
            break  # the file shrank under us
        end = chunk.find(b"\n")
        if end >= 0:
            return looked + end + 1
        looked += len(chunk)
    return looked
