"""What a person may do to a session, in which phase, and what follows (pure, as data).

Theory of operation
-------------------
Every request that acts on an existing session names a :class:`Verb`. :data:`RULES` says, per
verb, the phases that allow it, the desired state it asks the reconciler for (None: the verb
acts now and leaves desired alone — access mode, a message, attaching) and the fields it
sets at once (``retry`` puts a failed session back to ``creating``). :func:`changes_for`
checks a session against its rule and returns the changes for the store, or raises
:class:`~appliance.errors.Conflict` with a sentence a person can act on. ``revives`` marks the
verbs that bring a session back to compute: the store checks the session limits for them.

Some verbs also depend on more than the phase: ``guard`` says why not (merge needs an open
pull request). The recovery verbs carry a ``warning``: what doing it loses, in words every
UI shows before it asks for confirmation.

The API and every UI ask this table; none keeps a phase set of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from appliance.errors import Conflict
from appliance.sessions import Desired, Phase, Rebuild, Session

ALL_PHASES = frozenset(Phase)
LIVE = frozenset({Phase.RUNNING})


class Verb(StrEnum):
    ARCHIVE = "archive"
    UNARCHIVE = "unarchive"
    START = "start"
    STOP = "stop"
    RETRY = "retry"
    DELETE = "delete"
    ACCESS_MODE = "access-mode"
    MESSAGE = "message"
    ATTACH = "attach"
    CONSOLE = "console"
    INTERRUPT = "interrupt"
    PUSH = "push"
    MERGE = "merge"
    RESTART_AGENT = "restart-agent"
    RECREATE = "recreate"
    RECREATE_FRESH = "recreate-fresh"
    UPDATE_IMAGE = "update-image"
    #: Change the title or description a person reads (data only: nothing runs).
    EDIT = "edit"
    #: Make the title and description again from the first prompt, with the model.
    RETITLE = "retitle"


@dataclass(frozen=True, slots=True, kw_only=True)
class Rule:
    allowed: frozenset[Phase]
    desired: Desired | None = None
    changes: Mapping[str, Any] = field(default_factory=dict)
    revives: bool = False
    #: Why the verb is refused in any other phase (``{name}``, ``{phase}`` are filled in).
    refusal: str = "cannot {verb} {name}: it is {phase}"
    needs_workload: bool = False
    #: Why not, beyond the phase (None: nothing else stands in the way).
    guard: Callable[[Session], str | None] | None = None
    #: What doing it loses, said before a person confirms it (recovery verbs).
    warning: str = ""


def _open_pull(s: Session) -> str | None:
    if s.pull is not None and s.pull.is_open:
        return None
    return (f"{s.name} has no open pull request (push it with a pull request first: "
            f"clauderon push {s.name} --pr)")


def _no_rebuild(s: Session) -> str | None:
    return None if s.rebuild is None else f"{s.name} is being recreated already"


def _rebuild(kind: Rebuild, warning: str) -> Rule:
    """A person's recreate: carried out by the reconciler's normal create (reconcile_loop.py)."""
    return Rule(allowed=frozenset({Phase.RUNNING, Phase.STOPPED, Phase.FAILED}),
                guard=_no_rebuild, revives=True, warning=warning,
                changes={"attempts": 0, "retry_at": None, "rebuild": kind})


RULES: Mapping[Verb, Rule] = {
    # A completed session may be archived: out of the list, its workspace kept. Unarchived,
    # it runs again and its agent carries on the conversation interactively.
    Verb.ARCHIVE: Rule(allowed=frozenset({Phase.RUNNING, Phase.STOPPED, Phase.ARCHIVED,
                                          Phase.COMPLETED}),
                       desired=Desired.ARCHIVED),
    Verb.UNARCHIVE: Rule(allowed=frozenset({Phase.ARCHIVED}), desired=Desired.RUNNING,
                         changes={"archived_at": None}, revives=True),
    Verb.START: Rule(allowed=frozenset({Phase.RUNNING, Phase.STOPPED, Phase.CREATING}),
                     desired=Desired.RUNNING),
    Verb.STOP: Rule(allowed=frozenset({Phase.RUNNING, Phase.STOPPED}), desired=Desired.STOPPED),
    Verb.RETRY: Rule(allowed=frozenset({Phase.FAILED}), desired=Desired.RUNNING,
                     changes={"phase": Phase.CREATING, "attempts": 0, "retry_at": None,
                              "status_reason": None}, revives=True),
    Verb.DELETE: Rule(allowed=ALL_PHASES, desired=Desired.DELETED,
                      changes={"phase": Phase.DELETING}),
    Verb.ACCESS_MODE: Rule(allowed=ALL_PHASES - {Phase.DELETING}),
    Verb.MESSAGE: Rule(allowed=LIVE, needs_workload=True,
                       refusal="{name} is {phase}; start it to send a message"),
    Verb.ATTACH: Rule(allowed=frozenset({Phase.RUNNING, Phase.STOPPED}), needs_workload=True,
                      refusal="{name} has no running container (it is {phase})"),
    Verb.CONSOLE: Rule(allowed=LIVE, needs_workload=True,
                       refusal="{name} is {phase}; it has no live terminal"),
    Verb.INTERRUPT: Rule(allowed=LIVE, needs_workload=True,
                         refusal="{name} is {phase}; no agent runs to interrupt"),
    Verb.PUSH: Rule(allowed=frozenset({Phase.RUNNING, Phase.STOPPED, Phase.ARCHIVED,
                                       Phase.COMPLETED}),
                    refusal="{name} is {phase}; its branch cannot be pushed now"),
    Verb.MERGE: Rule(allowed=ALL_PHASES - {Phase.DELETING}, guard=_open_pull),
    Verb.RESTART_AGENT: Rule(
        allowed=LIVE, needs_workload=True, refusal="{name} is {phase}; start it instead",
        warning="The agent is stopped where it is (a turn under way is cut short) and "
                "started again in the same container; its conversation is resumed, the "
                "workspace and the container are kept."),
    Verb.RECREATE: _rebuild(
        Rebuild.CONTAINER,
        "The container is removed and made again from the session's image: what was "
        "installed or running in it outside the workspace and the agent's home is lost. The "
        "workspace (uncommitted work included), the branch and the agent's conversation are "
        "kept."),
    Verb.RECREATE_FRESH: _rebuild(
        Rebuild.FRESH,
        "Discards uncommitted work: the workspace is made again from the branch's last "
        "commit (commits are brought into your repository first and the branch is never "
        "deleted), and the agent's home — its conversation, settings and anything else kept "
        "there — starts empty. The container is made again."),
    Verb.UPDATE_IMAGE: _rebuild(
        Rebuild.IMAGE,
        "The container is made again from the newest build of its image (agent CLIs and "
        "tools as that build has them): what was installed in the old container is lost. "
        "The workspace, the branch and the conversation are kept."),
    **dict.fromkeys((Verb.EDIT, Verb.RETITLE), Rule(
        allowed=ALL_PHASES - {Phase.DELETING}, refusal="{name} is {phase}: it is being removed")),
}


def refusal(verb: Verb, session: Session) -> str | None:
    """Why ``verb`` cannot be done to ``session`` now, or None when it can."""
    rule = RULES[verb]
    if session.phase in rule.allowed and (session.backend_id or not rule.needs_workload):
        return rule.guard(session) if rule.guard is not None else None
    text = rule.refusal.format(verb=verb, name=session.name, phase=session.phase)
    if session.status_reason and session.phase is Phase.FAILED:
        text += f" ({session.status_reason})"
    return text


def check(verb: Verb, session: Session) -> None:
    why = refusal(verb, session)
    if why is not None:
        raise Conflict(why)


def changes_for(verb: Verb, session: Session) -> dict[str, Any]:
    """The store changes ``verb`` makes to ``session`` (checked against its rule)."""
    check(verb, session)
    rule = RULES[verb]
    out = dict(rule.changes)
    if rule.desired is not None:
        out["desired"] = rule.desired
    return out


def allowed_verbs(session: Session) -> list[str]:
    """Every verb the session allows now and that would change something: UIs show exactly
    these buttons (start on a running session is accepted, as a no-op, but not offered)."""
    return [str(v) for v in Verb if refusal(v, session) is None
            and (RULES[v].desired is None or RULES[v].desired is not session.desired
                 or RULES[v].changes)]
