"""Property: what reaches the upstream is exactly what the audit log says was forwarded.

For any pair of client byte streams -- generated requests with every kind of framing,
valid or ambiguous, pipelined and cut at random points, followed by raw garbage or a
request cut short -- sent by two sessions at once through the real proxy (in-process, on
loopback, plain ``http://`` or inside a CONNECT tunnel) to a real upstream socket that
records every byte and parses them strictly:

- the upstream's bytes parse as complete requests, one framing each, with nothing left
  over except the start of a request whose client went away mid-way (and the audit says
  so);
- per session, those requests are the audit log's passed requests, in order, with the
  same methods, targets and body sizes, and they are the generated requests up to the
  first ambiguous one: no byte of a refused request, or of anything after it, arrives;
- every upstream connection carries one session's requests only.
"""

from __future__ import annotations

import base64
import functools
import ssl
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
import trio
import trustme
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appliance.audit import AuditLog, AuditRecord, parse_line
from appliance.credentials import CredentialSet
from appliance.sessions import AccessMode, Session, new_session_id
from appliance.store import Store
from appliance.tokens import hash_token
from proxy.certs import CertStore
from proxy.directory import StoreDirectory
from proxy.proxy_config import ProxyConfig, Upstream
from proxy.server import serve
from proxy.state import ProxyState

CA = trustme.CA()
HOST = "up.test"
VALID = ("cl", "chunked", "none")
AMBIGUOUS = ("te+cl", "cl,cl", "cl-twice", "cl-junk", "te-gzip", "te-http/1.0", "folded",
             "bare-lf", "control", "host-elsewhere", "space-colon")


@dataclass(frozen=True)
class Gen:
    method: str
    path: str
    body: bytes
    framing: str
    chunks: tuple[int, ...]
    trailer: bool


@dataclass
class Seen:
    conn: int
    method: str
    target: str
    client: str
    body: bytes


@dataclass
class Recorder:
    """The upstream: records every byte per connection, parses strictly, answers each."""

    seen: list[Seen] = field(default_factory=list)
    leftovers: dict[int, bytes] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    connections: int = 0
    #: Connections not yet closed, and an event set whenever the last of them closes.
    open: int = 0
    all_closed: trio.Event = field(default_factory=trio.Event)

    async def handle(self, stream: trio.SocketStream) -> None:
        cid, self.connections = self.connections, self.connections + 1
        self.open += 1
        buf = b""
        try:
            while data := await stream.receive_some(65536):
                buf += data
                while True:
                    try:
                        parsed = parse_one(buf)
                    except ValueError as exc:
                        self.errors.append(f"connection {cid}: {exc}: {buf[:200]!r}")
                        return
                    if parsed is None:
                        break
                    (method, target, client, body), used = parsed
                    buf = buf[used:]
                    self.seen.append(Seen(cid, method, target, client, body))
                    await stream.send_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            if buf:
                self.leftovers[cid] = buf
            await stream.aclose()
            self.open -= 1
            if not self.open:
                self.all_closed.set()
                self.all_closed = trio.Event()


def parse_one(buf: bytes) -> tuple[tuple[str, str, str, bytes], int] | None:
    """One strictly framed request at the start of ``buf``; None if incomplete."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    lines = buf[:end].split(b"\r\n")
    if any(b"\n" in line or b"\r" in line for line in lines):
        raise ValueError("bare CR or LF")
    parts = lines[0].split(b" ")
    if len(parts) != 3 or parts[2] != b"HTTP/1.1":
        raise ValueError("bad request line")
    headers: dict[bytes, list[bytes]] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon or not name or name != name.strip() or line[:1] in b" \t":
            raise ValueError("bad header line")
        headers.setdefault(name.lower(), []).append(value.strip())
    lengths, codings = headers.get(b"content-length", []), headers.get(b"transfer-encoding", [])
    if len(lengths) + len(codings) > 1 or headers.get(b"host") != [HOST.encode()]:
        raise ValueError("ambiguous framing or a wrong Host upstream")
    pos = end + 4
    body = b""
    if codings:
        if codings != [b"chunked"]:
            raise ValueError("unknown coding")
        while True:
            eol = buf.find(b"\r\n", pos)
            if eol < 0:
                return None
            size = int(buf[pos:eol], 16)
            pos = eol + 2
            if size == 0:
                trailer_end = buf.find(b"\r\n\r\n", pos - 2)
                if trailer_end < 0:
                    return None
                pos = trailer_end + 4
                break
            if len(buf) < pos + size + 2:
                return None
            if buf[pos + size: pos + size + 2] != b"\r\n":
                raise ValueError("bad chunk")
            body += buf[pos:pos + size]
            pos += size + 2
    elif lengths:
        size = int(lengths[0])
        if len(buf) < pos + size:
            return None
        body, pos = buf[pos:pos + size], pos + size
    client = (headers.get(b"x-client") or [b"?"])[0].decode()
    return (parts[0].decode(), parts[1].decode(), client, body), pos


def render(req: Gen, *, client: str, auth: bytes | None, tunnel: bool) -> bytes:
    """The request's bytes as the hostile client writes them."""
    target = req.path if tunnel else f"http://{HOST}{req.path}"
    version = "HTTP/1.0" if req.framing == "te-http/1.0" else "HTTP/1.1"
    host = "elsewhere.test" if req.framing == "host-elsewhere" else HOST
    lines = [f"{req.method} {target} {version}", f"Host: {host}", f"X-Client: {client}"]
    if auth is not None:
        lines.append("Proxy-Authorization: Basic " + auth.decode())
    body = req.body
    chunked = _chunked(body, req.chunks, req.trailer)
    framing = req.framing
    extra: dict[str, list[str]] = {
        "cl": [f"Content-Length: {len(body)}"],
        "chunked": ["Transfer-Encoding: chunked"],
        "none": [],
        "te+cl": ["Transfer-Encoding: chunked", f"Content-Length: {len(body)}"],
        "cl,cl": [f"Content-Length: {len(body)}, {len(body)}"],
        "cl-twice": [f"Content-Length: {len(body)}", f"Content-Length: {len(body)}"],
        "cl-junk": [f"Content-Length: {len(body)}x"],
        "te-gzip": ["Transfer-Encoding: gzip, chunked"],
        "te-http/1.0": ["Transfer-Encoding: chunked"],
        "folded": ["X-Folded: a", " b", f"Content-Length: {len(body)}"],
        "bare-lf": [f"Content-Length: {len(body)}"],
        "control": ["X-Ctl: a\x01b", f"Content-Length: {len(body)}"],
        "host-elsewhere": [f"Content-Length: {len(body)}"],
        "space-colon": [f"Content-Length : {len(body)}"],
    }[framing]
    text = "\r\n".join(lines + extra) + "\r\n\r\n"
    if framing == "bare-lf":
        text = text.replace("\r\n", "\n")
    payload = {"none": b"", "chunked": chunked, "te+cl": chunked, "te-gzip": chunked,
               "te-http/1.0": chunked}.get(framing, body)
    return text.encode("latin-1") + payload


def _chunked(body: bytes, sizes: tuple[int, ...], trailer: bool) -> bytes:
    out, pos = b"", 0
    for size in (*sizes, len(body)):
        piece = body[pos:pos + size]
        if piece:
            out += b"%x\r\n%s\r\n" % (len(piece), piece)
        pos += len(piece)
    return out + b"0\r\n" + (b"X-Sum: 1\r\n" if trailer else b"") + b"\r\n"


requests = st.builds(
    Gen,
    method=st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE"]),
    path=st.from_regex(r"/[a-z0-9]{0,8}(\?[a-z]=[0-9])?", fullmatch=True),
    body=st.binary(max_size=200),
    framing=st.sampled_from(VALID * 3 + AMBIGUOUS),
    chunks=st.lists(st.integers(1, 40), max_size=5).map(tuple),
    trailer=st.booleans(),
)
tails = st.one_of(st.just(b""), st.binary(min_size=1, max_size=60),
                  st.tuples(requests, st.integers(1, 400)).map(lambda t: (t[0], t[1])))


@dataclass(frozen=True)
class Stream:
    requests: list[Gen]
    tail: object  # b"" | random bytes | (request, cut) for a request cut short
    cuts: list[int]

    def expected(self) -> list[Gen]:
        """The generated requests up to the first ambiguous one."""
        out = []
        for req in self.requests:
            if req.framing not in VALID:
                break
            out.append(req)
        return out

    def refused(self) -> bool:
        return len(self.expected()) < len(self.requests)


streams = st.builds(Stream, requests=st.lists(requests, min_size=1, max_size=4), tail=tails,
                    cuts=st.lists(st.integers(1, 300), max_size=6))


@pytest.fixture(scope="module")
def sessions() -> Iterator[tuple[Store, dict[str, tuple[str, str]]]]:
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(Path(tmp) / "db.sqlite")
        out = {}
        now = datetime.now(UTC)
        for name in ("a", "b"):
            sid, token = new_session_id(), f"token-{name}"
            store.insert_session(Session(
                id=sid, name=f"prop-{name}", repo_path="/tmp/r", worktree_path=f"/tmp/w{name}",
                branch=f"clauderon/{name}", base_ref="main", image="x",
                access_mode=AccessMode.READ_WRITE, proxy_token_hash=hash_token(token),
                created_at=now, updated_at=now))
            out[name] = (sid, token)
        yield store, out
        store.close()


async def _client(port: int, cafile: Path, sid: str, token: str, name: str,
                  stream: Stream, tunnel: bool) -> None:
    auth = base64.b64encode(f"{sid}:{token}".encode())
    sock = await trio.open_tcp_stream("127.0.0.1", port)
    conn: trio.abc.Stream = sock
    if tunnel:
        await sock.send_all(f"CONNECT {HOST}:443 HTTP/1.1\r\nHost: {HOST}:443\r\n"
                            f"Proxy-Authorization: Basic {auth.decode()}\r\n\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += await sock.receive_some(1)
        assert head.startswith(b"HTTP/1.1 200"), head
        tls = trio.SSLStream(sock, ssl.create_default_context(cafile=str(cafile)),
                             server_hostname=HOST)
        await tls.do_handshake()
        conn = tls
    data = b"".join(render(r, client=name, auth=None if tunnel else auth, tunnel=tunnel)
                    for r in stream.requests)
    if isinstance(stream.tail, tuple):
        req, cut = stream.tail
        whole = render(req, client=name, auth=None if tunnel else auth, tunnel=tunnel)
        data += whole[: min(cut, len(whole) - 1)]
    else:
        assert isinstance(stream.tail, bytes)
        data += stream.tail
    pieces, pos = [], 0
    for cut in sorted(stream.cuts):
        pieces.append(data[pos:cut])
        pos = max(pos, cut)
    pieces.append(data[pos:])
    try:
        for piece in pieces:
            if piece:
                await conn.send_all(piece)
        # Half-close the TCP connection (under TLS too): the proxy answers all it read, then
        # sees the end; the answers are read to the proxy's close.
        await sock.send_eof()
        while await conn.receive_some(65536):
            pass
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    finally:
        await trio.aclose_forcefully(conn)


def run_once(store: Store, ids: dict[str, tuple[str, str]], a: Stream, b: Stream,
             tunnel: bool) -> tuple[Recorder, list[AuditRecord]]:
    recorder = Recorder()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        CA.cert_pem.write_to_path(str(home / "ca.pem"))

        async def main() -> None:
            listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
            up_port = listeners[0].socket.getsockname()[1]
            config = ProxyConfig(deny_unlisted=True, idle_timeout=5, read_timeout=5,
                                 connect_timeout=5, upstreams={HOST: Upstream(
                                     scheme="http", host="127.0.0.1", port=up_port)})
            with AuditLog(home / "audit.jsonl") as log, trio.fail_after(30):
                state = ProxyState(config=config, creds=CredentialSet.of([]),
                                   certs=CertStore(CA), directory=StoreDirectory(
                                       store, cache_seconds=0), audit=log,
                                   forbidden=frozenset())
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(trio.serve_listeners, recorder.handle, listeners)
                    bound = await nursery.start(functools.partial(serve, state, port=0))
                    async with trio.open_nursery() as clients:
                        for name, stream in (("a", a), ("b", b)):
                            sid, token = ids[name]
                            clients.start_soon(_client, bound.port, home / "ca.pem", sid, token,
                                               name, stream, tunnel)
                    state.stop()
                    while recorder.open:  # the upstream side of the last exchanges closes
                        await recorder.all_closed.wait()
                    nursery.cancel_scope.cancel()

        trio.run(main)
        records = [parse_line(x) for x in (home / "audit.jsonl").read_text().splitlines()]
    return recorder, records


@settings(max_examples=120,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                 HealthCheck.data_too_large])
@given(a=streams, b=streams, tunnel=st.booleans())
def test_upstream_bytes_are_exactly_the_audited_requests(
    sessions: tuple[Store, dict[str, tuple[str, str]]], a: Stream, b: Stream, tunnel: bool
) -> None:
    store, ids = sessions
    recorder, records = run_once(store, ids, a, b, tunnel)
    assert recorder.errors == []
    by_conn: dict[int, set[str]] = {}
    for seen in recorder.seen:
        by_conn.setdefault(seen.conn, set()).add(seen.client)
    assert all(len(clients) == 1 for clients in by_conn.values()), by_conn
    refusals = [r for r in records if r.status in (400, 421)]
    assert len(refusals) >= sum(s.refused() for s in (a, b))
    for name, stream in (("a", a), ("b", b)):
        sid = ids[name][0]
        got = [s for s in recorder.seen if s.client == name]
        complete = [r for r in records if r.session == sid and r.decision == "passed"]
        assert [(s.method, s.target, len(s.body)) for s in got] == [
            (r.method, r.path, r.bytes_in) for r in complete]
        expected = stream.expected()
        assert [(s.method, s.target, s.body) for s in got[:len(expected)]] == [
            (g.method, g.path, g.body if g.framing != "none" else b"") for g in expected]
        if stream.refused() or not isinstance(stream.tail, tuple):
            assert len(got) == len(expected)  # nothing after a refusal, nothing from garbage
    # Bytes left over upstream: only the start of a request whose client went away mid-way,
    # and the audit line of that request says so.
    cut_short = [r for r in records if r.error in ("CLIENT_PROTOCOL_ERROR", "CLIENT_GONE")]
    for left in recorder.leftovers.values():
        assert any(left.startswith(f"{r.method} {r.path} HTTP/1.1\r\n".encode())
                   for r in cut_short), left[:200]
