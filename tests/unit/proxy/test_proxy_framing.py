"""Framing: every head two parsers could read differently is named; the rest is re-framed.

Each refused head is also fed to h11 alone, so the table shows which refusals are ours:
where h11 accepts a head (and would have passed it on), the check in ``framing.py`` is
what stops it.
"""

from __future__ import annotations

import h11
import pytest

from proxy.framing import (
    clean_trailers,
    framed,
    has_body,
    head_defect,
    head_end,
    request_framing,
    response_framing,
)

H = b"Host: a\r\n"
REFUSED = [
    # (raw head, the defect named, whether h11 alone accepts it)
    (b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
     "both Transfer-Encoding and Content-Length", True),
    (b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 5\r\nContent-Length: 5\r\n\r\n",
     "several Content-Length", True),
    (b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 5, 5\r\n\r\n",
     "several Content-Length", True),
    (b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\n",
     "several Content-Length", False),
    (b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 5x\r\n\r\n", "not a plain number", False),
    (b"POST / HTTP/1.1\r\n" + H + b"Content-Length: +5\r\n\r\n", "not a plain number", False),
    (b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: gzip, chunked\r\n\r\n",
     "other than chunked", False),
    (b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked"
     b"\r\n\r\n", "several Transfer-Encoding", False),
    (b"POST / HTTP/1.0\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n", "HTTP/1.0", True),
    (b"POST / HTTP/1.1\r\n" + H + b"X-A: b\r\n c\r\nContent-Length: 0\r\n\r\n", "folding", True),
    (b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding:\r\n chunked\r\n\r\n", "folding", True),
    (b"POST / HTTP/1.1\nHost: a\nContent-Length: 0\n\n", "bare LF", True),
    (b"POST / HTTP/1.1\r\nHost: a\nContent-Length: 0\r\n\r\n", "bare LF", True),
    (b"GET / HTTP/1.1\r\n" + H + b"\n", "bare LF", True),
    (b"POST / HTTP/1.1\r\nHost: a\rX: y\r\nContent-Length: 0\r\n\r\n", "bare CR", False),
    (b"POST / HTTP/1.1\r\n" + H + b"Content-Length : 5\r\n\r\n", "before a colon", False),
    (b"POST / HTTP/1.1\r\n" + H + b"Transfer_Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
     "underscore", True),
    (b"POST / HTTP/1.1\r\n" + H + b"content_length: 5\r\n\r\n", "underscore", True),
    (b"GET / HTTP/1.1\r\n" + H + b"X: a\x01b\r\n\r\n", "control character", True),
    (b"GET / HTTP/1.1\r\n" + H + b"X: a\x00b\r\n\r\n", "control character", False),
    (b"GET / HTTP/2.0\r\n" + H + b"\r\n", "version", True),
    (b"GET / HTTP/0.9\r\n" + H + b"\r\n", "version", True),
    (b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\nContent-Length: 5\r\n\r\n", "CONNECT", True),
    (b"\r\nGET / HTTP/1.1\r\n" + H + b"\r\n", "empty line", False),
    (b"GET / HTTP/1.1\r\n" + H + b"foo\r\n\r\n", "without a colon", False),
]


def h11_accepts(raw: bytes) -> bool:
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(raw)
    try:
        return isinstance(conn.next_event(), h11.Request)
    except h11.RemoteProtocolError:
        return False


@pytest.mark.parametrize(("raw", "defect", "h11_alone"), REFUSED)
def test_ambiguous_heads_are_named(raw: bytes, defect: str, h11_alone: bool) -> None:
    found = head_defect(raw[: head_end(raw)])
    assert found is not None and defect in found
    assert h11_accepts(raw) is h11_alone


@pytest.mark.parametrize("raw", [
    b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\tchunked \r\n\r\n",
    b"GET / HTTP/1.0\r\n\r\n",
    b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\nContent-Length: 0\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nX-Utf8: caf\xc3\xa9\r\n\r\n",
])
def test_plain_heads_pass(raw: bytes) -> None:
    assert head_end(raw) == len(raw)
    assert head_defect(raw) is None
    assert h11_accepts(raw)


def test_head_end_finds_the_blank_line_or_waits() -> None:
    assert head_end(b"GET / HTTP/1.1\r\nHost: a\r\n") == -1
    assert head_end(b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /next") == 27
    assert head_end(b"GET / HTTP/1.1\nHost: a\n\nbody") == 24


def parsed(raw: bytes) -> h11.Request:
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(raw)
    event = conn.next_event()
    assert isinstance(event, h11.Request)
    return event


def test_upstream_framing_comes_from_the_parsed_request() -> None:
    chunked = parsed(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: CHUNKED\r\n\r\n")
    assert request_framing(chunked.headers) == [(b"transfer-encoding", b"chunked")]
    sized = parsed(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 007\r\n\r\n")
    assert request_framing(sized.headers) == [(b"content-length", b"7")]
    assert request_framing(parsed(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").headers) == []
    assert has_body([(b"transfer-encoding", b"chunked")]) and has_body([(b"content-length", b"1")])
    assert not has_body([(b"content-length", b"0")]) and not has_body([])
    headers = [(b"host", b"a"), (b"Content-Length", b"99"), (b"x", b"1"),
               (b"transfer-encoding", b"chunked")]
    assert framed(headers, [(b"content-length", b"7")]) == [
        (b"host", b"a"), (b"x", b"1"), (b"content-length", b"7")]


def test_answers_with_both_framings_are_chunked_and_not_reused() -> None:
    assert response_framing([(b"transfer-encoding", b"chunked"), (b"content-length", b"3")]) == (
        [(b"transfer-encoding", b"chunked")], False)
    assert response_framing([(b"content-length", b"3")]) == ([(b"content-length", b"3")], True)
    assert response_framing([(b"content-type", b"x")]) == ([], True)


def test_trailers_keep_only_what_neither_frames_nor_authenticates_nor_sets_a_cookie() -> None:
    trailers = [(b"x-checksum", b"abc"), (b"content-length", b"5"), (b"host", b"evil"),
                (b"authorization", b"Bearer placeholder"), (b"transfer-encoding", b"chunked"),
                (b"Set-Cookie", b"sessionKey=s"), (b"set-cookie2", b"legacy=1"),
                (b"grpc-status", b"0")]
    assert clean_trailers(trailers) == [(b"x-checksum", b"abc"), (b"grpc-status", b"0")]


@pytest.mark.parametrize(("name", "kept"), [
    (b"X-HTTP-Method-Override", False), (b"x-http-method", False), (b"X-Method-Override", False),
    (b"X_HTTP_Method_Override", False), (b"X-Original-URL", False), (b"x_rewrite_url", False),
    (b"x-original-urls", True), (b"x-http-methods", True), (b"x-digest", True),
])
def test_no_trailer_names_another_method_or_path(name: bytes, kept: bool) -> None:
    assert (clean_trailers([(name, b"DELETE")]) == [(name, b"DELETE")]) is kept
