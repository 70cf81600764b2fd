"""The TCP listener's policy, decided from a request's facts (pure; see api/policy.py).

Each refusal is paired with the request a real browser or script sends when it is allowed,
so no check here can pass by refusing everything.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from api.request_policy import Access, Facts, Policy, check_caller, classify, host_name
from appliance.auth import LOCAL, Caller, Principal, Scope
from appliance.config import Settings

POLICY = Policy.from_settings(Settings(home=Path("/nonexistent"), http_port=3030,
                                       public_names=("box.tail1234.ts.net",)))
SAME = Facts(method="POST", path="/api/sessions", websocket=False, scheme="http",
             host="localhost:3030", origin="http://localhost:3030",
             content_type="application/json", has_body=True, fetch_site="same-origin",
             fetch_mode="cors", bearer=False)


def code(facts: Facts) -> str | None:
    refusal = POLICY.check(facts)
    return refusal.code if refusal else None


def test_a_same_origin_browser_request_passes() -> None:
    assert code(SAME) is None
    assert code(replace(SAME, host="127.0.0.1:3030", origin="http://127.0.0.1:3030")) is None
    assert code(replace(SAME, host="[::1]:3030", origin="http://[::1]:3030")) is None


@pytest.mark.parametrize("host", ["evil.example", "evil.example:3030", "127.0.0.2:3030",
                                  "localhost.evil.example", "", "localhost:3030, evil.example",
                                  "[::2]:3030", "box.tail1234.ts.net.evil.example"])
def test_hosts_outside_the_allow_list_are_refused(host: str) -> None:
    assert code(replace(SAME, host=host, origin=None, bearer=True)) == "unknown_host"


def test_public_names_are_allowed_hosts_and_https_origins() -> None:
    proxied = replace(SAME, host="box.tail1234.ts.net", origin="https://box.tail1234.ts.net")
    assert code(proxied) is None
    # tailscale serve may hand the request on with the loopback Host it connects to.
    assert code(replace(proxied, host="127.0.0.1:3030")) is None
    behind = replace(proxied, host="127.0.0.1:3030")
    assert code(replace(behind, origin="http://box.tail1234.ts.net")) == "forbidden"
    assert code(replace(behind, origin="https://box.tail1234.ts.net:8443")) == "forbidden"
    assert code(replace(behind, origin="https://other.tail1234.ts.net")) == "forbidden"


@pytest.mark.parametrize("origin", [
    "http://localhost:8080",  # another port: same site, other origin
    "http://127.0.0.1:3030",  # another name for the same address is another origin
    "http://127.0.0.2:3030", "https://localhost:3030", "null", "http://evil.example",
    "http://localhost:3030/path", "http://user@localhost:3030", "garbage", "http://[::1",
    "file://", "http://localhost.:8080", "HTTP://LOCALHOST:8080", "http://localhost:3030.",
    "http://evil.localhost:3030", "ws://localhost:3030",
])
def test_other_origins_are_refused(origin: str) -> None:
    assert code(replace(SAME, origin=origin)) == "forbidden"
    assert code(replace(SAME, method="GET", origin=origin, has_body=False)) == "forbidden"


def test_changes_and_websockets_need_an_origin_unless_a_bearer_token() -> None:
    for facts in (replace(SAME, origin=None),
                  replace(SAME, method="GET", path="/ws/events", websocket=True, origin=None,
                          has_body=False, content_type=None)):
        assert code(facts) == "forbidden"
        assert code(replace(facts, bearer=True)) is None
    assert code(replace(SAME, method="GET", origin=None, has_body=False)) is None


@pytest.mark.parametrize("site", ["cross-site", "same-site"])
def test_fetch_metadata_refuses_other_sites_except_navigation(site: str) -> None:
    get = replace(SAME, method="GET", origin=None, has_body=False, fetch_site=site,
                  fetch_mode="no-cors")
    assert code(get) == "forbidden"
    assert code(replace(get, fetch_mode="navigate")) is None  # a link to the app
    ws = replace(get, path="/ws/events", websocket=True, fetch_mode="websocket",
                 origin="http://localhost:3030")
    assert code(ws) == "forbidden"
    assert code(replace(ws, fetch_site="same-origin")) is None


@pytest.mark.parametrize("ctype", ["text/plain", "text/plain;charset=UTF-8",
                                   "application/x-www-form-urlencoded", None,
                                   "multipart/form-data; boundary=x", "application/jsonx"])
def test_bodies_must_be_json(ctype: str | None) -> None:
    assert code(replace(SAME, content_type=ctype)) == "unsupported_media_type"
    assert code(replace(SAME, content_type="application/json; charset=utf-8")) is None


def test_multipart_only_for_uploads() -> None:
    upload = replace(SAME, path="/api/sessions/x/uploads", content_type="multipart/form-data; b=1")
    assert code(upload) is None
    assert code(replace(upload, path="/api/sessions/x/uploads/../stop")) == \
        "unsupported_media_type"


@pytest.mark.parametrize(("method", "path", "ws", "access"), [
    ("GET", "/api/health", False, Access.OPEN),
    ("GET", "/", False, Access.OPEN),
    ("GET", "/assets/app.js", False, Access.OPEN),
    ("GET", "/s/name/files", False, Access.OPEN),
    ("POST", "/", False, Access.WRITE),
    ("GET", "/api/auth/me", False, Access.SIGN_IN),
    ("POST", "/api/auth/link", False, Access.SIGN_IN),
    ("POST", "/api/auth/passkey/login", False, Access.SIGN_IN),
    ("POST", "/api/auth/passkey/register", False, Access.WRITE),
    ("POST", "/api/auth/links", False, Access.WRITE),
    ("GET", "/api/sessions", False, Access.READ),
    ("GET", "/api", False, Access.READ),
    ("GET", "/api/openapi.json", False, Access.READ),
    ("POST", "/api/health", False, Access.WRITE),
    ("DELETE", "/api/sessions/x", False, Access.WRITE),
    ("GET", "/ws/events", True, Access.READ),
    ("GET", "/ws/console/x", True, Access.WRITE),
    # Metrics live outside /api but are not the web UI's: a caller is needed, however the
    # path is spelt.
    ("GET", "/metrics", False, Access.READ),
    ("HEAD", "/metrics", False, Access.READ),
    ("GET", "//metrics", False, Access.READ),
    ("GET", "/metrics/", False, Access.READ),
    ("GET", "///metrics//x", False, Access.READ),
    ("GET", "/metricsx", False, Access.OPEN),
])
def test_classify(method: str, path: str, ws: bool, access: Access) -> None:
    assert classify(method, path, websocket=ws) is access


def test_callers() -> None:
    reader = Caller(principal=Principal.TOKEN, scope=Scope.READ_ONLY, token_id="t-1")
    assert check_caller(Access.OPEN, None) is None
    assert check_caller(Access.SIGN_IN, None) is None
    unsigned = check_caller(Access.READ, None)
    assert unsigned is not None and unsigned.code == "unauthorized"
    assert "clauderon web" in unsigned.message
    assert check_caller(Access.READ, reader) is None
    refused = check_caller(Access.WRITE, reader)
    assert refused is not None and refused.code == "forbidden"
    assert check_caller(Access.WRITE, LOCAL) is None


def test_host_name() -> None:
    assert host_name("LocalHost:3030") == "localhost"
    assert host_name("[::1]:3030") == "::1"
    assert host_name("a b") is None or host_name("a b") != "localhost"
    assert host_name("") is None
