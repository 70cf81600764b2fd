"""The credential a WebSocket server sends back, masked in the messages it makes (pure)."""

from __future__ import annotations

import pytest

from proxy.scrub import Scrubber
from proxy.wsframes import FrameScrubber, Unreadable

TOKEN = b"ghp_REALGITHUBCANARY0123456789"
STARS = b"*" * len(TOKEN)


def frame(opcode: int, payload: bytes, *, fin: bool = True, first: int = 0) -> bytes:
    size = len(payload)
    length = bytes([size]) if size < 126 else bytes([126]) + size.to_bytes(2, "big")
    return bytes([(0x80 if fin else 0) | first | opcode]) + length + payload


def relay(wire: bytes, cut: int | None = None) -> tuple[bytes, int]:
    """``wire`` through a FrameScrubber, in two pieces cut at ``cut`` or a byte at a time."""
    scrub = FrameScrubber(Scrubber([TOKEN]))
    pieces = [wire[:cut], wire[cut:]] if cut is not None else \
        [wire[i:i + 1] for i in range(len(wire))]
    out = b"".join(scrub.feed(p) for p in pieces) + scrub.finish()
    return out, scrub.masked


SPLIT = TOKEN[:11], TOKEN[11:]
ENCODED = rb"\u0067hp_REALGITHUB%43ANARY0123456789"
#: What a server may send (a message over frames, a ping in between, a long frame, a
#: control frame quoting it), and what the client must get.
CASES = [
    (frame(0x1, b"auth: " + TOKEN), frame(0x1, b"auth: " + STARS)),
    (frame(0x1, SPLIT[0], fin=False) + frame(0x0, SPLIT[1]),
     frame(0x1, STARS[:11], fin=False) + frame(0x0, STARS[11:])),
    (frame(0x1, SPLIT[0], fin=False) + frame(0x9, b"ping") + frame(0x0, SPLIT[1] + b"\n"),
     frame(0x1, STARS[:11], fin=False) + frame(0x9, b"ping") + frame(0x0, STARS[11:] + b"\n")),
    (frame(0x2, b"x" * 300 + TOKEN), frame(0x2, b"x" * 300 + STARS)),
    (frame(0x8, b"\x03\xe8" + TOKEN), frame(0x8, b"\x03\xe8" + STARS)),
    (frame(0xA, TOKEN) + frame(0x1, b"gh"), frame(0xA, STARS) + frame(0x1, b"gh")),
    # Re-encoded as a JSON or URL echo spells it, an escape cut by the frames.
    (frame(0x1, ENCODED[:20], fin=False) + frame(0x0, ENCODED[20:] + b"\n"),
     frame(0x1, b"*" * 20, fin=False) + frame(0x0, b"*" * (len(ENCODED) - 20) + b"\n")),
]


@pytest.mark.parametrize(("wire", "expected"), CASES)
def test_a_message_is_masked_however_its_frames_and_reads_cut_it(
        wire: bytes, expected: bytes) -> None:
    for cut in [None, *range(len(wire) + 1)]:
        out, masked = relay(wire, cut)
        assert out == expected, cut
        assert masked == 1


def test_frames_with_no_secret_go_on_as_they_came() -> None:
    wire = frame(0x1, b"hello") + frame(0x9, b"") + frame(0x1, b"{}\n")
    scrub = FrameScrubber(Scrubber([TOKEN]))
    assert scrub.feed(wire) == wire
    assert not scrub.holding


def test_only_the_data_that_may_begin_a_secret_waits_and_what_follows_waits_behind_it() -> None:
    scrub = FrameScrubber(Scrubber([TOKEN]))
    wire = frame(0x1, b"say gh")
    assert scrub.feed(wire) == wire[:-2]  # the head as it was, and the payload but "gh"
    assert scrub.holding  # the message is whole: the end goes on after a short wait
    assert scrub.feed(frame(0x9, b"p")) == b""  # behind the held bytes, in order
    assert scrub.finish() == b"gh" + frame(0x9, b"p")  # no more came: it was no secret


@pytest.mark.parametrize("cut", [6, 8, 12])  # between two frames of a message; mid-frame
def test_an_unfinished_message_holds_its_end_until_the_rest_comes(cut: int) -> None:
    """No client reads a message before its end: the held end waits for it, not for the
    pipe's clock, so a credential whose second half comes late is masked whole."""
    wire = frame(0x1, b"x" + TOKEN[:3], fin=False) + frame(0x0, TOKEN[3:])
    scrub = FrameScrubber(Scrubber([TOKEN]))
    first = scrub.feed(wire[:cut])
    assert not scrub.holding
    assert first + scrub.feed(wire[cut:]) + scrub.finish() == \
        frame(0x1, b"x" + STARS[:3], fin=False) + frame(0x0, STARS[3:])


@pytest.mark.parametrize("wire", [
    frame(0x1, b"deflated", first=0x40),  # permessage-deflate
    frame(0x1, b"x", first=0x20),
    bytes([0x81, 0x80 | 4]) + b"mask" + b"abcd",  # a masked frame
    frame(0x3, b"x"),  # an opcode no one knows
    frame(0x9, b"p" * 126),  # a control frame too long
    frame(0x9, b"p", fin=False),  # a control frame split
    b"HTTP/1.1 200 OK\r\n",  # no frame at all
])
def test_what_the_masking_cannot_read_ends_the_pipe(wire: bytes) -> None:
    scrub = FrameScrubber(Scrubber([TOKEN]))
    with pytest.raises(Unreadable):
        scrub.feed(frame(0x1, b"fine") + wire)


def test_an_empty_control_frame_at_the_end_of_a_read_goes_on_at_once() -> None:
    """A close or ping frame without a payload, the last bytes read: nothing more will come
    to complete it, so it goes on with them."""
    frames = FrameScrubber(Scrubber([b"ghp_SECRET"]))
    assert frames.feed(b"\x81\x02hi\x88\x00") == b"\x81\x02hi\x88\x00"
    assert frames.feed(b"\x89") == b""
    assert frames.feed(b"\x00") == b"\x89\x00"
