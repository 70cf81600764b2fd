"""An upstream's error that quotes the credential re-encoded, asked by a hostile agent.

The person's GitHub token here has the characters encoders touch (``/``, ``+``, ``.``,
``~``, and what HTML escapes), and so has its Basic rendering (``/``, ``+``, ``=`` padding).
The agent asks, through the proxy with a real TLS client, for pages that quote the
``Authorization`` the proxy put in as error pages do: JSON-escaped as PHP, .NET and Java
write it (``\\/``, ``\\u002B``, every character as ``\\uXXXX``), URL-encoded (upper and
lower hex, ``+`` for the space), HTML-escaped (hex, decimal and named references, HTML5's
``&sol;`` and ``&plus;`` as PHP writes them), and a Basic one decoded to
``x-access-token:<token>`` and quoted those ways too. What must hold: the agent reads the
token in none of those forms; each line of the page arrives, masked in place. Against a
proxy that masks only the literal bytes, every one of them hands the token over.
"""

from __future__ import annotations

import base64

import pytest
from conftest import SECRETS, Proxy, client, override
from proxy_fakes import FakeUpstream, echo_forms

from appliance.audit import parse_line
from proxy.config import Upstream

TOKEN = "REAL/GITHUB+CANARY.0123~45?>"
BASIC = base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()


@pytest.fixture
def secrets() -> dict[str, str]:
    return {**SECRETS, "github_token": TOKEN}


async def test_an_echo_that_re_encodes_the_credential_hands_back_none_of_it(
        proxy: Proxy, fake: FakeUpstream) -> None:
    assert "/" in BASIC and "+" in BASIC and BASIC.endswith("=")  # what the test is about
    to = Upstream(scheme="https", host="127.0.0.1", port=fake.port)
    override(proxy, upstreams={"api.github.com": to, "github.com": to})
    auth = proxy.add_session("encoder")
    async with client(proxy, auth) as c:
        pages = [(await c.get(f"https://{host}/echo-encoded",
                              headers={"authorization": "Bearer placeholder"})).text
                 for host in ("api.github.com", "github.com")]

    # The harm first: no form of the token or of its Basic rendering reached the agent.
    leaked = [f"{name} of {what} on {host}" for what, secret in (("token", TOKEN), ("basic", BASIC))
              for name, form in echo_forms(secret).items()
              for host, page in zip(("api", "web"), pages, strict=True) if form in page]
    assert leaked == []
    # Each quote arrived, masked in place: every line, with nothing of the secret left.
    for page, lines in zip(pages, (10, 20), strict=True):
        assert page.count("</p>\n") == lines
        assert all("*" * 8 in line for line in page.splitlines()), page
    assert "<p>url: Bearer%20" + "*" * len(echo_forms(TOKEN)["url"]) + "</p>" in pages[0]
    # The proxy did inject the token: the upstream saw it (the control).
    assert [s.header("authorization") for s in fake.seen] == [[f"Bearer {TOKEN}"],
                                                              [f"Basic {BASIC}"]]
    records = [parse_line(x) for x in proxy.audit_path.read_text().splitlines()]
    assert [r.note and "github_token back" in r.note for r in records
            if r.path == "/echo-encoded"] == [True, True]
