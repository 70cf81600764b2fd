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

The API and every UI ask this table; none keeps a phase set of its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from appliance.errors import Conflict
from appliance.sessions import Desired, Phase, Session

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
    Verb.EDIT: Rule(allowed=ALL_PHASES - {Phase.DELETING},
                    refusal="{name} is {phase}: it is being removed"),
    Verb.RETITLE: Rule(allowed=ALL_PHASES - {Phase.DELETING},
                       refusal="{name} is {phase}: it is being removed"),
}


def refusal(verb: Verb, session: Session) -> str | None:
    """Why ``verb`` cannot be done to ``session`` now, or None when it can."""
    rule = RULES[verb]
    if session.phase in rule.allowed and (session.backend_id or not rule.needs_workload):
        return None
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
