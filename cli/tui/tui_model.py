"""What the TUI shows, decided without a terminal: filters, search, rows, events, fuzzy match.

Pure functions over the API's JSON (the wire model's ``Session`` shape). The screens in
:mod:`cli.tui.tui_app` and :mod:`cli.tui.create` call these and only draw the results, so the
rules are unit-tested without Textual. Which sessions a filter shows is the API's to say
(each session's ``filters``, the same field the web UI reads), and which keys act on a
session is its ``actions``: nothing here keeps a phase set of its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from cli import calls
from cli.render import age

Session = dict[str, Any]

COLUMNS = ("NAME", "PHASE", "STATUS", "AGENT", "BACKEND", "BRANCH", "AGE")


class Filter(StrEnum):
    """The API's list filters (``Session.filters``), and ``all``."""

    ACTIVE = "active"
    ARCHIVED = "archived"
    FAILED = "failed"
    WAITING = "waiting"
    COMPLETED = "completed"
    ALL = "all"

    def next(self) -> Filter:
        order = list(Filter)
        return order[(order.index(self) + 1) % len(order)]


def keep(session: Mapping[str, Any], chosen: Filter, query: str = "") -> bool:
    """Whether ``session`` is listed under the filter ``chosen`` and the search ``query``."""
    if chosen is not Filter.ALL and str(chosen) not in session.get("filters", ()):
        return False
    words = query.lower().split()
    haystack = " ".join(str(session.get(k) or "") for k in
                        ("name", "title", "branch", "repo_path", "agent", "phase",
                         "initial_prompt")).lower()
    return all(w in haystack for w in words)


def visible(sessions: Iterable[Session], chosen: Filter, query: str = "") -> list[Session]:
    """The listed sessions, newest first (ties by name, so the order is stable)."""
    chosen_ones = [s for s in sessions if keep(s, chosen, query)]
    chosen_ones.sort(key=lambda s: s.get("name", ""))
    chosen_ones.sort(key=lambda s: s.get("created_at") or "", reverse=True)
    return chosen_ones


def phase_text(session: Mapping[str, Any]) -> str:
    phase = str(session.get("phase", "?"))
    if phase == "creating" and session.get("status_reason"):
        return "creating!"  # retrying after a failure; the detail pane says why
    return phase


def row(session: Mapping[str, Any], now: datetime) -> tuple[str, ...]:
    # "!" marks a session the proxy raised an alert on (a honeytoken), holds back (budget)
    # or sees failing to reach its model, or whose agent exited (the detail pane says why).
    state = str(session.get("agent_state") or session.get("agent_status", "unknown"))
    flagged = session.get("alert") or session.get("budget_exceeded") or \
        state in ("model_failing", "exited")
    badge = "! " if flagged else ""
    return (
        badge + str(session.get("name", "")),
        phase_text(session),
        state.replace("_", "-"),
        str(session.get("agent", "")),
        str(session.get("backend", "docker")),
        str(session.get("branch", "")),
        age(session.get("created_at"), now),
    )


#: What a session's view carries that no screen of the TUI shows: a change to it alone
#: redraws nothing (every hook moves ``updated_at``, and an agent sends hundreds a minute).
UNSHOWN = frozenset({"updated_at"})


def apply_event(sessions: dict[str, Session], event: Mapping[str, Any]) -> bool:
    """Fold one ``/ws/events`` event into ``sessions`` (by id); True when something the TUI
    shows changed (a move of :data:`UNSHOWN` fields alone is kept, but is no change)."""
    payload = event.get("payload") or {}
    if event.get("kind") == "deleted":
        sid = payload.get("id") or event.get("session_id")
        return sessions.pop(str(sid), None) is not None
    snapshot = payload.get("session")
    if not isinstance(snapshot, dict) or "id" not in snapshot:
        return False
    # An event's view leaves out what never changes (the prompt): what is known stays.
    before = sessions.get(snapshot["id"])
    merged = {**(before or {"initial_prompt": ""}), **snapshot}
    sessions[snapshot["id"]] = merged
    return before is None or _shown(before) != _shown(merged)


#: Event kinds whose one effect is the session view they carry (an agent's hook): one that
#: moved only :data:`UNSHOWN` fields changes nothing the detail pane shows either, so the
#: pane is not read again for it (a flood of them would read the diff and audit each time).
VIEW_ONLY = frozenset({"hook"})


def detail_moved(event: Mapping[str, Any], changed: bool) -> bool:
    """Whether ``event`` (``changed``: what :func:`apply_event` said of it) may have moved
    what the detail pane shows of its session."""
    return changed or event.get("kind") not in VIEW_ONLY


def _shown(session: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in session.items() if k not in UNSHOWN}


def fuzzy_score(query: str, candidate: str) -> int | None:
    """A subsequence match score (higher is better), or None when ``query`` does not match.

    Consecutive letters and letters right after a separator score more, so ``cl/api``
    prefers ``.../clauderon/api`` over a path that merely contains the letters.
    """
    if not query:
        return 0
    text = candidate.lower()
    score, pos, run = 0, 0, 0
    for ch in query.lower():
        found = text.find(ch, pos)
        if found < 0:
            return None
        run = run + 1 if found == pos else 0
        bonus = 3 if found == 0 or text[found - 1] in "/-_. " else 0
        score += 1 + run * 2 + bonus
        pos = found + 1
    return score * 100 - len(text)


def fuzzy_rank(query: str, candidates: Iterable[str]) -> list[str]:
    scored = [(score, c) for c in candidates if (score := fuzzy_score(query, c)) is not None]
    return [c for _, c in sorted(scored, key=lambda x: -x[0])]  # stable: ties keep their order


@dataclass(frozen=True, slots=True)
class Key:
    """A key of the session list. ``verbs``: those of the selected session's ``actions``
    that let it act (none: it needs no session, or says itself why it cannot act). ``done``
    marks a verb the API does as asked (``POST .../<name>``), with what to say after (the
    session's fields fill it in): one action runs them all."""

    key: str
    name: str
    label: str
    verbs: tuple[str, ...] = ()
    show: bool = True
    display: str | None = None
    priority: bool = False
    done: str = ""

    @property
    def action(self) -> str:
        return f"verb({self.name!r})" if self.done else self.name


#: The session list's keys, in the order the footer and help show them. Attach starts a
#: stopped session, or unarchives an archived one, first.
KEYS = (
    Key("n", "create", "New"),
    Key("enter", "attach", "Attach", ("attach", *calls.REVIVE), display="⏎", priority=True),
    Key("a", "archive", "Archive", ("archive",), done="archiving (worktree and branch kept)"),
    Key("u", "unarchive", "Unarchive", ("unarchive",), done="unarchiving"),
    Key("d", "delete", "Delete", ("delete",)),
    Key("m", "access_mode", "Mode", ("access-mode",)),
    Key("e", "edit_title", "Title", show=False),
    Key("t", "retitle", "Retitle", show=False, done="titled {title!r}"),
    Key("r", "reconcile", "Reconcile"),
    Key("l", "timeline", "Timeline"),
    Key("f", "next_filter", "Filter"),
    Key("p", "push", "Push", show=False),
    Key("g", "refresh_pull", "Refresh PR", show=False),
    Key("M", "merge", "Merge PR", show=False),
    Key("i", "interrupt", "Interrupt", show=False, done="Ctrl-C sent to the agent"),
    Key("h", "health", "Health", show=False),
    Key("slash", "search", "Search", display="/"),
    Key("question_mark", "help", "Help", display="?"),
    Key("q", "quit", "Quit"),
    Key("j", "cursor(1)", "Down", show=False),
    Key("k", "cursor(-1)", "Up", show=False),
    Key("escape", "clear_search", "Clear search", show=False),
)
#: The keys that act on the selected session, and the verbs that let each one act.
KEY_VERBS: Mapping[str, tuple[str, ...]] = {k.name: k.verbs for k in KEYS if k.verbs}
#: What a plain verb's key says once the API took it.
DONE: Mapping[str, str] = {k.name: k.done for k in KEYS if k.done}

#: The desired state a verb asks for. ``actions`` lists every verb the API would accept,
#: asking again for what is already asked included (start a running session): such a key
#: would do nothing, so it is not offered.
ASKS: Mapping[str, str] = {"start": "running", "stop": "stopped", "archive": "archived"}


def offered(session: Mapping[str, Any], verb: str) -> bool:
    """Whether the UI offers ``verb`` for ``session``: the API allows it and it changes
    something."""
    return verb in session.get("actions", ()) and ASKS.get(verb) != session.get("desired")


def key_works(session: Mapping[str, Any] | None, action: str) -> bool:
    """Whether the key bound to ``action`` does anything for the selected ``session``
    (keys that act on no session always work)."""
    verbs = KEY_VERBS.get(action)
    if verbs is None:
        return True
    return session is not None and any(offered(session, v) for v in verbs)


def next_access_mode(mode: str) -> str:
    return "read-only" if mode == "read-write" else "read-write"


def delete_question(session: Mapping[str, Any]) -> str:
    return (f"Delete {session['name']}? Its container and worktree go; "
            f"the branch {session['branch']} is kept.")
