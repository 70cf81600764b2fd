"""Request heads: targets, proxy credentials, hop-by-hop headers."""

from __future__ import annotations

import base64

import pytest

from proxy.heads import (
    MAX_SESSION_ID,
    MAX_TOKEN,
    BadRequest,
    Target,
    forwardable,
    is_upgrade,
    parse_absolute_target,
    parse_connect_target,
    parse_inner_target,
    parse_proxy_authorization,
)


def basic(text: str) -> bytes:
    return b"Basic " + base64.b64encode(text.encode())


def test_proxy_authorization() -> None:
    creds = parse_proxy_authorization(basic("sess-1:tok:with:colons"))
    assert creds is not None
    assert (creds.session_id, creds.token) == ("sess-1", "tok:with:colons")
    for bad in (None, b"", b"Bearer x", b"Basic !!!", basic("nocolon"), basic(":tok"),
                basic("id:")):
        assert parse_proxy_authorization(bad) is None


def test_a_proxy_credential_too_long_to_be_one_is_none() -> None:
    """A claim no session can make is no claim: the proxy neither looks it up nor keeps it
    (the session cache, the audit line and the model-health ledger are keyed by it)."""
    longest = parse_proxy_authorization(basic(f"{'s' * MAX_SESSION_ID}:{'t' * MAX_TOKEN}"))
    assert longest is not None and len(longest.session_id) == MAX_SESSION_ID
    for bad in (basic(f"{'s' * (MAX_SESSION_ID + 1)}:tok"),
                basic(f"sess:{'t' * (MAX_TOKEN + 1)}"),
                basic(f"{'s' * 40_000}:tok"),
                b"Basic " + b"A" * 60_000):
        assert parse_proxy_authorization(bad) is None


@pytest.mark.parametrize(("raw", "host", "port"), [
    (b"api.anthropic.com:443", "api.anthropic.com", 443),
    (b"GitHub.com", "github.com", 443),
    (b"[::1]:8443", "::1", 8443),
    (b"[2001:DB8::1]", "2001:db8::1", 443),
    (b"::1:8443", "::1", 8443),  # httpx leaves the brackets out
    (b"10.0.0.1:80", "10.0.0.1", 80),
])
def test_connect_targets(raw: bytes, host: str, port: int) -> None:
    target = parse_connect_target(raw)
    assert (target.host, target.port, target.scheme) == (host, port, "https")


@pytest.mark.parametrize("raw", [b"a.b:0", b"a.b:99999", b"a.b:x", b"/path", b"u@a.b:443",
                                 b"[::1", b"[::1]x", b"::g:1", b"bad host:1", b"\xff:1",
                                 b"a..b:1", b""])
def test_bad_connect_targets(raw: bytes) -> None:
    with pytest.raises(BadRequest):
        parse_connect_target(raw)


def test_absolute_targets() -> None:
    target = parse_absolute_target(b"http://Example.org:8080/a?b=c")
    assert (target.host, target.port, target.path) == ("example.org", 8080, "/a?b=c")
    assert parse_absolute_target(b"http://example.org").path == "/"
    for bad in (b"/relative", b"https://x/", b"http://u:p@x/", b"http:///"):
        with pytest.raises(BadRequest):
            parse_absolute_target(bad)


def test_a_target_with_a_fragment_is_refused_in_every_form() -> None:
    """A fragment is never part of a request: a server that drops it reads another path
    than the one the proxy's rules read (``/issues#/git-upload-pack`` is a fetch to them)."""
    tunnel = parse_connect_target(b"api.github.com:443")
    with pytest.raises(BadRequest, match="fragment"):
        parse_absolute_target(b"http://example.org/issues#/git-upload-pack")
    with pytest.raises(BadRequest, match="fragment"):
        parse_inner_target(b"/issues#/git-upload-pack", tunnel)
    with pytest.raises(BadRequest, match="fragment"):
        parse_inner_target(b"https://api.github.com/a#b", tunnel)
    with pytest.raises(BadRequest):
        parse_connect_target(b"api.github.com#x:443")


def test_forwardable_keeps_upgrade_pair_only_for_upgrades() -> None:
    headers = [(b"connection", b"Upgrade"), (b"upgrade", b"websocket"), (b"te", b"trailers"),
               (b"content-length", b"3")]
    assert is_upgrade(headers)
    assert forwardable(headers, upgrade=False) == [(b"content-length", b"3")]
    assert forwardable(headers, upgrade=True) == [
        (b"content-length", b"3"), (b"connection", b"upgrade"), (b"upgrade", b"websocket")]
    assert not is_upgrade([(b"upgrade", b"websocket")])


TUNNEL = parse_connect_target(b"api.github.com:443")


def test_inner_targets() -> None:
    assert parse_inner_target(b"/a?b", TUNNEL) == Target(
        scheme="https", host="api.github.com", port=443, path="/a?b")
    absolute = parse_inner_target(b"https://API.github.com:443?x=1", TUNNEL)
    assert (absolute.scheme, absolute.host, absolute.port, absolute.path) == (
        "https", "api.github.com", 443, "/?x=1")
    other = parse_inner_target(b"http://evil.example/x", TUNNEL)
    assert (other.scheme, other.host, other.port) == ("http", "evil.example", 80)
    for bad in (b"*", b"api.github.com/x", b"https://u@api.github.com/", b"https:///x",
                b"\xff"):
        with pytest.raises(BadRequest):
            parse_inner_target(bad, TUNNEL)


def test_absolute_targets_with_a_query_and_no_path() -> None:
    target = parse_absolute_target(b"http://example.org?q=1")
    assert (target.host, target.path) == ("example.org", "/?q=1")
