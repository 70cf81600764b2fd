"""A plan message's plan, in one shape whatever agent wrote it (pure).

Each agent's plan tools (:data:`READERS`) carry their plan in arguments of their own:
Claude's ``TodoWrite`` ``todos[{content, status}]`` and ``ExitPlanMode`` ``plan`` (Markdown);
Codex's ``update_plan`` ``plan[{step, status}]`` and ``explanation``; Gemini's ``write_todos``
``todos[{description, status}]``, ``enter_plan_mode`` ``reason`` and ``exit_plan_mode``
``plan_path`` (its plan is in that file). :func:`plan_of` reads them into one :class:`Plan`:
a free text, a list of steps, or both (Codex explains its list).
The clients read only that (``Message.plan``, schema ``Plan`` in :mod:`appliance.wire`).

The agent writes these arguments, so the plan is bounded: at most :data:`MAX_STEPS` steps
(``more_steps`` says how many were left out), :data:`MAX_STEP_CHARS` characters a step and
:data:`MAX_TEXT_CHARS` of text (each cut says how much more it held); a status outside
:class:`Status` is ``pending``; a value that should be a string and is not is empty.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from appliance.sessions import Agent

MAX_STEPS = 200
MAX_STEP_CHARS = 1_000
MAX_TEXT_CHARS = 20_000


class Status(StrEnum):
    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"


@dataclass(frozen=True, slots=True)
class Step:
    text: str
    status: Status


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    #: The plan in Markdown (or what explains the steps); "" when it has none.
    text: str = ""
    steps: tuple[Step, ...] = ()
    #: Steps the agent wrote past :data:`MAX_STEPS`, left out.
    more_steps: int = 0


def cut(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, saying how many more it held."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}\n\n… {len(text) - limit} more characters not shown"


def _field(value: Any, key: str) -> Any:
    return value.get(key) if isinstance(value, dict) else None


def _text(value: Any, limit: int = MAX_TEXT_CHARS) -> str:
    return cut(value, limit) if isinstance(value, str) else ""


def _status(value: Any) -> Status:
    return Status(value) if value in tuple(Status) else Status.PENDING


def steps(items: Any, key: str) -> tuple[tuple[Step, ...], int]:
    """The first :data:`MAX_STEPS` items of a list, each's text read from ``key``, and how
    many more the list held."""
    if not isinstance(items, list):
        return (), 0
    read = tuple(Step(_text(_field(i, key), MAX_STEP_CHARS), _status(_field(i, "status")))
                 for i in items[:MAX_STEPS])
    return read, max(0, len(items) - MAX_STEPS)


Reader = Callable[[Any], Plan]


def _list(items: str, key: str, text: str | None = None) -> Reader:
    def read(args: Any) -> Plan:
        found, more = steps(_field(args, items), key)
        return Plan(text=_text(_field(args, text)) if text else "", steps=found,
                    more_steps=more)
    return read


def _prose(key: str, template: str = "{}") -> Reader:
    def read(args: Any) -> Plan:
        value = _text(_field(args, key))
        return Plan(text=template.format(value) if value else "")
    return read


#: Each agent's plan tools, and how each one's arguments read as a plan.
READERS: Mapping[Agent, Mapping[str, Reader]] = {
    Agent.CLAUDE: {"TodoWrite": _list("todos", "content"), "ExitPlanMode": _prose("plan")},
    Agent.CODEX: {"update_plan": _list("plan", "step", text="explanation")},
    Agent.GEMINI: {"write_todos": _list("todos", "description"),
                   "enter_plan_mode": _prose("reason"),
                   "exit_plan_mode": _prose("plan_path", "The plan is in {}")},
}


def plan_of(agent: Agent, tool: str | None, args: Any) -> Plan | None:
    """The plan a call of ``tool`` by ``agent`` makes, or None when the tool does not plan."""
    read = READERS.get(agent, {}).get(tool or "")
    return read(args) if read else None
