"""An echo that ends the answer inside the longer of two secrets, played by a hostile agent.

On ``github.com`` the proxy puts in the person's token as Basic (``x-access-token:TOKEN`` in
base64), so the masking looks for two secrets: the token, in every spelling (its base64 at
each alignment among them), and the Basic value, which holds the token's base64. A real
GitHub token (``ghp_`` and 36 characters) makes a Basic value that ends in ``=``. A service
that quotes the credential it was sent without base64's padding ends its answer inside the
Basic value: the masking held that end back "as it came", to be masked whole if the rest of
the Basic value followed, and at the answer's end let it go as it came, the token's base64
in it unmasked.
"""

from __future__ import annotations

import base64

import h11
import pytest
import trio
import trustme
from conftest import SECRETS, Proxy, client, serve_as
from proxy_fakes import Seen, _Base

#: A token as GitHub mints them: ``ghp_`` and 36 characters (its Basic value is padded).
TOKEN = "ghp_" + "R3alGitHubCanary0123456789abcdefghij"
BASIC = base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()


@pytest.fixture
def secrets() -> dict[str, str]:
    return {**SECRETS, "github_token": TOKEN}


class UnpaddedEcho(_Base):
    """Refuses the request, quoting its Basic credential without the padding (the end of
    the answer)."""

    async def answer(self, stream: trio.abc.Stream, conn: h11.Connection, seen: Seen) -> bool:
        value = "".join(seen.header("authorization")).removeprefix("Basic ")
        await self.reply(stream, conn, 401, f"unknown credential {value.rstrip('=')}".encode(),
                         "text/plain")
        return True


async def test_an_echo_that_ends_inside_the_basic_value_hands_back_none_of_the_token(
        proxy: Proxy, nursery: trio.Nursery, upstream_ca: trustme.CA) -> None:
    echo = await serve_as(proxy, nursery, UnpaddedEcho(upstream_ca), "github.com")
    auth = proxy.add_session("cutter")
    async with client(proxy, auth) as c:
        r = await c.get("https://github.com/owner/repo.git/info/refs?service=git-upload-pack")
    assert BASIC.endswith("=")  # the answer ends inside it
    assert [s.header("authorization") for s in echo.seen] == [[f"Basic {BASIC}"]]  # the control
    # The token's whole bytes in base64 (it begins where a group does in the Basic value).
    token_base64 = base64.b64encode(TOKEN.encode()).decode()[:-4]
    assert token_base64 in BASIC
    # The harm: the agent reads the token in its base64 or the Basic value's.
    assert r.status_code == 401
    assert token_base64 not in r.text and BASIC.rstrip("=") not in r.text, r.text
    # Masked in place: every character made of the token's bits alone (the last one holds
    # two of its bits and the padding's zeros).
    prefix = base64.b64encode(b"x-access-token:").decode()
    assert r.text == (f"unknown credential {prefix}{'*' * (8 * len(TOKEN) // 6)}"
                      f"{BASIC.rstrip('=')[-1]}")
