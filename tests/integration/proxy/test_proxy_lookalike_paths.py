"""A refused endpoint's name spelled in look-alike letters, played by a hostile agent through
the real proxy (real TLS both ways, a fake service on loopback).

A server that compares paths without regard to case the way .NET (``OrdinalIgnoreCase``,
ASP.NET Core's routing) and Java (``equalsIgnoreCase``) do reads a dotless i (U+0131) as
``i`` and a long s (U+017F) as ``s``, since their capitals are ``I`` and ``S``, and Java a
dotted capital I (U+0130) as ``i``, its small letter by the character; one that
normalises (NFKC) reads a fullwidth k (U+FF4B) as ``k`` and a fullwidth solidus (U+FF0F)
as a slash. Each would route the spelling to the endpoint the rule refuses: a new API key
made from the person's login, an invite into their organisation, a change to their billing.
A character that draws nothing (a zero-width space, a soft hyphen, a word joiner, a BOM)
inside the name weighs nothing to a server that compares by ICU's collation (.NET's
culture-aware ``StartsWith``, ``Equals``) or normalises to NFKC_Casefold: refused too, and
so is what else ICU weighs nothing (a control, many a mark, a tatweel) and a digit of another
script, which ICU weighs as the ASCII one.
Refused; a request to a real endpoint still goes with the person's credential.
"""

from __future__ import annotations

import pytest
from conftest import SECRETS, Proxy, client
from proxy_fakes import FakeUpstream

from proxy import uses

SPELLINGS = [
    # (host, path, what the refusal says)
    ("api.anthropic.com", "/ap%C4%B1/oauth/claude_cli/create_api_key", "new credential"),
    # A dotted capital I (U+0130): Java's equalsIgnoreCase reads it as i.
    ("api.anthropic.com", "/ap%C4%B0/oauth/claude_cli/create_api_key", "new credential"),
    ("api.openai.com", "/v1/organ%C4%B0zation/invites", "organisation"),
    ("api.anthropic.com", "/api/oauth/claude_cli/create_api_%EF%BD%8Bey", "new credential"),
    ("api.anthropic.com", "/api/oauth/claude_cli%EF%BC%8Fcreate_api_key", "new credential"),
    # A fullwidth ";" (a parameter, once folded, that Tomcat drops).
    ("api.anthropic.com", "/api%EF%BC%9Bx/oauth/claude_cli/create_api_key", "new credential"),
    ("api.anthropic.com", "/api/oauth/organizations/o/prepa%C4%B1d", "billing"),
    ("api.anthropic.com", "/v1/organization%C5%BF/invites", "organisation"),
    ("api.openai.com", "/v1/organ%C4%B1zation/invites", "organisation"),
    ("api.pagerduty.com", "/u%EF%BD%93ers", "organisation"),
    # OpenAI's Realtime client secret: a key of its own, as written and in look-alikes.
    ("api.openai.com", "/v1/realtime/client_secrets", "new credential"),
    ("api.openai.com", "/v1/realt%C4%B1me/sessions", "new credential"),
    # Characters that draw nothing (Default_Ignorable_Code_Point): ICU's collation, which
    # .NET's culture-aware comparisons use, weighs them nothing; NFKC_Casefold drops them.
    ("api.anthropic.com", "/api/oauth/claude_cli/create_%E2%80%8Bapi_key", "new credential"),
    ("api.openai.com", "/v1/organ%C2%ADization/invites", "organisation"),  # a soft hyphen
    ("api.anthropic.com", "/api/oauth/claude_cli/create_api%E2%81%A0_key", "new credential"),
    ("api.openai.com", "/v1/realtime/client%E2%80%8C_secrets", "new credential"),  # ZWNJ
    ("api.openai.com", "/v1/realtime/client_%E2%80%8Dsecrets", "new credential"),  # ZWJ
    ("api.anthropic.com", "/v1/organ%EF%BB%BFizations/invites", "organisation"),  # a BOM
    ("api.anthropic.com", "/api/oauth/claude_cli/create_api_k%CD%8Fey", "new credential"),
    ("api.anthropic.com", "/api/oauth/claude_cli/create_api%u00ad_key", "new credential"),
    # What ICU's collation weighs nothing though Unicode does not call it default-ignorable:
    # a control, a Hebrew accent, an Arabic tatweel (a letter: a name's end reads on past
    # it), a musical mark, a character this Unicode does not know yet.
    ("api.anthropic.com", "/api/oauth/claude_cli/create_api%00_key", "new credential"),
    ("api.anthropic.com", "/api/oauth/claude_cli/create%01_api_key", "new credential"),
    ("api.anthropic.com", "/api/oauth/claude_cli/create_api%D6%91_key", "new credential"),
    ("api.openai.com", "/v1/organization%D9%80/invites", "organisation"),
    ("api.openai.com", "/v1/realtime/client_secrets%D9%80", "new credential"),
    ("api.anthropic.com", "/api/oauth/claude_cli/create_api_k%F0%9D%85%A5ey", "new credential"),
    ("api.anthropic.com", "/api/oauth/claude_cli/create_api_k%F0%90%BB%BDey", "new credential"),
    # A digit of another script: ICU's collation tells it from an ASCII one by no weight.
    ("api.anthropic.com", "/v%D9%A1/organizations/invites", "organisation"),
    ("api.openai.com", "/v%E0%A5%A7/realtime/client_secrets", "new credential"),
    # A letter in a dark frame, or written small above another: ICU's collation, blind to
    # case (.NET's InvariantCultureIgnoreCase), weighs it as the letter.
    ("api.anthropic.com", "/api/oauth/claude_cli/create_api_%F0%9F%85%9Aey", "new credential"),
    ("api.anthropic.com", "/api/oauth/claude_cli/create_api_%F0%9F%85%BAey", "new credential"),
    ("api.anthropic.com", "/api/oauth/claude_cli/cre%CD%A3te_api_key", "new credential"),
    # A letter with a stroke (an o, U+00F8) or an eth (U+00F0, a d): ICU blind to accents
    # weighs it as the letter, as it does an accented one.
    ("api.openai.com", "/v1/organizati%C3%B8n/invites", "organisation"),
    ("api.anthropic.com", "/api/oauth/c%C5%82au%C3%B0e_cli/create_api_key", "new credential"),
    # A character newer than the proxy's Unicode, which a newer ICU weighs as a digit (a
    # Kaktovik numeral, U+1D2C1) or a letter (U+1CCE4): the proxy cannot tell which.
    ("api.openai.com", "/v%F0%9D%8B%81/organizations/invites", "newer than the proxy"),
    ("api.openai.com", "/v1/organizati%F0%9C%B3%A4ns/invites", "newer than the proxy"),
]


@pytest.mark.parametrize(("host", "path", "said"), SPELLINGS)
async def test_a_refused_endpoint_spelled_in_look_alikes_is_refused(
        proxy: Proxy, fake: FakeUpstream, host: str, path: str, said: str) -> None:
    async with client(proxy, proxy.add_session("look-alike")) as c:
        r = await c.post(f"https://{host}{path}", json={},
                         headers={"authorization": "Bearer dummy"})
    assert [seen.target for seen in fake.seen] == [], \
        f"{path} went to {host} with the person's credential"
    assert (r.status_code, r.headers["x-proxy-error-type"]) == (403, "CREDENTIAL_USE")
    assert said in r.text


async def test_a_real_endpoint_still_goes_with_the_persons_credential(
        proxy: Proxy, fake: FakeUpstream) -> None:
    async with client(proxy, proxy.add_session("real-endpoint")) as c:
        r = await c.post("https://api.anthropic.com/v1/messages", json={},
                         headers={"authorization": "Bearer dummy"})
    assert r.status_code == 200, r.text
    assert [seen.target for seen in fake.seen] == ["/v1/messages"]
    assert fake.seen[0].header("authorization") == [
        f"Bearer {SECRETS['anthropic_oauth_token']}"]


async def test_a_path_too_long_for_a_server_is_refused_unread(
        proxy: Proxy, fake: FakeUpstream) -> None:
    # Each %uFDFA is one character to IIS and eighteen once folded: a head of them cost the
    # proxy some thirty times the work of a plain one, for every session it serves.
    path = "/v1/messages/" + "%uFDFA" * (uses.PATH_LIMIT // 6 + 1)
    async with client(proxy, proxy.add_session("long-path")) as c:
        r = await c.post(f"https://api.anthropic.com{path}", json={},
                         headers={"authorization": "Bearer dummy"})
    assert [len(seen.target) for seen in fake.seen] == [], \
        "a path longer than servers read went with the person's credential"
    assert (r.status_code, r.headers["x-proxy-error-type"]) == (403, "CREDENTIAL_USE")
    assert "send a shorter one" in r.text
