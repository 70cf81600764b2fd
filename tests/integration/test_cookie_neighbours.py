"""A hostile page on another port of the same host (``http://localhost:8080``) locks the
user out of the web UI for good by planting one cookie (real API, the browser's Cookie
header as it sends it).

Cookies are not isolated by port: whatever a page on ``localhost:8080`` writes with
``document.cookie`` (``Path=/api``, so the browser sends it first) goes along with every
request to ``localhost:3030``. The guard read the header with ``http.cookies.SimpleCookie``,
which gives up at the first pair it cannot parse (a space or a JSON object in a value, a
pair without ``=``, a pair named ``expires``) and silently drops every cookie after it, the
session's too: every request is then 401, and signing in again changes nothing, since the
planted cookie outlives it. Browsers accept and send all of these (and ordinary apps on
other localhost ports set JSON-valued cookies without meaning any harm).

The same page can fill the jar: as many cookies, as large, as a browser keeps for a host
(Chromium: 180 of 4 KiB). The listener read heads of at most 16 KiB and answered 431 to
every request, sign-in included, until the user cleared them.
"""

from __future__ import annotations

import httpx
import pytest

from tests.integration.test_console_socket import signed_in_cookie
from tests.support.appliance import Appliance

#: Cookies a page on another port can set for the host, as the browser sends them first.
PLANTED = ('prefs={"theme":"dark"}', "greeting=hello world", "flag", "expires=1",
           'q="open', "x=a\\b")


@pytest.mark.parametrize("planted", PLANTED)
def test_a_neighbours_cookie_does_not_sign_the_user_out(appliance: Appliance,
                                                       planted: str) -> None:
    mine = signed_in_cookie(appliance)
    # The control: the session cookie alone reads the API.
    assert httpx.get(f"{appliance.base}/api/sessions", headers=mine).status_code == 200
    jar = {**mine, "Cookie": f"{planted}; {mine['Cookie']}"}
    r = httpx.get(f"{appliance.base}/api/sessions", headers=jar)
    assert r.status_code == 200, (planted, r.status_code, r.text[:200])
    me = httpx.get(f"{appliance.base}/api/auth/me", headers=jar).json()
    assert me["signed_in"], (planted, me)


#: A jar a neighbour filled: 180 cookies of 4 KiB, as Chromium keeps and sends them.
FULL_JAR = "; ".join(f"fill{i}={'x' * 4090}" for i in range(180))


def test_a_full_cookie_jar_from_a_neighbour_does_not_lock_the_user_out(
        appliance: Appliance) -> None:
    mine = signed_in_cookie(appliance)
    assert len(FULL_JAR) > 700_000
    jar = {**mine, "Cookie": f"{FULL_JAR}; {mine['Cookie']}"}
    for path in ("/api/auth/me", "/"):  # the API and the web UI's page
        r = httpx.get(f"{appliance.base}{path}", headers=jar)
        assert r.status_code == 200, (path, r.status_code, r.text[:200])
    me = httpx.get(f"{appliance.base}/api/auth/me", headers=jar).json()
    assert me["signed_in"], me
    # Sign-in works with the jar as it is (the link's token is single-use: a fresh one).
    token = appliance.link().split("token=", 1)[1]
    r = httpx.post(f"{appliance.base}/api/auth/link", json={"token": token},
                   headers={"Origin": appliance.base, "Cookie": FULL_JAR})
    assert r.status_code == 200, r.text[:200]
