"""The agents' own logs as typed messages: user, assistant text, tool call, tool result.

Claude Code writes one JSON object a line to its transcript (``type`` ``user`` /
``assistant`` with an API-shaped ``message``; many other bookkeeping types are skipped).
Codex writes rollout files whose ``response_item`` lines carry Responses API items
(``message``, ``function_call``, ``function_call_output``, ...). Both are parsed here,
purely, line by line; :func:`parse_lines` consumes only complete lines, so a reader can
hand it whatever bytes are on disk and come back later from the returned offset.

Neighbours: ``api/transcript.py`` reads the files and serves the result.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from appliance.sessions import Agent


class Kind(StrEnum):
    USER = "user"
    ASSISTANT = "assistant"
    TOOL_CALL = "tool_call"
    TOOL_RESULT = "tool_result"


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    kind: Kind
    text: str = ""
    tool: str | None = None
    tool_id: str | None = None
    input: Any = None
    is_error: bool = False
    ts: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": str(self.kind), "text": self.text, "ts": self.ts}
        if self.kind in (Kind.TOOL_CALL, Kind.TOOL_RESULT):
            out.update(tool=self.tool, tool_id=self.tool_id)
        if self.kind is Kind.TOOL_CALL:
            out["input"] = self.input
        if self.kind is Kind.TOOL_RESULT:
            out["is_error"] = self.is_error
        return out


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [c.get("text", "") for c in content
                 if isinstance(c, dict) and c.get("type") in ("text", "input_text",
                                                              "output_text")]
        return "\n".join(p for p in parts if p)
    return ""


def claude_messages(entry: dict[str, Any]) -> list[Message]:
    kind, message = entry.get("type"), entry.get("message")
    if kind not in ("user", "assistant") or not isinstance(message, dict):
        return []
    if entry.get("isSidechain") or entry.get("isMeta"):
        return []
    ts = entry.get("timestamp")
    content = message.get("content")
    if isinstance(content, str):
        return [Message(kind=Kind.USER if kind == "user" else Kind.ASSISTANT, text=content,
                        ts=ts)]
    out: list[Message] = []
    for block in content if isinstance(content, list) else []:
        if not isinstance(block, dict):
            continue
        match block.get("type"):
            case "text" if block.get("text"):
                out.append(Message(kind=Kind.USER if kind == "user" else Kind.ASSISTANT,
                                   text=str(block["text"]), ts=ts))
            case "tool_use":
                out.append(Message(kind=Kind.TOOL_CALL, tool=block.get("name"),
                                   tool_id=block.get("id"), input=block.get("input"), ts=ts))
            case "tool_result":
                out.append(Message(kind=Kind.TOOL_RESULT, tool_id=block.get("tool_use_id"),
                                   text=_text_of(block.get("content")),
                                   is_error=bool(block.get("is_error")), ts=ts))
    return out


def _json_or_text(raw: Any) -> Any:
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    return raw


def codex_messages(entry: dict[str, Any]) -> list[Message]:
    item = entry.get("payload")
    if entry.get("type") != "response_item" or not isinstance(item, dict):
        return []
    ts = entry.get("timestamp")
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
            return [Message(kind=Kind.TOOL_CALL, tool=item.get("name"),
                            tool_id=item.get("call_id"), input=_json_or_text(raw), ts=ts)]
        case "local_shell_call":
            return [Message(kind=Kind.TOOL_CALL, tool="shell", tool_id=item.get("call_id"),
                            input=item.get("action"), ts=ts)]
        case "function_call_output" | "custom_tool_call_output":
            output = item.get("output")
            text = output.get("output", "") if isinstance(output, dict) else str(output or "")
            return [Message(kind=Kind.TOOL_RESULT, tool_id=item.get("call_id"),
                            text=str(text), ts=ts)]
    return []


def parse_lines(agent: Agent, data: bytes) -> tuple[list[Message], int]:
    """Messages in the complete lines of ``data``, and how many bytes those lines span."""
    end = data.rfind(b"\n") + 1
    parse = claude_messages if agent is Agent.CLAUDE else codex_messages
    out: list[Message] = []
    for line in data[:end].splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # a torn or foreign line: skip it, keep going
        if isinstance(entry, dict):
            out.extend(parse(entry))
    return out, end
