"""Message framing: refuse every ambiguous request head, frame what goes on ourselves. Pure.

Request smuggling lives in the gap between two parsers: the proxy reads a message one way
(say, by ``Transfer-Encoding``) and the upstream another (by ``Content-Length``), so the
bytes the proxy thinks are a body are a second request to the upstream. Two rules close
the gap:

1. **No ambiguity gets in.** :func:`head_defect` reads the raw bytes of a request head
   before h11 parses them and names anything two parsers could read differently: both
   ``Transfer-Encoding`` and ``Content-Length``, several of either, a length that is not
   plain digits, a coding other than ``chunked``, ``Transfer-Encoding`` on HTTP/1.0, line
   folding, a bare CR or LF, a control character, white space before a colon, a framing
   header named with an underscore (``Transfer_Encoding``, which the proxy would pass on
   as any header, is ``HTTP_TRANSFER_ENCODING`` to a CGI-style server: its framing), a
   version other than 1.0 or 1.1, a CONNECT with a body. h11 refuses some of these itself, and
   quietly repairs others (it merges equal lengths, unfolds folded lines, accepts bare LF),
   which is why the check reads the bytes and not h11's event. The server answers 400 and
   closes the connection (``relay.client_request``).
2. **Nothing is copied.** The head sent upstream carries framing the proxy chose from the
   parsed message (:func:`request_framing`, then :func:`framed`); bodies are re-encoded by
   h11 event by event, trailers are rebuilt (:func:`clean_trailers`), and the answer is
   framed the same way for the client (:func:`response_framing`). An upstream answer
   whose own framing is ambiguous is relayed, and its connection is not reused.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from proxy.answer_cookies import SETTERS
from proxy.heads import HOP_BY_HOP
from proxy.inject import Headers
from proxy.uses import METHOD_OVERRIDES, PATH_OVERRIDES

#: The end of a head as h11 finds it (it also accepts a bare LF, which we then refuse).
_BLANK_LINE = re.compile(rb"\n\r?\n")
#: Control characters other than HTAB, CR and LF (those two are checked on their own).
_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_VERSIONS = (b"HTTP/1.1", b"HTTP/1.0")
#: Replaced by the proxy's own framing (``expect`` too: the proxy answers 100 itself).
_FRAMING = (b"content-length", b"transfer-encoding", b"expect")
#: Never honoured in trailers: framing, routing, connection control, authentication and a
#: cookie set (no client stores one from a trailer; the agent reads it all the same).
TRAILER_DROP = HOP_BY_HOP | SETTERS | {
    b"content-length", b"transfer-encoding", b"host", b"authorization", b"x-api-key",
    b"cookie", b"content-type", b"content-encoding", b"content-range", b"expect",
}

#: Never forwarded in trailers either: what some servers read as the request's method or
#: path (``uses.py`` refuses them in a head), which a server that folds trailers into the
#: head would honour past every rule that read the head. An ``_`` counts as a ``-``.
OVERRIDES = METHOD_OVERRIDES | PATH_OVERRIDES


class Ambiguous(ValueError):
    """A request head two HTTP parsers could read differently: 400, connection closed."""


def head_end(buffered: bytes) -> int:
    """Where the first request head in ``buffered`` ends (after its blank line), or -1."""
    found = _BLANK_LINE.search(buffered)
    return -1 if found is None else found.end()


def head_defect(raw: bytes) -> str | None:
    """Why this raw request head (blank line included) is ambiguous, or None if it is not."""
    if raw[:1] in (b"\r", b"\n"):
        return "an empty line before the request line"
    crlf = raw.count(b"\r\n")
    if not raw.endswith(b"\r\n\r\n") or raw.count(b"\n") != crlf:
        return "a line ends in a bare LF (lines must end in CRLF)"
    if raw.count(b"\r") != crlf:
        return "a bare CR in the head"
    if b"\r\n " in raw or b"\r\n\t" in raw:
        return "a folded header line (obsolete line folding)"
    if _CONTROL.search(raw) is not None:
        return "a control character in the head"
    lines = raw[:-4].split(b"\r\n")
    method, _, rest = lines[0].partition(b" ")
    version = rest.rpartition(b" ")[2]
    if version not in _VERSIONS:
        return "an HTTP version other than 1.0 or 1.1"
    lengths: list[bytes] = []
    codings: list[bytes] = []
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon:
            return "a header line without a colon"
        if name != name.rstrip(b" \t"):
            return "white space before a colon"
        name = name.lower()
        if b"_" in name and name.replace(b"_", b"-") in _FRAMING:
            return "a framing header named with an underscore (CGI reads it as a dash)"
        if name == b"content-length":
            lengths.append(value.strip(b" \t"))
        elif name == b"transfer-encoding":
            codings.append(value.strip(b" \t").lower())
    if len(lengths) > 1 or (lengths and b"," in lengths[0]):
        return "several Content-Length values"
    if lengths and not (lengths[0].isdigit() and len(lengths[0]) <= 18):
        return "a Content-Length that is not a plain number"
    if len(codings) > 1:
        return "several Transfer-Encoding headers"
    if codings and codings[0] != b"chunked":
        return "a Transfer-Encoding other than chunked"
    if codings and lengths:
        return "both Transfer-Encoding and Content-Length"
    if codings and version == b"HTTP/1.0":
        return "Transfer-Encoding in an HTTP/1.0 request"
    if method == b"CONNECT" and (codings or (lengths and int(lengths[0]))):
        return "a CONNECT with a body"
    return None


def request_framing(headers: Iterable[tuple[bytes, bytes]]) -> Headers:
    """The framing header to send upstream for a parsed (and checked) request, if any."""
    for name, value in headers:
        if name == b"transfer-encoding":
            return [(b"transfer-encoding", b"chunked")]
        if name == b"content-length":
            return [(b"content-length", str(int(value)).encode())]
    return []


def has_body(framing: Headers) -> bool:
    return bool(framing) and framing[0] != (b"content-length", b"0")


def framed(headers: Headers, framing: Headers) -> Headers:
    """``headers`` with any framing header (and ``expect``) replaced by ``framing``."""
    return [(k, v) for k, v in headers if k.lower() not in _FRAMING] + framing


def response_framing(headers: Iterable[tuple[bytes, bytes]]) -> tuple[Headers, bool]:
    """The framing header for the client, and whether the upstream's framing was clean.

    h11 reads a body by ``Transfer-Encoding`` when both are present; a server in front of
    which some other parser read ``Content-Length`` would be out of step, so such a
    connection is closed after the answer instead of being kept.
    """
    coding = length = None
    for name, value in headers:
        if name == b"transfer-encoding":
            coding = value
        elif name == b"content-length":
            length = value
    if coding is not None:
        return [(b"transfer-encoding", b"chunked")], length is None
    if length is not None:
        return [(b"content-length", length)], True
    return [], True


def clean_trailers(trailers: Iterable[tuple[bytes, bytes]]) -> Headers:
    """Trailer fields worth forwarding: none that frame, route, or authenticate."""
    return [(k, v) for k, v in trailers if k.lower() not in TRAILER_DROP
            and k.lower().replace(b"_", b"-") not in OVERRIDES]
