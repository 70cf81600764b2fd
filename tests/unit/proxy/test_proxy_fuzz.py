"""Hypothesis: the parsers, the policy and the whole client loop never crash or hang."""

from __future__ import annotations

import functools

import trio
import trio.testing
import trustme
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appliance.tokens import hash_token
from proxy.certs import CertStore
from proxy.directory import AccessMode, SessionAuth
from proxy.heads import (
    BadRequest,
    Target,
    parse_absolute_target,
    parse_connect_target,
    parse_proxy_authorization,
)
from proxy.policy import Forward, Respond, decide_request
from proxy.proxy_config import ProxyConfig
from proxy.server import _client
from proxy.state import ProxyState

header_name = st.sampled_from([b"authorization", b"x-api-key", b"connection", b"upgrade",
                               b"anthropic-beta", b"host", b"proxy-authorization",
                               b"content-length", b"transfer-encoding", b"x-other"])
headers = st.lists(st.tuples(header_name, st.binary(max_size=40)), max_size=8)


CA = trustme.CA()


class NoCreds:
    def get(self, name: str) -> None:
        return None


class AllCreds:
    def get(self, name: str) -> object:
        return type("S", (), {"value": "secret-" + name})()


@given(st.binary(max_size=300))
def test_target_parsers_answer_or_refuse(raw: bytes) -> None:
    for parse in (parse_connect_target, parse_absolute_target):
        try:
            parsed = parse(raw)
        except BadRequest:
            continue
        assert 0 < parsed.port < 65536 and parsed.host


@given(st.binary(max_size=200))
def test_proxy_authorization_parser(raw: bytes) -> None:
    parse_proxy_authorization(raw)


@given(method=st.text(max_size=10), host=st.sampled_from(
    ["api.anthropic.com", "github.com", "chatgpt.com", "auth.openai.com", "x.y"]),
       path=st.text(max_size=30), hdrs=headers, read_only=st.booleans(),
       creds=st.sampled_from([NoCreds(), AllCreds()]))
def test_policy_total(method: str, host: str, path: str, hdrs: list[tuple[bytes, bytes]],
                      read_only: bool, creds: NoCreds | AllCreds) -> None:
    session = SessionAuth(session_id="s", name="n", proxy_token_hash="x",
                          access_mode=AccessMode.READ_ONLY if read_only else AccessMode.READ_WRITE)
    verdict = decide_request(method=method, target=Target(scheme="https", host=host, port=443,
                                                          path="/" + path),
                             headers=hdrs, session=session, config=ProxyConfig(),
                             creds=creds)  # type: ignore[arg-type]
    assert isinstance(verdict, Respond | Forward)
    if isinstance(verdict, Forward):
        assert all(k != b"proxy-authorization" for k, _ in verdict.headers)


class Directory:
    async def lookup(self, session_id: str) -> SessionAuth | None:
        return SessionAuth(session_id="s", name="n", access_mode=AccessMode.READ_WRITE,
                           proxy_token_hash=hash_token("t"))


FIRST_LINES = st.sampled_from([
    b"CONNECT a.b:443 HTTP/1.1\r\n", b"GET http://a.b/ HTTP/1.1\r\n", b"GET / HTTP/1.1\r\n",
    b"CONNECT [::1 HTTP/1.1\r\n", b"", b"POST http://x/ HTTP/1.0\r\n"])


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(first=FIRST_LINES, rest=st.binary(max_size=400))
def test_client_loop_never_crashes_or_hangs(first: bytes, rest: bytes) -> None:
    """Arbitrary bytes from a client end in an answer or a close, within a bounded time."""
    state = ProxyState(config=ProxyConfig(deny_unlisted=True, idle_timeout=1, read_timeout=1,
                                          connect_timeout=1),
                       creds=NoCreds(), certs=CertStore(CA), directory=Directory(), audit=None,
                       forbidden=frozenset())

    async def main() -> bytes:
        client, server = trio.testing.memory_stream_pair()
        got = b""
        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(functools.partial(_client, state, server))  # type: ignore[arg-type]
                await client.send_all(first + rest)
                await client.send_eof()
                while chunk := await client.receive_some(65536):
                    got += chunk
        return got

    answer = trio.run(main)
    if answer:
        assert answer.startswith(b"HTTP/1.")
