"""``wire.hung_up``: the kernel's word on whether a client has gone, on a real socket pair."""

from __future__ import annotations

import trio

from proxy.sides import hung_up


async def test_hung_up_sees_a_close_even_behind_unread_bytes() -> None:
    left, right = trio.socket.socketpair()
    ours, theirs = trio.SocketStream(left), trio.SocketStream(right)
    assert not hung_up(ours)
    await theirs.send_all(b"bytes nobody has read yet")  # a TLS close_notify, say
    assert not hung_up(ours)
    await theirs.aclose()
    assert hung_up(ours)
    assert await ours.receive_some(1024) == b"bytes nobody has read yet"  # nothing was read
    await ours.aclose()
    assert hung_up(ours)  # closed on our side: nothing more to wait for
