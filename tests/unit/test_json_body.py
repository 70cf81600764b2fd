"""Bodies and numbers from the outside: every bad one is a 400 (or 415) naming the problem,
never an exception that would be a 500."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.body import MAX_DEPTH, int_param, parse_json
from appliance.errors import ClauderonError, InvalidInput, UnsupportedMediaType

JSON = "application/json"


def test_good_json() -> None:
    assert parse_json(b'{"a": [1, 2.5, "\\u00e9", null, true]}', JSON) == {
        "a": [1, 2.5, "é", None, True]}
    assert parse_json('{"a": "é"}'.encode(), "application/json; charset=utf-8") == {"a": "é"}
    assert parse_json(b"[" * MAX_DEPTH + b"]" * MAX_DEPTH, JSON) is not None
    assert parse_json(b'{"a": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}', JSON)  # in a string


@pytest.mark.parametrize(("raw", "needle"), [
    (b'{"a": "\xff"}', "not valid UTF-8"),
    (b"[" * 10_000 + b"]" * 10_000, "nests deeper than"),
    (b'{"a":' * 100_000, "nests deeper than"),
    (b'{"n": ' + b"9" * 5000 + b"}", "too large"),
    (b'{"n": 99999999999999999999}', "too large"),
    (b'{"n": 1e999}', "out of range"),
    (b'{"n": NaN}', "NaN is not JSON"),
    (b'{"n": -Infinity}', "-Infinity is not JSON"),
    (b"{not json", "not valid JSON"),
    (b"", "not valid JSON"),
    (b'"\\ud800"', ""),
])
def test_bad_json_is_a_400_naming_the_problem(raw: bytes, needle: str) -> None:
    try:
        parse_json(raw, JSON)
    except InvalidInput as exc:
        assert needle in exc.message
    else:
        assert needle == ""  # a lone surrogate escape is valid JSON text; Python keeps it


@pytest.mark.parametrize("ctype", [None, "text/plain", "application/x-www-form-urlencoded",
                                   "multipart/form-data; boundary=x"])
def test_json_must_say_so(ctype: str | None) -> None:
    with pytest.raises(UnsupportedMediaType, match="application/json"):
        parse_json(b"{}", ctype)


@given(st.binary(max_size=300))
def test_any_bytes_parse_or_fail_cleanly(raw: bytes) -> None:
    try:
        parse_json(raw, JSON)
    except ClauderonError as exc:
        assert exc.http_status == 400


@pytest.mark.parametrize(("raw", "value"), [(None, 7), ("", 7), ("0", 0), ("42", 42)])
def test_int_param(raw: str | None, value: int) -> None:
    assert int_param(raw, "after", default=7) == value


@pytest.mark.parametrize("raw", ["-1", "x", "1.5", "٣", "9" * 5000, str(2**63), " ", "0x10"])
def test_int_param_refuses(raw: str) -> None:
    with pytest.raises(InvalidInput, match="after must be a whole number"):
        int_param(raw, "after", default=0)
