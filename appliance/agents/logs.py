"""The agents' own logs as typed messages: user, assistant text, tool call, tool result.

Claude Code writes one JSON object a line to its transcript (``type`` ``user`` /
``assistant`` with an API-shaped ``message``; many other bookkeeping types are skipped).
Codex writes rollout files whose ``response_item`` lines carry Responses API items
(``message``, ``function_call``, ``function_call_output``, ...). Gemini CLI writes chat
records (``type`` ``user`` / ``gemini``; a reply with tool calls is written again with its
``toolCalls``, so that second copy gives the calls and not the text again; tool results
come back as ``functionResponse`` parts of a ``user`` record). A custom agent's transcript
is its printed answer, plain text. All are parsed here,
purely, line by line; :func:`parse_lines` consumes only complete lines, so a reader can
hand it whatever bytes are on disk and come back later from the returned offset.

The agent writes these files, so a line is untrusted: one that is not JSON, holds a number
JSON cannot carry back out (``NaN``, ``1e999``) or nests deeper than :data:`MAX_DEPTH` (a
deeper one would break the encoder that serves it, or the decoder first) is passed over
like a torn line. Values that should be strings and are not become ``None``.

Neighbours: :mod:`appliance.agents.reader` reads the files; ``api/conversation.py`` serves.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from appliance import wire
from appliance.agents import plans
from appliance.sessions import Agent
from appliance.wire_fields import render

MAX_DEPTH = 64  # nesting of one line; Claude's and Codex's own lines stay under 20
MAX_LINES = 20_000  # per call of parse_lines (the lines after wait for the next call)
#: Values (:func:`values_in`) parsed per answer, and the most a line holds: the agent writes
#: ``{},`` in 3 bytes, and the API's CPU (and the lock its loop needs) goes to what a line
#: holds, not to its bytes. Claude's and Codex's own lines hold a few thousand.
MAX_VALUES = 200_000
#: A number's digits that cost the parser what one value does (:func:`values_in`).
DIGITS_A_VALUE = 8
#: Messages one call gives (a line that starts under it is taken whole), and one line gives
#: at most: the agent writes a block in 20 bytes, which the API serves as a 100-byte
#: message built and encoded on its one loop (the timeline keeps as many per line).
MAX_MESSAGES = 5_000
MAX_PER_LINE = 1_023
#: A message's position: the offset of its line's end in the logs taken in order, times
#: this, plus its index in the line (the timeline's positions are the same).
BLOCKS = MAX_PER_LINE + 1


class Kind(StrEnum):
    USER = "user"
    ASSISTANT = "assistant"
    TOOL_CALL = "tool_call"
    TOOL_RESULT = "tool_result"
    #: A tool call that plans rather than acts (each agent's: ``plans.READERS``);
    #: its ``plan`` says what it plans (:mod:`appliance.agents.plans`).
    PLAN = "plan"


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    kind: Kind
    text: str = ""
    tool: str | None = None
    tool_id: str | None = None
    input: Any = None
    #: A plan message's plan, in the one shape every agent's is read into.
    plan: plans.Plan | None = None
    is_error: bool = False
    ts: str | None = None
    pos: int = 0  # :data:`BLOCKS`; set by :func:`parse_lines`
    start: int = 0  # where its line starts in the logs; set by :func:`parse_lines`
    #: A user message the person sent through the appliance (:mod:`appliance.sent`).
    from_person: bool = False

    def to_json(self) -> dict[str, Any]:
        return render(wire.MESSAGE, self)

def _string(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} does not fit a float")
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


#: One decoder for every line (``json.loads`` with options makes one a call).
_DECODER = json.JSONDecoder(parse_float=_finite, parse_constant=_no_constant)


def nested_within(value: Any, limit: int) -> bool:
    """Whether ``value`` nests no more than ``limit`` containers deep. Walked a level at a
    time, without recursion: this is what guards everything after it against recursion."""
    level = [value] if isinstance(value, (dict, list)) else []
    for _ in range(limit):
        if not level:
            return True
        below: list[Any] = []
        for item in level:
            below += [c for c in (item.values() if isinstance(item, dict) else item)
                      if isinstance(c, (dict, list))]
        level = below
    return not level


def values_in(text: str) -> int:
    """About how many values the JSON ``text`` holds (its strings, containers and the
    commas between the rest), counted at the speed of a search of its characters, before
    it is parsed: what parsing it, and walking what it gives, costs. A number's digits
    count a value every :data:`DIGITS_A_VALUE`: an integer of 4,299 digits (the longest
    Python reads) costs what 400 small values do, in one value."""
    bare = text.replace("\\\\", "").replace('\\"', "")  # escapes: a quote left is a string's
    strings = bare.count('"') // 2
    if strings > MAX_VALUES:
        return strings
    outside = "".join(bare.split('"')[::2])
    spelled = outside.encode("utf-8", "surrogatepass")
    digits = len(spelled) - len(spelled.translate(None, b"0123456789"))
    return (strings + outside.count(",") + outside.count("[") + outside.count("{")
            + digits // DIGITS_A_VALUE)


def counted(raw: str | bytes) -> tuple[Any, int]:
    """:func:`load` of ``raw``, and its :func:`values_in` (what it cost, or would have)."""
    try:
        text = raw if isinstance(raw, str) else raw.decode(json.detect_encoding(raw),
                                                           "surrogatepass")
    except ValueError:
        return None, 0
    cost = values_in(text)
    if cost > MAX_VALUES:
        return None, cost
    try:
        value = _DECODER.decode(text)
    except (ValueError, RecursionError):  # RecursionError: nested past the decoder's limit
        return None, cost
    return (value if nested_within(value, MAX_DEPTH) else None), cost


def load(raw: str | bytes) -> Any:
    """One line of the agent's JSON, or :data:`None` when it is not JSON we can serve back
    (not JSON at all, a non-finite number, nested deeper than :data:`MAX_DEPTH`, more than
    :data:`MAX_VALUES` values)."""
    return counted(raw)[0]


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [c.get("text") for c in content
                 if isinstance(c, dict) and c.get("type") in ("text", "input_text",
                                                              "output_text")]
        return "\n".join(p for p in parts if isinstance(p, str) and p)
    return ""


def _tool_call(agent: Agent, name: Any, *, input: Any, **fields: Any) -> Message:
    """A tool call, or a plan when the agent's tool plans rather than acts (its plan read
    into the one shape the clients read: :mod:`appliance.agents.plans`)."""
    tool = _string(name)
    plan = plans.plan_of(agent, tool, input)
    return Message(kind=Kind.TOOL_CALL if plan is None else Kind.PLAN, tool=tool,
                   input=input, plan=plan, **fields)


def claude_messages(entry: dict[str, Any]) -> list[Message]:
    kind, message = entry.get("type"), entry.get("message")
    if kind not in ("user", "assistant") or not isinstance(message, dict):
        return []
    if entry.get("isSidechain") or entry.get("isMeta"):
        return []
    ts = _string(entry.get("timestamp"))
    said = Kind.USER if kind == "user" else Kind.ASSISTANT
    content = message.get("content")
    if isinstance(content, str):
        return [Message(kind=said, text=content, ts=ts)]
    out: list[Message] = []
    for block in content if isinstance(content, list) else []:
        if len(out) >= MAX_PER_LINE:
            break  # the most a line gives: the rest is never built
        if not isinstance(block, dict):
            continue
        match block.get("type"):
            case "text" if block.get("text"):
                out.append(Message(kind=said, text=str(block["text"]), ts=ts))
            case "tool_use":
                out.append(_tool_call(Agent.CLAUDE, block.get("name"),
                                      tool_id=_string(block.get("id")),
                                      input=block.get("input"), ts=ts))
            case "tool_result":
                out.append(Message(kind=Kind.TOOL_RESULT,
                                   tool_id=_string(block.get("tool_use_id")),
                                   text=_text_of(block.get("content")),
                                   is_error=bool(block.get("is_error")), ts=ts))
    return out


def _json_or_text(raw: Any) -> Any:
    if isinstance(raw, str):
        value = load(raw)
        return raw if value is None else value
    return raw


def codex_messages(entry: dict[str, Any]) -> list[Message]:
    item = entry.get("payload")
    if entry.get("type") != "response_item" or not isinstance(item, dict):
        return []
    ts = _string(entry.get("timestamp"))
    call_id = _string(item.get("call_id"))
    match item.get("type"):
        case "message":
            text = _text_of(item.get("content"))
            role = item.get("role")
            if role == "assistant" and text:
                return [Message(kind=Kind.ASSISTANT, text=text, ts=ts)]
            # Codex also sends context it made itself (<environment_context>...) as user.
            if role == "user" and text and not text.lstrip().startswith("<"):
                return [Message(kind=Kind.USER, text=text, ts=ts)]
            return []
        case "function_call" | "custom_tool_call":
            raw = item.get("arguments", item.get("input"))
            return [_tool_call(Agent.CODEX, item.get("name"), tool_id=call_id,
                               input=_json_or_text(raw), ts=ts)]
        case "local_shell_call":
            return [Message(kind=Kind.TOOL_CALL, tool="shell", tool_id=call_id,
                            input=item.get("action"), ts=ts)]
        case "function_call_output" | "custom_tool_call_output":
            output = item.get("output")
            text = output.get("output", "") if isinstance(output, dict) else str(output or "")
            return [Message(kind=Kind.TOOL_RESULT, tool_id=call_id,
                            text=str(text), ts=ts)]
    return []


def gemini_messages(entry: dict[str, Any]) -> list[Message]:
    kind, content = entry.get("type"), entry.get("content")
    ts = _string(entry.get("timestamp"))
    if kind == "gemini":
        calls = entry.get("toolCalls")
        if isinstance(calls, list) and calls:
            return [_tool_call(Agent.GEMINI, call.get("name"),
                               tool_id=_string(call.get("id")), input=call.get("args"), ts=ts)
                    for call in calls[:MAX_PER_LINE] if isinstance(call, dict)]
        text = content if isinstance(content, str) else _text_of(content)
        return [Message(kind=Kind.ASSISTANT, text=text, ts=ts)] if text else []
    if kind != "user" or not isinstance(content, list):
        return []
    out = []
    for part in content[:MAX_PER_LINE]:
        if not isinstance(part, dict):
            continue
        response = part.get("functionResponse")
        if isinstance(response, dict):
            result = response.get("response")
            output = result.get("output", "") if isinstance(result, dict) else result
            out.append(Message(kind=Kind.TOOL_RESULT, tool_id=_string(response.get("id")),
                               text=str(output or ""), ts=ts))
        elif isinstance(part.get("text"), str) and part["text"] \
                and not part["text"].lstrip().startswith("<"):
            # Gemini also records the context it made itself (<session_context>...).
            out.append(Message(kind=Kind.USER, text=part["text"], ts=ts))
    return out


def text_messages(data: bytes) -> list[Message]:
    """A custom agent's printed answer: its complete lines, as one assistant message."""
    text = data.decode(errors="replace").strip()
    return [Message(kind=Kind.ASSISTANT, text=text)] if text else []


#: How a line of each agent's log reads (a custom agent's output is plain text).
PARSERS = {Agent.CLAUDE: claude_messages, Agent.CODEX: codex_messages,
            Agent.GEMINI: gemini_messages}


@dataclass(slots=True)
class Budget:
    """What one answer still parses, across the files it reads."""
    values: int = MAX_VALUES


def parse_lines(agent: Agent, data: bytes, *, limit: int = MAX_LINES, base: int = 0,
                budget: Budget | None = None) -> tuple[list[Message], int]:
    """Messages in the complete lines of ``data`` (at most ``limit`` lines, and lines of
    ``budget``'s values, the first line of the call aside: the rest are for next time), and
    how many bytes those lines span. ``base``: where ``data`` starts in the logs, for the
    messages' positions."""
    budget = Budget() if budget is None else budget
    if agent is Agent.CUSTOM:
        end = data.rfind(b"\n") + 1
        return text_messages(data[:end]), end
    parse = PARSERS[agent]
    out: list[Message] = []
    used = 0
    for _ in range(limit):
        if len(out) >= MAX_MESSAGES:
            break  # the rest is for the next call
        end = data.find(b"\n", used)
        if end < 0:
            break
        # A torn, foreign or hostile line is passed over.
        entry, cost = counted(data[used:end])
        if cost > budget.values and budget.values < MAX_VALUES:
            break  # its values are for the next answer (the first line of one is read)
        budget.values -= cost
        start, used = base + used, end + 1
        if isinstance(entry, dict):
            out.extend(replace(m, pos=(base + used) * BLOCKS + i, start=start)
                       for i, m in enumerate(parse(entry)[:MAX_PER_LINE]))
    return out, used
