"""One level of an echo's escapes undone, each decoded byte traced to the original (pure)."""

from __future__ import annotations

import pytest

from proxy.unescape import LONGEST, Twice, open_escape, twice, undone, unescape


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
    (b"%252F", b"%2F"),                                   # one level at a time
    (rb"a\\b\\\/c\\u002F", rb"a\b\/c\u002F"),                 # JSON's backslash
    (rb"\ud800 &#xD800; &#1114112;", rb"\ud800 &#xD800; &#1114112;"),  # no such character
])
def test_each_escape_is_undone(data: bytes, text: bytes) -> None:
    view = unescape(data)
    assert view is not None
    done = undone(data)
    assert done is not None
    assert view.text == text == done[0]
    assert done[1] >= len(view.spans)  # an escape that stands for nothing is counted too


@pytest.mark.parametrize("data", [b"", b"plain text", rb"a\nb\"c", b"100% & %zz &#; &amp"])
def test_text_without_an_escape_has_no_view(data: bytes) -> None:
    assert unescape(data) is None
    assert undone(data) is None


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
    (rb"ab\\", None), (rb"ab\\u00", None), (rb"ab\\\u00", 4),  # a backslash escaped, or not
    (rb"\\u00", 1),  # a run that may go on before the text: read as an escape's start
])
def test_an_escape_the_end_may_cut_is_found(data: bytes, at: int | None) -> None:
    assert open_escape(data) == at
    if at is not None:
        assert len(data) - at < LONGEST


@pytest.mark.parametrize(("data", "text"), [
    (b"%252F", b"/"),                       # a URL in a URL
    (rb"\\u002F \\\/", b"/ /"),               # a JSON string holding JSON, as .NET and PHP write it
    (b"&amp;#x2F; &amp;sol; &amp;amp;", b"/ / &"),  # an HTML reference escaped again
    (rb"%5Cu002F &#37;2F \u0026#47;", b"/ / /"),  # a lead escaped otherwise
])
def test_a_second_level_is_traced_through_the_first(data: bytes, text: bytes) -> None:
    first = unescape(data)
    assert first is not None
    assert twice(data, first.text, len(first.spans))
    second = unescape(first.text)
    assert second is not None
    view = Twice(first, second)
    assert view.text == text
    slash = view.text.index(b"/")
    assert data[slice(*view.origin(slash, slash + 1))] == data.split(b" ")[0]
    assert view.start_of(len(view.text)) == len(data)


@pytest.mark.parametrize(("data", "text"), [
    (b"%25252F", b"/"),                                   # a URL in a URL in a URL
    (rb"\\\\u002F", b"/"),                                # JSON in JSON in JSON
    (b"&amp;amp;#x2F;", b"/"),                            # a reference escaped thrice
    (rb"\u0026#x25;2F", b"/"),                           # each level its own escape
])
def test_a_third_level_is_traced_through_the_two_before(data: bytes, text: bytes) -> None:
    first = unescape(data)
    assert first is not None
    second = unescape(first.text)
    assert second is not None and twice(first.text, second.text, len(second.spans))
    third = unescape(second.text)
    assert third is not None
    view = Twice(Twice(first, second), third)
    assert view.text == text
    assert view.origin(0, 1) == (0, len(data))
    assert view.start_of(len(view.text)) == len(data)


@pytest.mark.parametrize("data", [
    b"caf\\u00e9 \\\"q\\\" ok\\n", b"%2F%41 &#x2F; &lt;", b"100% & 50%",
    rb"\u0041\/", b"&#38", b"\xff",
])
def test_a_level_that_stood_for_no_escapes_first_character_needs_no_second(data: bytes) -> None:
    done = undone(data) or (data, 0)
    assert not twice(data, *done)
