"""The browser session's bind (``api/cookies.py``, pure): only the instance key makes it from
the cookie, a request presents it as a header or a WebSocket subprotocol, and anything else
presented is no bind."""

from __future__ import annotations

import pytest

from api.cookies import (
    MAX_CANDIDATES,
    bind_for,
    bound,
    bound_secret,
    clear_cookies,
    offers_protocol,
    presented_bind,
    set_cookie,
)

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


BIND = bind_for(KEY, SECRET)


@pytest.mark.parametrize("header", [
    f"clauderon_session={SECRET}",
    f"__Host-clauderon_session={SECRET}",
    # A neighbour's plant, sent after the person's (newer, same path) or before (longer path).
    f"clauderon_session={SECRET}; clauderon_session=tossed",
    f"clauderon_session=tossed; clauderon_session={SECRET}",
    # A ``__Host-`` one planted from another port of a loopback name (a secure context).
    f"clauderon_session={SECRET}; __Host-clauderon_session=planted",
    f"__Host-clauderon_session=planted; __Host-clauderon_session={SECRET}",
    f"prefs={{\"a\": 1}}; junk; clauderon_session= {SECRET} ",
    # A jar filled by a neighbour before the person's own.
    "; ".join([*(f"clauderon_session=x{i}" for i in range(180)),
               f"clauderon_session={SECRET}"]),
])
def test_the_session_is_the_value_its_bind_names_wherever_it_comes(header: str) -> None:
    assert bound_secret(KEY, header, BIND) == SECRET


@pytest.mark.parametrize(("header", "presented"), [
    (f"clauderon_session={SECRET}", None),  # a cookie alone
    (f"clauderon_session={SECRET}", bind_for(KEY, "tossed")),
    (f"clauderon_session=tossed; __Host-clauderon_session={SECRET}x", BIND),
    (f"other_session={SECRET}", BIND),  # not our cookie's name
    (f"clauderon_session={SECRET}{'x' * 200}", bind_for(KEY, SECRET + "x" * 200)),  # too long
    ("; ".join(f"clauderon_session=x{i}" for i in range(MAX_CANDIDATES)) +
     f"; clauderon_session={SECRET}", BIND),  # past what a browser keeps for a host
    (None, BIND),
])
def test_no_value_is_the_session_without_its_bind(header: str | None,
                                                 presented: str | None) -> None:
    assert bound_secret(KEY, header, presented) is None


@pytest.mark.parametrize("https", [False, True])
def test_the_cookie_outranks_a_siblings_when_the_browser_evicts(https: bool) -> None:
    """Chromium evicts per site, lower priorities first (test_webui_cookie_neighbour.py)."""
    for header in (set_cookie(SECRET, https=https), *clear_cookies(https=https)):
        attrs = {a.strip() for a in header.split(";")[1:]}
        assert {"Path=/", "HttpOnly", "SameSite=Strict", "Priority=High"} <= attrs
        assert ("Secure" in attrs) is header.startswith("__Host-")
