"""The console's WebSocket frames (pure, ``api/console_frames.py``): every frame a viewer may
send reads as input, a resize or nothing; a bad one is a ``ValueError`` (skipped, the
terminal goes on); the output frames are the JSON the web UI reads."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.console import PATH
from api.console_frames import MAX_FRAME, exit_frame, output_frame, parse_frame, size


def test_input_resize_and_raw_frames() -> None:
    typed = base64.b64encode(b"ls\r").decode()
    assert parse_frame(json.dumps({"type": "input", "data": typed})) == ("input", b"ls\r")
    assert parse_frame(json.dumps({"type": "resize", "rows": 33, "cols": 77})) == \
        ("resize", (33, 77))
    assert parse_frame(json.dumps({"type": "resize", "rows": 0, "cols": 10**9})) == \
        ("resize", (2, 1000))
    assert parse_frame(b"\x03") == ("input", b"\x03")
    assert parse_frame(b"x" * (MAX_FRAME + 10)) == ("input", b"x" * MAX_FRAME)
    assert parse_frame(json.dumps({"type": "later-kind"})) == ("ignore", None)


@pytest.mark.parametrize("bad", [
    "not json", "[1]", "7", json.dumps({"type": "input", "data": "!!"}),
    json.dumps({"type": "resize", "rows": "many"}), json.dumps({"type": "input", "data": 5}),
])
def test_a_bad_frame_is_a_value_error(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_frame(bad)


@given(st.binary(max_size=4096))
def test_output_frames_carry_any_bytes(data: bytes) -> None:
    msg = json.loads(output_frame(data))
    assert msg == {"type": "output", "data": base64.b64encode(data).decode()}
    assert base64.b64decode(msg["data"]) == data


@given(st.text(max_size=200))
def test_any_text_frame_is_read_or_refused(text: str) -> None:
    try:
        kind, _ = parse_frame(text)
    except ValueError:
        return
    assert kind in ("input", "resize", "ignore")


def test_sizes_and_the_exit_frame() -> None:
    assert size(None, 24) == 24 and size("50", 24) == 50 and size(-3, 24) == 2
    with pytest.raises(Exception, match="integers"):
        size("wide", 80)
    assert json.loads(exit_frame()) == {"type": "exit"}


def test_the_route_takes_one_path_segment_as_quart_would() -> None:
    found = PATH.fullmatch("/ws/console/my-session")
    assert found is not None and found.group(1) == "my-session"
    for other in ("/ws/console/", "/ws/console/a/b", "/ws/consoles/a", "/ws/console"):
        assert PATH.fullmatch(other) is None, other
