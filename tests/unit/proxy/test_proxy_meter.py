"""Playbooks for the meter: answer bytes in (in any chunking), usage out."""

from __future__ import annotations

import json

import pytest

from appliance.usage import Usage
from proxy.meter import Api, Reading, UsageReader, metered_api, unmetered_spend

SSE = b"text/event-stream; charset=utf-8"
JSON = b"application/json"


def sse(*events: dict[str, object]) -> bytes:
    return b"".join(f"event: {e.get('type', 'x')}\ndata: {json.dumps(e)}\n\n".encode()
                    for e in events)


ANTHROPIC_STREAM = sse(
    {"type": "message_start", "message": {"model": "claude-sonnet-4-5", "usage": {
        "input_tokens": 12, "output_tokens": 1, "cache_read_input_tokens": 300,
        "cache_creation_input_tokens": 40}}},
    {"type": "content_block_delta", "delta": {"type": "text_delta", "text": "usage of words"}},
    {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
     "usage": {"output_tokens": 57}},
    {"type": "message_stop"},
)
RESPONSES_STREAM = sse(
    {"type": "response.created", "response": {"model": "gpt-5", "usage": None}},
    {"type": "response.output_text.delta", "delta": "hi"},
    {"type": "response.completed", "response": {"model": "gpt-5-2025-08-07", "usage": {
        "input_tokens": 100, "input_tokens_details": {"cached_tokens": 60},
        "output_tokens": 9, "output_tokens_details": {"reasoning_tokens": 4},
        "total_tokens": 109}}},
)
GEMINI_CHUNKS = [
    {"modelVersion": "gemini-2.5-pro", "usageMetadata": {
        "promptTokenCount": 100, "cachedContentTokenCount": 60, "candidatesTokenCount": 1}},
    {"modelVersion": "gemini-2.5-pro", "usageMetadata": {
        "promptTokenCount": 100, "cachedContentTokenCount": 60, "candidatesTokenCount": 9,
        "thoughtsTokenCount": 4, "toolUsePromptTokenCount": 2}},
]
GEMINI_WHOLE = json.dumps(GEMINI_CHUNKS[1]).encode()
GEMINI_USAGE = Usage(input=42, output=13, cache_read=60)
CHAT_STREAM = (b'data: {"model":"gpt-4o","choices":[{"delta":{"content":"x"}}],"usage":null}\n\n'
               b'data: {"model":"gpt-4o","choices":[],"usage":{"prompt_tokens":20,'
               b'"completion_tokens":3,"prompt_tokens_details":{"cached_tokens":5}}}\n\n'
               b"data: [DONE]\n\n")

PLAYBOOK = [
    # (api, content type, body) -> (model, usage, complete)
    (Api.ANTHROPIC, SSE, ANTHROPIC_STREAM,
     "claude-sonnet-4-5", Usage(input=12, output=57, cache_read=300, cache_write=40), True),
    (Api.ANTHROPIC, JSON, json.dumps({"model": "claude-haiku-4-5", "usage": {
        "input_tokens": 7, "output_tokens": 2, "cache_read_input_tokens": 0}}).encode(),
     "claude-haiku-4-5", Usage(input=7, output=2), True),
    (Api.RESPONSES, SSE, RESPONSES_STREAM,
     "gpt-5-2025-08-07", Usage(input=40, output=9, cache_read=60), True),
    (Api.RESPONSES, JSON, json.dumps({"model": "gpt-5", "usage": {
        "input_tokens": 10, "output_tokens": 5}}).encode(), "gpt-5", Usage(input=10, output=5),
     True),
    (Api.CHAT, SSE, CHAT_STREAM, "gpt-4o", Usage(input=15, output=3, cache_read=5), True),
    (Api.CHAT, JSON, json.dumps({"model": "gpt-4o-mini", "usage": {
        "prompt_tokens": 4, "completion_tokens": 1}}).encode(),
     "gpt-4o-mini", Usage(input=4, output=1), True),
    # Bad input: counted as unmetered, never an exception.
    (Api.ANTHROPIC, SSE, sse({"type": "message_start", "message": {
        "model": "m", "usage": {"input_tokens": -3}}}), "m", Usage(), False),
    (Api.ANTHROPIC, SSE, sse({"type": "message_start", "message": {
        "model": "m", "usage": {"input_tokens": "many"}}}), "m", Usage(), False),
    (Api.RESPONSES, SSE, b'data: {"type":"response.completed","usage" BROKEN\n\n',
     "unknown", Usage(), False),
    (Api.RESPONSES, JSON, b'{"usage": {"input_tokens": 3, "input_tokens_details": '
     b'{"cached_tokens": 9}}}', "unknown", Usage(), False),
    (Api.CHAT, JSON, b"[1, 2]", "unknown", Usage(), False),
    (Api.RESPONSES, JSON, b"", "unknown", Usage(), False),
    # A stream cut before message_delta: what was read counts, the output at least the
    # bytes of text that passed ("usage of words"), and it is incomplete.
    (Api.ANTHROPIC, SSE, ANTHROPIC_STREAM.split(b"event: message_delta")[0],
     "claude-sonnet-4-5", Usage(input=12, output=14, cache_read=300, cache_write=40), False),
    (Api.RESPONSES, SSE, RESPONSES_STREAM.split(b"event: response.completed")[0],
     "unknown", Usage(output=2), False),
    (Api.CHAT, SSE, b'data: {"choices":[{"delta":{"role":"assistant","content":"abc",'
     b'"tool_calls":[{"function":{"arguments":"{\\"a\\":1}"}}]}}]}\n\n',
     "unknown", Usage(output=10), False),
    # Gemini: every chunk says the usage so far (the later wins); thinking is output,
    # cached input is taken out of the prompt; whole, as SSE, or as one JSON array.
    (Api.GEMINI, JSON, GEMINI_WHOLE, "gemini-2.5-pro", GEMINI_USAGE, True),
    (Api.GEMINI, SSE, b"".join(b"data: " + json.dumps(c).encode() + b"\r\n\r\n"
                               for c in GEMINI_CHUNKS), "gemini-2.5-pro", GEMINI_USAGE, True),
    (Api.GEMINI, JSON, json.dumps(GEMINI_CHUNKS).encode(), "gemini-2.5-pro", GEMINI_USAGE,
     True),
    (Api.GEMINI, JSON, b'{"usageMetadata":{"promptTokenCount":1,"cachedContentTokenCount":5}}',
     "unknown", Usage(), False),
    # A booleans is not a count.
    (Api.CHAT, JSON, b'{"model":"x","usage":{"prompt_tokens":true}}', "x", Usage(), False),
]


def read(api: Api, ctype: bytes, body: bytes, step: int, *, encoded: bool = False) -> Reading:
    reader = UsageReader(api, content_type=ctype, encoded=encoded)
    for i in range(0, len(body), step):
        reader.feed(body[i:i + step])
    return reader.finish()


@pytest.mark.parametrize("step", [1, 7, 64, 1 << 20])
@pytest.mark.parametrize(("api", "ctype", "body", "model", "usage", "complete"), PLAYBOOK)
def test_playbook(api: Api, ctype: bytes, body: bytes, model: str, usage: Usage,
                  complete: bool, step: int) -> None:
    got = read(api, ctype, body, step)
    assert (got.model, got.usage, got.complete) == (model, usage, complete)


@pytest.mark.parametrize(("api", "ctype", "body", "encoded", "measured"), [
    (Api.ANTHROPIC, SSE, ANTHROPIC_STREAM, False, True),
    # Cut before its usage: bounded by what its start said and the text that passed.
    (Api.ANTHROPIC, SSE, ANTHROPIC_STREAM.split(b"event: message_delta")[0], False, True),
    # Nothing bounds these: a background response (queued, no usage), a malformed usage,
    # an answer compressed all the same.
    (Api.RESPONSES, JSON, b'{"id":"r","status":"queued","background":true,"usage":null}',
     False, False),
    (Api.ANTHROPIC, SSE, ANTHROPIC_STREAM.replace(b'"output_tokens": 57', b'"output_tokens": -1'),
     False, False),
    (Api.ANTHROPIC, SSE, ANTHROPIC_STREAM, True, False),
])
def test_which_answers_are_measured(api: Api, ctype: bytes, body: bytes, encoded: bool,
                                    measured: bool) -> None:
    assert read(api, ctype, body, 7, encoded=encoded).measured is measured


def test_an_encoded_answer_is_unmetered() -> None:
    got = read(Api.ANTHROPIC, SSE, ANTHROPIC_STREAM, 100, encoded=True)
    assert not got.complete and got.usage == Usage()


def test_a_huge_json_answer_is_unmetered_and_not_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("proxy.meter.MAX_JSON", 100)
    reader = UsageReader(Api.CHAT, content_type=JSON, encoded=False)
    reader.feed(b"{" + b" " * 200)
    assert reader.finish().complete is False


def test_which_requests_are_metered() -> None:
    assert metered_api("POST", "/v1/messages?beta=true") is Api.ANTHROPIC
    assert metered_api("POST", "/v1/responses") is Api.RESPONSES
    assert metered_api("POST", "/backend-api/codex/responses") is Api.RESPONSES
    assert metered_api("POST", "/v1/chat/completions") is Api.CHAT
    assert metered_api("GET", "/v1/messages") is None
    assert metered_api("POST", "/v1/messages/count_tokens") is None
    assert metered_api("POST", "/api/event_logging/batch") is None
    assert metered_api("POST", "/v1/completions") is Api.CHAT
    assert metered_api("POST", "/v1/embeddings") is Api.CHAT
    assert metered_api("POST", "/v1beta/models/gemini-2.5-pro:generateContent") is Api.GEMINI
    assert metered_api("POST", "/v1beta/models/g:streamGenerateContent?alt=sse") is Api.GEMINI
    assert metered_api("POST", "/v1beta/models/g:countTokens") is None


@pytest.mark.parametrize(("method", "path", "upgrade", "spends"), [
    # What the meter reads, reads, and what spends nothing.
    ("POST", "/v1/messages?beta=true", False, False),
    ("POST", "/v1/embeddings", False, False),
    ("GET", "/v1/models", False, False),
    ("HEAD", "/v1/messages", False, False),
    ("POST", "/v1/messages/count_tokens?beta=true", False, False),
    ("POST", "/oauth/token", False, False),
    ("POST", "/api/event_logging/batch", False, False),
    ("POST", "/v1beta/models/gemini-2.5-pro:generateContent", False, False),
    ("POST", "/v1beta/models/gemini-2.5-pro:countTokens", False, False),
    # Spends, and the meter cannot read it.
    ("POST", "/v1/complete", False, True),
    ("POST", "/v1/messages/batches", False, True),
    ("POST", "/v1/images/generations", False, True),
    ("POST", "/v1/audio/speech", False, True),
    ("POST", "/v1beta/models/gemini-2.5-pro:embedContent", False, True),
    ("POST", "/backend-api/conversation", False, True),
    ("GET", "/v1/realtime?model=gpt-realtime", True, True),
    ("PUT", "/v1/messages/batches/x", False, True),
    # A name of the free list that a server may read as another path.
    ("POST", "/api/../v1/complete", False, True),
    ("POST", "/api/%2e%2e/v1/complete", False, True),
    ("POST", "/v1/messages/count_tokens/../../complete", False, True),
    ("POST", "/api\\..\\v1\\complete", False, True),
    # A metered name that a server may read as another path is not metered: it spends.
    ("POST", "/v1/complete;/v1/messages", False, True),
    ("POST", "/v1/complete/%2e%2e/v1/messages", False, True),
    ("POST", "/v1/complete/..//v1/messages", False, True),
])
def test_which_model_requests_spend_unmetered(method: str, path: str, upgrade: bool,
                                              spends: bool) -> None:
    assert unmetered_spend(method, path, upgrade=upgrade, anthropic=True) is spends


def test_only_anthropics_api_host_has_a_free_api_folder() -> None:
    assert unmetered_spend("POST", "/api/event_logging/batch", upgrade=False, anthropic=False)
    assert not unmetered_spend("POST", "/oauth/token", upgrade=False, anthropic=False)


def test_a_cut_stream_that_never_said_its_input_counts_the_request_body() -> None:
    cut = RESPONSES_STREAM.split(b"event: response.completed")[0]
    reader = UsageReader(Api.RESPONSES, content_type=SSE, encoded=False)
    reader.feed(cut)
    assert reader.finish(sent=5000).usage == Usage(input=5000, output=2)
    # Anthropic's start said it: that stands.
    reader = UsageReader(Api.ANTHROPIC, content_type=SSE, encoded=False)
    reader.feed(ANTHROPIC_STREAM.split(b"event: message_delta")[0])
    assert reader.finish(sent=5000).usage.input == 12
    # A whole answer's usage is its own, whatever the body.
    reader = UsageReader(Api.RESPONSES, content_type=SSE, encoded=False)
    reader.feed(RESPONSES_STREAM)
    assert reader.finish(sent=5000).usage.input == 40
