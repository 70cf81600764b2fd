"""Behind ``tailscale serve`` the browser's session cookie keeps ``Secure`` and its
``__Host-`` name when it slides (real API; the proxy's side played with httpx, as
``tailscale serve`` hands requests on: plain HTTP to 127.0.0.1, the browser's headers kept).

The attack it plays: a peer that can see or answer the browser's plain-HTTP requests to the
public name (``http://box.ts.net/``, which any page can make the browser fetch) collects the
session secret, or plants a cookie of the same name. Sign-in over ``https://<public name>``
sets ``__Host-clauderon_session; Secure``, which no plain-HTTP request carries. The guard
knows the request is HTTPS only from its ``Origin``; a same-origin GET (the web UI's reads,
a navigation) has none, and when the session slides (after an hour) such a GET answered
with ``clauderon_session=<the same secret>`` without ``Secure``: the browser then sends it
over plain HTTP too.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from appliance.sessions import utcnow
from tests.support.appliance import Appliance, running

NAME = "box.tail1234.ts.net"


@pytest.fixture
def proxied(tmp_path: Path) -> Iterator[Appliance]:
    with running(tmp_path / "home", "api", server=f'public_names = ["{NAME}"]\n') as app:
        yield app


def test_a_sliding_cookie_stays_secure_behind_tailscale_serve(proxied: Appliance) -> None:
    base = proxied.base
    token = proxied.link().split("token=", 1)[1]
    # The sign-in page posts the token; tailscale serve forwards it with the browser's Origin.
    r = httpx.post(f"{base}/api/auth/link", json={"token": token},
                   headers={"Origin": f"https://{NAME}", "Host": NAME})
    assert r.status_code == 200, r.text
    set_cookie = r.headers["set-cookie"]
    assert set_cookie.startswith("__Host-clauderon_session=") and "Secure" in set_cookie
    cookie, bind = set_cookie.split(";", 1)[0], r.json()["bind"]
    # An hour and more later (the session's last use, moved back in the database)...
    with closing(sqlite3.connect(proxied.settings.home / "db.sqlite")) as db, db:
        db.execute("UPDATE auth_sessions SET last_seen_at = ?",
                   ((utcnow() - timedelta(hours=2)).isoformat(),))
    # ...the web UI reads the session list: a same-origin GET, which carries no Origin.
    r = httpx.get(f"{base}/api/sessions", headers={"Cookie": cookie, "Host": NAME,
                                                   "X-Clauderon-Bind": bind})
    assert r.status_code == 200, r.text
    refreshed = r.headers.get("set-cookie")
    assert refreshed is not None  # the session slid
    attrs = [a.strip() for a in refreshed.split(";")]
    assert attrs[0].startswith("__Host-clauderon_session="), refreshed
    assert "Secure" in attrs, refreshed
