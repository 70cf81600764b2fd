"""A hostile network peer, signed in or not, makes the web UI's file handler fail with a 500
and a traceback in the API's log for every request, by asking for a path the file system
cannot take (real API, raw HTTP/1.1).

Every path outside ``/api`` and ``/ws`` is the web UI's, open to all. ``api/webui.py`` looks
it up on disk: a segment longer than the file system allows (``ENAMETOOLONG``), a
percent-encoded NUL (``/index.html%00``: ``ValueError: embedded null byte``) or a path too
deep raised out of the handler, so the answer was Quart's HTML 500 page, never the JSON
error the API promises for bad input ("a 400 that names the problem, on every route"), and
each one wrote an exception's traceback to the log: a log any peer can fill at will.
"""

from __future__ import annotations

import http.client
import json

import pytest

from tests.support.appliance import Appliance

TARGETS = ("/" + "a" * 300, "/%00", "/index.html%00", "/a%00.js", "/" + "a/" * 3000 + "b",
           "/assets/" + "b" * 300 + ".js")


def raw_get(app: Appliance, target: str) -> tuple[int, str, str]:
    conn = http.client.HTTPConnection("127.0.0.1", app.http_port, timeout=10)
    try:
        conn.request("GET", target)
        r = conn.getresponse()
        return r.status, r.getheader("content-type") or "", r.read().decode(errors="replace")
    finally:
        conn.close()


@pytest.mark.parametrize("target", TARGETS, ids=lambda t: t[:20])
def test_a_path_the_file_system_refuses_is_not_a_server_error(appliance: Appliance,
                                                             target: str) -> None:
    assert raw_get(appliance, "/index.html")[0] == 200  # the control: the open files
    status, kind, body = raw_get(appliance, target)
    assert status < 500, (target[:40], status, body[:200])
    if status == 404:
        assert kind.startswith("application/json") and json.loads(body)["code"] == "not_found"
    log = (appliance.home / "api.test.log").read_text(errors="replace")
    assert "Traceback" not in log, log[-2000:]
