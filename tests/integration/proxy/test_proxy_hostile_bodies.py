"""What the proxy parses to judge a write, made to break it: a session's bodies must cost
only that session its request, never the proxy every session shares.

``json.loads`` raises ``RecursionError`` (no ``ValueError``) on a few KiB of ``[``; on a
GitHub write the proxy reads (a review) and on the Codex refresh body it rewrote, that
escaped every handler and the nursery of connections, and the proxy stopped for all
sessions. Session ``evil`` sends them; session ``good`` must be served after each.
(The GraphQL scan's own worst case is ``tests/unit/proxy/test_proxy_graphql.py``'s.)
"""

from __future__ import annotations

import pytest
from conftest import Proxy, client


@pytest.mark.parametrize("url", ["https://api.github.com/repos/o/r/pulls/1/reviews",
                                 "https://auth.openai.com/oauth/token"])
async def test_json_nested_past_the_stack_costs_only_its_own_request(
        proxy: Proxy, url: str) -> None:
    evil, good = proxy.add_session("evil"), proxy.add_session("good")
    async with client(proxy, evil) as c:
        r = await c.post(url, content=b"[" * 5000, headers={"content-type": "application/json"})
    # The review cannot be read, so it is not judged safe: refused. The refresh has no
    # refresh token to swap: it goes on with nothing of the person's in it.
    assert r.status_code == (403 if "github" in url else 200), r.text
    async with client(proxy, good) as c:
        assert (await c.get("https://api.github.com/repos/o/r")).status_code == 200
