"""The one client of the API, with a sync face (the CLI) and an async face (the TUI).

Both talk httpx over the Unix socket (``CLAUDERON_HOME/clauderon.sock``; the socket is the
trusted way in, no sign-in). What a request is and what its answer means is written once,
in :mod:`cli.calls`; how the event stream is framed and resumed, once, in
:mod:`cli.eventstream`. A face only moves bytes: :meth:`ApiClient.run` sends a call and
returns its value, :meth:`ApiClient.follow` yields ``/ws/events`` messages. Transport
failures become :class:`ServiceUnavailable` in one place (:func:`unreachable`), so an API
that is down or stuck is one clear line in the CLI and a notice in the TUI, within the
client's ``timeout``: nothing waits on the socket without a limit.
"""

from __future__ import annotations

import socket
import time
from collections.abc import AsyncGenerator, Generator
from contextlib import aclosing, closing
from pathlib import Path
from typing import Any, TypeVar

import anyio
import httpcore
import httpx

from appliance.config import API_KEEP_ALIVE_SECONDS, load_settings
from appliance.errors import ClauderonError, ServiceUnavailable
from cli import calls
from cli.calls import Call
from cli.eventstream import IDLE_SECONDS, Frames, Message, Resume, check_accept, handshake, lost
from cli.table import inert_json

T = TypeVar("T")
BASE_URL = "http://clauderon"
#: What a face reads at once from the event stream.
CHUNK = 65536
#: How a face keeps its connections: an idle one is let go of well before the API closes it
#: (httpx's default, five seconds, is the API's own: a request sent as the API closed the
#: connection broke off unanswered, "Server disconnected without sending a response").
POOL = httpx.Limits(keepalive_expiry=API_KEEP_ALIVE_SECONDS / 2)

#: What breaks a connection, from httpx's calls and from the upgraded stream (httpcore's).
TRANSPORT_ERRORS = (httpx.TransportError, httpcore.NetworkError, httpcore.TimeoutException,
                    httpcore.ProtocolError, OSError)


def unreachable(socket_path: Path, what: str, exc: BaseException) -> ServiceUnavailable:
    """The one translation of a transport failure into the error tree."""
    if isinstance(exc, httpx.TimeoutException | httpcore.TimeoutException | TimeoutError):
        return ServiceUnavailable(f"the Clauderon API does not answer {what} in time "
                                  f"(on {socket_path})")
    if isinstance(exc, PermissionError):
        return ServiceUnavailable(f"cannot open {socket_path}: permission denied (it belongs "
                                  "to the user the appliance runs as)")
    if isinstance(exc, httpx.ConnectError | FileNotFoundError | ConnectionRefusedError):
        return ServiceUnavailable(
            f"the Clauderon API is not running (nothing answers on {socket_path}); "
            "start it with `clauderon daemon`")
    return ServiceUnavailable(f"the connection to the Clauderon API broke off during {what}: "
                              f"{exc}")


class _Face:
    def __init__(self, socket_path: Path, timeout: float) -> None:
        self.socket_path = socket_path
        self.timeout = timeout

    def _request(self, http: httpx.Client | httpx.AsyncClient, call: Call[Any]) -> httpx.Request:
        return http.build_request(call.method, call.path, params=call.params or None,
                                  json=call.json)

    @staticmethod
    def _refusal(response: httpx.Response) -> Exception:
        """The API's answer to an upgrade it refused, as its error (its body is read)."""
        body = calls.body_of(response) or {
            "error": f"the API refused the event stream ({response.status_code})"}
        return calls.error_of(response, body)

    @staticmethod
    def _upgraded(response: httpx.Response, key: str) -> Any:
        """The byte stream of the connection the API upgraded."""
        check_accept(key, response.headers)
        return response.extensions["network_stream"]


class ApiClient(_Face):
    """The sync face: what the ``clauderon`` command uses."""

    def __init__(self, socket_path: Path, *, timeout: float = 30.0) -> None:
        super().__init__(socket_path, timeout)
        self._http = httpx.Client(
            transport=httpx.HTTPTransport(uds=str(socket_path), limits=POOL),
            base_url=BASE_URL, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def _reachable(self, what: str) -> None:
        """Connect once with a bare socket first. httpcore's sync connect leaves the socket
        of a failed connect open (an fd per attempt, for as long as a follower retries);
        this one is closed whatever happens, and "not running" is said before httpx."""
        with socket.socket(socket.AF_UNIX) as probe:
            probe.settimeout(self.timeout)
            try:
                probe.connect(str(self.socket_path))
            except OSError as exc:
                raise unreachable(self.socket_path, what, exc) from exc

    def run(self, call: Call[T]) -> T:
        self._reachable(call.describe())
        try:
            response = self._http.send(self._request(self._http, call))
        except TRANSPORT_ERRORS as exc:
            raise unreachable(self.socket_path, call.describe(), exc) from exc
        return calls.finish(call, response)

    # Plain calls for paths without a named call (tests use them too).
    def get(self, path: str, **params: str) -> Any:
        return self.run(calls.get(path, params))

    def post(self, path: str, json: Any = None) -> Any:
        return self.run(calls.post(path, json))

    def delete(self, path: str) -> Any:
        return self.run(calls.delete(path))

    def events(self, after: int | None = None) -> Generator[Message | None, None, None]:
        """One connection to ``/ws/events``: its messages, and None after each silence of
        :data:`IDLE_SECONDS` (the stream was pinged). Raises :class:`ServiceUnavailable`
        when it ends."""
        key, headers = handshake()
        path = calls.events_path(after)
        self._reachable("the event stream")
        try:
            with self._http.stream("GET", path, headers=headers) as response:
                if response.status_code != 101:
                    response.read()
                    raise self._refusal(response)
                stream = self._upgraded(response, key)
                frames = Frames()
                while True:
                    try:
                        data = stream.read(CHUNK, timeout=IDLE_SECONDS)
                    except httpcore.ReadTimeout:
                        stream.write(frames.silent())
                        yield None
                        continue
                    reply, messages = frames.receive(data)
                    if reply:
                        stream.write(reply)
                    yield from messages
        except TRANSPORT_ERRORS as exc:
            raise unreachable(self.socket_path, "the event stream", exc) from exc

    def follow(self, after: int | None = None) -> Generator[Message | None, None, None]:
        """``/ws/events`` for as long as the caller reads: a lost stream is one ``lost``
        message, then a new connection resuming after the last event seen."""
        resume = Resume(after)
        while True:
            try:
                with closing(self.events(resume.after)) as stream:
                    for message in stream:
                        if message is not None:
                            resume.see(message)
                        yield message
            except ClauderonError as exc:  # down, stuck, or refused: said, then tried again
                yield lost(exc)
            time.sleep(resume.wait())


def local_client() -> ApiClient:
    """The client on this appliance's Unix socket, the trusted channel."""
    return ApiClient(load_settings().socket_path)


class AsyncApiClient(_Face):
    """The async face: what the TUI uses (Textual runs on asyncio; httpx, and so this face,
    runs on any loop anyio supports, trio included)."""

    def __init__(self, socket_path: Path, *, timeout: float = 5.0, inert: bool = False) -> None:
        super().__init__(socket_path, timeout)
        #: Every string of every answer and event made inert (:func:`cli.table.inert`): for
        #: a screen that draws them (the TUI), since they may hold an agent's words.
        self.inert = inert
        self._http = httpx.AsyncClient(
            transport=httpx.AsyncHTTPTransport(uds=str(socket_path), limits=POOL),
            base_url=BASE_URL, timeout=timeout)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def run(self, call: Call[T]) -> T:
        try:
            response = await self._http.send(self._request(self._http, call))
        except TRANSPORT_ERRORS as exc:
            raise unreachable(self.socket_path, call.describe(), exc) from exc
        return calls.finish(call, response, inert=self.inert)

    async def events(self, after: int | None = None) -> AsyncGenerator[Message | None, None]:
        """As :meth:`ApiClient.events`."""
        key, headers = handshake()
        path = calls.events_path(after)
        try:
            async with self._http.stream("GET", path, headers=headers) as response:
                if response.status_code != 101:
                    await response.aread()
                    raise self._refusal(response)
                stream = self._upgraded(response, key)
                frames = Frames()
                while True:
                    try:
                        data = await stream.read(CHUNK, timeout=IDLE_SECONDS)
                    except httpcore.ReadTimeout:
                        await stream.write(frames.silent())
                        yield None
                        continue
                    reply, messages = frames.receive(data)
                    if reply:
                        await stream.write(reply)
                    for message in messages:
                        yield inert_json(message) if self.inert else message
        except TRANSPORT_ERRORS as exc:
            raise unreachable(self.socket_path, "the event stream", exc) from exc

    async def follow(self, after: int | None = None) -> AsyncGenerator[Message | None, None]:
        """As :meth:`ApiClient.follow`."""
        resume = Resume(after)
        while True:
            try:
                async with aclosing(self.events(resume.after)) as stream:
                    async for message in stream:
                        if message is not None:
                            resume.see(message)
                        yield message
            except ClauderonError as exc:
                yield inert_json(lost(exc)) if self.inert else lost(exc)
            await anyio.sleep(resume.wait())
