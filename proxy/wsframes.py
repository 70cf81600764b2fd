"""The credential on its way back over a WebSocket: masked in the messages. Pure.

After a 101 the proxy relays raw bytes, and :class:`~proxy.scrub.Scrubber` over those bytes
misses what a WebSocket client reads: a message split over frames (a ping may stand between
them) is one run of text to the client and several runs, each headed by a frame's bytes, on
the wire. A :class:`FrameScrubber` reads the server's frames: the data frames' payloads go
through one :class:`Scrubber`, as one stream, so a credential split over frames is still
whole when it is masked; a control frame's payload (125 bytes at most) is masked on its own,
whole; frame heads pass as they are (masking keeps every length). It has the
:class:`Scrubber`'s :meth:`feed`/:meth:`finish`/:attr:`holding`, so the pipe uses either;
the end it holds back waits on the pipe's short clock only once its message is whole.

What the masking cannot read ends the pipe (:class:`Unreadable`): a frame with a reserved
bit (permessage-deflate's compressed messages, which the proxy does not let the agent
offer, and any other extension), a masked frame (a server never masks), an unknown opcode,
a control frame too long or split. A client takes none of these from a server that was
offered nothing, so nothing that works is lost.
"""

from __future__ import annotations

from collections import deque

from proxy.scrub import Scrubber

#: The longest frame head a server sends: two bytes and a 64-bit length.
_HEAD_MAX = 10
_DATA = frozenset({0x0, 0x1, 0x2})
_CONTROL = frozenset({0x8, 0x9, 0xA})


class Unreadable(Exception):
    """The server sent frames the masking cannot read: the pipe ends."""


class FrameScrubber:
    """Masks a :class:`Scrubber`'s secrets in a server's WebSocket messages."""

    __slots__ = ("_buffer", "_control", "_fin", "_layout", "_left", "scrub")

    def __init__(self, scrub: Scrubber) -> None:
        self.scrub = scrub
        self._buffer = b""  # a frame head (or a control frame) not yet whole
        #: What goes out next, in order: bytes as they are, or a count of data bytes the
        #: scrubber has still to give back.
        self._layout: deque[bytes | int] = deque()
        self._left = 0  # payload bytes of the current frame still to come
        self._fin = True  # whether the last data frame ends its message
        self._control: bytes | None = None  # a control frame's head, its payload awaited

    @property
    def masked(self) -> int:
        return self.scrub.masked

    @property
    def holding(self) -> bool:
        """Whether the end held back should go on after a short wait (the pipe's clock).
        Not while the message it belongs to is unfinished: no client reads a message before
        its last frame's last byte, so the held end waits for the rest of it, however
        late, and a credential whose second half comes late is still masked whole."""
        return self.scrub.holding and self._fin and not self._left

    def feed(self, data: bytes) -> bytes:
        """What of the frames so far may go on: heads as they are, payloads masked."""
        released = bytearray()
        # (A control frame's head may end the bytes read: an empty payload is whole then.)
        while data or (self._control is not None and len(self._buffer) >= self._left):
            if self._left and self._control is None:  # a data frame's payload
                part, data = data[:self._left], data[self._left:]
                self._left -= len(part)
                self._layout.append(len(part))
                released += self.scrub.feed(part)
                continue
            self._buffer += data
            data = self._frame()
        return self._emit(bytes(released))

    def finish(self) -> bytes:
        """The data held back by the scrubber, and what waited behind it."""
        return self._emit(self.scrub.finish())

    def _frame(self) -> bytes:
        """Read a whole head (and a control frame's payload) off the buffer; the bytes left
        after it, or b"" when more must come first."""
        buffer = self._buffer
        if self._control is not None:
            if len(buffer) < self._left:
                return b""
            payload, rest = buffer[:self._left], buffer[self._left:]
            alone = Scrubber(self.scrub.secrets)
            payload = alone.feed(payload) + alone.finish()
            self.scrub.masked += alone.masked
            self._layout.append(self._control + payload)
            self._control, self._left, self._buffer = None, 0, b""
            return rest
        if len(buffer) < 2:
            return b""
        first, second = buffer[0], buffer[1]
        size, at = second & 0x7F, 2
        if size == 126:
            at = 4
        elif size == 127:
            at = _HEAD_MAX
        if len(buffer) < at:
            return b""
        if at > 2:
            size = int.from_bytes(buffer[2:at], "big")
        opcode = first & 0x0F
        if first & 0x70:
            raise Unreadable("a frame with a reserved bit set (a compressed message?)")
        if second & 0x80:
            raise Unreadable("a masked frame from the server")
        if opcode in _CONTROL:
            if size > 125 or not first & 0x80:
                raise Unreadable("a control frame too long or split")
            self._control, self._left = buffer[:at], size
        elif opcode in _DATA:
            self._left, self._fin = size, bool(first & 0x80)
            self._layout.append(buffer[:at])
        else:
            raise Unreadable(f"a frame of unknown opcode {opcode:#x}")
        self._buffer = b""
        return buffer[at:]

    def _emit(self, released: bytes) -> bytes:
        """The layout's bytes up to where the scrubber's data has come back."""
        out = bytearray()
        at = 0
        while self._layout:
            item = self._layout[0]
            if isinstance(item, bytes):
                out += item
                self._layout.popleft()
                continue
            take = min(item, len(released) - at)
            out += released[at:at + take]
            at += take
            if take < item:
                self._layout[0] = item - take
                break
            self._layout.popleft()
        return bytes(out)
