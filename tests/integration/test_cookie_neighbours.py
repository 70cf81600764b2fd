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
    assert httpx.get(f"{appliance.base}/api/sessions",
                     headers={"Cookie": mine}).status_code == 200
    r = httpx.get(f"{appliance.base}/api/sessions", headers={"Cookie": f"{planted}; {mine}"})
    assert r.status_code == 200, (planted, r.status_code, r.text[:200])
    me = httpx.get(f"{appliance.base}/api/auth/me",
                   headers={"Cookie": f"{planted}; {mine}"}).json()
    assert me["signed_in"], (planted, me)
