"""A fake Anthropic Messages and OpenAI Responses API on loopback, with a trustme certificate.

It stands in for ``api.anthropic.com`` and ``api.openai.com`` behind the proxy's
``[upstreams]`` override (the proxy trusts its CA through ``extra_ca_bundle``), so the real
``claude`` and ``codex`` CLIs in the agent image talk to it and nothing leaves this machine.
It speaks the real wire formats, streamed as Server-Sent Events in chunked bodies:

* ``POST /v1/messages``: ``message_start``, ``content_block_start``, ``content_block_delta``,
  ``content_block_stop``, ``message_delta``, ``message_stop``. A request that carries tools
  and no ``tool_result`` yet gets a ``tool_use`` block asking for the Bash tool to run
  :attr:`FakeModels.command`; the request carrying its result gets the final text
  :attr:`FakeModels.answer`; any other request (titles, summaries) gets a short text.
* ``POST /v1/responses`` (and ChatGPT's ``/backend-api/codex/responses``):
  ``response.created``, ``response.output_item.added``,
  ``response.output_text.delta``, ``response.output_item.done``, ``response.completed``
  with the final text.
* ``POST /v1beta/models/<model>:streamGenerateContent`` and ``:generateContent`` (Gemini):
  ``candidates`` with ``parts``, streamed as ``data:`` events or as one JSON body. A request
  whose contents hold no ``functionResponse`` yet and that offers tools gets a
  ``functionCall`` of ``run_shell_command`` with :attr:`FakeModels.command`; the one
  carrying its response gets :attr:`FakeModels.answer`; a request that asks for JSON (the
  CLI's own routing and checks) gets a small JSON object.
* A request whose system prompt asks for a session title (the appliance's own title call)
  gets :attr:`FakeModels.title` as JSON text, streamed or not as it asked.
* ``POST /oauth/token`` (``auth.openai.com``): :attr:`FakeModels.refresh_answer`, as JSON;
  a GET of a path in :attr:`FakeModels.gets`: its JSON.
* Anything else: 404 with a JSON error (the CLIs treat their optional start-up calls so).
* With :attr:`FakeModels.refuse` set, every model request gets that status and a JSON error;
  one with an access token in :attr:`FakeModels.revoked` gets 401.

Every request is recorded (method, path, headers, body) for the test to inspect. A threaded
standard-library server, so sync tests and the benchmark can both drive it.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from tests.support.tls_fake import TlsFake


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.monotonic)

    def json(self) -> Any:
        return json.loads(self.body or b"{}")


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


#: Where a model is asked: Messages, Responses, and Responses as ChatGPT's login serves it.
MODEL_PATHS = ("/v1/messages", "/v1/responses", "/backend-api/codex/responses")
#: What every answer reports, by kind (the meter must record exactly this).
DEFAULT_USAGE = {"input": 10, "output": 5, "cache_read": 0, "cache_write": 0}


def message_events(content: list[dict[str, Any]], *, stop_reason: str,
                   model: str = "claude-fake", usage: dict[str, int] | None = None
                   ) -> list[bytes]:
    """The full Messages stream for ``content`` (text and tool_use blocks)."""
    u = usage or DEFAULT_USAGE
    out = [_sse("message_start", {"type": "message_start", "message": {
        "id": "msg_fake", "type": "message", "role": "assistant", "model": model,
        "content": [], "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": u["input"], "output_tokens": 1,
                  "cache_read_input_tokens": u["cache_read"],
                  "cache_creation_input_tokens": u["cache_write"]}}})]
    for index, block in enumerate(content):
        if block["type"] == "text":
            start = {"type": "text", "text": ""}
            delta = {"type": "text_delta", "text": block["text"]}
        else:
            start = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
            delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
        out += [
            _sse("content_block_start", {"type": "content_block_start", "index": index,
                                         "content_block": start}),
            _sse("content_block_delta", {"type": "content_block_delta", "index": index,
                                         "delta": delta}),
            _sse("content_block_stop", {"type": "content_block_stop", "index": index}),
        ]
    out += [
        _sse("message_delta", {"type": "message_delta",
                               "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                               "usage": {"output_tokens": u["output"]}}),
        _sse("message_stop", {"type": "message_stop"}),
    ]
    return out


def gemini_chunk(parts: list[dict[str, Any]], usage: dict[str, int] | None = None,
                 *, finish: bool = True) -> dict[str, Any]:
    """One ``GenerateContentResponse`` holding ``parts``."""
    u = usage or DEFAULT_USAGE
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
    if finish:
        candidate["finishReason"] = "STOP"
    return {"candidates": [candidate], "modelVersion": "gemini-fake",
            "usageMetadata": {"promptTokenCount": u["input"] + u["cache_read"],
                              "cachedContentTokenCount": u["cache_read"],
                              "candidatesTokenCount": u["output"],
                              "totalTokenCount": u["input"] + u["cache_read"] + u["output"]}}


def message_json(text: str, *, model: str = "claude-fake") -> dict[str, Any]:
    """A whole (not streamed) Messages answer holding ``text``."""
    return {"id": "msg_fake", "type": "message", "role": "assistant", "model": model,
            "content": [{"type": "text", "text": text}], "stop_reason": "end_turn",
            "stop_sequence": None, "usage": {"input_tokens": 10, "output_tokens": 5}}


def response_events(text: str, usage: dict[str, int] | None = None) -> list[bytes]:
    """The Responses stream for one assistant message holding ``text``."""
    u = usage or DEFAULT_USAGE
    item = {"type": "message", "id": "msg_fake", "role": "assistant", "status": "completed",
            "content": [{"type": "output_text", "text": text, "annotations": []}]}
    base = {"id": "resp_fake", "object": "response", "created_at": int(time.time()),
            "model": "gpt-fake", "output": [], "status": "in_progress"}
    usage = {"input_tokens": u["input"] + u["cache_read"],
             "input_tokens_details": {"cached_tokens": u["cache_read"]},
             "output_tokens": u["output"], "output_tokens_details": {"reasoning_tokens": 0},
             "total_tokens": u["input"] + u["cache_read"] + u["output"]}
    return [
        _sse("response.created", {"type": "response.created", "response": base}),
        _sse("response.output_item.added", {"type": "response.output_item.added",
                                            "output_index": 0,
                                            "item": {**item, "status": "in_progress",
                                                     "content": []}}),
        _sse("response.output_text.delta", {"type": "response.output_text.delta",
                                            "item_id": "msg_fake", "output_index": 0,
                                            "content_index": 0, "delta": text}),
        _sse("response.output_item.done", {"type": "response.output_item.done",
                                           "output_index": 0, "item": item}),
        _sse("response.completed", {"type": "response.completed",
                                    "response": {**base, "status": "completed",
                                                 "output": [item], "usage": usage}}),
    ]


class FakeModels(TlsFake):
    """The fake model APIs; ``with FakeModels(tmp) as fake:`` serves on 127.0.0.1."""
    HOSTS = ("api.anthropic.com",)

    def __init__(self, folder: Path, *, answer: str = "All done: the fake model answered.",
                 command: str = "echo tool-ran > /workspace/tool-output.txt") -> None:
        self.answer = answer
        self.command = command
        #: What the appliance's title call gets back (the model's JSON, as text).
        self.title = json.dumps({"title": "Fix the flaky login test",
                                 "description": "Find why the login test fails now and "
                                                "then, and make it pass every time.",
                                 "name": "fix-flaky-login"})
        #: What every answer reports (input without cache, output, cache read and write).
        self.usage = dict(DEFAULT_USAGE)
        #: When set, every model request is answered with this status and an error body in
        #: the API's own format (a 401 for a missing key, a 529 when overloaded, ...).
        self.refuse: int | None = None
        #: Access tokens the model refuses (401), as an endpoint that revoked them.
        self.revoked: set[str] = set()
        #: What a token refresh is answered (new tokens, as the endpoint sends them).
        self.refresh_answer: dict[str, Any] = {}
        #: What a GET of a path is answered, as JSON (ChatGPT's account look-ups).
        self.gets: dict[str, Any] = {}
        self.seen: list[Seen] = []
        self.first_model_request = threading.Event()
        self._lock = threading.Lock()
        self._listen(folder, "fake-models", ("localhost", "api.anthropic.com", "api.openai.com",
                     "generativelanguage.googleapis.com", "auth.openai.com", "chatgpt.com"),
                     _Handler)

    def record(self, seen: Seen) -> None:
        with self._lock:
            self.seen.append(seen)

    def model_requests(self) -> list[Seen]:
        with self._lock:
            return [s for s in self.seen
                    if s.method == "POST" and s.path in MODEL_PATHS
                    and not is_title_call(s.json())]

    def refreshes(self) -> list[Seen]:
        with self._lock:
            return [s for s in self.seen if s.method == "POST" and s.path == "/oauth/token"]

    def gemini_requests(self) -> list[Seen]:
        with self._lock:
            return [s for s in self.seen if s.method == "POST"
                    and s.path.startswith("/v1beta/models/")]

    def title_requests(self) -> list[Seen]:
        with self._lock:
            return [s for s in self.seen if s.method == "POST" and is_title_call(s.json())]

    def reset(self) -> None:
        with self._lock:
            self.seen.clear()
        self.first_model_request.clear()

    # --- answers --------------------------------------------------------------------
    def gemini_reply(self, body: dict[str, Any]) -> dict[str, Any]:
        config = body.get("generationConfig") or {}
        if is_title_call(body):
            return gemini_chunk([{"text": self.title}], self.usage)
        if config.get("responseMimeType") == "application/json" or config.get(
                "responseJsonSchema") or config.get("responseSchema"):
            # The CLI's own side calls (model routing, next-speaker checks).
            return gemini_chunk([{"text": json.dumps({
                "reasoning": "fake", "complexity_reasoning": "fake", "complexity_score": 1,
                "model_choice": "flash", "next_speaker": "user"})}], self.usage)
        text = json.dumps(body.get("contents", []))
        if '"functionResponse"' in text:
            return gemini_chunk([{"text": self.answer}], self.usage)
        if body.get("tools"):
            return gemini_chunk([
                {"text": "Let me run a command."},
                {"functionCall": {"name": "run_shell_command",
                                  "args": {"command": self.command,
                                           "description": "Run the command"}}},
            ], self.usage)
        return gemini_chunk([{"text": "Fake title"}], self.usage)

    def messages_reply(self, body: dict[str, Any]) -> list[bytes]:
        text = json.dumps(body.get("messages", []))
        if '"tool_result"' in text:
            return message_events([{"type": "text", "text": self.answer}],
                                  stop_reason="end_turn", usage=self.usage)
        if body.get("tools"):
            return message_events([
                {"type": "text", "text": "Let me run a command."},
                {"type": "tool_use", "id": "toolu_fake_1", "name": "Bash",
                 "input": {"command": self.command, "description": "Run the command"}},
            ], stop_reason="tool_use", usage=self.usage)
        return message_events([{"type": "text", "text": "Fake title"}], stop_reason="end_turn",
                              usage=self.usage)


def is_title_call(body: Any) -> bool:
    """Whether a model request is the appliance's title call (its system prompt says so)."""
    return isinstance(body, dict) and "clauderon-title" in json.dumps(
        [body.get("system"), body.get("instructions"), body.get("systemInstruction")])


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    fake: FakeModels

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _read(self) -> Seen:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        seen = Seen(method=self.command, path=self.path.split("?")[0],
                    headers={k.lower(): v for k, v in self.headers.items()}, body=body)
        self.fake.record(seen)
        return seen

    def _json(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _stream(self, events: list[bytes]) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        for event in events:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(event), event))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def do_GET(self) -> None:
        seen = self._read()
        if seen.path in self.fake.gets:
            return self._json(200, self.fake.gets[seen.path])
        self._json(404, {"type": "error", "error": {"type": "not_found_error",
                                                    "message": "not here"}})

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_POST(self) -> None:
        seen = self._read()
        refuse = self.fake.refuse
        body = seen.json() if seen.body[:1] == b"{" else {}
        token = seen.headers.get("authorization", "").removeprefix("Bearer ")
        if token in self.fake.revoked and seen.path in MODEL_PATHS:
            refuse = 401
        if refuse is not None and seen.path in MODEL_PATHS:
            self._json(refuse, {"type": "error", "error": {
                "type": "authentication_error" if refuse == 401 else "api_error",
                "message": f"refused with {refuse} by the fake"}})
        elif is_title_call(body) and seen.path == "/v1/messages" and not body.get("stream"):
            self._json(200, message_json(self.fake.title))
        elif seen.path.startswith("/v1beta/models/") and seen.path.endswith(
                ":streamGenerateContent"):
            self.fake.first_model_request.set()
            chunk = self.fake.gemini_reply(body)
            self._stream([b"data: " + json.dumps(chunk).encode() + b"\r\n\r\n"])
        elif seen.path.startswith("/v1beta/models/") and seen.path.endswith(":generateContent"):
            self.fake.first_model_request.set()
            self._json(200, self.fake.gemini_reply(body))
        elif seen.path == "/v1/messages":
            self.fake.first_model_request.set()
            self._stream(self.fake.messages_reply(seen.json()))
        elif seen.path == "/oauth/token":
            self._json(200, self.fake.refresh_answer)
        elif seen.path in MODEL_PATHS:
            self.fake.first_model_request.set()
            self._stream(response_events(self.fake.answer, self.fake.usage))
        else:
            self._json(404, {"type": "error", "error": {"type": "not_found_error",
                                                        "message": "not here"}})
