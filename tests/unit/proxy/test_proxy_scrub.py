"""The credential an answer carries back, masked as the body streams (pure)."""

from __future__ import annotations

import base64
import json
import random
import re
from urllib.parse import quote, quote_plus

import pytest

from proxy.bodykind import coding, escapable
from proxy.scrub import MIN_SECRET, REACH, Scrubber, masked
from proxy.spellings import firsts, spellings

TOKEN = b"ghp_REALGITHUBCANARY0123456789"
BASIC = b"eC1hY2Nlc3MtdG9rZW46Z2hwX1JFQUxHSVRIVUJDQU5BUlkwMTIzNDU2Nzg5"
BODY = b'{"headers": {"authorization": "Bearer ' + TOKEN + b'", "x": "g"}, "again": "' \
    + TOKEN + b'", "basic": "Basic ' + BASIC + b'"}\n'
MASKED = BODY.replace(TOKEN, b"*" * len(TOKEN)).replace(BASIC, b"*" * len(BASIC))


def stream(scrub: Scrubber, pieces: list[bytes]) -> list[bytes]:
    return [scrub.feed(p) for p in pieces] + [scrub.finish()]


def masked_every_cut(secrets: list[bytes], body: bytes, want: bytes, count: int) -> None:
    """``body`` cut every way (:func:`every_cut`) comes out as ``want``, ``count`` masked,
    and no byte of a secret ever leaves before it is known to be one."""
    for pieces in every_cut(body):
        scrub = Scrubber(secrets)
        out = stream(scrub, pieces)
        assert b"".join(out) == want
        assert scrub.masked == count
        sent = b""
        for part in out:
            sent += part
            assert want.startswith(sent)


def every_cut(body: bytes) -> list[list[bytes]]:
    """``body`` cut in two at every byte, and then a byte at a time."""
    return [*([body[:i], body[i:]] for i in range(len(body) + 1)),
            [body[i:i + 1] for i in range(len(body))]]


def test_a_body_cut_anywhere_comes_out_masked_whole() -> None:
    """Cut in two at every byte, and fed a byte at a time: the secrets never pass, even in
    part, and everything else does, in order and the same length."""
    masked_every_cut([TOKEN, BASIC], BODY, MASKED, 3)


def test_an_event_stream_is_never_held_back() -> None:
    """Chunks that end in a newline (every SSE event) or a brace go on whole at once."""
    scrub = Scrubber([TOKEN])
    for chunk in (b"event: delta\ndata: {\"text\": \"g\"}\n\n", b'{"text": "gh"}', b"gh\n"):
        assert scrub.feed(chunk) == chunk
        assert not scrub.holding


def test_only_the_end_that_begins_a_secret_waits_for_the_next_chunk() -> None:
    scrub = Scrubber([TOKEN])
    assert scrub.feed(b"the word is gh") == b"the word is "
    assert scrub.holding
    assert scrub.feed(b"ost") == b"ghost"  # it was no secret: it goes on with what follows
    assert scrub.feed(b"ghp_REAL") == b""
    assert scrub.finish() == b"ghp_REAL"  # the body ended: a part of a secret is none
    assert scrub.masked == 0


def test_a_head_is_masked_in_every_value() -> None:
    scrub = Scrubber([TOKEN])
    head = [(b"x-echo", b"Bearer " + TOKEN), (b"set-cookie", b"t=" + TOKEN + b"; Secure"),
            (b"content-type", b"text/plain")]
    assert scrub.head(head) == [(b"x-echo", b"Bearer " + b"*" * len(TOKEN)),
                                (b"set-cookie", b"t=" + b"*" * len(TOKEN) + b"; Secure"),
                                (b"content-type", b"text/plain")]
    assert scrub.masked == 2


def test_a_head_is_masked_in_every_name_whatever_its_case() -> None:
    scrub = Scrubber([TOKEN])
    stars = b"*" * len(TOKEN)
    head = [(b"x-calls-" + TOKEN.lower(), b"1"), (b"X-Key-" + TOKEN, b"2"), (b"x-a", b"3")]
    assert scrub.head(head) == [(b"x-calls-" + stars, b"1"), (b"x-key-" + stars, b"2"),
                                (b"x-a", b"3")]
    assert scrub.masked == 2


@pytest.mark.parametrize("head", [
    [],
    [(b"server", b"nginx"), (b"date", b"Mon, 07 Dec 2026 17:44:23 GMT"), (b"etag", b'"6-4"')],
    [(b"x-a", b"1"), (b"x-echo", quote(TOKEN.decode(), safe="").encode().lower())],
    [(b"x-" + TOKEN[:12], TOKEN[12:])],  # a secret across a name and its value is none
    [(b"x-a", TOKEN[:12]), (TOKEN[12:].lower(), b"1")],  # nor across two fields
    [(b"x-wide", "Bearer ".join(["", TOKEN.decode()]).encode("utf-16-le"))],
    [(b"x-long", b"g" * 500), (b"x-b64", base64.b64encode(b"x:" + TOKEN))],
])
def test_a_head_read_at_once_is_each_field_masked_alone(head: list[tuple[bytes, bytes]]) -> None:
    alone = Scrubber([TOKEN])
    want = [(alone._name(name), alone._mask(value)) for name, value in head]
    scrub = Scrubber([TOKEN])
    assert scrub.head(head) == want
    assert scrub.masked == alone.masked


@pytest.mark.parametrize("secret", [b"", b"x", b"a" * (MIN_SECRET - 1)])
def test_a_value_too_short_to_be_a_credential_is_not_looked_for(secret: bytes) -> None:
    scrub = Scrubber([secret])
    assert not scrub
    assert scrub.feed(b"a" * 20 + b"x") == b"a" * 20 + b"x"


def test_the_longer_form_is_masked_whole_where_it_holds_the_shorter() -> None:
    raw = b"REAL-CANARY-123"
    rendered = b"Token token=" + raw
    scrub = Scrubber([raw, rendered])
    assert b"".join(stream(scrub, [b"[" + rendered + b"] and " + raw])) == \
        b"[" + b"*" * len(rendered) + b"] and " + b"*" * len(raw)


def test_the_longer_form_re_encoded_is_masked_whole_and_counted_once() -> None:
    raw = b"REAL/CANARY-123"
    rendered = b"Token token=" + raw
    echoed = b"Token token%3DREAL%2FCANARY-123"
    scrub = Scrubber([raw, rendered])
    assert scrub.feed(b"[" + echoed + b"]\n") == b"[" + b"*" * len(echoed) + b"]\n"
    assert scrub.masked == 1


#: A token as GitHub mints them (40 characters: its Basic value is padded) and that value.
GHP = b"ghp_R3alGitHubCanary0123456789abcdefghij"
GHP_BASIC = base64.b64encode(b"x-access-token:" + GHP)


@pytest.mark.parametrize("cut", [1, 2])
def test_an_answer_that_ends_inside_the_longer_form_hands_back_none_of_the_shorter(
        cut: int) -> None:
    """The end of the Basic value is held as it came (the rest of it may follow); when the
    answer ends there instead, what is let go is masked: the token's base64 is in it."""
    core = base64.b64encode(GHP)[:-4]  # the token's whole bytes, as the Basic value holds them
    assert core in GHP_BASIC[:-cut]
    scrub = Scrubber([GHP, GHP_BASIC])
    out = b"".join(stream(scrub, [b"unknown credential " + GHP_BASIC[:-cut]]))
    assert core not in out
    assert out.startswith(b"unknown credential " + base64.b64encode(b"x-access-token:") + b"***")
    assert scrub.masked == 1


def test_an_error_quoting_the_upstreams_bytes_is_masked() -> None:
    said = f"illegal header line: bytearray(b'x Bearer {TOKEN.decode()}')"
    assert masked(said, [TOKEN]) == said.replace(TOKEN.decode(), "*" * len(TOKEN))
    assert masked(said, []) == said


@pytest.mark.parametrize(("headers", "expected"), [
    ([], None),
    ([(b"content-encoding", b"identity")], None),
    ([(b"Content-Encoding", b"gzip")], b"gzip"),
    ([(b"content-encoding", b" Identity , BR ")], b"br"),
    ([(b"content-encoding", b"identity"), (b"content-encoding", b"zstd")], b"zstd"),
    ([(b"content-encoding", b"x-gzip, gzip")], b"x-gzip"),
    ([(b"content-type", b"gzip")], None),
])
def test_an_answer_names_the_coding_the_masking_cannot_read_through(
        headers: list[tuple[bytes, bytes]], expected: bytes | None) -> None:
    assert coding(headers) == expected


#: A token with the characters encoders touch, and its Basic rendering (``/``, ``+``, ``=``).
ODD = b"REAL/GITHUB+CANARY.0123~45?>"
ODD_BASIC = base64.b64encode(b"x-access-token:" + ODD)
ECHOED = {
    "json, PHP": rb"REAL\/GITHUB+CANARY.0123~45?>",
    "json, .NET": rb"REAL/GITHUB\u002BCANARY.0123~45?\u003E",
    "json, every character": b"".join(b"\\u%04x" % c for c in ODD),
    "url": b"REAL%2FGITHUB%2BCANARY.0123~45%3F%3E",
    "url, lower-case hex": b"REAL%2fGITHUB%2bCANARY%2e0123%7e45%3f%3e",
    "html, hex": b"REAL&#x2F;GITHUB&#x2b;CANARY&#x2E;0123&#x7E;45&#x3F;&#x3E;",
    "html, decimal": b"REAL&#47;GITHUB&#43;CANARY&#46;0123&#126;45&#63;&#62;",
    "html, named": b"REAL/GITHUB+CANARY.0123~45?&gt;",
    "html5, named": b"REAL&sol;GITHUB&plus;CANARY&period;0123~45&quest;&GT;",
    "mixed": rb"REAL\u002fGITHUB%2BCANARY&#46;0123~45?&gt;",
    "basic, url": quote(ODD_BASIC, safe="").encode(),
    "basic decoded, url": quote(b"x-access-token:" + ODD, safe="").encode(),
    "basic, json": ODD_BASIC.replace(b"/", rb"\/").replace(b"+", rb"\u002B"),
}


@pytest.mark.parametrize("echoed", ECHOED.values(), ids=ECHOED.keys())
def test_a_secret_re_encoded_comes_out_masked_whole_cut_anywhere(echoed: bytes) -> None:
    """Each form an echo re-encodes the token in, cut in two at every byte and fed a byte at
    a time: masked in place, the same length, no byte of it out before it was known (Basic
    decoded: the token in it)."""
    body = b'<p>bad credential: "' + echoed + b'"</p>\n'
    token = echoed.removeprefix(b"x-access-token%3A")
    want = body.replace(token, b"*" * len(token))
    masked_every_cut([ODD, ODD_BASIC], body, want, 1)


@pytest.mark.parametrize("near", [
    b"REAL%2FGITHUB%2BCANARY.0123~45%3F%3F",  # one character off
    b"REAL%2525252FGITHUB%2BCANARY.0123~45%3F%3E",  # encoded four times: three levels undone
    rb"REAL\u002FGITHUB+CANARY.0123~45?",  # cut short
    ODD.hex()[:-2].encode(),  # hex, a byte short
])
def test_what_only_looks_like_a_re_encoded_secret_goes_on(near: bytes) -> None:
    scrub = Scrubber([ODD])
    assert b"".join(stream(scrub, [near[:7], near[7:]])) == near
    assert scrub.masked == 0


def test_a_head_is_masked_re_encoded_too() -> None:
    scrub = Scrubber([ODD])
    url = b"https://example.test/cb?token=" + ECHOED["url"]
    assert scrub.head([(b"location", url), (b"x-token-" + ECHOED["url"].lower(), b"1")]) == [
        (b"location", b"https://example.test/cb?token=" + b"*" * len(ECHOED["url"])),
        (b"x-token-" + b"*" * len(ECHOED["url"]), b"1")]
    assert scrub.reason(b"Bad " + ECHOED["html, hex"]) == b"Bad " + b"*" * len(ECHOED["html, hex"])
    assert scrub.masked == 3


@pytest.mark.parametrize(("chunk", "held"), [
    (b"text and %", b"%"), (b"text and &#x2", b"&#x2"), (b"text \\u00", b"\\u00"),
    (b"REAL%2FGIT", b"REAL%2FGIT"), (b"REAL\\/GITHUB%", b"REAL\\/GITHUB%"),
    (b"text and %2F\n", b""), (b"100%}", b""), (b"R&amp;D.", b""),
    (b"text %25", b"%25"), (b"text %252", b"%252"), (b"a &amp;D", b"&amp;D"),  # a second level
    (b"text %2525", b"%2525"), (b"text &amp;amp;#x", b"&amp;amp;#x"),  # a third level
    (b"text \\\\u00", b"\\\\u00"), (b"5245414C2F47", b"5245414C2F47"),  # hex
])
def test_only_an_end_that_may_begin_a_re_encoded_secret_waits(chunk: bytes, held: bytes) -> None:
    scrub = Scrubber([ODD])
    assert scrub.feed(chunk) == chunk[:len(chunk) - len(held)]
    assert scrub.finish() == held


def test_what_waits_is_bounded_by_the_secret_however_long_the_echo() -> None:
    """A run of escapes that keeps beginning a secret holds back at most the longest
    spelling of it (``REACH`` bytes a character of its longest form, hex), never the run."""
    secret = b"A" * 8 + b"B"
    scrub = Scrubber([secret])
    run = b"%41" * 10_000
    out = scrub.feed(run)
    assert len(run) - len(out) <= REACH * 2 * len(secret)
    assert out + scrub.finish() == run
    assert scrub.masked == 0


@pytest.mark.parametrize(("content_type", "read"), [
    (None, True),
    (b"application/json; charset=utf-8", True),
    (b"text/html", True),
    (b"text/event-stream", True),
    (b"application/problem+json", True),
    (b"application/x-git-upload-pack-result", False),
    (b"Application/Octet-Stream", False),
    (b"image/png", False),
    (b"application/zip", False),
])
def test_a_body_of_data_is_read_for_the_credential_as_its_bytes_only(
        content_type: bytes | None, read: bool) -> None:
    """A pack, an archive or an image is no echo of a header: the literal credential is
    masked in it still, but the escapes pass (forty times the cost, on the proxy's one loop,
    for every clone) is spent on text only."""
    headers = [(b"content-length", b"9")] + ([(b"content-type", content_type)]
                                               if content_type else [])
    assert escapable(headers) is read
    scrub = Scrubber([b"ghp_SECRET/VALUE"])
    scrub.escapes = escapable(headers)
    body = scrub.feed(b"x ghp_SECRET/VALUE y ghp_SECRET\\/VALUE z") + scrub.finish()
    assert body.startswith(b"x **************** y ")
    assert (b"ghp_SECRET\\/VALUE" not in body) is read


#: A token with a space and a ``+`` (a form writes and reads them as each other).
SPACED = b"REAL GITHUB+CANARY/0123~45?>"
SPACED_BASIC = base64.b64encode(b"x-access-token:" + SPACED)
#: ``SPACED`` as echoes spell it beyond one level of escapes: each masked whole.
SPELLED = {
    "form, + for a space": quote_plus(SPACED).encode(),
    "form read, a space for +": b"REAL GITHUB CANARY/0123~45?>",
    "url twice": quote(quote(SPACED, safe=""), safe="").encode(),
    "json in json, .NET": rb"REAL\\u0020GITHUB\\u002BCANARY\\u002F0123~45?\\u003E",
    "json in json, PHP": rb"REAL GITHUB+CANARY\\\/0123~45?>",
    "html twice": b"REAL&amp;#x20;GITHUB&amp;#x2B;CANARY&amp;#x2F;0123~45&amp;#63;&amp;gt;",
    "mixed levels": rb"REAL%2520GITHUB%2BCANARY\\u002F0123~45&amp;#x3F;>",
    "hex": SPACED.hex().encode(),
    "hex, upper case": SPACED.hex().upper().encode(),
    "basic, url twice": quote(quote(SPACED_BASIC, safe=""), safe="").encode(),
    "url thrice": quote(quote(quote(SPACED, safe=""), safe=""), safe="").encode(),
    "json in json in json": rb"REAL\\\\u0020GITHUB\\\\u002BCANARY\\\\u002F0123~45?\\\\u003E",
    "html thrice": b"REAL&amp;amp;#x20;GITHUB&amp;amp;#x2B;CANARY&amp;amp;#x2F;0123~45&amp;amp;#63;"
                   b"&amp;amp;gt;",
    "url in html in json": rb"REAL\u0026#x25;20GITHUB+CANARY\/0123~45?>",
    "basic, url thrice": quote(quote(quote(SPACED_BASIC, safe=""), safe=""), safe="").encode(),
    "basic, json in json": SPACED_BASIC.replace(b"/", b"\\\\\\/"),
    "basic, hex": SPACED_BASIC.hex().encode(),
}


@pytest.mark.parametrize("echoed", SPELLED.values(), ids=SPELLED.keys())
def test_a_secret_spelled_twice_thrice_or_in_hex_comes_out_masked_whole_cut_anywhere(
        echoed: bytes) -> None:
    body = b'{"error": "bad credential: ' + echoed + b'"}\n'
    masked_every_cut([SPACED, SPACED_BASIC], body, body.replace(echoed, b"*" * len(echoed)), 1)


#: ``SPACED`` in base64 after 0, 1 and 2 bytes of something else, both alphabets, with and
#: without padding: what is left of it once masked (a character the secret shares with the
#: bytes around it, and the padding, at each end).
BASE64 = [(enc(b"{" * skip + SPACED).rstrip(b"=" if bare else b""), left)
          for skip, ends in ((0, (0, 3)), (1, (2, 2)), (2, (3, 0)))
          for enc in (base64.b64encode, base64.urlsafe_b64encode)
          for bare, left in ((False, ends), (True, (ends[0], min(ends[1], 1))))]


@pytest.mark.parametrize(("echoed", "left"), BASE64, ids=[e.decode() for e, _ in BASE64])
def test_a_secret_in_base64_at_any_alignment_comes_out_masked_cut_anywhere(
        echoed: bytes, left: tuple[int, int]) -> None:
    """What is left of it holds at most the four bits of its first and last bytes that share
    a character with the bytes around them."""
    head, tail = left
    body = b'{"debug": "' + echoed + b'"}\n'
    want = echoed[:head] + b"*" * (len(echoed) - head - tail) + echoed[len(echoed) - tail:]
    masked_every_cut([SPACED], body, body.replace(echoed, want), 1)
    # Quoted in a JSON string as PHP writes a slash, or URL-encoded: the same.
    for quoted in (echoed.replace(b"/", rb"\/"), quote(echoed, safe="").encode()):
        scrub = Scrubber([SPACED])
        assert scrub.feed(quoted + b"\n").count(b"*") >= len(echoed) - head - tail
        assert scrub.masked == 1


@pytest.mark.parametrize("secret", [SPACED, SPACED_BASIC, b"ghp_" + bytes(range(256))[4:40]])
def test_each_fixed_spelling_of_a_secret_is_in_every_echo_that_spells_it_so(
        secret: bytes) -> None:
    """Hex, either case, and the base64 of the secret after any bytes, before any, in
    either alphabet, each holds one of its :func:`spellings` (the table above only checks
    the masking); none is shorter than the secret's least."""
    forms = spellings(secret)
    assert secret in forms
    assert secret.hex().encode() in forms and secret.hex().upper().encode() in forms
    for before in (b"", b"x", b"\xff\x00", b"abc", b"Bearer "):
        for after in (b"", b"y", b"\x00\xff"):
            for enc in (base64.b64encode, base64.urlsafe_b64encode):
                assert any(form in enc(before + secret + after) for form in forms)
    assert min(map(len, forms)) >= len(secret)
    assert json.dumps(sorted(map(len, forms), reverse=True)) == json.dumps(list(map(len, forms)))


#: ``SPACED`` (and its Basic value) folded: in any case, in UTF-16, its base64 wrapped.
FOLDED = {
    "hex, mixed case": bytes(c - 32 * (i % 2 and 0x61 <= c <= 0x7A)
                             for i, c in enumerate(SPACED.hex().encode())),
    "upper-cased": SPACED.upper(),
    "lower-cased": SPACED.lower(),
    "url, lower-cased": quote(SPACED.lower(), safe="").encode(),
    "json, every character upper": b"".join(b"\\u%04X" % c for c in SPACED),
    "utf-16-le": SPACED.decode().encode("utf-16-le"),
    "utf-16-be, bom": b"\xfe\xff" + SPACED.decode().encode("utf-16-be"),
    "basic, upper-cased": SPACED_BASIC.upper(),
    "basic, utf-16-le": SPACED_BASIC.decode().encode("utf-16-le"),
}


@pytest.mark.parametrize("echoed", FOLDED.values(), ids=FOLDED.keys())
def test_a_secret_case_folded_or_in_utf16_comes_out_masked_whole_cut_anywhere(
        echoed: bytes) -> None:
    body = b'{"error": "bad credential: ' + echoed + b'"}\n'
    spelled = echoed.lstrip(b"\xfe\xff").strip(b"\0")  # UTF-16: its mark and outer NUL stay
    masked_every_cut([SPACED, SPACED_BASIC], body, body.replace(spelled, b"*" * len(spelled)), 1)


#: ``SPACED`` (and its Basic value) as a JSON encoder escapes it, in a body all in UTF-16:
#: Python's ``json.loads`` and a browser's decoder read the body so, and the escapes back.
WIDE = {
    "json, every character": b"".join(b"\\u%04x" % c for c in SPACED),
    "json, dotnet": SPACED.replace(b"+", b"\\u002B").replace(b" ", b"\\u0020"),
    "url twice": quote(quote(SPACED, safe=""), safe="").encode(),
    "hex": SPACED.hex().encode(),
    "basic, json": SPACED_BASIC.replace(b"/", b"\\/").replace(b"+", b"\\u002b"),
}
UTF16 = {"le": ("utf-16-le", b""), "be": ("utf-16-be", b""),
         "le, bom": ("utf-16-le", b"\xff\xfe"), "be, bom": ("utf-16-be", b"\xfe\xff")}


@pytest.mark.parametrize("order", UTF16.values(), ids=UTF16.keys())
@pytest.mark.parametrize("echoed", WIDE.values(), ids=WIDE.keys())
def test_a_secret_escaped_in_a_body_in_utf16_comes_out_masked_whole_cut_anywhere(
        echoed: bytes, order: tuple[str, bytes]) -> None:
    """Each character of it that was spelled masked in place, its NULs left (the body
    still reads as UTF-16: a decoder gets ``*``), cut in two anywhere, a byte at a time."""
    codec, mark = order
    wide = echoed.decode().encode(codec)
    body = mark + '{"error": "bad credential: '.encode(codec) + wide + '"}\n'.encode(codec)
    want = body.replace(wide, re.sub(rb"[^\0]", b"*", wide))
    masked_every_cut([SPACED, SPACED_BASIC], body, want, 1)
    assert SPACED not in json.loads(want)["error"].encode()


#: ``SPACED`` in base64 wrapped as MIME and PEM, after bytes that put a line break in it.
WRAPPED = {f"{width}, {eol!r}, {skip}": eol.join(
    data[i:i + width] for i in range(0, len(data), width))
    for width, eol in ((76, b"\n"), (76, b"\r\n"), (64, b"\n"), (64, b"\r\n"))
    for skip in (40, 45, 50, 52)
    for data in [base64.b64encode(b"{" * skip + SPACED)]}


@pytest.mark.parametrize("echoed", WRAPPED.values(), ids=WRAPPED.keys())
def test_a_secret_in_base64_wrapped_in_lines_comes_out_masked_cut_anywhere(
        echoed: bytes) -> None:
    """Masked but its line breaks, and what is left of it holds no four bytes of it."""
    body = b"-----BEGIN DATA-----\n" + echoed + b"\n-----END DATA-----\n"
    for pieces in every_cut(body):
        scrub = Scrubber([SPACED])
        out = b"".join(stream(scrub, pieces))
        assert scrub.masked == 1
        assert out.count(b"\n") == body.count(b"\n") and len(out) == len(body)
        got = base64.b64decode(out[21:21 + len(echoed)].replace(b"*", b"A"))
        assert not any(SPACED[i:i + 4] in got for i in range(len(SPACED) - 3))


#: ``SPACED`` in base64 wrapped with its line breaks escaped or bent: in a JSON string (as
#: GitHub's contents API returns a file), percent- or HTML-escaped, a CR alone, indented, or
#: an HTML line break as a page renders a text's lines (Django's ``linebreaksbr``, PHP's
#: ``nl2br``).
BREAKS = {"json": b"\\n", "json crlf": b"\\r\\n", "url": b"%0A", "html": b"&#10;",
          "html hex": b"&#xA;", "cr": b"\r", "indented": b"\n    ", "tabbed": b"\r\n\t",
          "html br": b"<br>", "xhtml br": b"<BR/>", "nl2br": b"<br />\n"}
WRAPPED_ESCAPED = {f"{name}, {skip}": eol.join(data[i:i + 60] for i in range(0, len(data), 60))
                   for name, eol in BREAKS.items() for skip in (40, 45, 50, 52)
                   for data in [base64.b64encode(b"{" * skip + SPACED)]}
# And its ``/`` escaped too, as PHP's JSON encoder writes it (``\\/``).
WRAPPED_ESCAPED |= {f"json slashed, {skip}": b"\\n".join(
    data[i:i + 60] for i in range(0, len(data), 60)).replace(b"/", b"\\/")
    for skip in range(40, 60) for data in [base64.b64encode(b"{" * skip + SPACED)]
    if b"/" in data}


@pytest.mark.parametrize("name", WRAPPED_ESCAPED)
def test_a_secret_in_base64_wrapped_with_escaped_breaks_comes_out_masked_cut_anywhere(
        name: str) -> None:
    """Masked but its breaks (escaped ones too), inside a JSON string or not, cut at every
    byte and fed a byte at a time; what is left holds no four bytes of it."""
    echoed, eol = WRAPPED_ESCAPED[name], BREAKS[name.split(",", 1)[0].removesuffix(" slashed")]
    body = b'{"content": "' + echoed + b'"}\n'
    for pieces in every_cut(body):
        scrub = Scrubber([SPACED])
        out = b"".join(stream(scrub, pieces))
        assert scrub.masked == 1
        assert out.count(eol) == body.count(eol) and len(out) == len(body)
        lines = out[13:13 + len(echoed)].replace(eol, b"").replace(b"\\/", b"/")
        got = base64.b64decode(lines.replace(b"*", b"A"))
        assert not any(SPACED[i:i + 4] in got for i in range(len(SPACED) - 3))


def test_an_end_of_a_line_that_may_begin_a_wrapped_secret_waits_and_no_other() -> None:
    """A chunk that ends in a line break goes on whole unless the line ends in what begins
    the secret's base64 (the next line may go on with it); a blank line never waits."""
    core = next(form for form in spellings(SPACED) if form.startswith(b"UkVB"))
    scrub = Scrubber([SPACED])
    assert scrub.feed(b"data: " + core[:9] + b"\r\n") == b"data: "
    assert scrub.finish() == core[:9] + b"\r\n"
    for chunk in (b"data: " + core[:9] + b"\n\n", b"data: {}\n", b"the end.\n"):
        assert scrub.feed(chunk) == chunk
    # An escaped break, whole or cut, an HTML one, and an indent after a break wait as a raw
    # one does.
    for eol in (b"\\", b"\\n", b"%0", b"&#1", b"&#10;", b"\n  ", b"<", b"<BR", b"<br ",
                b"<br /", b"<br/>", b"<br />\r"):
        assert scrub.feed(b'"' + core[:9] + eol) == b'"'
        assert scrub.finish() == core[:9] + eol
    assert scrub.feed(b"{}\n  ") == b"{}\n  "


@pytest.mark.parametrize("echoed", [*ECHOED.values(), *SPELLED.values(), *FOLDED.values(),
                                    *WRAPPED.values(), *WRAPPED_ESCAPED.values(),
                                    *(e for e, _ in BASE64), TOKEN, BASIC])
def test_every_spelling_passes_the_look_that_skips_a_body_which_holds_none(
        echoed: bytes) -> None:
    """The masking skips a chunk with no run of the forms' bytes and the escapes' as long as
    the shortest form (:meth:`Scrubber.spells`): every spelling here is such a run, cut from
    its surroundings by bytes that are in no form. What may wait for the next chunk is read
    from that run at the chunk's end (:meth:`Scrubber.ending`): it holds every beginning of
    every spelling (UTF-16's mark, no character of it, aside)."""
    scrub = Scrubber([ODD, ODD_BASIC, SPACED, SPACED_BASIC, TOKEN, BASIC])
    assert scrub.spells(b'\x00"' + echoed + b'"\x00')
    spelled = echoed.removeprefix(b"\xfe\xff")
    for cut in range(1, len(spelled) + 1):
        assert scrub.ending(b'\x00"' + spelled[:cut]) == b'"' + spelled[:cut]


def test_a_body_of_random_bytes_is_skipped_and_a_secret_in_it_is_not() -> None:
    """Random bytes hold no run as long as a secret (the fast path a clone's pack takes);
    a secret of any bytes, put in them, is found: its own bytes are in the look."""
    rng = random.Random(7)
    data = rng.randbytes(1 << 20)
    odd = b"ghp_" + bytes(range(256))[4:40]
    scrub = Scrubber([TOKEN, odd])
    assert not scrub.spells(data)
    for secret in (TOKEN, odd):
        body = data[:5000] + secret + data[5000:]
        assert scrub.spells(body)
        assert secret not in scrub.feed(body) + scrub.finish()


@pytest.mark.parametrize(("forms", "expected"), [
    ((b"sk-ant", b"c2st", b"a"), b"acs"), ((b"x",), b"x"), ((b"ab", b"ac"), b"a")])
def test_firsts_are_the_bytes_forms_begin_with(forms: tuple[bytes, ...], expected: bytes) -> None:
    assert firsts(forms) == expected
