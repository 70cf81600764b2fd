"""Reading token usage from model answers as they stream past. Pure: bytes in, usage out.

Theory of operation. :func:`metered_api` says whether a request is a model call whose answer
carries usage: Anthropic Messages (``/v1/messages``), OpenAI Responses (``/v1/responses``,
and ChatGPT's ``/backend-api/codex/responses``) and Chat Completions
(``/v1/chat/completions``, and the legacy ``/v1/completions`` and ``/v1/embeddings``, which
report usage the same way) and Gemini (``:generateContent``, ``:streamGenerateContent``,
whose every chunk says the usage so far in ``usageMetadata``). The exchange hands each
chunk of the answer body, as it relays it, to a :class:`UsageReader` -- a copy, read after
the chunk was queued for the client, so the answer is never held back -- and asks
:meth:`UsageReader.finish` at the end.

An event stream (``text/event-stream``) is cut into lines; only ``data:`` lines that
mention ``"usage`` or ``"delta"`` are parsed (a delta's text is counted only while the
stream's final usage is unread). Anthropic reports usage in ``message_start`` and, cumulatively, in
``message_delta`` (the later value wins for each field present); the Responses API in
``response.completed`` (also ``.incomplete``/``.failed``); Chat Completions in the last
chunk when asked for. A JSON answer is kept (up to :data:`MAX_JSON`) and read at its end.

The four token kinds do not overlap (``appliance.usage``): OpenAI's cached input is taken
out of its input count. Anything unreadable -- a malformed or negative count, an encoded
body, a stream cut before its usage, a line or body past the bound -- gives an answer
that is counted as *unmetered*, never an exception in the relay. A stream cut before its
final usage (the client hung up; the provider bills what it made all the same) keeps what
its start said and counts as output at least the bytes of text its deltas carried, and, when
its start said no input, the bytes of the request's body as input (no token is shorter).

:func:`unmetered_spend` names the rest of what may spend at a model host: any request that
is not a metered call, a plain read or one of the few known to spend nothing (a legacy
completion, a message batch, images, audio, a Realtime WebSocket, Gemini). Its usage is
never read, so under a budget the proxy refuses it (``screen.py``) rather than let it spend
uncounted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from appliance.methods import READS
from appliance.usage import Usage, model_name

#: A JSON answer is read whole up to this size; beyond, it is passed on unmetered.
MAX_JSON = 8 * 1024 * 1024
#: The longest event-stream line kept while waiting for its end.
MAX_LINE = 8 * 1024 * 1024


class Api(StrEnum):
    ANTHROPIC = "anthropic"
    RESPONSES = "responses"
    CHAT = "chat"
    GEMINI = "gemini"


_PATHS = (
    ("/v1/messages", Api.ANTHROPIC),
    ("/responses", Api.RESPONSES),
    ("/chat/completions", Api.CHAT),
    ("/v1/completions", Api.CHAT),
    ("/v1/embeddings", Api.CHAT),
)
#: Gemini's model calls end in a verb: ``/v1beta/models/<model>:generateContent``.
_GEMINI = (":generateContent", ":streamGenerateContent")
#: Model-host requests that are not reads and spend no tokens: counting them, the ChatGPT
#: login's refresh; and at Anthropic's API host, ``/api/`` (its CLI's telemetry and OAuth,
#: not the model API, which lives under ``/v1/``).
_FREE = frozenset({"/v1/messages/count_tokens", "/oauth/token"})
_FREE_VERBS = (":countTokens",)
_FREE_UNDER = "/api/"


def _plain(path: str) -> bool:
    """Whether every server reads ``path`` as written: no escape, parameter, backslash, dot
    or empty segment that one may read as another path than the name the rules matched."""
    return not any(c in path for c in "%;\\") and not any(
        part in ("", ".", "..") for part in path.split("/")[1:])


def metered_api(method: str, path: str) -> Api | None:
    """The model API a request calls, when its answer reports usage (named plainly)."""
    if method != "POST":
        return None
    path = path.split("?", 1)[0].rstrip("/")
    if not _plain(path):
        return None
    if path.endswith(_GEMINI):
        return Api.GEMINI
    for suffix, api in _PATHS:
        if path.endswith(suffix):
            return api
    return None


def unmetered_spend(method: str, path: str, *, upgrade: bool, anthropic: bool) -> bool:
    """Whether a request to a model host may spend tokens the meter cannot read: all but a
    metered call, a read that upgrades to nothing, and the few known to spend nothing,
    named plainly (a ``..`` or an escape could lead a server elsewhere than the name)."""
    if metered_api(method, path) is not None:
        return False
    if method in READS:
        return upgrade
    path = path.split("?", 1)[0].rstrip("/")
    free = path in _FREE or path.endswith(_FREE_VERBS) \
        or (anthropic and path.startswith(_FREE_UNDER))
    return not (_plain(path) and free)


@dataclass(frozen=True, slots=True, kw_only=True)
class Reading:
    model: str
    usage: Usage
    #: False when the usage could not be read (in part or at all).
    complete: bool
    #: False when nothing bounds what the answer spent: no usage could be read from a whole
    #: answer (a background response, a malformed or encoded one). A stream cut before its
    #: usage is bounded (what its start said, the text that passed).
    measured: bool = True


class BadUsage(ValueError):
    pass


def _count(block: dict[str, Any], key: str) -> int | None:
    value = block.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BadUsage(f"{key} is {value!r}")
    return value


def _details(block: dict[str, Any], outer: str, inner: str) -> int:
    details = block.get(outer)
    if details is None:
        return 0
    if not isinstance(details, dict):
        raise BadUsage(f"{outer} is not an object")
    return _count(details, inner) or 0


def openai_usage(block: object, *, chat: bool) -> Usage:
    """OpenAI usage (Responses or Chat Completions), cached input taken out of input."""
    if not isinstance(block, dict):
        raise BadUsage("usage is not an object")
    if chat:
        prompt = _count(block, "prompt_tokens") or 0
        cached = _details(block, "prompt_tokens_details", "cached_tokens")
        output = _count(block, "completion_tokens") or 0
    else:
        prompt = _count(block, "input_tokens") or 0
        cached = _details(block, "input_tokens_details", "cached_tokens")
        output = _count(block, "output_tokens") or 0
    if cached > prompt:
        raise BadUsage("more cached tokens than input tokens")
    return Usage(input=prompt - cached, output=output, cache_read=cached)


def gemini_usage(block: object) -> Usage:
    """Gemini's ``usageMetadata``: cached input out of the prompt, thinking with output."""
    if not isinstance(block, dict):
        raise BadUsage("usageMetadata is not an object")
    prompt = _count(block, "promptTokenCount") or 0
    cached = _count(block, "cachedContentTokenCount") or 0
    if cached > prompt:
        raise BadUsage("more cached tokens than prompt tokens")
    tools = _count(block, "toolUsePromptTokenCount") or 0
    output = (_count(block, "candidatesTokenCount") or 0) \
        + (_count(block, "thoughtsTokenCount") or 0)
    return Usage(input=prompt - cached + tools, output=output, cache_read=cached)


_ANTHROPIC_KEYS = {"input_tokens": "input", "output_tokens": "output",
                   "cache_read_input_tokens": "cache_read",
                   "cache_creation_input_tokens": "cache_write"}


#: The fields of a delta that carry output: Anthropic's text, tool-call JSON and
#: thinking; Chat Completions' content and refusal.
_CARRIERS = ("text", "partial_json", "thinking", "content", "refusal")


def _delta_bytes(doc: Any) -> int:
    """The bytes of output a stream's delta event carries, whatever the API: Anthropic's
    ``delta`` object, the Responses API's ``delta`` string, Chat Completions'
    ``choices[].delta`` (its tool calls' arguments too)."""
    if not isinstance(doc, dict):
        return 0
    deltas = [doc.get("delta")]
    choices = doc.get("choices")
    if isinstance(choices, list):
        deltas += [c.get("delta") for c in choices if isinstance(c, dict)]
    parts: list[object] = []
    for delta in deltas:
        if isinstance(delta, str):
            parts.append(delta)
        elif isinstance(delta, dict):
            parts += [delta.get(key) for key in _CARRIERS]
            calls = delta.get("tool_calls")
            if isinstance(calls, list):
                parts += [(c.get("function") or {}).get("arguments")
                          for c in calls if isinstance(c, dict)]
    return sum(len(p.encode()) for p in parts if isinstance(p, str))


class UsageReader:
    """Usage from one answer body, fed chunk by chunk (see the module's docstring)."""

    __slots__ = (
        "_api",
        "_body",
        "_broken",
        "_carried",
        "_counts",
        "_done",
        "_line",
        "_model",
        "_size",
        "_sse",
    )

    def __init__(self, api: Api, *, content_type: bytes | None, encoded: bool) -> None:
        self._api = api
        self._sse = bool(content_type) and b"event-stream" in (content_type or b"").lower()
        self._line = b""
        self._body: list[bytes] = []
        self._size = 0
        self._model = ""
        self._counts: dict[str, int] = {}
        self._done = False  # the final usage was read
        self._broken = encoded  # something could not be read: the answer is unmetered
        self._carried = 0  # bytes of the text the stream's deltas carried

    def feed(self, data: bytes) -> None:
        if self._broken:
            return
        try:
            if self._sse:
                self._feed_sse(data)
            else:
                self._size += len(data)
                if self._size > MAX_JSON:
                    self._broken, self._body = True, []
                else:
                    self._body.append(data)
        except (BadUsage, ValueError, TypeError, KeyError, AttributeError, RecursionError):
            self._broken = True

    def _feed_sse(self, data: bytes) -> None:
        if b"\n" not in data:
            self._line += data
            if len(self._line) > MAX_LINE:
                self._line, self._broken = b"", True
            return
        lines = (self._line + data).split(b"\n")
        self._line = lines.pop()
        for line in lines:
            if not line.startswith(b"data:"):
                continue
            # "usage" (Gemini's "usageMetadata" too), or a delta whose text counts when the
            # stream is cut before its usage; an event can carry both.
            if b'"usage' in line or b'"delta"' in line:
                doc = json.loads(line[5:])
                self._event(doc)
                if not self._done:
                    self._carried += _delta_bytes(doc)

    def _event(self, doc: Any) -> None:
        if not isinstance(doc, dict):
            return
        kind = doc.get("type")
        if self._api is Api.GEMINI:
            self._gemini(doc)
        elif self._api is Api.ANTHROPIC:
            if kind == "message_start":
                message = doc.get("message") or {}
                self._model = str(message.get("model") or self._model)
                self._anthropic(message.get("usage"))
            elif kind == "message_delta":
                self._anthropic(doc.get("usage"))
                self._done = True
        elif self._api is Api.RESPONSES:
            if kind in ("response.completed", "response.incomplete", "response.failed",
                        "response.done"):
                response = doc.get("response") or {}
                self._model = str(response.get("model") or self._model)
                if response.get("usage") is not None:
                    self._set(openai_usage(response["usage"], chat=False))
        elif doc.get("usage") is not None:  # Chat Completions: the last chunk
            self._model = str(doc.get("model") or self._model)
            self._set(openai_usage(doc["usage"], chat=True))

    def _gemini(self, doc: dict[str, Any]) -> None:
        """A chunk of Gemini's answer: each says the usage so far (the later wins)."""
        self._model = str(doc.get("modelVersion") or self._model)
        if doc.get("usageMetadata") is not None:
            self._set(gemini_usage(doc["usageMetadata"]))

    def _anthropic(self, block: object) -> None:
        if block is None:
            return
        if not isinstance(block, dict):
            raise BadUsage("usage is not an object")
        for key, kind in _ANTHROPIC_KEYS.items():
            value = _count(block, key)
            if value is not None:
                self._counts[kind] = value  # cumulative: the later report wins

    def _set(self, usage: Usage) -> None:
        self._counts = {"input": usage.input, "output": usage.output,
                        "cache_read": usage.cache_read, "cache_write": usage.cache_write}
        self._done = True

    def _whole(self, doc: Any) -> None:
        """A whole JSON answer (Gemini's streamed without SSE is an array of chunks)."""
        if self._api is Api.GEMINI:
            for chunk in doc if isinstance(doc, list) else [doc]:
                if not isinstance(chunk, dict):
                    raise BadUsage("a chunk is not an object")
                self._gemini(chunk)
            return
        if not isinstance(doc, dict):
            raise BadUsage("not an object")
        self._model = str(doc.get("model") or "")
        if self._api is Api.ANTHROPIC:
            self._anthropic(doc.get("usage"))
            self._done = doc.get("usage") is not None
        elif doc.get("usage") is not None:
            self._set(openai_usage(doc["usage"], chat=self._api is Api.CHAT))

    def finish(self, *, sent: int = 0) -> Reading:
        """What was read: the usage, and whether it is the whole of it. ``sent`` is the
        size of the request's body, which bounds its input when the answer never said it
        (OpenAI's streams say it in their last event only)."""
        if not self._broken and not self._sse and self._body:
            try:
                self._whole(json.loads(b"".join(self._body)))
                self._body = []
            except (BadUsage, ValueError, TypeError, AttributeError, RecursionError):
                self._broken = True
        counts = {} if self._broken and not self._done else self._counts
        if self._sse and not self._done and not self._broken:
            # Cut before its final usage: the provider bills what it made all the same.
            # The text that passed bounds it, one token per byte (no token is shorter).
            counts = {"input": sent, **counts,
                      "output": max(counts.get("output", 0), self._carried)}
        return Reading(model=model_name(self._model or "unknown"), usage=Usage(**counts),
                       complete=self._done and not self._broken,
                       measured=self._done or (self._sse and not self._broken))
