"""A fake model API for the metering tests: answers that report the usage the test chose.

``POST /v1/messages`` answers in Anthropic's format, ``/v1/responses`` in the Responses
format and ``/v1/chat/completions`` in the Chat Completions format (``/v1/complete``, the
legacy completion, answers without usage, as Anthropic's does; Gemini's
``:generateContent`` and ``:streamGenerateContent`` answer in its format, streamed as SSE
with ``alt=sse`` and as one JSON array without; a Responses request with
``"background": true`` is answered queued, without usage, as OpenAI's is); each streams (SSE,
chunked, an event per write) when the request body says ``"stream": true`` and is one JSON
document otherwise. :attr:`ModelUpstream.usage` is what every answer reports; the test
compares what the proxy recorded with it.
"""

from __future__ import annotations

import json

import h11
import trio
import trustme
from proxy_fakes import Seen, _Base


def _sse(doc: dict[str, object]) -> bytes:
    return f"event: {doc.get('type', 'message')}\ndata: {json.dumps(doc)}\n\n".encode()


class ModelUpstream(_Base):
    def __init__(self, ca: trustme.CA) -> None:
        super().__init__(ca)
        self.usage = {"input": 11, "output": 22, "cache_read": 33, "cache_write": 44}
        self.model = "claude-sonnet-4-5-20250929"
        #: When set, a stream stops after its first event until the test sets this event:
        #: a proxy that held the first event back would never see the rest.
        self.hold_after_first: trio.Event | None = None
        #: The event a stream holds before (when ``hold_after_first`` is set).
        self.hold_at = 1
        #: The text an Anthropic answer carries.
        self.text = "hello"
        #: When set, every request is answered with this status (a revoked token, a limit).
        self.refuse: int | None = None

    def events(self, path: str) -> tuple[list[bytes], dict[str, object]]:
        u = self.usage
        if path == "/v1/messages":
            start = {"input_tokens": u["input"], "output_tokens": 1,
                     "cache_read_input_tokens": u["cache_read"],
                     "cache_creation_input_tokens": u["cache_write"]}
            events = [
                _sse({"type": "message_start", "message": {"model": self.model,
                                                           "usage": start}}),
                _sse({"type": "content_block_delta", "index": 0,
                      "delta": {"type": "text_delta", "text": self.text}}),
                _sse({"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                      "usage": {"output_tokens": u["output"]}}),
                _sse({"type": "message_stop"}),
            ]
            whole = {"model": self.model, "content": [{"type": "text", "text": self.text}],
                     "usage": {**start, "output_tokens": u["output"]}}
            return events, whole
        cached = u["cache_read"]
        if path == "/v1/chat/completions":
            usage = {"prompt_tokens": u["input"] + cached, "completion_tokens": u["output"],
                     "prompt_tokens_details": {"cached_tokens": cached}}
            chunks = [f"data: {json.dumps(d)}\n\n".encode() for d in (
                {"model": self.model, "choices": [{"delta": {"content": "hi"}}], "usage": None},
                {"model": self.model, "choices": [], "usage": usage})] + [b"data: [DONE]\n\n"]
            return chunks, {"model": self.model, "usage": usage}
        usage = {"input_tokens": u["input"] + cached, "output_tokens": u["output"],
                 "input_tokens_details": {"cached_tokens": cached}}
        response = {"model": self.model, "status": "completed", "usage": usage}
        return [_sse({"type": "response.created", "response": {"model": self.model}}),
                _sse({"type": "response.output_text.delta", "delta": "hi"}),
                _sse({"type": "response.completed", "response": response})], response

    def gemini(self) -> list[dict[str, object]]:
        """Gemini's chunks: the usage so far in each, the whole of it in the last."""
        u = self.usage

        def chunk(text: str, output: int) -> dict[str, object]:
            return {"candidates": [{"content": {"role": "model", "parts": [{"text": text}]}}],
                    "modelVersion": "gemini-2.5-pro",
                    "usageMetadata": {"promptTokenCount": u["input"] + u["cache_read"],
                                      "cachedContentTokenCount": u["cache_read"],
                                      "candidatesTokenCount": output - 3,
                                      "thoughtsTokenCount": 3}}
        return [chunk("hel", 4), chunk("lo", u["output"])]

    async def _gemini(self, stream: trio.abc.Stream, conn: h11.Connection, *, streamed: bool,
                      sse: bool) -> None:
        chunks = self.gemini()
        if not streamed:
            await self.reply(stream, conn, 200, json.dumps(chunks[-1]).encode())
            return
        kind = "text/event-stream" if sse else "application/json"
        await self.send(stream, conn, h11.Response(status_code=200, headers=[
            ("content-type", kind), ("transfer-encoding", "chunked")]))
        if sse:
            parts = [f"data: {json.dumps(c)}\r\n\r\n".encode() for c in chunks]
        else:  # one JSON array, written a piece at a time
            parts = [b"[" + json.dumps(chunks[0]).encode(),
                     b"," + json.dumps(chunks[1]).encode() + b"]"]
        for part in parts:
            await self.send(stream, conn, h11.Data(data=part))
        await self.send(stream, conn, h11.EndOfMessage())

    async def answer(self, stream: trio.abc.Stream, conn: h11.Connection, seen: Seen) -> bool:
        if self.refuse is not None:
            await self.reply(stream, conn, self.refuse, b'{"detail": "refused by the fake"}')
            return True
        path = seen.target.split("?")[0]
        if path == "/backend-api/codex/responses":  # ChatGPT's Responses API, for Codex
            path = "/v1/responses"
        if path.startswith("/v1beta/models/") and path.endswith(
                (":generateContent", ":streamGenerateContent")):
            await self._gemini(stream, conn, streamed=path.endswith(":streamGenerateContent"),
                               sse="alt=sse" in seen.target)
            return True
        if path == "/v1/complete":  # Anthropic's legacy completion: its answer has no usage
            await self.reply(stream, conn, 200, json.dumps({
                "type": "completion", "completion": "hi", "stop_reason": "stop_sequence",
                "model": self.model}).encode())
            return True
        if path == "/v1/responses" and json.loads(seen.body or b"{}").get("background"):
            # A background response: queued now, its usage known only once it is done.
            await self.reply(stream, conn, 200, json.dumps({
                "id": "resp_background", "object": "response", "status": "queued",
                "background": True, "model": self.model, "usage": None}).encode())
            return True
        if path not in ("/v1/messages", "/v1/responses", "/v1/chat/completions"):
            await self.reply(stream, conn, 404, b'{"error": "not here"}')
            return True
        events, whole = self.events(path)
        if json.loads(seen.body or b"{}").get("stream"):
            await self.send(stream, conn, h11.Response(status_code=200, headers=[
                ("content-type", "text/event-stream"), ("transfer-encoding", "chunked")]))
            for i, event in enumerate(events):
                if i == self.hold_at and self.hold_after_first is not None:
                    await self.hold_after_first.wait()
                await self.send(stream, conn, h11.Data(data=event))
            await self.send(stream, conn, h11.EndOfMessage())
        else:
            await self.reply(stream, conn, 200, json.dumps(whole).encode())
        return True
