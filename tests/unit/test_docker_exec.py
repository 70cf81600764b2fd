"""An exec's multiplexed frames folded into its stdout and stderr, under a byte limit."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from appliance.backends.docker_exec import collect
from appliance.errors import BackendError


@pytest.mark.parametrize(("frames", "out", "err"), [
    ([], b"", b""),
    ([(1, b"a"), (2, b"b"), (1, b"c")], b"ac", b"b"),
    ([(2, b"only err")], b"", b"only err"),
    ([(0, b"in"), (1, b"x")], b"x", b"in"),  # any stream but stdout is stderr
    ([(1, b"1234"), (2, b"5678")], b"1234", b"5678"),  # exactly the limit
])
def test_frames_are_folded(frames: list[tuple[int, bytes]], out: bytes, err: bytes) -> None:
    assert collect(frames, limit=8, what="tmux") == (out, err)


@pytest.mark.parametrize("frames", [
    [(1, b"123456789")],
    [(1, b"1234"), (2, b"56789")],
    [(2, b"12345"), (2, b"6789")],
])
def test_one_byte_past_the_limit_is_refused(frames: list[tuple[int, bytes]]) -> None:
    with pytest.raises(BackendError, match="tmux wrote more than 8 bytes in the container"):
        collect(frames, limit=8, what="tmux")


def test_reading_stops_at_the_refusal() -> None:
    """Frames past the limit are never asked for: the engine's stream is not drained."""
    asked = []

    def frames() -> Iterator[tuple[int, bytes]]:
        for i in range(10):
            asked.append(i)
            yield 1, b"12345"

    with pytest.raises(BackendError):
        collect(frames(), limit=8, what="cat")
    assert asked == [0, 1]
