"""The Codex refresh rewrite: real token in, real tokens out of the container's sight."""

from __future__ import annotations

import base64
import json
from urllib.parse import parse_qs

import pytest

from proxy.token_refresh import (
    CODEX_CLIENT_ID,
    PLACEHOLDER_TOKEN,
    capture_refresh_response,
    rewrite_refresh_request,
    unsigned_copy,
)


def test_json_refresh_body() -> None:
    body = json.dumps({"grant_type": "refresh_token", "refresh_token": "DUMMY"}).encode()
    out = rewrite_refresh_request(body, "application/json", "REAL", own="DUMMY")
    assert json.loads(out.body)["refresh_token"] == "REAL"
    assert out.placeholder == "DUMMY"


def test_form_refresh_body() -> None:
    out = rewrite_refresh_request(b"grant_type=refresh_token&refresh_token=DUMMY",
                                  "application/x-www-form-urlencoded; charset=utf-8", "RE AL",
                                  own="DUMMY")
    assert parse_qs(out.body.decode())["refresh_token"] == ["RE AL"]


@pytest.mark.parametrize(("sent", "own"), [
    ("DUMMY", ""),  # no instance key: no session's placeholder known
    ("OTHER-SESSIONS-DUMMY", "DUMMY"),
    ("dummy", "DUMMY"),
    ("DUMMY ", "DUMMY"),
    ("", ""),
])
def test_a_refresh_without_the_sessions_own_dummy_goes_untouched(sent: str, own: str) -> None:
    """An agent never given the ChatGPT login (a Claude session, Codex on an API key) sent
    a refresh with a dummy of its own: the person's refresh token went into it and the
    person's login was rotated for it. Only the session's own placeholder lets it in."""
    body = json.dumps({"grant_type": "refresh_token", "refresh_token": sent}).encode()
    out = rewrite_refresh_request(body, "application/json", "REAL", own=own)
    assert (out.body, out.placeholder, out.refused) == (body, None, "")


def test_bodies_without_a_refresh_token_pass() -> None:
    for body in (b"not json", b"[]", b'{"a": 1}'):
        out = rewrite_refresh_request(body, "application/json", "REAL", own="DUMMY")
        assert (out.body, out.placeholder) == (body, None)


def test_only_a_refresh_gets_the_real_token() -> None:
    """Another grant (a token exchange for an API key) or two grants, one a refresh, go
    with the container's dummy."""
    for body, ctype in (
            (json.dumps({"grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
                         "requested_token": "openai-api-key",
                         "refresh_token": "DUMMY"}).encode(), "application/json"),
            (json.dumps({"refresh_token": "DUMMY"}).encode(), "application/json"),
            (b"grant_type=refresh_token&grant_type=password&refresh_token=DUMMY",
             "application/x-www-form-urlencoded")):
        out = rewrite_refresh_request(body, ctype, "REAL", own="DUMMY")
        assert (out.body, out.placeholder) == (body, None)


FORM = "application/x-www-form-urlencoded"
#: A refresh as the proxy sends it: Codex's client, the real token (a scope where one was
#: named: Codex's own; Codex names none today, its earlier versions Codex's).
SENT = json.dumps({"client_id": CODEX_CLIENT_ID, "grant_type": "refresh_token",
                   "refresh_token": "REAL"}).encode()
SENT_FORM = f"client_id={CODEX_CLIENT_ID}&grant_type=refresh_token&refresh_token=REAL".encode()
SCOPED_FORM = SENT_FORM + b"&scope=openid+profile+email"
#: What the Codex CLI itself sends (0.171, read off the wire), and what the proxy sends then.
CODEX_BODY = json.dumps({"client_id": CODEX_CLIENT_ID, "grant_type": "refresh_token",
                         "refresh_reason": "proactive_expiry", "refresh_token": "DUMMY"}).encode()


@pytest.mark.parametrize(("body", "ctype"), [
    # A name the proxy does not know, which a server may fold into the grant's.
    (b"grant_type=refresh_token&refresh_token=DUMMY&grant.type=authorization_code", FORM),
    (b"grant_type=refresh_token&refresh_token=DUMMY&grant_type[]=authorization_code", FORM),
    (b"grant_type=refresh_token&refresh_token=DUMMY&grant_type%00=authorization_code", FORM),
    (b"grant_type=refresh_token&refresh_token=DUMMY&code=agents-own-code", FORM),
    # A name twice: a list to some servers, the first or the last to others.
    (b"grant_type=refresh_token&refresh_token=DUMMY&refresh_token=OTHER", FORM),
    (b"grant_type=refresh_token&refresh_token=DUMMY&client_id=a&client_id=b", FORM),
    # A value that is no string.
    (b'{"grant_type":"refresh_token","refresh_token":"DUMMY","scope":{"a":1}}', "application/json"),
    (b'{"grant_type":["refresh_token"],"refresh_token":"DUMMY"}', "application/json"),
    # A body its declared type does not read.
    (b'{"grant_type":"refresh_token","refresh_token":"DUMMY"}', "text/plain"),
    (b'{"grant_type":"refresh_token","refresh_token":"DUMMY"}', ""),
    (b'{"grant_type":"refresh_token","refresh_token":"DUMMY"}', FORM),
    (b"grant_type=refresh_token&refresh_token=DUMMY", "application/json"),
    (b"grant_type=refresh_token&refresh_token=DUMMY", "multipart/form-data"),
])
def test_a_body_that_is_not_plainly_a_refresh_goes_with_the_dummy(body: bytes, ctype: str) -> None:
    out = rewrite_refresh_request(body, ctype, "REAL", own="DUMMY")
    assert (out.body, out.placeholder, out.content_type) == (body, None, b"")


@pytest.mark.parametrize(("body", "ctype", "sent"), [
    (b"%67rant_type=refresh_%74oken&%72efresh_token=DUMMY", FORM, SENT_FORM),
    (b"grant_type=refresh_token&refresh_token=DUMMY&scope=email+openid++profile",
     f"{FORM}; charset=x", SCOPED_FORM),
    (CODEX_BODY, "application/json", CODEX_BODY.replace(b"DUMMY", b"REAL")),
    (f"grant_type=refresh_token&refresh_token=DUMMY&client_id={CODEX_CLIENT_ID}".encode(),
     FORM, SENT_FORM),
    (b'{"grant_type":"authorization_code","grant_type":"refresh_token","refresh_token":"DUMMY"}',
     "Application/JSON; charset=utf-16", SENT),
    ('{"grant_type":"refresh_token","refresh_token":"DUMMY"}'.encode("utf-16"), "application/json",
     SENT),
    (SENT.replace(b"REAL", b"DUMMY"), "application/json", SENT),
])
def test_a_refresh_is_sent_as_the_proxy_read_it(body: bytes, ctype: str, sent: bytes) -> None:
    """Written anew, each name once, in its declared type alone (no charset the proxy did
    not write it in): what the server reads is what the proxy judged."""
    out = rewrite_refresh_request(body, ctype, "REAL", own="DUMMY")
    assert (out.body, out.placeholder) == (sent, "DUMMY")
    assert out.content_type == ctype.split(";", maxsplit=1)[0].lower().encode()


@pytest.mark.parametrize(("body", "ctype", "unlike"), [
    (b"grant_type=refresh_token&refresh_token=DUMMY&scope=openid", FORM, "scope"),
    (b"grant_type=refresh_token&refresh_token=DUMMY&scope=", FORM, "scope"),
    (b"grant_type=refresh_token&refresh_token=DUMMY&scope=a;grant_type=x", FORM, "scope"),
    (b"grant_type=refresh_token&refresh_token=DUMMY&client_id=app", FORM, "client"),
    (b"grant_type=refresh_token&refresh_token=DUMMY&client_id=", FORM, "client"),
    (b'{"grant_type":"refresh_token","refresh_token":"DUMMY","sc\\u006fpe":"openid"}',
     "application/json", "scope"),
    (b'{"grant_type":"refresh_token","refresh_token":"DUMMY",'
     b'"scope":"openid profile email","scope":"openid profile email api.admin"}',
     "application/json", "scope"),
    (f'{{"grant_type":"refresh_token","refresh_token":"DUMMY","client_id":'
     f'"{CODEX_CLIENT_ID.upper()}"}}'.encode(), "application/json", "client"),
    (b"grant_type=refresh_token&refresh_token=DUMMY&refresh_reason=", FORM, "refresh_reason"),
    (b"grant_type=refresh_token&refresh_token=DUMMY&refresh_reason=a+b", FORM, "refresh_reason"),
    (b"grant_type=refresh_token&refresh_token=DUMMY&refresh_reason=" + b"a" * 41, FORM,
     "refresh_reason"),
])
def test_a_refresh_asking_for_another_client_or_scope_is_refused(
        body: bytes, ctype: str, unlike: str) -> None:
    """The person's token goes with Codex's client and scope alone: another scope would
    rotate the login into a narrowed one, kept for every session."""
    out = rewrite_refresh_request(body, ctype, "REAL", own="DUMMY")
    assert (out.body, out.placeholder) == (body, None)
    assert f"another {unlike}" in out.refused


def test_a_refresh_whose_url_has_a_query_goes_with_the_dummy() -> None:
    """A server may read the grant from the query too: only a body alone is judged."""
    for query in ("grant_type=authorization_code&code=x", "a=1", "x"):
        for body, ctype in (
                (b"grant_type=refresh_token&refresh_token=DUMMY",
                 "application/x-www-form-urlencoded"),
                (json.dumps({"grant_type": "refresh_token", "refresh_token": "DUMMY"}).encode(),
                 "application/json")):
            out = rewrite_refresh_request(body, ctype, "REAL", own="DUMMY", query=query)
            assert (out.body, out.placeholder) == (body, None), query


def test_answer_tokens_are_captured_and_replaced() -> None:
    claims = base64.urlsafe_b64encode(b'{"sub":"x"}').rstrip(b"=").decode()
    answer = {"access_token": "A", "refresh_token": "R", "id_token": f"h.{claims}.sig",
              "expires_in": 10}
    out = capture_refresh_response(json.dumps(answer).encode(), "DUMMY")
    assert out.tokens == {"access_token": "A", "refresh_token": "R",
                          "id_token": f"h.{claims}.sig"}
    seen = json.loads(out.body)
    assert seen["access_token"] == "DUMMY"
    assert seen["refresh_token"] == "DUMMY"
    assert seen["id_token"] == unsigned_copy(f"h.{claims}.sig")
    assert seen["id_token"].endswith(f".{claims}.clauderon-unsigned")
    assert seen["expires_in"] == 10


def test_answers_without_tokens_pass() -> None:
    for body in (b"{}", b"oops", b'{"error": "invalid_grant"}'):
        assert capture_refresh_response(body, None).body == body


@pytest.mark.parametrize(("body", "kept", "seen"), [
    (b"access_token=A1234567&refresh_token=R1234567&token_type=bearer",
     {"access_token": "A1234567", "refresh_token": "R1234567"},
     b"access_token=DUMMY&refresh_token=DUMMY&token_type=bearer"),
    (b'{"data":{"access_token":"A1234567","n":1}}', {},
     f'{{"data": {{"access_token": "{PLACEHOLDER_TOKEN}", "n": 1}}}}'.encode()),
    (b'[{"accessToken":"A1234567"}]', {}, f'[{{"accessToken": "{PLACEHOLDER_TOKEN}"}}]'.encode()),
    (b'{"Refresh-Token":{"v":["R1234567"]},"api_key":"K1234567","token_type":"bearer"}', {},
     f'{{"Refresh-Token": {{"v": ["{PLACEHOLDER_TOKEN}"]}}, "api_key": "{PLACEHOLDER_TOKEN}", '
     '"token_type": "bearer"}'.encode()),
    (b'{"access_token":{"value":"A1234567"}}', {},
     f'{{"access_token": {{"value": "{PLACEHOLDER_TOKEN}"}}}}'.encode()),
    (b"\xef\xbb\xbf" + b'{"refresh_token":"R1234567"}', {"refresh_token": "R1234567"},
     b'{"refresh_token": "DUMMY"}'),
])
def test_tokens_are_taken_out_wherever_they_are(
        body: bytes, kept: dict[str, str], seen: bytes) -> None:
    """Kept where Codex reads them (the top of a JSON object or a form); any other string
    under a token's name, at any depth, taken out and not kept."""
    out = capture_refresh_response(body, "DUMMY")
    assert (dict(out.tokens), out.body, out.readable) == (kept, seen, True)
    held = {t for t in ("A1234567", "R1234567", "K1234567") if t.encode() in body}
    assert held == {*out.tokens.values(), *out.hidden}


def test_an_answer_neither_json_nor_a_form_is_unreadable() -> None:
    for body in (b"access: A1234567\n", b"<html>a & b</html>", b"\xff="):
        out = capture_refresh_response(body, "DUMMY")
        assert (out.body, out.tokens, out.readable) == (body, {}, False)
