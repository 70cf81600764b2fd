"""The cookies taken out of an answer to the person's credential (pure), and the audit
note that names them."""

from __future__ import annotations

import pytest

from proxy.answer_cookies import uncookied


@pytest.mark.parametrize(("headers", "note", "kept", "said"), [
    ([(b"content-type", b"a")], None, [(b"content-type", b"a")], None),
    ([(b"Set-Cookie", b"sessionKey=s; Path=/"), (b"x", b"y")], None, [(b"x", b"y")],
     "Set-Cookie dropped from an answer to the person's credential: sessionKey"),
    ([(b"set-cookie", b"a=1"), (b"set-cookie", b"a=2"), (b"SET-COOKIE2", b"b=3")], "egress",
     [], "egress; Set-Cookie dropped from an answer to the person's credential: a, b"),
    ([(b"set-cookie", b"=novalue")], None, [],
     "Set-Cookie dropped from an answer to the person's credential: ?"),
    ([(b"x-set-cookie", b"a=1")], "n", [(b"x-set-cookie", b"a=1")], "n"),
])
def test_uncookied(headers: list[tuple[bytes, bytes]], note: str | None,
                   kept: list[tuple[bytes, bytes]], said: str | None) -> None:
    assert uncookied(headers, note) == (kept, said)
