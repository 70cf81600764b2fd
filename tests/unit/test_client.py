"""The one client (pure parts, and both faces against real sockets): calls and their
answers, the error tree round trip, the event stream's frames and resumption.

Answers are real ``httpx.Response`` objects; frames come from a real wsproto server
connection; the faces talk to real Unix sockets (nothing there, or a listener that never
answers). The faces against the real API are in tests/integration/test_client_events.py.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import httpx
import pytest
from wsproto.connection import Connection, ConnectionType
from wsproto.events import CloseConnection, Ping, Pong, TextMessage

from appliance import errors
from appliance.errors import ClauderonError, NotFound, ServiceUnavailable
from cli import calls
from cli.client import ApiClient, AsyncApiClient
from cli.eventstream import (
    FIRST_PAUSE,
    MAX_MESSAGE,
    MAX_PAUSE,
    Frames,
    Resume,
    check_accept,
    handshake,
)
from cli.tui.tui_app import ClauderonApp


def answer(status: int, body: object = None, *, text: str | None = None) -> httpx.Response:
    request = httpx.Request("GET", "http://clauderon/api/x")
    if text is not None:
        return httpx.Response(status, text=text, request=request)
    if body is None:
        return httpx.Response(status, request=request)
    return httpx.Response(status, json=body, request=request)


# --- calls and answers ------------------------------------------------------------------
def every_error_class() -> list[type[ClauderonError]]:
    return sorted(set(calls.known_errors().values()), key=lambda c: c.code)


@pytest.mark.parametrize("cls", every_error_class(), ids=lambda c: c.code)
def test_every_error_the_api_raises_comes_back_as_its_class(cls: type[ClauderonError]) -> None:
    """What api/app.py sends for an error (``exc.to_json()``, its status) raises the same
    class, message and field on this side: the CLI's exit code and the TUI's field follow."""
    sent = cls("something precise went wrong; do this", field="name")
    with pytest.raises(cls) as raised:
        calls.finish(calls.session("x"), answer(sent.http_status, sent.to_json()))
    assert type(raised.value) is cls
    assert raised.value.message == sent.message and raised.value.field == "name"
    assert raised.value.exit_code == sent.exit_code


def test_the_error_tree_is_covered_and_codes_are_unique() -> None:
    """Every class of the one error tree (appliance/errors.py, what the API's answers carry)
    is known by its code, and no two share one."""
    def tree(c: type[ClauderonError]) -> list[type[ClauderonError]]:
        return [c, *[x for sub in c.__subclasses__() for x in tree(sub)]]

    core = [c for c in tree(errors.ClauderonError) if c.__module__ == "appliance.errors"]
    assert len(core) > 10 and len({c.code for c in core}) == len(core)
    assert set(core) == set(calls.known_errors().values())


def test_odd_error_answers_still_say_what_happened() -> None:
    with pytest.raises(ClauderonError) as unknown:
        calls.finish(calls.session("x"), answer(418, {"error": "teapot", "code": "brewing"}))
    assert type(unknown.value) is ClauderonError and unknown.value.message == "teapot"
    with pytest.raises(ClauderonError) as plain:
        calls.finish(calls.session("x"), answer(502, text="Bad Gateway from a proxy\n"))
    assert plain.value.message == "Bad Gateway from a proxy"
    with pytest.raises(ClauderonError) as empty:
        calls.finish(calls.session("x"), answer(500))
    assert empty.value.message == "500 Internal Server Error"
    with pytest.raises(NotFound) as listed:  # a field that is not a string is dropped
        calls.finish(calls.session("x"),
                     answer(404, {"error": "gone", "code": "not_found", "field": ["x"]}))
    assert listed.value.field is None


def test_answers_decode_into_what_each_call_promises() -> None:
    s = {"id": "i", "name": "n"}
    assert calls.finish(calls.session("n"), answer(200, {"session": s})) == s
    assert calls.finish(calls.act("n", "stop"), answer(202, {"session": s})) == s
    assert calls.finish(calls.sessions("waiting"), answer(200, {"sessions": [s, s]})) == [s, s]
    assert calls.finish(calls.history("n"), answer(200, {"events": []})) == []
    assert calls.finish(calls.audit("n", 5), answer(200, {"lines": [{"ts": "t"}]})) == \
        [{"ts": "t"}]
    assert calls.finish(calls.delete("/api/x"), answer(204)) is None
    # /api/health answers 503 with the details of what is down: that is an answer.
    assert calls.finish(calls.health(), answer(503, {"status": "degraded"})) == \
        {"status": "degraded"}
    with pytest.raises(ClauderonError):
        calls.finish(calls.reconcile(), answer(503, {"error": "down", "code": "unavailable"}))


def test_each_call_names_its_path_once_and_quotes_references() -> None:
    assert (calls.sessions().path, dict(calls.sessions().params)) == ("/api/sessions", {})
    assert dict(calls.sessions("failed").params) == {"filter": "failed"}
    assert dict(calls.sessions(everything=True).params) == {"all": "true"}
    assert calls.act("a b/../c", "archive").path == "/api/sessions/a%20b%2F..%2Fc/archive"
    assert calls.access_mode("x", "read-only").json == {"access_mode": "read-only"}
    assert calls.create({"repo_path": "/r"}).method == "POST"
    assert calls.remove("x").describe() == "DELETE /api/sessions/x"
    assert calls.events_path(None) == "/ws/events"
    assert calls.events_path(41) == "/ws/events?after=41"


# --- the event stream's frames --------------------------------------------------------------
class Server:
    """The API's side of an upgraded connection (wsproto, as hypercorn frames it)."""

    def __init__(self) -> None:
        self.ws = Connection(ConnectionType.SERVER)

    def text(self, data: str, *, finished: bool = True) -> bytes:
        return self.ws.send(TextMessage(data=data, message_finished=finished))

    def json(self, value: object) -> bytes:
        return self.text(json.dumps(value))

    def events(self, data: bytes) -> list[object]:
        self.ws.receive_data(data)
        return list(self.ws.events())


def test_handshake_answers_the_rfc_example_and_refuses_anything_else() -> None:
    check_accept("dGhlIHNhbXBsZSBub25jZQ==",
                 {"sec-websocket-accept": "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="})
    with pytest.raises(ServiceUnavailable):
        check_accept("dGhlIHNhbXBsZSBub25jZQ==", {"sec-websocket-accept": "wrong"})
    with pytest.raises(ServiceUnavailable):
        check_accept("dGhlIHNhbXBsZSBub25jZQ==", {})
    key, headers = handshake()
    assert headers["Sec-WebSocket-Key"] == key and handshake()[0] != key
    assert headers["Upgrade"] == "websocket" and headers["Sec-WebSocket-Version"] == "13"


def test_frames_give_whole_messages_however_the_bytes_are_cut() -> None:
    server, frames = Server(), Frames()
    wire = (server.json({"type": "connected", "latest": 3})
            + server.text('{"type": "event", ', finished=False)
            + server.text('"event": {"id": 4}}')
            + server.json(["not", "an", "object"]))
    got: list[object] = []
    for i in range(len(wire)):  # one byte at a time
        reply, messages = frames.receive(wire[i:i + 1])
        assert reply == b""
        got += messages
    assert got == [{"type": "connected", "latest": 3}, {"type": "event", "event": {"id": 4}}]


def test_frames_answer_pings_and_end_on_close_or_eof() -> None:
    server, frames = Server(), Frames()
    reply, messages = frames.receive(server.ws.send(Ping(payload=b"are you there")))
    assert messages == [] and server.events(reply) == [Pong(payload=b"are you there")]
    with pytest.raises(ServiceUnavailable, match="closed the event stream: going away"):
        frames.receive(server.ws.send(CloseConnection(code=1001, reason="going away")))
    with pytest.raises(ServiceUnavailable, match="closed"):
        Frames().receive(b"")


def test_a_silence_gets_one_ping_and_a_second_one_ends_the_stream() -> None:
    server, frames = Server(), Frames()
    assert isinstance(server.events(frames.silent())[0], Ping)
    frames.receive(server.json({"type": "connected", "latest": 0}))  # it answered
    server.events(frames.silent())
    with pytest.raises(ServiceUnavailable, match="stopped answering"):
        frames.silent()


def test_a_message_too_large_to_be_an_event_ends_the_stream() -> None:
    server, frames = Server(), Frames()
    chunk = "x" * (1024 * 1024)
    with pytest.raises(ServiceUnavailable, match="too large"):
        for _ in range(MAX_MESSAGE // len(chunk) + 1):
            frames.receive(server.text(chunk, finished=False))


def test_resume_starts_from_now_then_from_the_last_event_and_backs_off() -> None:
    resume = Resume()
    assert resume.after is None
    assert [resume.wait() for _ in range(6)] == [FIRST_PAUSE, 1.0, 2.0, 4.0, MAX_PAUSE,
                                                 MAX_PAUSE]
    resume.see({"type": "connected", "latest": 7})
    assert (resume.after, resume.pause) == (7, FIRST_PAUSE)
    resume.see({"type": "event", "event": {"id": 9}})
    resume.see({"type": "connected", "latest": 12})  # a reconnection keeps its cursor
    assert resume.after == 9
    assert Resume(after=0).after == 0


# --- the faces against sockets that do not answer ----------------------------------------
@pytest.fixture
def silent_socket(tmp_path: Path) -> Iterator[Path]:
    """A Unix socket that accepts connections and never says a word."""
    path = tmp_path / "silent.sock"
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(path))
    listener.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept)
    thread.start()
    try:
        yield path
    finally:
        stop.set()
        thread.join(timeout=10)
        for conn in held:
            conn.close()
        listener.close()


def test_sync_face_says_the_api_is_not_running_or_not_answering(
        tmp_path: Path, silent_socket: Path) -> None:
    with closing(ApiClient(tmp_path / "nothing.sock", timeout=2)) as client:
        with pytest.raises(ServiceUnavailable, match=r"not running .*clauderon daemon"):
            client.run(calls.sessions())
        with closing(client.follow()) as stream:
            lost = next(stream)
        assert lost is not None and lost["type"] == "lost"
        assert "not running" in lost["error"]
    with closing(ApiClient(silent_socket, timeout=0.5)) as client, \
            pytest.raises(ServiceUnavailable, match="does not answer GET /api/sessions in time"):
        client.run(calls.sessions())


def test_async_face_says_the_same(tmp_path: Path, silent_socket: Path) -> None:
    async def run() -> None:
        api = AsyncApiClient(tmp_path / "nothing.sock", timeout=2)
        with pytest.raises(ServiceUnavailable, match="not running"):
            await api.run(calls.session("x"))
        stream = api.follow()
        lost = await anext(stream)
        await stream.aclose()
        assert lost is not None and lost["type"] == "lost" and "not running" in lost["error"]
        await api.aclose()
        slow = AsyncApiClient(silent_socket, timeout=0.5)
        with pytest.raises(ServiceUnavailable, match="does not answer POST"):
            await slow.run(calls.act("x", "stop"))
        await slow.aclose()

    asyncio.run(run())



def test_a_drawing_face_gets_every_string_inert() -> None:
    """The TUI draws what the API answers, and Textual writes an escape sequence in it to
    the person's terminal as it is; an answer may hold an agent's words (a reason, a file's
    name, git's complaint). With ``inert`` every string comes without a control character
    but newline and tab, errors included; without it, as the API sent it (``--json``)."""
    osc52 = "\x1b]52;c;cm0gLXJmIH4=\x1b\\"
    listing = {"sessions": [{"name": "s", "status_reason": f"sync failed:{osc52} ok\n",
                             "files": [{"path": f"a{osc52}.txt"}]}]}
    [clean] = calls.finish(calls.sessions(), answer(200, listing), inert=True)
    assert clean["status_reason"] == "sync failed:]52;c;cm0gLXJmIH4=\\ ok\n"
    assert clean["files"] == [{"path": "a]52;c;cm0gLXJmIH4=\\.txt"}]
    [raw] = calls.finish(calls.sessions(), answer(200, listing))
    assert osc52 in raw["status_reason"]
    refused = answer(409, {"error": f"cannot \x9b2J{osc52}", "code": "conflict"})
    with pytest.raises(ClauderonError) as exc:
        calls.finish(calls.sessions(), refused, inert=True)
    assert not any(ord(c) < 32 or 0x7f <= ord(c) <= 0x9f for c in exc.value.message)
    assert ClauderonApp(Path("/nonexistent.sock")).api.inert  # the TUI draws inert strings


async def test_both_faces_let_go_of_an_idle_connection_before_the_api_closes_it(
        tmp_path: Path) -> None:
    """A request sent on a kept connection just as the API closes it for idleness gets no
    answer at all ("Server disconnected without sending a response"): seen from the CLI and
    the TUI after five idle seconds, httpx's default expiry being the API's own keep-alive.
    Each face's pool lets go of a connection well before the API's listeners close it."""
    from api.listeners import tcp_config, unix_config
    from appliance.config import load_settings

    settings = load_settings({"CLAUDERON_HOME": str(tmp_path)})
    closes = {unix_config(settings).keep_alive_timeout}
    tcp = tcp_config(settings)
    assert tcp is not None
    closes.add(tcp.keep_alive_timeout)
    sync_face = ApiClient(tmp_path / "api.sock")
    async_face = AsyncApiClient(tmp_path / "api.sock")
    try:
        for face in (sync_face, async_face):
            expiry = face._http._transport._pool._keepalive_expiry  # type: ignore[attr-defined]
            assert expiry is not None and expiry <= min(closes) / 2, (expiry, closes)
    finally:
        sync_face.close()
        await async_face.aclose()
