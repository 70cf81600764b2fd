"""What the TUI shows, decided without a terminal: filters, search, rows, events, fuzzy match.

Pure functions over the API's JSON (the wire model's ``Session`` shape). The screens in
:mod:`cli.tui.app` and :mod:`cli.tui.create` call these and only draw the results, so the
rules are unit-tested without Textual. Which sessions a filter shows is the API's to say
(each session's ``filters``, the same field the web UI reads), and which keys act on a
session is its ``actions``: nothing here keeps a phase set of its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any

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


def age(iso: str | None, now: datetime) -> str:
    if not iso:
        return "-"
    seconds = int((now - datetime.fromisoformat(iso)).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"


def phase_text(session: Mapping[str, Any]) -> str:
    phase = str(session.get("phase", "?"))
    if phase == "creating" and session.get("status_reason"):
        return "creating!"  # retrying after a failure; the detail pane says why
    return phase


def row(session: Mapping[str, Any], now: datetime) -> tuple[str, ...]:
    # "!" marks a session the proxy raised an alert on (a honeytoken), holds back (budget)
    # or sees failing to reach its model (the detail pane says why).
    state = str(session.get("agent_state") or session.get("agent_status", "unknown"))
    flagged = session.get("alert") or session.get("budget_exceeded") or \
        state == "model_failing"
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


def apply_event(sessions: dict[str, Session], event: Mapping[str, Any]) -> bool:
    """Fold one ``/ws/events`` event into ``sessions`` (by id); True when something changed."""
    payload = event.get("payload") or {}
    if event.get("kind") == "deleted":
        sid = payload.get("id") or event.get("session_id")
        return sessions.pop(str(sid), None) is not None
    snapshot = payload.get("session")
    if not isinstance(snapshot, dict) or "id" not in snapshot:
        return False
    if sessions.get(snapshot["id"]) == snapshot:
        return False
    sessions[snapshot["id"]] = snapshot
    return True


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
    scored = [(fuzzy_score(query, c), i, c) for i, c in enumerate(candidates)]
    return [c for s, _, c in sorted((x for x in scored if x[0] is not None),
                                    key=lambda x: (-(x[0] or 0), x[1]))]


#: The keys that act on the selected session, and the verbs (``Session.actions``) that let
#: each one act: attach starts a stopped session, or unarchives an archived one, first.
KEY_VERBS: Mapping[str, tuple[str, ...]] = {
    "archive": ("archive",),
    "unarchive": ("unarchive",),
    "delete": ("delete",),
    "access_mode": ("access-mode",),
    "attach": ("attach", "start", "unarchive"),
    "retry": ("retry",),
}

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
