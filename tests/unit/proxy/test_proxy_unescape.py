"""One level of an echo's escapes undone, each decoded byte traced to the original (pure)."""

from __future__ import annotations

import pytest

from proxy.unescape import LONGEST, decoded, open_escape, unescape


@pytest.mark.parametrize(("data", "text"), [
    (rb"a\/b", b"a/b"),                                   # PHP's json_encode
    (rb"a\u002Bb\u002bc", b"a+b+c"),                      # .NET, and lower-case hex
    (rb"\u0041\u00e9", "Aé".encode()),                    # any character, UTF-8 out
    (b"a%2Fb%2fc%3D%3d", b"a/b/c=="),                     # URL-encoded, either case
    (b"a&#x2F;b&#X2f;c&#47;d&#x0000002F;", b"a/b/c/d/"),  # HTML character references
    (b"&amp;&lt;&gt;&quot;&apos;", b"&<>\"'"),            # and the named ones
    (b"&sol;&plus;&equals;&period;&GT;&VerticalLine;", b"/+=.>|"),  # HTML5's names
    (b"&nbsp;&foo;&Sol;", b"&nbsp;&foo;&Sol;"),           # none for an ASCII character
    (rb"x\u002F%2F&#47;\/y", b"x////y"),                  # mixed, as they come
    (b"%252F", b"%2F"),                                   # one level only
    (rb"\ud800 &#xD800; &#1114112;", rb"\ud800 &#xD800; &#1114112;"),  # no such character
])
def test_each_escape_is_undone(data: bytes, text: bytes) -> None:
    view = unescape(data)
    assert view is not None
    assert view.text == text == decoded(data)


@pytest.mark.parametrize("data", [b"", b"plain text", rb"a\nb\"c", b"100% & %zz &#; &amp"])
def test_text_without_an_escape_has_no_view(data: bytes) -> None:
    assert unescape(data) is None
    assert decoded(data) is None


def test_a_decoded_span_leads_back_to_the_bytes_that_spelled_it() -> None:
    data = rb"<p>ab\/c%2Bd&#x3D;e</p>"
    view = unescape(data)
    assert view is not None
    assert view.text == b"<p>ab/c+d=e</p>"
    at = view.text.index(b"b/c+d=e")
    start, end = view.origin(at, at + len(b"b/c+d=e"))
    assert data[start:end] == rb"b\/c%2Bd&#x3D;e"
    assert data[slice(*view.origin(at + 1, at + 2))] == rb"\/"  # one escape, whole
    assert view.start_of(len(view.text)) == len(data)
    assert data[view.start_of(view.text.index(b"e</p>")):] == b"e</p>"


@pytest.mark.parametrize(("data", "at"), [
    (b"abc", None), (b"abc\n", None), (b"abc%2F", None), (rb"ab\u002F", None),
    (b"ab%", 2), (b"ab%2", 2), (b"ab\\", 2), (rb"ab\u00", 2), (b"ab&", 2), (b"ab&#", 2),
    (b"ab&#x2", 2), (b"ab&#47", 2), (b"ab&am", 2), (b"ab&quo", 2), (b"ab&Vertical", 2),
    (b"ab%zz", None), (b"ab&#x2F;", None), (b"ab&z1", None), (b"&#x" + b"0" * 9, None),
])
def test_an_escape_the_end_may_cut_is_found(data: bytes, at: int | None) -> None:
    assert open_escape(data) == at
    if at is not None:
        assert len(data) - at < LONGEST
