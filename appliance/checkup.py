"""A session's health: what was found (facts) judged into checks, and what to do (pure).

The API gathers :class:`Facts` (``api/checkup.py``: the backend's workloads, the workspace
on the host, one probe run inside the container, the session's audit lines) and
:func:`judge` turns them into one :class:`Check` per part — container, workspace, agent,
proxy, hooks, model — each ``ok``, ``warn``, ``fail`` or ``unknown`` with a sentence a
person can act on, and names the recovery verb that fits (:func:`suggest`). What each
recovery verb loses is the verbs table's to say (:attr:`appliance.verbs.Rule.warning`).

The probe inside the container (:data:`PROBE`) prints three lines: the command in the
agent's terminal (the agent, or the shell its start script leaves when the agent exited),
and the HTTP status the proxy and the hook endpoint answer from the container's side
(``000``: nothing answered). It runs as the container's user and reads nothing secret.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from appliance import verbs
from appliance.agents.boot import TMUX_SESSION
from appliance.backends.base import RunState
from appliance.sessions import Phase, Session
from appliance.verbs import Verb

#: Inside the container: what runs under the agent's terminal (the names of the pane
#: process's children: the start script runs the agent as its child; once the agent exits
#: the script becomes a login shell, whose children are whatever a person runs in it; ``-``:
#: no terminal), then the proxy's and the hooks' answers as HTTP statuses.
PROBE = (
    f"p=$(tmux display -p -t {TMUX_SESSION} '#{{pane_pid}}' 2>/dev/null) "
    '&& echo "t:$(pgrep -l -P "$p" | cut -d" " -f2 | tr "\\n" " ")" || echo t:-; '
    'p=${HTTPS_PROXY#*@}; p=${p%%/*}; '
    "echo $(curl -s -o /dev/null -w '%{http_code}' -m 3 --noproxy '*' \"http://$p/\"); "
    "echo $(curl -s -o /dev/null -w '%{http_code}' -m 3 --noproxy '*' "
    '"${CLAUDERON_HOOK_URL:-http://0.0.0.0:9}")'
)
#: Process names of a running agent (claude's native binary; codex is a node script).
AGENT_PROCESSES = ("claude", "codex", "node")
MODEL_PATHS = ("/v1/messages", "/responses", "/chat/completions")


class Verdict(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True, kw_only=True)
class Check:
    name: str
    verdict: Verdict
    detail: str
    #: The recovery verb that fits what this check found, if any.
    fix: Verb | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Probe:
    """What :data:`PROBE` printed (None: it could not run)."""

    terminal: str  # the names under the agent's terminal, space-separated; "-": none
    proxy: int
    hooks: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Facts:
    workload: RunState | None  # None: no container (or pod) of the session
    workload_image: str | None
    workspace: bool | None  # None: not readable on this host (a cluster volume)
    tip: str | None
    agents: bool  # whether this appliance starts agents at all
    probe: Probe | None
    model: Mapping[str, Any] | None  # the session's last model request's audit line
    #: Whether the primary workspace holds a repository (a real ``.git`` folder): the agent
    #: may have removed or replaced it; a recreate mends it around the agent's files.
    repository: bool = True


def parse_probe(out: str) -> Probe | None:
    lines = [line.strip() for line in out.strip().splitlines()]
    if len(lines) < 3 or not lines[0].startswith("t:"):
        return None
    try:
        return Probe(terminal=lines[0][2:].strip()[:200], proxy=int(lines[1]),
                     hooks=int(lines[2]))
    except ValueError:
        return None


def is_model_call(line: Mapping[str, Any]) -> bool:
    path = str(line.get("path") or "").split("?", 1)[0]
    return line.get("method") == "POST" and path.endswith(MODEL_PATHS)


def last_model_call(lines: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    return next((line for line in reversed(lines) if is_model_call(line)), None)


def _container(s: Session, f: Facts) -> Check:
    if f.workload is None:
        if s.phase in (Phase.ARCHIVED, Phase.CREATING, Phase.DELETING):
            return Check(name="container", verdict=Verdict.OK,
                         detail=f"none, as expected while {s.phase}")
        return Check(name="container", verdict=Verdict.FAIL, fix=Verb.RECREATE,
                     detail="the session has no container; recreate it")
    if f.workload is RunState.DEAD:
        return Check(name="container", verdict=Verdict.FAIL, fix=Verb.RECREATE,
                     detail="the container is broken (dead or being removed); recreate it")
    state = "running" if f.workload is RunState.RUNNING else "stopped"
    if f.workload_image and f.workload_image != s.image:
        return Check(name="container", verdict=Verdict.WARN, fix=Verb.UPDATE_IMAGE,
                     detail=f"{state}, from an older build of {s.image} (a newer one is "
                            "there); update the image to use it")
    if state == "stopped" and s.phase is Phase.RUNNING:
        return Check(name="container", verdict=Verdict.FAIL, fix=Verb.RECREATE,
                     detail="stopped, though the session should run")
    return Check(name="container", verdict=Verdict.OK, detail=f"{state}, image {s.image}")


def _workspace(s: Session, f: Facts) -> Check:
    if f.workspace is None:
        return Check(name="workspace", verdict=Verdict.UNKNOWN,
                     detail="on the cluster volume, not readable on this host")
    if not f.workspace:
        return Check(name="workspace", verdict=Verdict.FAIL, fix=Verb.RECREATE_FRESH,
                     detail=f"a workspace folder is gone; recreate fresh makes it again "
                            f"from {s.branch}")
    if not f.repository:
        return Check(name="workspace", verdict=Verdict.WARN, fix=Verb.RECREATE,
                     detail="present, but it has no repository (.git: the agent may have "
                            "removed or replaced it): its commits are not brought in; "
                            "recreate mends the repository around its files, which stay")
    if f.tip is None:
        return Check(name="workspace", verdict=Verdict.WARN,
                     detail=f"present, but its branch {s.branch} cannot be read (the agent "
                            "may have removed or replaced it, or its .git): its commits are "
                            "not brought in, and a delete keeps the workspace aside")
    return Check(name="workspace", verdict=Verdict.OK,
                 detail=f"present, {s.branch} at {f.tip[:12]}")


def _live(f: Facts) -> bool:
    return f.workload is RunState.RUNNING


def _agent(s: Session, f: Facts) -> Check:
    if not f.agents:
        return Check(name="agent", verdict=Verdict.UNKNOWN,
                     detail="this appliance runs no agents ([agents] start = false)")
    if not _live(f):
        return Check(name="agent", verdict=Verdict.UNKNOWN, detail="no running container")
    if f.probe is None:
        return Check(name="agent", verdict=Verdict.FAIL, fix=Verb.RECREATE,
                     detail="nothing could be run in the container")
    if f.probe.terminal == "-":
        return Check(name="agent", verdict=Verdict.FAIL, fix=Verb.RESTART_AGENT,
                     detail="the agent's terminal is gone; restart the agent")
    running = [n for n in f.probe.terminal.split() if n.startswith(AGENT_PROCESSES)]
    if not running:
        return Check(name="agent", verdict=Verdict.FAIL, fix=Verb.RESTART_AGENT,
                     detail=f"{s.agent} exited (its terminal is a shell now); restart "
                            "the agent")
    return Check(name="agent", verdict=Verdict.OK, detail=f"{s.agent} runs ({running[0]})")


def _reach(name: str, what: str, status: int | None) -> Check:
    if status is None:
        return Check(name=name, verdict=Verdict.UNKNOWN, detail="no running container")
    if status == 0:
        return Check(name=name, verdict=Verdict.FAIL, fix=Verb.RECREATE,
                     detail=f"the container cannot reach {what}; recreate it (if that does "
                            "not help, restart the appliance's services)")
    return Check(name=name, verdict=Verdict.OK, detail=f"{what} answers ({status})")


def _model(s: Session, f: Facts) -> Check:
    if s.model_error and s.phase is Phase.RUNNING:
        # The proxy's own judgement of its model calls (appliance/modelhealth.py) says why
        # better than a status code: no credential, DNS, the model API's refusal.
        return Check(name="model", verdict=Verdict.WARN,
                     detail=f"model requests fail: {s.model_error}")
    line = f.model
    if line is None:
        return Check(name="model", verdict=Verdict.UNKNOWN, detail="no model request yet")
    status = int(line.get("status") or 0)
    when = str(line.get("ts") or "")[:19].replace("T", " ")
    where = f"{line.get('host')}, {when} UTC"
    if 200 <= status < 300:
        return Check(name="model", verdict=Verdict.OK, detail=f"last request answered "
                                                              f"{status} ({where})")
    why = line.get("error") or line.get("note") or line.get("decision") or ""
    return Check(name="model", verdict=Verdict.WARN,
                 detail=f"last request failed: {status or 'no answer'}"
                        f"{f' {why}' if why else ''} ({where})")


def judge(s: Session, f: Facts) -> list[Check]:
    probe = f.probe if _live(f) else None
    return [
        _container(s, f), _workspace(s, f), _agent(s, f),
        _reach("proxy", "the proxy", probe.proxy if probe else None),
        _reach("hooks", "the hook endpoint", probe.hooks if probe else None),
        _model(s, f),
    ]


def suggest(checks: Sequence[Check]) -> Verb | None:
    """The one recovery verb that fits the worst finding (the strongest fix first)."""
    order = (Verb.RECREATE_FRESH, Verb.RECREATE, Verb.UPDATE_IMAGE, Verb.RESTART_AGENT)
    wanted = {c.fix for c in checks if c.fix is not None and c.verdict is not Verdict.OK}
    return next((v for v in order if v in wanted), None)


#: The recovery verbs, mildest first, as every UI lists them.
RECOVERY = (Verb.RESTART_AGENT, Verb.RECREATE, Verb.UPDATE_IMAGE, Verb.RECREATE_FRESH)


@dataclass(frozen=True, slots=True, kw_only=True)
class Action:
    verb: Verb
    warning: str
    offered: bool
    why_not: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Report:
    session_id: str
    checks: tuple[Check, ...]
    suggested: Verb | None
    actions: tuple[Action, ...]

    @property
    def ok(self) -> bool:
        return all(c.verdict in (Verdict.OK, Verdict.UNKNOWN) for c in self.checks)


def report(s: Session, f: Facts) -> Report:
    checks = tuple(judge(s, f))
    actions = []
    for verb in RECOVERY:
        why = verbs.refusal(verb, s)
        if verb is Verb.RESTART_AGENT and not f.agents:
            why = "this appliance runs no agents"
        actions.append(Action(verb=verb, warning=verbs.RULES[verb].warning,
                              offered=why is None, why_not=why))
    suggested = suggest(checks)
    if suggested is not None and not any(a.verb is suggested and a.offered for a in actions):
        suggested = None
    return Report(session_id=s.id, checks=checks, suggested=suggested, actions=tuple(actions))
