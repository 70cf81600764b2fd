"""The browser session's bind (``api/cookies.py``, pure): only the instance key makes it from
the cookie, a request presents it as a header or a WebSocket subprotocol, and anything else
presented is no bind."""

from __future__ import annotations

import pytest

from api.cookies import bind_for, bound, offers_protocol, presented_bind

KEY = bytes(range(32))
SECRET = "s3cret-of-the-cookie"


def test_the_bind_needs_the_instance_key_and_the_cookie() -> None:
    bind = bind_for(KEY, SECRET)
    assert len(bind) == 64 and int(bind, 16) >= 0  # a subprotocol token: hex only
    assert bind_for(KEY, SECRET) == bind
    assert bind_for(bytes(32), SECRET) != bind  # another appliance's key
    assert bind_for(KEY, SECRET + "x") != bind  # another sign-in
    assert SECRET not in bind


@pytest.mark.parametrize(("header", "protocols", "presented"), [
    ("abc", None, "abc"),
    (" abc ", "clauderon, clauderon.bind.zzz", "abc"),  # the header first
    (None, "clauderon, clauderon.bind.abc", "abc"),
    (None, "clauderon.bind.abc,clauderon", "abc"),
    (None, "clauderon", None),
    (None, "clauderon.binder", None),
    (None, None, None),
    ("", None, None),
])
def test_a_bind_is_presented_by_header_or_subprotocol(
        header: str | None, protocols: str | None, presented: str | None) -> None:
    assert presented_bind(header, protocols) == presented


@pytest.mark.parametrize("presented", [None, "", "0" * 64, "é" * 64, "\x00", "x" * 5000])
def test_anything_but_the_bind_is_no_bind(presented: str | None) -> None:
    assert not bound(KEY, SECRET, presented)
    assert bound(KEY, SECRET, bind_for(KEY, SECRET))


@pytest.mark.parametrize(("protocols", "offers"), [
    ("clauderon", True), ("chat, clauderon ", True), ("clauderon.bind.abc", False),
    ("", False), (None, False), ("clauderonx", False),
])
def test_the_socket_is_accepted_in_the_protocol_a_page_asked_for(protocols: str | None,
                                                                 offers: bool) -> None:
    assert offers_protocol(protocols) is offers
