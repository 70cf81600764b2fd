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

Then past one level: a token with a space and a ``+`` quoted as a form writes or reads it,
escaped twice (and a URL in a URL in a URL, three times), in hex and in base64 at each
alignment, in a page and in a body of data. Against a proxy that undoes one level of
escapes and looks for nothing fixed but the bytes, every one of them hands the token (or its
Basic value) over.
"""

from __future__ import annotations

import base64
import binascii
import json
import re

import pytest
from conftest import SECRETS, Proxy, client, route
from proxy_fakes import FOLDED_SEP, FakeUpstream, echo_forms, echo_forms_folded, echo_forms_more

from appliance.audit import parse_line

TOKEN = "REAL/GITHUB+CANARY.0123~45?>"
BASIC = base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()


@pytest.fixture
def secrets() -> dict[str, str]:
    return {**SECRETS, "github_token": TOKEN}


async def test_an_echo_that_re_encodes_the_credential_hands_back_none_of_it(
        proxy: Proxy, fake: FakeUpstream) -> None:
    assert "/" in BASIC and "+" in BASIC and BASIC.endswith("=")  # what the test is about
    route(proxy, fake.port, "api.github.com", "github.com")
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


#: A token with a space and a ``+`` (a form writes and reads them as each other), and the
#: characters escapes touch.
SPACED = "REAL GITHUB+CANARY/0123~45?>"
SPACED_BASIC = base64.b64encode(f"x-access-token:{SPACED}".encode()).decode()
#: The forms any body is read for (a body of data too): fixed bytes per secret.
LITERAL = ("form-read", "hex", "hex-upper")


def pieces_in(name: str, form: str, secret: str) -> list[str]:
    """The pieces of four bytes of ``secret`` that the agent reads out of the hex or base64
    ``form`` it got (an :func:`echo_forms_more` by ``name``), what was masked read as zero
    bits."""
    if name.startswith("hex"):
        data = binascii.unhexlify(form.replace("*", "0"))
    else:
        form = form.replace("*", "A") + "=" * (-len(form.rstrip("=")) % 4)
        data = (base64.urlsafe_b64decode(form) if name.startswith("base64-url")
                else base64.b64decode(form))
    raw = secret.encode()
    return [raw[i:i + 4].decode() for i in range(len(raw) - 3) if raw[i:i + 4] in data]


@pytest.mark.parametrize("secrets", [{**SECRETS, "github_token": SPACED}])
async def test_an_echo_in_a_form_escaped_twice_in_hex_or_base64_hands_back_none_of_it(
        proxy: Proxy, fake: FakeUpstream) -> None:
    """The agent asks for pages that quote the ``Authorization`` the proxy put in as a form
    writes it, escaped twice, in hex and in base64 at each alignment: as text (read for
    every form) and as a body of data (read for the forms that are fixed bytes: hex, base64
    and a form's space)."""
    route(proxy, fake.port, "api.github.com", "github.com")
    auth = proxy.add_session("encoder-more")
    kinds = ("text/html", "application/octet-stream")
    async with client(proxy, auth) as c:
        pages = {(host, kind): (await c.get(f"https://{host}/echo-encoded-more?type={kind}",
                                            headers={"authorization": "Bearer x"})).text
                 for host in ("api.github.com", "github.com") for kind in kinds}

    leaked = []
    for (host, kind), page in pages.items():
        secret = SPACED if host == "api.github.com" else SPACED_BASIC
        lines = dict(line.removeprefix("<p>").removesuffix("</p>").split(": ", 1)
                     for line in page.splitlines())
        for name, form in echo_forms_more(secret).items():
            if kind != "text/html" and not name.startswith(("base64", *LITERAL)):
                continue  # a body of data is not read for escapes
            if name.startswith(("hex", "base64")):
                if got := pieces_in(name, lines[name], secret):
                    leaked.append(f"{name} on {host} as {kind}: {len(got)} pieces")
            elif form in page:
                leaked.append(f"{name} on {host} as {kind}")
            if "*" * 8 not in lines[name]:
                leaked.append(f"{name} on {host} as {kind} not masked: {lines[name]}")
    assert leaked == []
    # The control: the upstream saw the real credential, and the masking was noted.
    assert [s.header("authorization") for s in fake.seen] == [
        [f"Bearer {SPACED}"], [f"Bearer {SPACED}"],
        [f"Basic {SPACED_BASIC}"], [f"Basic {SPACED_BASIC}"]]
    records = [parse_line(x) for x in proxy.audit_path.read_text().splitlines()]
    assert [r.note and "github_token back" in r.note for r in records
            if r.path.startswith("/echo-encoded-more")] == [True] * 4


def read_back(name: str, form: bytes) -> bytes:
    """What the agent makes of a :func:`echo_forms_folded` by ``name`` it got: the bytes it
    spells, upper-cased, what was masked read as zero bits (or a ``*``)."""
    if name.startswith("hex"):
        return binascii.unhexlify(form.replace(b"*", b"0")).upper()
    if name.startswith("base64"):
        # Its line breaks taken out, as they come: raw, escaped, indented after.
        lines = re.sub(rb'<br ?/?>|[\r\n" ]|\\r|\\n|%0A|&#10;', b"", form)
        return base64.b64decode(lines.replace(b"*", b"A")).upper()
    if name.startswith("utf-16"):
        return form.replace(b"\0", b"").upper()
    if name == "json-every":
        return re.sub(rb"\\u([0-9A-Fa-f]{4})", lambda m: bytes([int(m[1], 16) & 0x7F]),
                      form).upper()
    return form.upper()


@pytest.mark.parametrize("secrets", [{**SECRETS, "github_token": SPACED}])
async def test_an_echo_that_folds_case_wraps_base64_or_widens_to_utf16_hands_back_none_of_it(
        proxy: Proxy, fake: FakeUpstream) -> None:
    """The agent asks for a page that quotes the ``Authorization`` the proxy put in with its
    case folded (hex in mixed case, the value upper- or lower-cased), in UTF-16 either way,
    each character as ``\\u00XX``, and in base64 wrapped as MIME
    and PEM at every offset, and wrapped with its breaks escaped (inside a JSON string as
    GitHub's contents API returns a file, its ``/`` as ``\\/`` too, ``%0A``, ``&#10;``), a CR
    alone, each line indented, or an HTML page's ``<br>``, ``<br/>`` or ``<br />`` and a
    break: no four bytes of the token come back in any of them."""
    route(proxy, fake.port, "api.github.com")
    auth = proxy.add_session("folder")
    async with client(proxy, auth) as c:
        page = (await c.get("https://api.github.com/echo-encoded-folded",
                            headers={"authorization": "Bearer x"})).content

    got = page.split(FOLDED_SEP)
    names = list(echo_forms_folded(f"Bearer {SPACED}"))
    assert len(got) == len(names)
    raw = SPACED.upper().encode()
    pieces = {raw[i:i + 4] for i in range(len(raw) - 3)}
    leaked = [name for name, form in zip(names, got, strict=True)
              if any(piece in read_back(name, form) for piece in pieces)]
    assert leaked == []
    # The control: the upstream saw the real credential, and the masking was noted.
    assert [s.header("authorization") for s in fake.seen] == [[f"Bearer {SPACED}"]]
    records = [parse_line(x) for x in proxy.audit_path.read_text().splitlines()]
    assert [r.note and "github_token back" in r.note for r in records
            if r.path == "/echo-encoded-folded"] == [True]


@pytest.mark.parametrize("query", ["codec=utf-16-le", "codec=utf-16-be", "codec=utf-16-le&bom",
                                   "codec=utf-16-be&bom"])
async def test_an_echo_in_utf16_that_escapes_the_credential_hands_back_none_of_it(
        proxy: Proxy, fake: FakeUpstream, query: str) -> None:
    """The agent asks for a JSON error in UTF-16 (either order, a byte-order mark or not)
    that quotes the ``Authorization`` the proxy put in with every character as ``\\uXXXX``,
    and reads it as Python's ``json.loads`` does (it finds UTF-16 by the NULs): the value
    it gets holds no piece of the token, and the body still reads as JSON."""
    route(proxy, fake.port, "api.github.com")
    auth = proxy.add_session("wide")
    async with client(proxy, auth) as c:
        got = json.loads((await c.get(f"https://api.github.com/echo-utf16?{query}",
                                      headers={"authorization": "Bearer x"})).content)

    pieces = {TOKEN[i:i + 4] for i in range(len(TOKEN) - 3)}
    assert [p for p in pieces if p in got["authorization"]] == []
    assert got["authorization"].startswith("Bearer " + "*" * 8)
    # The control: the upstream saw the real credential, and the masking was noted.
    assert [s.header("authorization") for s in fake.seen] == [[f"Bearer {TOKEN}"]]
    records = [parse_line(x) for x in proxy.audit_path.read_text().splitlines()]
    assert [r.note and "github_token back" in r.note for r in records
            if r.path.startswith("/echo-utf16")] == [True]
